/**
 * Embeds audio with any `audio` backbone: bytes → decoded mono samples at the backbone's rate →
 * the mel model (one clip per run: clips differ in length) → overlapping windows of every clip of
 * a micro-batch, batched into as few runs of the embedding model as fit `maxWindowsPerRun` → pooled
 * per clip. The next micro-batch is decoded while the current one runs, so onnxruntime is not left
 * waiting on the decoder (which runs on worker threads when the caller hands in a pool's decode).
 */
import { AudioDecodeError, type AudioLimits, type DecodedAudio } from "../audio/decode.ts";
import type { AudioDecoder } from "../audio/decode-pool.ts";
import { HeadstartError, UnsupportedError, ValidationError } from "../errors.ts";
import { getSession, type InferenceSession, type SessionOptions, Tensor } from "../onnx/session.ts";
import { poolWindows, scaledClip, windowStarts, writeWindows } from "./audio-windows.ts";
import { microBatchOption, modalityOf, throwFirstFailure } from "./embedder-options.ts";
import type { BackboneSpec, Embedder, EmbedInput, ItemFailure, SettledEmbedding } from "./spec.ts";

type AudioPre = Extract<BackboneSpec["preprocessing"], { type: "audio" }>;

/** Decodes one file to mono samples at `sampleRate`; throws `AudioDecodeError` for a bad file. */
export type AudioDecode = (
  bytes: Uint8Array,
  opts: { sampleRate: number; limits?: AudioLimits; name?: string },
) => Promise<Pick<DecodedAudio, "samples">>;

export interface AudioEmbedderOptions {
  /** Clips per micro-batch (decoded together, their windows batched). Default 16. */
  microBatch?: number;
  /** Windows per run of the embedding model. Default 512 (≈ 5 MB of input). */
  maxWindowsPerRun?: number;
  /**
   * Default: a micro-batch of several files is decoded on the process's worker pool
   * (`audio/decode-pool.ts`, so the embedding thread keeps feeding onnxruntime), a single file
   * (a predict) on this thread.
   */
  decode?: AudioDecode;
  session?: SessionOptions;
}

let pool: Promise<AudioDecoder> | undefined;
function sharedPool(): Promise<AudioDecoder> {
  pool ??= import("../audio/decode-pool.ts").then((m) => m.createDecodePool());
  return pool;
}

const defaultDecode = (several: boolean): AudioDecode =>
  several
    ? // The pool takes over the buffer it is given: hand it a copy, the caller's input stays whole.
      async (bytes, opts) => (await sharedPool()).decode(bytes.slice(), opts)
    : async (bytes, opts) => (await import("../audio/decode.ts")).decodeAudio(bytes, opts);

export class AudioEmbedder implements Embedder {
  readonly spec: BackboneSpec;
  private readonly pre: AudioPre;
  private readonly microBatch: number;
  private readonly maxWindows: number;
  private readonly decode?: AudioDecode;

  private constructor(
    spec: BackboneSpec,
    pre: AudioPre,
    private readonly paths: { model: string; mel: string; melSha256: string },
    private readonly sessionOptions: SessionOptions,
    opts: AudioEmbedderOptions,
  ) {
    this.spec = spec;
    this.pre = pre;
    this.microBatch = microBatchOption(opts.microBatch, 16);
    this.maxWindows = microBatchOption(opts.maxWindowsPerRun, 512);
    this.decode = opts.decode;
  }

