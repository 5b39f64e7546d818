/**
 * Embeds text with any `sentencepiece-sparse` backbone (the Universal Sentence Encoder lite and
 * models shaped like it): sentencepiece ids → sparse int64 batch → ONNX graph → `n × dim` float32
 * rows in input order.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { UnsupportedError, ValidationError } from "../errors.ts";
import { getSession, type InferenceSession, type SessionOptions, Tensor } from "../onnx/session.ts";
import { microBatchOption, modalityOf, textVocabPath } from "./embedder-options.ts";
import { SentencepieceTokenizer } from "./sentencepiece.ts";
import { BackboneSpec, type Embedder, type EmbedInput } from "./spec.ts";

export interface SparseTextEmbedderOptions {
  /** Texts per `session.run`. Default 32: the encoder's attention grows with the longest text. */
  microBatch?: number;
  session?: SessionOptions;
}

type SparsePreprocessing = Extract<BackboneSpec["preprocessing"], { type: "sentencepiece-sparse" }>;

const tokenizers = new Map<string, Promise<SentencepieceTokenizer>>();

/** One tokenizer per vocabulary file and reserved count: building the trie takes ~50 ms. */
function sharedTokenizer(path: string, reservedCount: number): Promise<SentencepieceTokenizer> {
  const key = `${reservedCount}\0${path}`;
  let t = tokenizers.get(key);
  if (!t) {
    t = (async () => {
      let pieces: unknown;
      try {
        pieces = JSON.parse(await readFile(path, "utf8"));
      } catch (cause) {
        throw new ValidationError(`sentencepiece vocabulary ${path} is not JSON`, { field: "vocab", cause });
      }
      return SentencepieceTokenizer.fromVocab(pieces as [string, number | null][], { reservedCount });
    })();
    tokenizers.set(key, t);
    t.catch(() => tokenizers.delete(key));
  }
  return t;
}

/** Any id the vocabulary has: it fills an all-empty batch's last row, whose output is dropped. */
const FILLER_ID = 0n;

export class SparseTextEmbedder implements Embedder {
  readonly spec: BackboneSpec;
  private readonly tokenizer: SentencepieceTokenizer;
  private readonly pre: SparsePreprocessing;
  private readonly microBatch: number;
  private readonly modelPath: string;
  private readonly sessionOptions: SessionOptions;

  private constructor(
    spec: BackboneSpec,
    pre: SparsePreprocessing,
    modelPath: string,
    tokenizer: SentencepieceTokenizer,
    opts: SparseTextEmbedderOptions,
  ) {
    this.spec = spec;
    this.pre = pre;
    this.modelPath = modelPath;
    this.tokenizer = tokenizer;
    this.microBatch = microBatchOption(opts.microBatch, 32);
    this.sessionOptions = opts.session ?? {};
  }

  /** `assetPaths` maps each asset name of the spec to a local file; the session opens here. */
  static async create(
    spec: BackboneSpec,
    modelPath: string,
    assetPaths: Record<string, string>,
    opts: SparseTextEmbedderOptions = {},
  ): Promise<SparseTextEmbedder> {
    const pre = spec.preprocessing;
    if (pre.type !== "sentencepiece-sparse") {
      throw new UnsupportedError(`SparseTextEmbedder cannot run preprocessing ${JSON.stringify(pre.type)}`);
    }
    const vocabPath = textVocabPath(spec, assetPaths, pre.vocab);
    const tokenizer = await sharedTokenizer(vocabPath, pre.reservedCount);
    const embedder = new SparseTextEmbedder(spec, pre, modelPath, tokenizer, opts);
    await embedder.session();
    return embedder;
  }

  /** A built backbone directory: `backbone.json` beside its model and assets. */
  static async fromDir(dir: string, opts: SparseTextEmbedderOptions = {}): Promise<SparseTextEmbedder> {
    const spec = BackboneSpec.parse(JSON.parse(await readFile(join(dir, "backbone.json"), "utf8")));
    const assets = Object.fromEntries(spec.assets.map((a) => [a, join(dir, a)]));
    return SparseTextEmbedder.create(spec, join(dir, spec.model), assets, opts);
  }

