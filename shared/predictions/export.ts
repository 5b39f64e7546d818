/**
 * `headstart export-predictions`: a finished job's parts concatenated, in part order, into
 * `predictions.jsonl` and `errors.jsonl` in a local directory. Only a committed job (its
 * `_summary.json` written) is exported, so a file never holds half a job.
 */
import { createWriteStream } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { finished } from "node:stream/promises";
import { HeadstartError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import { finishedBatchJob } from "./files.ts";
import type { BatchSummary } from "./output.ts";

export interface ExportedPredictions {
  job: string;
  predictions: string;
  errors: string;
  counts: BatchSummary["counts"];
}

export async function exportPredictions(
  store: ObjectStore,
  job: string,
  outDir: string,
): Promise<ExportedPredictions> {
  const { summary } = await finishedBatchJob(store, job);
  await mkdir(outDir, { recursive: true });
  const predictions = join(outDir, "predictions.jsonl");
  const errors = join(outDir, "errors.jsonl");
  await concatenate(store, summary.outputs, predictions);
  await concatenate(store, summary.errors, errors);
  return { job, predictions, errors, counts: summary.counts };
}

/** One part in memory at a time. */
async function concatenate(store: ObjectStore, parts: readonly string[], file: string): Promise<void> {
  const out = createWriteStream(file);
  for (const key of parts) {
    const obj = await store.get(key);
    if (!obj) throw new HeadstartError("internal", `part ${key} of a committed batch job is missing`);
    if (!out.write(obj.body)) await new Promise<void>((r) => out.once("drain", () => r()));
  }
  out.end();
  await finished(out);
}
