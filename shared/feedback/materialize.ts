/**
 * A head's feedback as a dataset (`feedback-<head>`, heads/train-feedback.ts names it): one row per
 * input, the newest correction's label, written as a manifest and ingested like any upload, so it
 * is embedded and cached like any row. Image and audio inputs are copied into the dataset's files/ folder
 * first (`<sha256>.<ext>`); the manifest, written last, commits them. Unchanged feedback ingests to the same rows version.
 */
import { ingestDataset, putManifest, readDatasetRows } from "../datasets/ingest.ts";
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { feedbackDatasetName } from "../heads/train-feedback.ts";
import { isFeedbackId, keys } from "../layout.ts";
import { toJsonl } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { listFeedback } from "./records.ts";

/** Rows of a feedback dataset are named after their correction (`feedback/records.ts`). */
export async function materializeFeedback(
  store: ObjectStore,
  head: string,
): Promise<{ dataset: string; version: string; rows: number }> {
  const records = await listFeedback(store, head);
  if (records.length === 0) {
    throw new ValidationError(
      `head ${head} has no feedback yet; send some with \`headstart feedback ${head}\``,
      {
        field: "withFeedback",
      },
    );
  }
  const newest = new Map<string, (typeof records)[number]>();
  // Oldest first: a later one replaces an earlier. A file is the same input by its bytes' hash.
  const inputOf = (r: (typeof records)[number]) =>
    r.image !== undefined
      ? { image: r.image }
      : r.audio !== undefined
        ? { audio: r.audio }
        : { text: r.text };
  for (const r of records) newest.set(JSON.stringify(inputOf(r)), r);
  const rows = [...newest.values()].map((r) => ({ id: r.id, ...inputOf(r), label: r.label }));
  const dataset = feedbackDatasetName(head);
  await assertFeedbackOnly(store, dataset);
  await copyFiles(store, head, dataset, rows);
  const manifestKey = await putManifest(store, dataset, "jsonl", toJsonl(rows));
  const status = await ingestDataset(store, dataset, { manifestKey });
  if (!status.version) {
    throw new ValidationError(
      `feedback of head ${head} could not be ingested (${status.rejected[0]?.reason})`,
      {
        field: "withFeedback",
      },
    );
  }
  return { dataset, version: status.version, rows: rows.length };
}

/**
 * The images and audio files into the dataset's files/ folder (where a manifest's rows must find
 * them), before the manifest is written: create-only, and an existing file is the same bytes
 * (named by hash).
 */
async function copyFiles(
  store: ObjectStore,
  head: string,
  dataset: string,
  rows: ReadonlyArray<{ image?: string; audio?: string }>,
): Promise<void> {
  for (const { image, audio } of rows) {
    const file = image ?? audio;
    if (file === undefined) continue;
    const target = keys.datasetFile(dataset, file);
    if (await store.head(target)) continue;
    const source =
      image !== undefined ? keys.headFeedbackImage(head, file) : keys.headFeedbackAudio(head, file);
    const found = await store.get(source);
    if (!found) {
      const what = image !== undefined ? "image" : "audio";
      throw new NotFoundError(`feedback ${what} ${file} of head ${head}`, { field: "withFeedback" });
    }
    try {
      await store.put(target, found.body, { ifNoneMatch: "*" });
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
}

/** A dataset of that name made by someone else (a row that is no correction) is never overwritten. */
async function assertFeedbackOnly(store: ObjectStore, dataset: string): Promise<void> {
  const current = await readDatasetRows(store, dataset);
  const foreign = current?.rows.find((r) => !isFeedbackId(r.id));
  if (foreign) {
    throw new ConflictError(
      `dataset ${dataset} holds rows that are not feedback (row ${foreign.id}); it is where this head's feedback goes — rename that dataset`,
      { field: "withFeedback" },
    );
  }
}
