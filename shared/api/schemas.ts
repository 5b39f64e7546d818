import { z } from "@hono/zod-openapi";
import { NAME_PATTERN, NAME_RULE } from "../layout.ts";

export const MAX_PREDICT_BATCH = 256;
export const MAX_EMBEDDINGS_BATCH = 1_024;
export const MAX_INPUT_CHARS = 100_000;

const Name = z.string().regex(NAME_PATTERN, NAME_RULE);

export const DatasetParams = z.object({
  dataset: Name.openapi({ param: { name: "dataset", in: "path" }, example: "imdb" }),
});
export const HeadParams = z.object({
  head: Name.openapi({ param: { name: "head", in: "path" }, example: "imdb-sentiment" }),
});
export const HeadAliasParams = HeadParams.extend({
  alias: Name.openapi({ param: { name: "alias", in: "path" }, example: "live" }),
});
export const HeadVersionParams = HeadParams.extend({
  version: Name.openapi({ param: { name: "version", in: "path" } }),
});
export const JobParams = z.object({ job: Name.openapi({ param: { name: "job", in: "path" } }) });

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      field: z.string().optional(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

export const AnyObject = z.record(z.string(), z.unknown());

export const IngestQuery = z.object({
  embed: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "Start embedding after ingest (default true)" }),
  backbone: Name.optional(),
});

export const TrainBody = z
  .strictObject({
    dataset: Name,
    type: z.enum(["logreg"]).default("logreg"),
    backbone: Name.optional(),
    cv: z.number().int().min(2).max(50).optional(),
    seed: z.number().int().min(0).optional(),
    l2: z.number().min(0).optional(),
    promote: z.boolean().default(true),
  })
  .openapi("TrainRequest");

export const PredictBody = z
  .strictObject({
    inputs: z
      .array(z.string().min(1).max(MAX_INPUT_CHARS))
      .min(1)
      .max(MAX_PREDICT_BATCH)
      .optional()
      .openapi({ description: `Raw texts, at most ${MAX_PREDICT_BATCH}`, example: ["What a great movie!"] }),
    embeddings: z
      .array(z.array(z.number()).min(1))
      .min(1)
      .max(MAX_EMBEDDINGS_BATCH)
      .optional()
      .openapi({ description: `Ready embeddings from the head's backbone, at most ${MAX_EMBEDDINGS_BATCH}` }),
    version: Name.optional().openapi({ description: "A specific head version instead of the live one" }),
    alias: Name.optional().openapi({ description: "The version another alias points to (e.g. canary)" }),
    neighbors: z.number().int().min(1).max(50).optional().openapi({
      description: "Also return the k most similar training items (id, label, cosine similarity)",
    }),
  })
  .refine((b) => (b.inputs === undefined) !== (b.embeddings === undefined), {
    message: "send exactly one of inputs, embeddings",
    path: ["inputs"],
  })
  .refine((b) => b.version === undefined || b.alias === undefined, {
    message: "send at most one of version, alias",
    path: ["alias"],
  })
  .openapi("PredictRequest");

export const PredictResponse = z
  .object({
    head: z.string(),
    version: z.string(),
    predictions: z.array(
      z.object({
        label: z.string(),
        score: z.number(),
        scores: z.record(z.string(), z.number()),
        neighbors: z
          .array(
            z.object({
              id: z.string(),
              label: z.union([z.string(), z.number(), z.array(z.string())]).optional(),
              similarity: z.number(),
            }),
          )
          .optional(),
      }),
    ),
  })
  .openapi("PredictResponse");

export const PromoteBody = z.strictObject({
  version: Name,
  expectedVersion: Name.nullable()
    .optional()
    .openapi({ description: "Fail with 409 unless live currently points here" }),
});

/** Response bodies are domain objects typed by their own zod schemas; the route schema is `AnyObject`. */
export function body(value: object): Record<string, never> {
  return value as Record<string, never>;
}
