/**
 * What `headstart ls` and the `GET` list routes answer: one record per thing, read from each
 * owner's own documents (a dataset's `_status.json`, a version's `report.json`, the aliases, a
 * job's record, `backbone.json`). zod schemas, so the API documents exactly these.
 */
import { z } from "zod";
import { DatasetStatus } from "../datasets/status.ts";
import { HeadTask, HeadType } from "../heads/version.ts";

export const DatasetRecord = DatasetStatus.pick({
  dataset: true,
  state: true,
  version: true,
  rows: true,
  labels: true,
  splits: true,
  modalities: true,
  imported: true,
  ingestedAt: true,
});
export type DatasetRecord = z.infer<typeof DatasetRecord>;

/** One head version, summarized from its report (absent fields: a version whose report is missing). */
export const VersionRecord = z.object({
  head: z.string(),
  version: z.string(),
  /** The aliases that point at it (`live`, `canary`…). */
  aliases: z.array(z.string()),
  type: HeadType.optional(),
  task: HeadTask.optional(),
  dataset: z.object({ name: z.string(), version: z.string() }).optional(),
  backbone: z.string().optional(),
  /** Accuracy (multiclass), subset accuracy (multilabel) or RMSE (regression), on its evaluation rows. */
  metric: z.object({ name: z.string(), value: z.number() }).optional(),
  createdAt: z.string().optional(),
});
export type VersionRecord = z.infer<typeof VersionRecord>;

export const HeadRecord = z.object({
  head: z.string(),
  /** The version the `live` alias points to; absent for a head with no live version. */
  live: z.string().optional(),
  /** Every alias and the version it points to. */
  aliases: z.record(z.string(), z.string()),
  /** How many versions the head has. */
  versions: z.number().int(),
  /** The live version's summary (type, task, dataset, backbone, metric). */
  current: VersionRecord.omit({ head: true, version: true, aliases: true }).optional(),
});
export type HeadRecord = z.infer<typeof HeadRecord>;

/** Something that still needs a thing a delete was asked to remove. */
export const Reference = z.object({
  /**
   * `alias`: an alias points at (or rolls back to) it; `job`: a job is still working on it;
   * `version`: a head version was trained with it.
   */
  by: z.enum(["alias", "job", "version"]),
  head: z.string().optional(),
  alias: z.string().optional(),
  version: z.string().optional(),
  job: z.string().optional(),
  /** The same for a person. */
  description: z.string(),
});
export type Reference = z.infer<typeof Reference>;

/** What a delete did: every key it removed, in order, and the references `force` overrode. */
export const DeleteResult = z.object({
  kind: z.enum(["dataset", "head", "version", "job", "backbone"]),
  name: z.string(),
  removed: z.array(z.string()),
  forced: z.boolean(),
  overridden: z.array(Reference),
});
export type DeleteResult = z.infer<typeof DeleteResult>;