  static async create(
    spec: BackboneSpec,
    modelPath: string,
    assetPaths: Record<string, string>,
    opts: AudioEmbedderOptions = {},
  ): Promise<AudioEmbedder> {
    const pre = spec.preprocessing;
    if (pre.type !== "audio" || spec.modality !== "audio") {
      throw new UnsupportedError(
        `AudioEmbedder cannot run backbone ${spec.id} (${spec.modality}, ${pre.type})`,
        {
          field: "backbone",
        },
      );
    }
    const mel = assetPaths[pre.melModel];
    if (!mel) {
      throw new ValidationError(`no path given for mel model asset ${JSON.stringify(pre.melModel)}`, {
        field: "assetPaths",
      });
    }
    if (spec.dim % windowWidthDivisor(pre) !== 0) {
      throw new ValidationError(`backbone ${spec.id}: dim ${spec.dim} is odd with pooling mean-max`, {
        field: "backbone.json.dim",
      });
    }
    const melSha256 = spec.assetSha256[pre.melModel] ?? `${spec.sha256}:${pre.melModel}`;
    const embedder = new AudioEmbedder(
      spec,
      pre,
      { model: modelPath, mel, melSha256 },
      opts.session ?? {},
      opts,
    );
    await Promise.all([embedder.melSession(), embedder.embeddingSession()]);
    return embedder;
  }

  private melSession(): Promise<InferenceSession> {
    return getSession(this.paths.mel, this.paths.melSha256, this.sessionOptions);
  }

  private embeddingSession(): Promise<InferenceSession> {
    return getSession(this.paths.model, this.spec.sha256, this.sessionOptions);
  }

  /** Length of one window's vector: `dim`, or half of it when pooling appends the max. */
  get windowDim(): number {
    return this.spec.dim / windowWidthDivisor(this.pre);
  }

  /** Mel frames of one clip (`frames × melBins`), padded to `minSamples` first. */
  async melFrames(samples: Float32Array): Promise<{ mel: Float32Array; frames: number }> {
    const { sampleScale, minSamples, melInput, melOutput, melBins } = this.pre;
    const clip = scaledClip(samples, sampleScale, minSamples);
    const session = await this.melSession();
    const result = await session.run({ [melInput]: new Tensor("float32", clip, [1, clip.length]) });
    const y = result[melOutput];
    const size = y?.dims.reduce((a, b) => a * b, 1) ?? 0;
    if (y?.type !== "float32" || y.dims.at(-1) !== melBins || size % melBins !== 0) {
      throw new HeadstartError(
        "internal",
        `backbone ${this.spec.id}: mel output ${melOutput} is ${y?.type} [${y?.dims.join(", ")}], expected float32 [… , ${melBins}]`,
      );
    }
    const mel = new Float32Array(y.data as Float32Array);
    for (const t of Object.values(result)) t.dispose?.();
    return { mel, frames: size / melBins };
  }

  /**
   * Every window's vector for each clip, clip by clip (`Σ counts × windowDim`), with the windows
   * of all clips batched into runs of at most `maxWindowsPerRun`.
   */
  async windowVectors(clips: readonly Float32Array[]): Promise<{ windows: Float32Array; counts: number[] }> {
    const { window, stride, melBins, melScale, melOffset } = this.pre;
    const mels = [];
    for (const clip of clips) mels.push(await this.melFrames(clip));
    const counts = mels.map((m) => windowStarts(m.frames, window, stride).length);
    if (counts.includes(0)) {
      throw new HeadstartError(
        "internal",
        `backbone ${this.spec.id}: minSamples ${this.pre.minSamples} gives fewer than ${window} mel frames`,
      );
    }
    const total = counts.reduce((a, b) => a + b, 0);
    const size = window * melBins;
    const batch = new Float32Array(total * size);
    let at = 0;
    for (const m of mels) {
      const w = { window, stride, scale: melScale, offset: melOffset };
      at += writeWindows(m.mel, m.frames, melBins, w, batch, at * size);
    }
    const windows = new Float32Array(total * this.windowDim);
    for (let start = 0; start < total; start += this.maxWindows) {
      const n = Math.min(this.maxWindows, total - start);
      const out = await this.runWindows(batch.subarray(start * size, (start + n) * size), n);
      windows.set(out, start * this.windowDim);
    }
    return { windows, counts };
  }

