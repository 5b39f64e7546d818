/** Preprocessing type → embedder. Imported on demand: every embedder runs onnxruntime. */
import { UnsupportedError } from "../errors.ts";
import type { SessionOptions } from "../onnx/session.ts";
import { AudioEmbedder } from "./audio-embedder.ts";
import { ImageEmbedder } from "./image-embedder.ts";
import type { BackboneSpec, Embedder } from "./spec.ts";
import { TextEmbedder } from "./text-embedder.ts";
import { SparseTextEmbedder } from "./use-embedder.ts";

/** The embedder that runs `spec`'s preprocessing, over local files. */
export function createEmbedder(
  spec: BackboneSpec,
  modelPath: string,
  assetPaths: Record<string, string>,
  opts: { microBatch?: number; session?: SessionOptions } = {},
): Promise<Embedder> {
  switch (spec.preprocessing.type) {
    case "text-vocab":
      return TextEmbedder.create(spec, modelPath, assetPaths, opts);
    case "sentencepiece-sparse":
      return SparseTextEmbedder.create(spec, modelPath, assetPaths, opts);
    case "image":
      return ImageEmbedder.create(spec, modelPath, opts);
    case "audio":
      return AudioEmbedder.create(spec, modelPath, assetPaths, opts);
    default:
      throw new UnsupportedError(
        `backbone ${spec.id}: this build cannot run preprocessing ${JSON.stringify(spec.preprocessing.type)}`,
        { field: "backbone" },
      );
  }
}
