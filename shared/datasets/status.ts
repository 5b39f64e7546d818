import { z } from "zod";

export const Rejection = z.object({
  line: z.number().int(),
  id: z.string().optional(),
  field: z.string().optional(),
  reason: z.string(),
});

/** `datasets/<dataset>/_status.json`: the result of the last ingest, written after `_rows.jsonl`. */
export const DatasetStatus = z.object({
  dataset: z.string(),
  /** `ingested`: rows are usable; `rejected`: the last upload had no usable row (previous rows kept). */
  state: z.enum(["ingested", "rejected"]),
  manifest: z.object({
    key: z.string(),
    format: z.enum(["jsonl", "csv"]),
    etag: z.string(),
    bytes: z.number(),
  }),
  /** sha256 of `_rows.jsonl`: identifies this dataset version (embedding jobs are named after it). */
  version: z.string().optional(),
  rows: z.object({ total: z.number(), accepted: z.number(), rejected: z.number() }),
  /** The first rejections, by line; `rows.rejected` has the full count. */
  rejected: z.array(Rejection),
  labels: z.record(z.string(), z.number()),
  splits: z.object({ train: z.number(), test: z.number(), unspecified: z.number() }),
  modalities: z.record(z.string(), z.number()),
  /** Set when this version came from `import-embeddings`: the vectors live under this backbone. */
  imported: z.object({ backbone: z.string(), dim: z.number().int() }).optional(),
  message: z.string().optional(),
  ingestedAt: z.string(),
});
export type DatasetStatus = z.infer<typeof DatasetStatus>;
