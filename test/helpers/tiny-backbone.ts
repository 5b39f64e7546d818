/**
 * A real (tiny) ONNX text backbone for tests: a made-up vocabulary whose vectors separate two
 * sentiments, built with the same graph as glove-100d. Bring-your-own-backbone path end to end.
 */
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { maskedMeanModel } from "../../shared/backbone/glove.ts";
import type { BackboneSpecInput } from "../../shared/backbone/spec.ts";
import { encodeModel, GraphBuilder } from "../../shared/onnx/writer.ts";

export const TINY_DIM = 8;
export const POSITIVE = ["good", "great", "wonderful", "love", "brilliant", "fun"];
export const NEGATIVE = ["bad", "awful", "boring", "hate", "dull", "worst"];
export const NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "a", "this", "it", "and"];
export const TINY_VOCAB = [...POSITIVE, ...NEGATIVE, ...NEUTRAL];

/**
 * Deterministic pseudo-random vector per word, shifted along axis 0 by sentiment. A `salt` gives
 * another backbone's vectors for the same words (the empty salt is the original tiny-text).
 */
export function tinyVector(word: string, salt = ""): Float32Array {
  const h = createHash("sha256")
    .update(salt === "" ? word : `${salt}\0${word}`)
    .digest();
  const v = new Float32Array(TINY_DIM);
  for (let j = 0; j < TINY_DIM; j++) v[j] = (h[j] / 255 - 0.5) * 0.5;
  if (POSITIVE.includes(word)) v[0] += 1;
  if (NEGATIVE.includes(word)) v[0] -= 1;
  return v;
}

export async function writeTinyBackbone(
  dir: string,
  id = "tiny-text",
  /** `vocab` and `vector`: another made-up vocabulary and its vectors (TINY_DIM wide). */
  opts: { salt?: string; vocab?: readonly string[]; vector?: (word: string) => Float32Array } = {},
): Promise<BackboneSpecInput> {
  await mkdir(dir, { recursive: true });
  const vocab = opts.vocab ?? TINY_VOCAB;
  const matrix = new Float32Array(vocab.length * TINY_DIM);
  vocab.forEach((w, i) => {
    matrix.set(opts.vector?.(w) ?? tinyVector(w, opts.salt), i * TINY_DIM);
  });
  const model = maskedMeanModel({ matrix, vocabSize: vocab.length, dim: TINY_DIM });
  await writeFile(join(dir, "model.onnx"), model);
  await writeFile(join(dir, "vocab.txt"), `${vocab.join("\n")}\n`);
  const spec: BackboneSpecInput = {
    id,
    modality: "text",
    dim: TINY_DIM,
    model: "model.onnx",
    sha256: createHash("sha256").update(model).digest("hex"),
    io: { ids: "input_ids", mask: "attention_mask", output: "embeddings" },
    preprocessing: {
      type: "text-vocab",
      tokenizer: "whitespace",
      vocab: "vocab.txt",
      maxTokens: 64,
      lowercase: true,
    },
    pooling: "masked-mean",
    normalized: false,
    assets: ["vocab.txt"],
    description: "test backbone",
  };
  await writeFile(join(dir, "backbone.json"), JSON.stringify(spec, null, 2));
  return spec;
}

/** A labelled sentiment dataset over the tiny vocabulary, `n` rows, deterministic. */
export function tinySentimentRows(n: number, opts: { withSplit?: boolean; seed?: number } = {}) {
  let s = opts.seed ?? 1;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const pick = (words: string[]) => words[Math.floor(rand() * words.length)];
  const rows: Array<{ id: string; text: string; label: string; split?: "train" | "test" }> = [];
  for (let i = 0; i < n; i++) {
    const pos = i % 2 === 0;
    const words = [
      pick(NEUTRAL),
      pick(NEUTRAL),
      pick(pos ? POSITIVE : NEGATIVE),
      pick(NEUTRAL),
      pick(pos ? POSITIVE : NEGATIVE),
    ];
    rows.push({
      id: `r${i}`,
      text: `${words.join(" ")} #${i}`,
      label: pos ? "pos" : "neg",
      ...(opts.withSplit ? { split: i % 5 === 0 ? "test" : "train" } : {}),
    });
  }
  return rows;
}

export function toJsonlText(rows: readonly object[]): string {
  return `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
}

/**
 * A real (tiny) ONNX image backbone for tests: an 8×8 picture's mean red, green and blue, so
 * images of different colours separate. Runs through the same decode and session path as
 * mobilenet-v2-1280 without converting any weights.
 */
export async function writeTinyImageBackbone(dir: string, id = "tiny-image"): Promise<BackboneSpecInput> {
  await mkdir(dir, { recursive: true });
  const g = new GraphBuilder("tiny-image");
  g.input("pixels", "float32", ["batch", 8, 8, 3]);
  g.node("ReduceMean", ["pixels", g.constant("int64", [1n, 2n])], ["embeddings"], { keepdims: 0 });
  g.output("embeddings", "float32", ["batch", 3]);
  const model = encodeModel(g, { opset: 18 });
  await writeFile(join(dir, "model.onnx"), model);
  const spec: BackboneSpecInput = {
    id,
    modality: "image",
    dim: 3,
    model: "model.onnx",
    sha256: createHash("sha256").update(model).digest("hex"),
    io: { ids: "pixels", output: "embeddings" },
    preprocessing: { type: "image", input: "pixels", width: 8, height: 8 },
    pooling: "none",
    description: "test image backbone: mean colour",
  };
  await writeFile(join(dir, "backbone.json"), JSON.stringify(spec, null, 2));
  return spec;
}

/** An 8×8 PNG square of `rgb` with a little noise that varies with `i` (for the tiny image backbone). */
export async function tinySquare(rgb: [number, number, number], i: number): Promise<Buffer> {
  const { default: sharp } = await import("sharp");
  const px = Buffer.alloc(8 * 8 * 3);
  for (let p = 0; p < 64; p++)
    for (let k = 0; k < 3; k++) px[p * 3 + k] = (rgb[k] + ((p * 7 + i * 13) % 30)) % 256;
  return sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
    .png()
    .toBuffer();
}
