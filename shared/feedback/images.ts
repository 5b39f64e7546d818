/**
 * The images of a head's corrections: `heads/<head>/feedback-images/<sha256>.<ext>`, named by the
 * sha256 of their bytes and written create-only, so the same image sent twice is stored once and
 * a record (`feedback/records.ts`) names it by that file. Materialize copies them into the
 * feedback dataset's files/ folder (`feedback/materialize.ts`).
 */
import { createHash } from "node:crypto";
import { PreconditionFailedError, ValidationError } from "../errors.ts";
import { decodeBase64File, FILE_KEY_PREFIX, statFileKey } from "../heads/predict.ts";
import { DEFAULT_IMAGE_LIMITS, sniff } from "../images/decode.ts";
import { keys } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";

const EXTENSION = { jpeg: "jpg", png: "png", webp: "webp", gif: "gif" } as const;

/** A correction's input as sent: a text, or an image inline (base64) or already in the bucket. */
export type FeedbackInputBody = string | { text: string } | { image: string } | { imageKey: string };

/** The input read and checked, before anything is written. */
export type FeedbackInput = { text: string } | { image: Uint8Array };

export async function readFeedbackInput(store: ObjectStore, input: unknown): Promise<FeedbackInput> {
  const maxBytes = DEFAULT_IMAGE_LIMITS.maxBytes;
  if (input && typeof input === "object" && "image" in input) {
    if (typeof input.image !== "string")
      throw new ValidationError("input.image must be base64 image bytes", { field: "input.image" });
    return { image: checkImage(decodeBase64File(input.image, "input.image", maxBytes), "input.image") };
  }
  if (input && typeof input === "object" && "imageKey" in input) {
    const field = "input.imageKey";
    if (typeof input.imageKey !== "string")
      throw new ValidationError(`${field} must be a key under ${FILE_KEY_PREFIX}`, { field });
    const { key } = await statFileKey(store, input.imageKey, field, maxBytes);
    const obj = await store.get(key);
    if (!obj) throw new ValidationError(`${field}: no object ${key} in this store`, { field });
    return { image: checkImage(obj.body, field) };
  }
  const text = typeof input === "string" ? input : (input as { text?: unknown } | undefined)?.text;
  if (typeof text !== "string" || text.trim() === "") {
    throw new ValidationError("input must be a non-blank text, {text}, {image: base64} or {imageKey}", {
      field: "input",
    });
  }
  return { text };
}

/** Only the image formats predict accepts (by magic bytes); anything else is refused here. */
function checkImage(bytes: Uint8Array, field: string): Uint8Array {
  const format = sniff(bytes);
  if (typeof format !== "string") {
    const what = format.refused ? `a ${format.refused} file` : "not an image";
    throw new ValidationError(`${field} is ${what}; send a JPEG, PNG, WebP or GIF`, { field });
  }
  return bytes;
}

/** `<sha256>.<ext>` of checked image bytes. */
export function feedbackImageFile(bytes: Uint8Array): string {
  const format = sniff(bytes);
  if (typeof format !== "string") throw new ValidationError("not an image", { field: "input.image" });
  return `${createHash("sha256").update(bytes).digest("hex")}.${EXTENSION[format]}`;
}

/** Stores the image once (create-only; an existing one is the same bytes) and returns its file. */
export async function putFeedbackImage(store: ObjectStore, head: string, bytes: Uint8Array): Promise<string> {
  const file = feedbackImageFile(bytes);
  try {
    await store.put(keys.headFeedbackImage(head, file), bytes, { ifNoneMatch: "*" });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  return file;
}