  private async runWindows(input: Float32Array, n: number): Promise<Float32Array> {
    const { window, melBins, input: name } = this.pre;
    const session = await this.embeddingSession();
    const result = await session.run({ [name]: new Tensor("float32", input, [n, window, melBins, 1]) });
    const y = result[this.spec.io.output];
    const size = y?.dims.reduce((a, b) => a * b, 1) ?? 0;
    if (y?.type !== "float32" || y.dims[0] !== n || size !== n * this.windowDim) {
      throw new HeadstartError(
        "internal",
        `backbone ${this.spec.id}: output ${this.spec.io.output} is ${y?.type} [${y?.dims.join(", ")}], expected float32 [${n}, …${this.windowDim}]`,
      );
    }
    const out = new Float32Array(y.data as Float32Array);
    for (const t of Object.values(result)) t.dispose?.();
    return out;
  }

  /** One pooled vector per clip of decoded samples (mono, at the backbone's rate, in [-1, 1]). */
  async embedSamples(clips: readonly Float32Array[]): Promise<Float32Array> {
    const { windows, counts } = await this.windowVectors(clips);
    return poolWindows(windows, counts, this.windowDim, this.pre.pooling);
  }

  /** Each input decoded; a bad one is its `AudioDecodeError` (or a modality error) in its slot. */
  private decodeAll(inputs: readonly EmbedInput[], start: number): Promise<(Float32Array | Error)[]> {
    const { sampleRate, maxSeconds } = this.pre;
    const decode = this.decode ?? defaultDecode(inputs.length > 1);
    return Promise.all(
      inputs.map(async (input, k) => {
        const bytes = (input as { audio?: unknown }).audio;
        if (!(bytes instanceof Uint8Array)) {
          return new UnsupportedError(
            `backbone ${this.spec.id} embeds audio; input ${start + k} is ${modalityOf(input)}`,
            { field: `inputs[${start + k}]` },
          );
        }
        try {
          return (await decode(bytes, { sampleRate, limits: { maxSeconds } })).samples;
        } catch (err) {
          if (err instanceof AudioDecodeError) return err;
          throw err;
        }
      }),
    );
  }

  /**
   * Embeds what can be embedded: a row of zeros plus a failure for each input that is not usable
   * audio, so one corrupt file does not sink the rest of a batch job.
   */
  async embedSettled(inputs: readonly EmbedInput[]): Promise<SettledEmbedding> {
    const n = inputs.length;
    const dim = this.spec.dim;
    const vectors = new Float32Array(n * dim);
    const failures: (ItemFailure | undefined)[] = new Array(n).fill(undefined);
    const decodeAt = (s: number) => this.decodeAll(inputs.slice(s, s + this.microBatch), s);
    let next = n > 0 ? decodeAt(0) : undefined;
    for (let start = 0; start < n; start += this.microBatch) {
      const decoded = await (next as Promise<(Float32Array | Error)[]>);
      if (start + this.microBatch < n) next = decodeAt(start + this.microBatch);
      const ok: number[] = [];
      decoded.forEach((d, k) => {
        if (!(d instanceof Error)) ok.push(k);
        else if (d instanceof AudioDecodeError)
          failures[start + k] = { reason: d.reason, message: d.message };
        else throw d;
      });
      if (ok.length === 0) continue;
      const pooled = await this.embedSamples(ok.map((k) => decoded[k] as Float32Array));
      ok.forEach((k, j) => {
        vectors.set(pooled.subarray(j * dim, (j + 1) * dim), (start + k) * dim);
      });
    }
    return { vectors, failures };
  }

  /** All or nothing: the first unusable file is an error naming its input (what predict wants). */
  async embed(inputs: readonly EmbedInput[]): Promise<Float32Array> {
    const { vectors, failures } = await this.embedSettled(inputs);
    throwFirstFailure(failures);
    return vectors;
  }
}

function windowWidthDivisor(pre: AudioPre): number {
  return pre.pooling === "mean-max" ? 2 : 1;
}
