/**
 * What scripts/serve_anchor.py loads, written once per head version under `<root>/<version>/`:
 * glove-100d's vocabulary and its vectors as a NumPy matrix (read back out of the backbone's own
 * ONNX graph, one id at a time, so they are exactly the vectors headstart averages), and the head's
 * labels, weights, bias and calibration temperature.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";
import { encodeNpy } from "../shared/cache/npy.ts";
import type { HeadDocument } from "../shared/heads/version.ts";

const BATCH = 20_000;

export async function anchorFiles(head: HeadDocument, modelsDir: string, root: string): Promise<string> {
  if (head.type !== "logreg" || head.backbone.id !== "glove-100d")
    throw new Error(
      `the anchor serves a logreg head on glove-100d; ${head.head} is ${head.type} on ${head.backbone.id}`,
    );
  const dir = join(root, head.version);
  if (existsSync(join(dir, "head.json"))) return dir;
  mkdirSync(dir, { recursive: true });
  const backbone = join(modelsDir, "glove-100d");
  copyFileSync(join(backbone, "vocab.txt"), join(dir, "vocab.txt"));
  const words = readFileSync(join(backbone, "vocab.txt"), "utf8").replace(/\n$/, "").split("\n").length;
  const vectors = await wordVectors(join(backbone, "model.onnx"), words, head.backbone.dim);
  writeFileSync(join(dir, "vectors.npy"), encodeNpy(vectors, words, head.backbone.dim));
  const model = head.model as { weights: number[]; bias: number[] };
  const doc = {
    labels: head.labels,
    weights: model.weights,
    bias: model.bias,
    temperature: head.calibration?.temperature ?? 1,
  };
  // head.json last and by rename: its presence says the directory is complete.
  writeFileSync(join(dir, "head.json.tmp"), JSON.stringify(doc));
  renameSync(join(dir, "head.json.tmp"), join(dir, "head.json"));
  return dir;
}

/** Row i = the embedding of a text whose only token is id i: word i's vector. */
async function wordVectors(modelPath: string, words: number, dim: number): Promise<Float32Array> {
  const session = await InferenceSession.create(modelPath);
  const out = new Float32Array(words * dim);
  for (let start = 0; start < words; start += BATCH) {
    const n = Math.min(BATCH, words - start);
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i));
    const mask = new BigInt64Array(n).fill(1n);
    const r = await session.run({
      input_ids: new Tensor("int64", ids, [n, 1]),
      attention_mask: new Tensor("int64", mask, [n, 1]),
    });
    out.set(r.embeddings.data as Float32Array, start * dim);
  }
  await session.release();
  return out;
}
