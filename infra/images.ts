/**
 * Container images, built from the repository root by `cdk deploy` (synthesis only stages the
 * build context, so `cdk synth` needs no Docker engine and no network).
 */
import { fileURLToPath } from "node:url";
import { DockerImageAsset, Platform } from "aws-cdk-lib/aws-ecr-assets";
import { Construct } from "constructs";

/** The repository root: both Dockerfiles build from it (filtered by /.dockerignore). */
export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

export class Images extends Construct {
  /** The SageMaker Processing image (CUDA, onnxruntime-node with its CUDA provider). */
  readonly embed: DockerImageAsset;
  /** One image for every Lambda; each function picks its handler by CMD. */
  readonly lambda: DockerImageAsset;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.embed = new DockerImageAsset(this, "Embed", {
      directory: REPO_ROOT,
      file: "functions/embed-batch/Dockerfile",
      platform: Platform.LINUX_AMD64,
      displayName: "headstart embed-batch (SageMaker Processing, CUDA)",
    });
    this.lambda = new DockerImageAsset(this, "Lambda", {
      directory: REPO_ROOT,
      file: "functions/lambda.Dockerfile",
      platform: Platform.LINUX_AMD64,
      displayName: "headstart Lambda functions",
    });
  }
}
