/**
 * Content addresses of cache items. An item's address covers exactly what determines its
 * vector: the backbone's model bytes (sha256) and the normalized input. Re-uploading the same
 * content under other ids, labels or files therefore never re-embeds it.
 */
import { createHash } from "node:crypto";

const SCHEME = "headstart-item-v1";

/** Whitespace and Unicode form are not content: `"a  b"` and `"a b"` embed identically. */
export function normalizeText(text: string): string {
  return text.normalize("NFC").replace(/\s+/g, " ").trim();
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

export function textItemSha(backboneSha: string, text: string): string {
  return sha256Hex(`${SCHEME}\0${backboneSha}\0text\0${normalizeText(text)}`);
}

export function fileItemSha(backboneSha: string, modality: "image" | "audio", fileSha: string): string {
  return sha256Hex(`${SCHEME}\0${backboneSha}\0${modality}\0${fileSha}`);
}
