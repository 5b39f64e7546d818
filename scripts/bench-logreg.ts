/**
 * Logistic-regression head fit benchmark (not a test: nothing is asserted).
 *
 *   node --import tsx scripts/bench-logreg.ts [--dir .headstart-bench/export-imdb] [--reps 5]
 *     [--sklearn] [--synthetic-reps 1] [--synthetic-rows 60000]
 *
 * 1. IMDB: the exported GloVe embeddings (`embeddings.npy` + `rows.jsonl`, as written by
 *    `headstart export` / `npm run bench`), fit on the train split, scored on the test split.
 *    With --sklearn, scripts/sklearn_baseline.py runs interleaved with ours on the same files.
 * 2. Synthetic: n × 1280 × 10-class Gaussian blobs (fixed seed), fit on n rows, scored on n/6 more.
 *
 * Prints fit seconds (median of the repetitions), iterations, converged and test accuracy.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { decodeNpy } from "../shared/cache/npy.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { fitLogReg, type LogRegModel, predictLogReg } from "../shared/learn/logreg.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";

const { values: args } = parseArgs({
  options: {
    dir: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "export-imdb") },
    reps: { type: "string", default: "5" },
    sklearn: { type: "boolean", default: false },
    "synthetic-reps": { type: "string", default: "1" },
    "synthetic-rows": { type: "string", default: "60000" },
  },
});
const REPS = Number(args.reps);
const SYN_REPS = Number(args["synthetic-reps"]);
const SYN_ROWS = Number(args["synthetic-rows"]);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function accuracy(model: LogRegModel, X: Float32Array, n: number, y: Int32Array): number {
  const p = predictLogReg(model, X, n);
  let ok = 0;
  for (let i = 0; i < n; i++) if (p[i] === y[i]) ok++;
  return ok / n;
}

interface Split {
  X: Float32Array;
  n: number;
  y: Int32Array;
}

function loadImdb(dir: string): { d: number; train: Split; test: Split } {
  const { data, rows, cols } = decodeNpy(new Uint8Array(readFileSync(join(dir, "embeddings.npy"))));
  const meta = readFileSync(join(dir, "rows.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { label?: unknown; split?: string });
  if (meta.length !== rows) throw new Error(`rows.jsonl has ${meta.length} rows, embeddings.npy ${rows}`);
  // Same label order as the baseline script: sorted JSON text of the train labels.
  const key = (v: unknown) => JSON.stringify(v);
  const labels = [...new Set(meta.filter((r) => r.split !== "test").map((r) => key(r.label)))].sort();
  const pick = (want: (r: (typeof meta)[number]) => boolean): Split => {
    const idx = meta.flatMap((r, i) => (r.label != null && want(r) ? [i] : []));
    const X = new Float32Array(idx.length * cols);
    idx.forEach((r, i) => {
      X.set(data.subarray(r * cols, (r + 1) * cols), i * cols);
    });
    return { X, n: idx.length, y: Int32Array.from(idx, (i) => labels.indexOf(key(meta[i].label))) };
  };
  return { d: cols, train: pick((r) => r.split !== "test"), test: pick((r) => r.split === "test") };
}

/** k blobs in d dims with overlapping classes (test accuracy well below 100%), fixed seed. */
function synthetic(n: number, d: number, k: number, seed: number): Split {
  const rand = mulberry32(seed);
  const centers = Array.from({ length: k }, () =>
    Float64Array.from({ length: d }, () => 0.06 * gaussian(rand)),
  );
  const offset = Float64Array.from({ length: d }, () => 3 * gaussian(rand));
  const scale = Float64Array.from({ length: d }, () => 0.2 + 2 * rand());
  const X = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rand() * k);
    y[i] = c;
    for (let j = 0; j < d; j++) X[i * d + j] = offset[j] + scale[j] * (centers[c][j] + gaussian(rand));
  }
  return { X, n, y };
}

const execFileP = promisify(execFile);

async function sklearnOnce(dir: string): Promise<{ seconds: number; accuracy: number; iterations: number }> {
  const { stdout } = await execFileP("/usr/bin/python3", [
    join(PACKAGE_ROOT, "scripts", "sklearn_baseline.py"),
    dir,
  ]);
  const r = JSON.parse(stdout.trim().split("\n").pop()!) as {
    trainSeconds: number;
    accuracy: number;
    iterations: number;
  };
  return { seconds: r.trainSeconds, accuracy: r.accuracy, iterations: r.iterations };
}

function fitOnce(train: Split, test: Split, d: number, k: number) {
  const t0 = performance.now();
  const m = fitLogReg(train.X, train.n, d, train.y, k);
  const seconds = (performance.now() - t0) / 1000;
  return {
    seconds,
    iterations: m.iterations,
    converged: m.converged,
    accuracy: accuracy(m, test.X, test.n, test.y),
  };
}

const fmtRuns = (xs: number[]) => xs.map((s) => s.toFixed(3)).join(", ");

if (REPS > 0) {
  const { d, train, test } = loadImdb(args.dir);
  console.log(`IMDB: ${train.n} train / ${test.n} test × ${d} dims, 2 classes, ${REPS} reps`);
  fitOnce(train, test, d, 2); // warm-up (JIT)
  const ours: number[] = [];
  const theirs: number[] = [];
  let last: ReturnType<typeof fitOnce> | undefined;
  let sk: Awaited<ReturnType<typeof sklearnOnce>> | undefined;
  for (let r = 0; r < REPS; r++) {
    last = fitOnce(train, test, d, 2);
    ours.push(last.seconds);
    if (args.sklearn) {
      sk = await sklearnOnce(args.dir);
      theirs.push(sk.seconds);
    }
  }
  console.log(
    `  headstart  fit ${median(ours).toFixed(3)} s  iterations ${last!.iterations}  converged ${last!.converged}` +
      `  accuracy ${(100 * last!.accuracy).toFixed(2)}%  (runs: ${fmtRuns(ours)})`,
  );
  if (sk) {
    console.log(
      `  sklearn    fit ${median(theirs).toFixed(3)} s  iterations ${sk.iterations}` +
        `  accuracy ${(100 * sk.accuracy).toFixed(2)}%  (runs: ${fmtRuns(theirs)})`,
    );
    console.log(`  ratio headstart / sklearn: ${(median(ours) / median(theirs)).toFixed(2)}`);
  }
}

if (SYN_REPS > 0) {
  const d = 1280;
  const k = 10;
  const nTest = Math.ceil(SYN_ROWS / 6);
  const all = synthetic(SYN_ROWS + nTest, d, k, 1);
  const train: Split = { X: all.X.subarray(0, SYN_ROWS * d), n: SYN_ROWS, y: all.y.subarray(0, SYN_ROWS) };
  const test: Split = { X: all.X.subarray(SYN_ROWS * d), n: nTest, y: all.y.subarray(SYN_ROWS) };
  console.log(`synthetic: ${train.n} train / ${test.n} test × ${d} dims, ${k} classes, ${SYN_REPS} reps`);
  const runs: number[] = [];
  let last: ReturnType<typeof fitOnce> | undefined;
  for (let r = 0; r < SYN_REPS; r++) {
    last = fitOnce(train, test, d, k);
    runs.push(last.seconds);
  }
  console.log(
    `  headstart  fit ${median(runs).toFixed(3)} s  iterations ${last!.iterations}  converged ${last!.converged}` +
      `  accuracy ${(100 * last!.accuracy).toFixed(2)}%  (runs: ${fmtRuns(runs)})`,
  );
}