  session(): Promise<InferenceSession> {
    return getSession(this.modelPath, this.spec.sha256, this.sessionOptions);
  }

  /** Piece ids of one text as the model sees them (truncated to `maxTokens`). */
  tokenIds(text: string): number[] {
    const ids = this.tokenizer.encode(text);
    return ids.length > this.pre.maxTokens ? ids.slice(0, this.pre.maxTokens) : ids;
  }

  /**
   * The sparse feeds for `lists` (one id list per text). The graph's batch size is the largest text
   * index + 1, so when the last list is empty a filler row is appended, whose output row (past
   * `lists.length`) is to be ignored.
   */
  feeds(lists: readonly (readonly number[])[]): Record<string, Tensor> {
    const b = lists.length;
    const filler = b === 0 || (lists[b - 1] as readonly number[]).length === 0;
    let nnz = filler ? 1 : 0;
    for (const ids of lists) nnz += ids.length;
    const indices = new BigInt64Array(nnz * 2);
    const values = new BigInt64Array(nnz);
    let k = 0;
    for (let s = 0; s < b; s++) {
      const ids = lists[s] as readonly number[];
      const row = BigInt(s);
      for (let p = 0; p < ids.length; p++, k++) {
        indices[2 * k] = row;
        indices[2 * k + 1] = BigInt(p);
        values[k] = BigInt(ids[p] as number);
      }
    }
    if (filler) {
      indices[2 * k] = BigInt(b);
      values[k] = FILLER_ID;
    }
    return {
      [this.pre.indices]: new Tensor("int64", indices, [nnz, 2]),
      [this.pre.values]: new Tensor("int64", values, [nnz]),
    };
  }

  async embed(inputs: readonly EmbedInput[]): Promise<Float32Array> {
    const n = inputs.length;
    const dim = this.spec.dim;
    const lists = new Array<number[]>(n);
    for (let i = 0; i < n; i++) {
      const input = inputs[i] as { text?: unknown };
      if (typeof input?.text !== "string") {
        throw new UnsupportedError(
          `backbone ${this.spec.id} embeds text; input ${i} is ${modalityOf(inputs[i] as EmbedInput)}`,
          { field: `inputs[${i}]` },
        );
      }
      lists[i] = this.tokenIds(input.text);
    }
    const out = new Float32Array(n * dim);
    if (n === 0) return out;
    const session = await this.session();
    // Similar lengths per batch cut padding, which the encoder pays for quadratically; ascending
    // order also puts empty texts first, so only an all-empty batch needs the filler row.
    const order = Array.from({ length: n }, (_, i) => i).sort(
      (a, b) => (lists[a] as number[]).length - (lists[b] as number[]).length,
    );
    const batchAt = (start: number) => {
      const rows = order.slice(start, start + this.microBatch);
      return { rows, feeds: this.feeds(rows.map((r) => lists[r] as number[])) };
    };
    const output = this.spec.io.output;
    let next = batchAt(0);
    for (let start = 0; start < n; start += this.microBatch) {
      const cur = next;
      const running = session.run(cur.feeds);
      // Packing the next batch overlaps with the run, which onnxruntime does off the main thread.
      if (start + this.microBatch < n) next = batchAt(start + this.microBatch);
      const result = await running;
      const y = result[output];
      if (!y) {
        throw new ValidationError(
          `model of backbone ${this.spec.id} has no output ${JSON.stringify(output)}`,
        );
      }
      const b = cur.rows.length;
      if (y.type !== "float32" || y.dims.length !== 2 || y.dims[0] < b || y.dims[1] !== dim) {
        throw new ValidationError(
          `backbone ${this.spec.id}: output ${output} is ${y.type} [${y.dims.join(", ")}], expected float32 [${b}, ${dim}]`,
        );
      }
      const data = y.data as Float32Array;
      for (let k = 0; k < b; k++)
        out.set(data.subarray(k * dim, (k + 1) * dim), (cur.rows[k] as number) * dim);
      for (const t of Object.values(result)) t.dispose?.();
    }
    return out;
  }
}
