/**
 * The files of a head's corrections, named by the sha256 of their bytes and written create-only,
 * so the same file sent twice is stored once and a record (`feedback/records.ts`) names it by that
 * file: images under `heads/<head>/feedback-images/<sha256>.<jpg|png|webp|gif>`, audio under
 * `heads/<head>/feedback-audio/<sha256>.<wav|flac|mp3|ogg>`. Materialize copies them into the
 * feedback dataset's files/ folder (`feedback/materialize.ts`). A file must be of the head's
 * modality (an image head takes images, an audio head audio, a text head texts).
 */
import { createHash } from "node:crypto";
import { DEFAULT_AUDIO_LIMITS } from "../audio/decode.ts";
import { sniffAudio } from "../audio/sniff.ts";
import { BackboneSpec } from "../backbone/spec.ts";
import { partsOf } from "../embed/composite.ts";
import { PreconditionFailedError, ValidationError } from "../errors.ts";
import { decodeBase64File, FILE_KEY_PREFIX, type FileKind, statFileKey } from "../heads/predict.ts";
import type { HeadDocument } from "../heads/version.ts";
import { DEFAULT_IMAGE_LIMITS, sniff } from "../images/decode.ts";
import { keys } from "../layout.ts";
import { getJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

const IMAGE_EXTENSION = { jpeg: "jpg", png: "png", webp: "webp", gif: "gif" } as const;

/** A correction's input as sent: a text, or a file inline (base64) or already in the bucket. */
export type FeedbackInputBody =
  | string
  | { text: string }
  | { image: string }
  | { imageKey: string }
  | { audio: string }
  | { audioKey: string };

/** The input read and checked, before anything is written. */
export type FeedbackInput = { text: string } | { image: Uint8Array } | { audio: Uint8Array };

const MAX_BYTES: Record<FileKind, number> = {
  image: DEFAULT_IMAGE_LIMITS.maxBytes,
  audio: DEFAULT_AUDIO_LIMITS.maxBytes,
};

/** Which field of the input carries it, and so its kind: `image`, `imageKey`, `audio`, `audioKey`, or a text. */
function fieldOf(input: unknown): { kind: FileKind | "text"; name?: string } {
  if (input && typeof input === "object") {
    for (const name of ["image", "imageKey", "audio", "audioKey"] as const) {
      if (name in input) return { kind: name.startsWith("image") ? "image" : "audio", name };
    }
  }
  return { kind: "text" };
}

export async function readFeedbackInput(store: ObjectStore, input: unknown): Promise<FeedbackInput> {
  const { kind, name } = fieldOf(input);
  if (kind !== "text" && name !== undefined) {
    const field = `input.${name}`;
    const value = (input as Record<string, unknown>)[name];
    const bytes = name.endsWith("Key")
      ? await readKey(store, value, field, kind)
      : readInline(value, field, kind);
    return kind === "image" ? { image: checkImage(bytes, field) } : { audio: checkAudio(bytes, field) };
  }
  const text = typeof input === "string" ? input : (input as { text?: unknown } | undefined)?.text;
  if (typeof text !== "string" || text.trim() === "") {
    throw new ValidationError(
      "input must be a non-blank text, {text}, {image: base64}, {imageKey}, {audio: base64} or {audioKey}",
      { field: "input" },
    );
  }
  return { text };
}

function readInline(value: unknown, field: string, kind: FileKind): Uint8Array {
  if (typeof value !== "string")
    throw new ValidationError(`${field} must be base64 ${kind} bytes`, { field });
  return decodeBase64File(value, field, MAX_BYTES[kind], kind);
}

async function readKey(store: ObjectStore, value: unknown, field: string, kind: FileKind) {
  if (typeof value !== "string")
    throw new ValidationError(`${field} must be a key under ${FILE_KEY_PREFIX}`, { field });
  const { key } = await statFileKey(store, value, field, MAX_BYTES[kind], kind);
  const obj = await store.get(key);
  if (!obj) throw new ValidationError(`${field}: no object ${key} in this store`, { field });
  return obj.body;
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

/** Only the audio formats predict decodes (by magic bytes); anything else is refused here. */
function checkAudio(bytes: Uint8Array, field: string): Uint8Array {
  const format = sniffAudio(bytes);
  if (typeof format !== "string") {
    const what = format.refused ? `${format.refused}, a format not decoded` : "not audio";
    throw new ValidationError(`${field} is ${what}; send a WAV, FLAC, MP3 or Ogg Vorbis file`, { field });
  }
  return bytes;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** `<sha256>.<ext>` of checked image bytes. */
export function feedbackImageFile(bytes: Uint8Array): string {
  const format = sniff(bytes);
  if (typeof format !== "string") throw new ValidationError("not an image", { field: "input.image" });
  return `${sha256(bytes)}.${IMAGE_EXTENSION[format]}`;
}

/** `<sha256>.<ext>` of checked audio bytes (the extension is the format's: wav, flac, mp3, ogg). */
export function feedbackAudioFile(bytes: Uint8Array): string {
  const format = sniffAudio(bytes);
  if (typeof format !== "string") throw new ValidationError("not audio", { field: "input.audio" });
  return `${sha256(bytes)}.${format}`;
}

/** Stores the file once (create-only; an existing one is the same bytes) and returns its name. */
export async function putFeedbackFile(
  store: ObjectStore,
  head: string,
  input: { image: Uint8Array } | { audio: Uint8Array },
): Promise<{ image: string } | { audio: string }> {
  const [bytes, file, key] =
    "image" in input
      ? [input.image, feedbackImageFile(input.image), keys.headFeedbackImage]
      : [input.audio, feedbackAudioFile(input.audio), keys.headFeedbackAudio];
  try {
    await store.put(key(head, file), bytes, { ifNoneMatch: "*" });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  return "image" in input ? { image: file } : { audio: file };
}

const AN = { text: "a text", image: "an image", audio: "audio" } as const;

/**
 * Refuses an input the head cannot learn from, before anything is read or written: audio for a
 * text or image head, an image for a text or audio head, a text for an image or audio head. The
 * 400 names the field that carries it. A head whose backbone spec is gone (or that embeds ready
 * embeddings) is not checked here; its training says what it cannot embed.
 */
export async function assertHeadTakes(store: ObjectStore, doc: HeadDocument, input: unknown): Promise<void> {
  const specs = await Promise.all(
    partsOf(doc.backbone).map((p) => getJson(store, keys.backboneSpec(p.id), BackboneSpec)),
  );
  const modality = specs[0]?.value.modality;
  if (modality === undefined || modality === "embedding") return;
  const { kind, name } = fieldOf(input);
  if (kind === modality) return;
  const field = name ? `input.${name}` : "input";
  throw new ValidationError(
    `${field} is ${AN[kind]}, but head ${doc.head} (backbone ${doc.backbone.id}) takes ${modality} inputs`,
    { field, details: { expected: modality, got: kind } },
  );
}
