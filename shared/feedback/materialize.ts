/**
 * A head's feedback as a dataset (`feedback-<head>`, heads/train-feedback.ts names it): one row per
 * input, the newest correction's label, written as a manifest and ingested like any upload, so it
 * is embedded and cached like any row. Unchanged feedback ingests to the same rows version.
 */
import { ingestDataset, putManifest, readDatasetRows } from "../datasets/ingest.ts";
import { ConflictError, ValidationError } from "../errors.ts";
import { feedbackDatasetName } from "../heads/train-feedback.ts";
import { isFeedbackId } from "../layout.ts";
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
  for (const r of records) newest.set(r.text, r); // oldest first: a later one replaces an earlier
  const rows = [...newest.values()].map((r) => ({ id: r.id, text: r.text, label: r.label }));
  const dataset = feedbackDatasetName(head);
  await assertFeedbackOnly(store, dataset);
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
