/**
 * A head's corrections: `heads/<head>/feedback/<id>.json`, one create-only record per correction
 * (never changed; deleted one by one); an image or audio input is stored beside them (`feedback/files.ts`). Ids sort by creation time, so for the same input the record
 * listed last is the newest, and its label wins (`feedback/materialize.ts`).
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { Label } from "../datasets/manifest.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import type { HeadDocument } from "../heads/version.ts";
import { assertFeedbackId, keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

export const FeedbackRecord = z.object({
  id: z.string(),
  head: z.string(),
  /** The prediction corrected, when the correction named one. */
  predictionId: z.string().optional(),
  /** The input the label belongs to: a text, or a file (`image`, `audio`). */
  text: z.string().optional(),
  /**
   * An image input: its file under `heads/<head>/feedback-images/` (`<sha256>.<ext>`,
   * `feedback/files.ts`), so the same image sent twice is one input.
   */
  image: z.string().optional(),
  /** An audio input: its file under `heads/<head>/feedback-audio/` (`<sha256>.<wav|flac|mp3|ogg>`). */
  audio: z.string().optional(),
  label: Label,
  createdAt: z.string(),
});
export type FeedbackRecord = z.infer<typeof FeedbackRecord>;

/** `fb-<UTC yyyymmddHHMMSSmmm>-<8 hex>`: sortable by time, unique without coordination. */
export function newFeedbackId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:TZ.]/g, "");
  return `fb-${stamp}-${randomBytes(4).toString("hex")}`;
}

/**
 * The label as the head's task takes it: one of its classes (multiclass), a list of its labels
 * (multilabel) or a finite number (regression). A new class is refused: add rows to the dataset.
 */
export function checkLabel(doc: HeadDocument, label: unknown): z.infer<typeof Label> {
  const task = doc.task ?? "multiclass";
  const known = new Set(doc.labels);
  const classes = doc.labels.slice(0, 20).join(", ");
  if (task === "regression") {
    if (typeof label === "number" && Number.isFinite(label)) return label;
    throw new ValidationError(`head ${doc.head} predicts a number; label must be a finite number`, {
      field: "label",
    });
  }
  if (task === "multilabel") {
    if (Array.isArray(label) && label.every((l) => typeof l === "string" && known.has(l)))
      return [...new Set(label)];
    throw new ValidationError(
      `head ${doc.head} is multi-label; label must be a list of its labels (${classes})`,
      {
        field: "label",
      },
    );
  }
  const name = typeof label === "number" ? String(label) : label;
  if (typeof name === "string" && known.has(name)) return name;
  throw new ValidationError(
    `label must be one of head ${doc.head}'s classes (${classes}); to teach it a new class, add rows to its dataset`,
    { field: "label" },
  );
}

export async function createFeedback(store: ObjectStore, record: FeedbackRecord): Promise<FeedbackRecord> {
  await putJson(store, keys.headFeedback(record.head, record.id), record, { ifNoneMatch: "*" });
  return record;
}

/** Every correction of the head, oldest first. */
export async function listFeedback(store: ObjectStore, head: string): Promise<FeedbackRecord[]> {
  const out: FeedbackRecord[] = [];
  for (const { key } of await store.list(keys.headFeedbackPrefix(head))) {
    if (!key.endsWith(".json")) continue;
    const found = await getJson(store, key, FeedbackRecord);
    if (found) out.push(found.value);
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export async function deleteFeedback(store: ObjectStore, head: string, id: string): Promise<FeedbackRecord> {
  const key = keys.headFeedback(head, assertFeedbackId(id));
  const found = await getJson(store, key, FeedbackRecord);
  if (!found) throw new NotFoundError(`feedback ${id} of head ${head}`, { field: "id" });
  await store.delete(key);
  return found.value;
}
