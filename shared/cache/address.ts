/**
 * Content addresses of cache items. An item's address covers exactly what determines its
 * vector: the backbone's model bytes (sha256) and the normalized input. Re-uploading the same
 * content under other ids, labels or files therefore never re-embeds it.
 */
import { createHash } from "node:crypto";
import type { BackboneSpec } from "../backbone/spec.ts";
import { TOKENIZER_REVISION } from "../backbone/tokenizer.ts";

const SCHEME = "headstart-item-v1";

/** Whitespace and Unicode form are not content: `"a  b"` and `"a b"` embed identically. */
export function normalizeText(text: string): string {
  if (isNormalAscii(text)) return text;
  return text.normalize("NFC").replace(/\s+/g, " ").trim();
}

/**
 * True when `normalizeText` would return the text unchanged and it is plain ASCII: NFC leaves ASCII
 * alone, and within ASCII `\s` is tab, line feed, vertical tab, form feed, carriage return and
 * space, so the text must hold no such character but single inner spaces. One pass instead of the
 * NFC scan and the regex, which were 12% of the batch stage's time on IMDB (nearly all ASCII).
 */
function isNormalAscii(text: string): boolean {
  let afterSpace = true; // a leading space is not normal either
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x80 || (c >= 0x09 && c <= 0x0d)) return false;
    if (c === 0x20) {
      if (afterSpace) return false;
      afterSpace = true;
    } else afterSpace = false;
  }
  return !afterSpace || text.length === 0;
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Everything besides the input that decides a vector: the model bytes, the preprocessing
 * settings from backbone.json, and the revision of the code that runs them.
 */
export function embeddingKey(spec: Pick<BackboneSpec, "sha256" | "preprocessing" | "assetSha256">): string {
  // Imported vectors never pass through headstart's tokenizer: its revision must not orphan them.
  if (spec.preprocessing.type === "external") return sha256Hex(`${spec.sha256}\0external`);
  const assets = Object.entries(spec.assetSha256 ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return sha256Hex(
    `${spec.sha256}\0${JSON.stringify(spec.preprocessing)}\0${JSON.stringify(assets)}\0tokenizer-${TOKENIZER_REVISION}`,
  );
}

export function textItemSha(embedding: string, text: string): string {
  return sha256Hex(`${SCHEME}\0${embedding}\0text\0${normalizeText(text)}`);
}

export function fileItemSha(embedding: string, modality: "image" | "audio", fileSha: string): string {
  return sha256Hex(`${SCHEME}\0${embedding}\0${modality}\0${fileSha}`);
}

/** An imported vector: its content is the vector itself (sha256 of its float32 little-endian bytes). */
export function vectorItemSha(embedding: string, vectorSha: string): string {
  return sha256Hex(`${SCHEME}\0${embedding}\0embedding\0${vectorSha}`);
}
