/**
 * `use-lite-512-int8` against the float32 `use-lite-512` on the same IMDB sentences (built the way
 * `scripts/bench-use.ts` builds them): sentences/s of each through `SparseTextEmbedder`, measured
 * in interleaved repetitions so a load elsewhere on the machine hits both alike, and the cosine
 * between their embeddings of each sentence. Both are converted afresh into a temp dir, so they
 * come from the same converter. Not a test: nothing is asserted.
 *
 *   node --import tsx scripts/check-use-int8.ts [--sentences 1000] [--reps 3] [--micro-batch 32]
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SparseTextEmbedder } from "../shared/backbone/use-embedder.ts";
import { buildUseLiteBackbone, USE_LITE_INT8_ID } from "../shared/backbone/use-lite.ts";
import { decodeModel } from "../shared/onnx/writer.ts";
import { imdbSentences } from "./bench-common.ts";

const { values: args } = parseArgs({
  options: {
    sentences: { type: "string", default: "1000" },
    reps: { type: "string", default: "3" },
    "micro-batch": { type: "string", default: "32" },
  },
});
const REPS = Number(args.reps);
const DIM = 512;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const sentences = await imdbSentences(Number(args.sentences));
const inputs = sentences.map((text) => ({ text }));

const tmp = await mkdtemp(join(tmpdir(), "use-int8-"));
try {
  const dirs = { float32: join(tmp, "use-lite-512"), int8: join(tmp, USE_LITE_INT8_ID) };
  await buildUseLiteBackbone({ outDir: dirs.float32 });
  await buildUseLiteBackbone({ outDir: dirs.int8, id: USE_LITE_INT8_ID, quantize: true });
  const model = {
    float32: await readFile(join(dirs.float32, "model.onnx")),
    int8: await readFile(join(dirs.int8, "model.onnx")),
  };
  const ops = (bytes: Uint8Array, op: string) =>
    (decodeModel(bytes).graph?.node ?? []).filter((n) => n.opType === op).length;
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}`);
  console.log(
    `MatMuls: float32 ${ops(model.float32, "MatMul")}, int8 ${ops(model.int8, "MatMul")} left + ${ops(model.int8, "DynamicQuantizeMatMul")} DynamicQuantizeMatMul`,
  );
  console.log(
    `model.onnx: float32 ${(model.float32.byteLength / 2 ** 20).toFixed(1)} MiB, int8 ${(model.int8.byteLength / 2 ** 20).toFixed(1)} MiB`,
  );

  const micro = Number(args["micro-batch"]);
  const f32 = await SparseTextEmbedder.fromDir(dirs.float32, { microBatch: micro });
  const q8 = await SparseTextEmbedder.fromDir(dirs.int8, { microBatch: micro });
  // Warm-up: first runs pay for allocations and kernel selection.
  await f32.embed(inputs.slice(0, 64));
  await q8.embed(inputs.slice(0, 64));
  const seconds = { float32: [] as number[], int8: [] as number[] };
  let a: Float32Array = new Float32Array(0);
  let b: Float32Array = new Float32Array(0);
  for (let r = 0; r < REPS; r++) {
    let t0 = performance.now();
    a = await f32.embed(inputs);
    seconds.float32.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    b = await q8.embed(inputs);
    seconds.int8.push((performance.now() - t0) / 1000);
  }
  const rate = (k: keyof typeof seconds) => sentences.length / median(seconds[k]);
  console.log(
    `${sentences.length} sentences, micro-batch ${micro}, median of ${REPS} interleaved reps: float32 ${rate("float32").toFixed(0)} sentences/s, int8 ${rate("int8").toFixed(0)} sentences/s (${(rate("int8") / rate("float32")).toFixed(2)}×)`,
  );
  console.log(
    `  per rep (s): float32 ${seconds.float32.map((s) => s.toFixed(2)).join(", ")}; int8 ${seconds.int8.map((s) => s.toFixed(2)).join(", ")}`,
  );

  const cos: number[] = [];
  for (let i = 0; i < sentences.length; i++) {
    let d = 0;
    let na = 0;
    let nb = 0;
    for (let k = i * DIM; k < (i + 1) * DIM; k++) {
      const x = a[k] as number;
      const y = b[k] as number;
      d += x * y;
      na += x * x;
      nb += y * y;
    }
    cos.push(d / Math.sqrt(na * nb));
  }
  cos.sort((x, y) => x - y);
  const at = (p: number) => (cos[Math.min(cos.length - 1, Math.floor(p * cos.length))] as number).toFixed(4);
  console.log(`cosine int8 vs float32: min ${at(0)}, p1 ${at(0.01)}, median ${at(0.5)}`);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
