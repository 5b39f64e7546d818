/**
 * Embeds text with any `text-vocab` backbone: tokenize with the spec's preprocessing, run the ONNX
 * graph in micro-batches, return `n × dim` float32 rows in input order.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { UnsupportedError, ValidationError } from "../errors.ts";
import { getSession, type SessionOptions, Tensor } from "../onnx/session.ts";
import { microBatchOption, modalityOf, textVocabPath } from "./embedder-options.ts";
import { BackboneSpec, type Embedder, type EmbedInput } from "./spec.ts";
import { type EncodeOptions, loadVocab, packIds, textToIds } from "./tokenizer.ts";

export interface TextEmbedderOptions {
  /** Texts per `session.run`; bounds the `[batch, seq, dim]` intermediate. Default 256. */
  microBatch?: number;
  session?: SessionOptions;
}

const vocabs = new Map<string, Promise<ReadonlyMap<string, number>>>();

/** Vocabularies are shared per path: the GloVe one is 341k entries. */
function sharedVocab(path: string): Promise<ReadonlyMap<string, number>> {
  let v = vocabs.get(path);
  if (!v) {
    v = loadVocab(path);
    vocabs.set(path, v);
    v.catch(() => vocabs.delete(path));
  }
  return v;
}

export class TextEmbedder implements Embedder {
  readonly spec: BackboneSpec;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly encode: EncodeOptions;
  private readonly microBatch: number;
  private readonly modelPath: string;
  private readonly sessionOptions: SessionOptions;

  private constructor(
    spec: BackboneSpec,
    modelPath: string,
    vocab: ReadonlyMap<string, number>,
    opts: TextEmbedderOptions,
  ) {
    if (spec.preprocessing.type !== "text-vocab") {
      throw new UnsupportedError(
        `TextEmbedder cannot run preprocessing ${JSON.stringify(spec.preprocessing.type)}`,
      );
    }
    this.spec = spec;
    this.modelPath = modelPath;
    this.vocab = vocab;
    const p = spec.preprocessing;
    this.encode = { tokenizer: p.tokenizer, maxTokens: p.maxTokens, lowercase: p.lowercase };
    this.microBatch = microBatchOption(opts.microBatch, 256);
    this.sessionOptions = opts.session ?? {};
  }

  /**
   * `assetPaths` maps each asset name in the spec (the vocabulary) to a local file. The session is
   * opened here so that a bad model fails at creation, not on the first request.
   */
  static async create(
    spec: BackboneSpec,
    modelPath: string,
    assetPaths: Record<string, string>,
    opts: TextEmbedderOptions = {},
  ): Promise<TextEmbedder> {
    if (spec.preprocessing.type !== "text-vocab") {
      throw new UnsupportedError(
        `TextEmbedder cannot run preprocessing ${JSON.stringify(spec.preprocessing.type)}`,
      );
    }
    const vocabPath = textVocabPath(spec, assetPaths, spec.preprocessing.vocab);
    const vocab = await sharedVocab(vocabPath);
    const embedder = new TextEmbedder(spec, modelPath, vocab, opts);
    await embedder.session();
    return embedder;
  }

  /** A built backbone directory: `backbone.json` beside its model and assets. */
  static async fromDir(dir: string, opts: TextEmbedderOptions = {}): Promise<TextEmbedder> {
    const spec = BackboneSpec.parse(JSON.parse(await readFile(join(dir, "backbone.json"), "utf8")));
    const assets = Object.fromEntries(spec.assets.map((a) => [a, join(dir, a)]));
    return TextEmbedder.create(spec, join(dir, spec.model), assets, opts);
  }

  /** The shared onnxruntime session of this backbone's model. */
  session() {
    return getSession(this.modelPath, this.spec.sha256, this.sessionOptions);
  }

  /** Token ids of one text as the model sees them (for diagnostics: coverage, truncation). */
  tokenIds(text: string): Int32Array {
    return textToIds(text, this.vocab, this.encode);
  }

  async embed(inputs: readonly EmbedInput[]): Promise<Float32Array> {
    const n = inputs.length;
    const dim = this.spec.dim;
    const texts = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const input = inputs[i] as { text?: unknown };
      if (typeof input?.text !== "string") {
        throw new UnsupportedError(
          `backbone ${this.spec.id} embeds text; input ${i} is ${modalityOf(inputs[i])}`,
          { field: `inputs[${i}]` },
        );
      }
      texts[i] = input.text;
    }
    const out = new Float32Array(n * dim);
    if (n === 0) return out;
    const session = await this.session();
    const lists = texts.map((t) => this.tokenIds(t));
    // Batching texts of similar length keeps padding (wasted Gather rows) small.
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => lists[a].length - lists[b].length);
    const { ids: idsName, mask: maskName, output } = this.spec.io;
    for (let start = 0; start < n; start += this.microBatch) {
      const rows = order.slice(start, start + this.microBatch);
      const enc = packIds(rows.map((r) => lists[r]));
      const b = rows.length;
      const result = await session.run({
        [idsName]: new Tensor("int64", enc.ids, [b, enc.seqLen]),
        [maskName]: new Tensor("int64", enc.mask, [b, enc.seqLen]),
      });
      const y = result[output];
      if (!y)
        throw new ValidationError(
          `model of backbone ${this.spec.id} has no output ${JSON.stringify(output)}`,
        );
      if (y.type !== "float32" || y.dims.length !== 2 || y.dims[0] !== b || y.dims[1] !== dim) {
        throw new ValidationError(
          `backbone ${this.spec.id}: output ${output} is ${y.type} [${y.dims.join(", ")}], expected float32 [${b}, ${dim}]`,
        );
      }
      const data = y.data as Float32Array;
      for (let k = 0; k < b; k++) out.set(data.subarray(k * dim, (k + 1) * dim), rows[k] * dim);
      y.dispose?.();
    }
    return out;
  }
}
