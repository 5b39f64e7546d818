/** Checks every text embedder makes on its spec and options, in one place. */
import { UnsupportedError, ValidationError } from "../errors.ts";
import type { BackboneSpec, EmbedInput, ItemFailure } from "./spec.ts";

/** The local path of a text backbone's vocabulary asset; throws naming what is wrong. */
export function textVocabPath(spec: BackboneSpec, assetPaths: Record<string, string>, vocab: string): string {
  if (spec.modality !== "text") {
    throw new UnsupportedError(`backbone ${spec.id} embeds ${spec.modality}, not text`, {
      field: "modality",
    });
  }
  const path = assetPaths[vocab];
  if (!path) {
    throw new ValidationError(`no path given for vocabulary asset ${JSON.stringify(vocab)}`, {
      field: "assetPaths",
    });
  }
  return path;
}

/** Items per `session.run`: `value`, or `fallback` when absent. */
export function microBatchOption(value: number | undefined, fallback: number): number {
  const microBatch = value ?? fallback;
  if (!Number.isInteger(microBatch) || microBatch < 1) {
    throw new ValidationError("microBatch must be a positive integer", { field: "microBatch" });
  }
  return microBatch;
}

/** What an input holds, for errors: `text`, `image`, `nothing`, or `text+image` for a malformed one. */
export function modalityOf(input: EmbedInput): string {
  const keys = Object.keys(input as object);
  return keys.length === 1 ? (keys[0] as string) : keys.length === 0 ? "nothing" : keys.join("+");
}

/** All or nothing for file inputs: the first unusable one is an error naming its input (predict). */
export function throwFirstFailure(failures: readonly (ItemFailure | undefined)[]): void {
  const bad = failures.findIndex((f) => f !== undefined);
  if (bad < 0) return;
  const f = failures[bad] as ItemFailure;
  throw new ValidationError(`input ${bad}: ${f.message}`, {
    field: `inputs[${bad}]`,
    details: { reason: f.reason },
  });
}
