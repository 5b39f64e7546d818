/**
 * Embeds images with any `image` backbone: bytes → sharp decode + resize (off the JS thread) →
 * float32 NHWC batch → ONNX graph → `n × dim` rows. The next micro-batch is decoded while the
 * current one runs, so onnxruntime is not left waiting on the decoder.
 */

import { HeadstartError, UnsupportedError } from "../errors.ts";
import {
  type DecodedImage,
  decodeImage,
  ImageDecodeError,
  type ImageLimits,
  pixelsToTensor,
} from "../images/decode.ts";
import { getSession, type InferenceSession, type SessionOptions, Tensor } from "../onnx/session.ts";
import { microBatchOption, modalityOf, throwFirstFailure } from "./embedder-options.ts";
import type { BackboneSpec, Embedder, EmbedInput, ItemFailure, SettledEmbedding } from "./spec.ts";

type ImagePre = Extract<BackboneSpec["preprocessing"], { type: "image" }>;

export interface ImageEmbedderOptions {
  /** Images per `session.run`. Default 32. */
  microBatch?: number;
  limits?: ImageLimits;
  session?: SessionOptions;
}

export class ImageEmbedder implements Embedder {
  readonly spec: BackboneSpec;
  private readonly pre: ImagePre;
  private readonly modelPath: string;
  private readonly microBatch: number;
  private readonly limits?: ImageLimits;
  private readonly sessionOptions: SessionOptions;

  private constructor(spec: BackboneSpec, pre: ImagePre, modelPath: string, opts: ImageEmbedderOptions) {
    this.spec = spec;
    this.pre = pre;
    this.modelPath = modelPath;
    this.microBatch = microBatchOption(opts.microBatch, 32);
    this.limits = opts.limits;
    this.sessionOptions = opts.session ?? {};
  }

  static async create(
    spec: BackboneSpec,
    modelPath: string,
    opts: ImageEmbedderOptions = {},
  ): Promise<ImageEmbedder> {
    const pre = spec.preprocessing;
    if (pre.type !== "image" || spec.modality !== "image") {
      throw new UnsupportedError(
        `ImageEmbedder cannot run backbone ${spec.id} (${spec.modality}, ${pre.type})`,
        {
          field: "backbone",
        },
      );
    }
    const embedder = new ImageEmbedder(spec, pre, modelPath, opts);
    await embedder.session();
    return embedder;
  }

  session(): Promise<InferenceSession> {
    return getSession(this.modelPath, this.spec.sha256, this.sessionOptions);
  }

  /** Every input decoded and resized; a bad one is an `ImageDecodeError` in its slot. */
  private decodeAll(inputs: readonly EmbedInput[], start: number): Promise<(DecodedImage | Error)[]> {
    const { width, height, resize } = this.pre;
    return Promise.all(
      inputs.map(async (input, k) => {
        const bytes = (input as { image?: unknown }).image;
        if (!(bytes instanceof Uint8Array)) {
          return new UnsupportedError(
            `backbone ${this.spec.id} embeds images; input ${start + k} is ${modalityOf(input)}`,
            { field: `inputs[${start + k}]` },
          );
        }
        try {
          return await decodeImage(bytes, { width, height, resize, limits: this.limits });
        } catch (err) {
          if (err instanceof ImageDecodeError) return err;
          throw err;
        }
      }),
    );
  }

  /**
   * Embeds what can be embedded: a row of zeros plus a failure for each input that is not a usable
   * image, so one corrupt file does not sink the rest of a batch job.
   */
  async embedSettled(inputs: readonly EmbedInput[]): Promise<SettledEmbedding> {
    const n = inputs.length;
    const dim = this.spec.dim;
    const { width, height, scale, offset } = this.pre;
    const vectors = new Float32Array(n * dim);
    const failures: (ItemFailure | undefined)[] = new Array(n).fill(undefined);
    if (n === 0) return { vectors, failures };
    const session = await this.session();
    const per = width * height * 3;
    const decodeAt = (s: number) => this.decodeAll(inputs.slice(s, s + this.microBatch), s);
    let next = decodeAt(0);
    for (let start = 0; start < n; start += this.microBatch) {
      const decoded = await next;
      // Decoding runs on libuv's pool while the model runs on onnxruntime's threads.
      if (start + this.microBatch < n) next = decodeAt(start + this.microBatch);
      const ok: number[] = [];
      decoded.forEach((d, k) => {
        if (d instanceof Error) {
          if (!(d instanceof ImageDecodeError)) throw d;
          failures[start + k] = { reason: d.reason, message: d.message };
        } else ok.push(k);
      });
      if (ok.length === 0) continue;
      const pixels = new Float32Array(ok.length * per);
      ok.forEach((k, j) => {
        pixelsToTensor(decoded[k] as DecodedImage, { scale, offset }, pixels, j * per);
      });
      const result = await session.run({
        [this.pre.input]: new Tensor("float32", pixels, [ok.length, height, width, 3]),
      });
      const y = result[this.spec.io.output];
      if (y?.type !== "float32" || y.dims.length !== 2 || y.dims[0] !== ok.length || y.dims[1] !== dim) {
        throw new HeadstartError(
          "internal",
          `backbone ${this.spec.id}: output ${this.spec.io.output} is ${y?.type} [${y?.dims.join(", ")}], expected float32 [${ok.length}, ${dim}]`,
        );
      }
      const data = y.data as Float32Array;
      ok.forEach((k, j) => {
        vectors.set(data.subarray(j * dim, (j + 1) * dim), (start + k) * dim);
      });
      for (const t of Object.values(result)) t.dispose?.();
    }
    return { vectors, failures };
  }

  /** All or nothing: the first unusable image is an error naming its input (what predict wants). */
  async embed(inputs: readonly EmbedInput[]): Promise<Float32Array> {
    const { vectors, failures } = await this.embedSettled(inputs);
    throwFirstFailure(failures);
    return vectors;
  }
}
