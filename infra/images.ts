/**
 * The SageMaker Processing image, built from the repository root by `cdk deploy` (synthesis
 * only stages the build context, so `cdk synth` needs no Docker engine and no network). The
 * Lambdas are zip packages (infra/functions.ts).
 */
import { DockerImageAsset, Platform } from "aws-cdk-lib/aws-ecr-assets";
import { Construct } from "constructs";

import { REPO_ROOT } from "./bundles.ts";

export class Images extends Construct {
  /** The SageMaker Processing image (CUDA, onnxruntime-node with its CUDA provider, the embed-batch bundle). */
  readonly embed: DockerImageAsset;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.embed = new DockerImageAsset(this, "Embed", {
      directory: REPO_ROOT,
      file: "functions/embed-batch/Dockerfile",
      platform: Platform.LINUX_AMD64,
      displayName: "headstart embed-batch (SageMaker Processing, CUDA)",
    });
  }
}
