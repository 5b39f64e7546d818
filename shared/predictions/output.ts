/**
 * What a batch-prediction job writes under `predictions/<job>/`: prediction parts
 * (`part-NNNNN.jsonl`), error parts (`errors-NNNNN.jsonl`) and `_summary.json`, written last as
 * the commit marker. Lines are built from the same `Prediction`s online predict answers with.
 */
import { z } from "zod";
import type { DatasetRow } from "../datasets/manifest.ts";
import type { Prediction } from "../heads/predict.ts";
import { keys } from "../layout.ts";
import { getJson, putJson, toJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { BatchCounts, BatchInput } from "./job.ts";

/** Rows per part by default: a part's lines and vectors stay a few tens of MB at most. */
export const DEFAULT_PART_ROWS = 100_000;

/** One line of `part-NNNNN.jsonl`: by task, the label and scores, the labels and scores, or the value. */
export interface PredictionLine {
  id: string;
  /** `<job>:<row id>`: names this prediction in a correction (`headstart feedback --prediction`). */
  predictionId: string;
  label?: string;
  score?: number;
  labels?: string[];
  value?: number;
  scores?: Record<string, number>;
  /** Multiclass heads with an unknown-input detector: as online predict answers them. */
  unknownScore?: number;
  unknown?: boolean;
  version: string;
}

/** One line of `errors-NNNNN.jsonl`: the row, its manifest line, and why it was not scored. */
export interface ErrorLine {
  id: string;
  line: number;
  reason: string;
}

export function predictionLine(job: string, row: DatasetRow, p: Prediction, version: string): PredictionLine {
  const ids = { id: row.id, predictionId: batchPredictionId(job, row.id) };
  if (p.value !== undefined) return { ...ids, value: p.value, version };
  if (p.labels !== undefined) return { ...ids, labels: p.labels, scores: p.scores, version };
  const unknown = p.unknownScore !== undefined ? { unknownScore: p.unknownScore, unknown: p.unknown } : {};
  return { ...ids, label: p.label, score: p.score, scores: p.scores, ...unknown, version };
}

/** A batch prediction's id: its job and row (job names never hold `:`), so it always resolves. */
export function batchPredictionId(job: string, rowId: string): string {
  return `${job}:${rowId}`;
}

export const BatchSummary = z.object({
  job: z.string(),
  head: z.string(),
  version: z.string(),
  input: BatchInput,
  counts: BatchCounts,
  outputs: z.array(z.string()),
  errors: z.array(z.string()),
  timings: z.object({
    startedAt: z.string(),
    finishedAt: z.string(),
    /** Making sure every row is in the cache (embedding only what is missing). */
    embedSeconds: z.number(),
    /** Loading the cached vectors, scoring, writing the parts. */
    scoreSeconds: z.number(),
    totalSeconds: z.number(),
  }),
});
export type BatchSummary = z.infer<typeof BatchSummary>;

/** One part's two files. Deterministic content, so a resumed run rewrites identical bytes. */
export async function writePart(
  store: ObjectStore,
  job: string,
  part: number,
  lines: readonly PredictionLine[],
  errors: readonly ErrorLine[],
): Promise<{ output: string; errors: string }> {
  const output = keys.predictionsPart(job, part);
  const errorsKey = keys.predictionsErrors(job, part);
  await store.put(output, toJsonl(lines), { contentType: "application/x-ndjson" });
  await store.put(errorsKey, toJsonl(errors), { contentType: "application/x-ndjson" });
  return { output, errors: errorsKey };
}

/** The commit marker: parts are complete once it exists. */
export async function writeSummary(store: ObjectStore, summary: BatchSummary): Promise<void> {
  await putJson(store, keys.predictionsSummary(summary.job), summary);
}

export async function readSummary(store: ObjectStore, job: string): Promise<BatchSummary | undefined> {
  return (await getJson(store, keys.predictionsSummary(job), BatchSummary))?.value;
}
