/**
 * `npm run bench:active` — simulated active-learning curves on IMDB (GloVe-100d vectors from the
 * bench store, as `npm run bench` builds it): start from `--start` random labels, then ask each
 * strategy for `--batch` more rows at a time (the oracle reveals their labels) up to `--budget`,
 * refitting a logreg head (shared/learn, default parameters) every round and scoring it on held-out
 * test rows. `random` is the baseline. Each curve is the mean over `--seeds` seeds (each seed draws
 * its own pool, test sample and start set, shared by every strategy). A benchmark, not a test:
 * nothing is asserted. Figures and the settings behind them: docs/benchmarks.md.
 *
 *   npm run bench:active -- [--seeds 3] [--pool 10000] [--test 5000] [--start 20] [--batch 20]
 *     [--budget 400] [--strategies random,margin,entropy,coreset,hybrid] [--store .headstart-bench]
 */
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { loadEmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import {
  entropyUncertainty,
  hybridPicks,
  kCenterGreedy,
  marginUncertainty,
  topIndices,
  unitRows,
} from "../shared/learn/active.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { headKind } from "../shared/learn/registry.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";

const { values: args } = parseArgs({
  options: {
    seeds: { type: "string", default: "3" },
    pool: { type: "string", default: "10000" },
    test: { type: "string", default: "5000" },
    start: { type: "string", default: "20" },
    batch: { type: "string", default: "20" },
    budget: { type: "string", default: "400" },
    strategies: { type: "string", default: "random,margin,entropy,coreset,hybrid" },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench") },
  },
});
const num = (name: keyof typeof args) => Number(args[name]);
const STRATEGIES = String(args.strategies).split(",");
const DIM = 100;

interface Imdb {
  X: Float32Array;
  unit: Float32Array;
  y: Int32Array;
  train: number[];
  test: number[];
}

async function loadImdbVectors(): Promise<Imdb> {
  const config = loadConfig(process.env, { store: String(args.store), logLevel: "warn" });
  const platform = new Platform(new FsStore(config.store), config);
  const spec = await platform.backbone("glove-100d");
  const data = await loadEmbeddedDataset(platform.store, "imdb", spec).catch((err) => {
    throw new Error(`${(err as Error).message}\n(build the bench store once with \`npm run bench\`)`);
  });
  const n = data.rows.length;
  const y = Int32Array.from(data.rows, (r) => (r.label === "pos" ? 1 : 0));
  const train: number[] = [];
  const test: number[] = [];
  data.rows.forEach((r, i) => {
    (r.split === "test" ? test : train).push(i);
  });
  return { X: data.vectors, unit: unitRows(data.vectors, n, DIM), y, train, test };
}

const gather = (src: Float32Array, rows: readonly number[]) => {
  const out = new Float32Array(rows.length * DIM);
  rows.forEach((r, i) => {
    out.set(src.subarray(r * DIM, (r + 1) * DIM), i * DIM);
  });
  return out;
};

const logreg = headKind("logreg");

function shuffled(rows: readonly number[], rand: () => number): number[] {
  const out = [...rows];
  shuffleInPlace(out, rand);
  return out;
}

async function fitAndScore(d: Imdb, labelled: number[], test: number[], testX: Float32Array) {
  const X = gather(d.X, labelled);
  const y = Int32Array.from(labelled, (r) => d.y[r]);
  const params = logreg.resolveParams({}, labelled.length, DIM);
  const model = await logreg.fit(X, labelled.length, DIM, { task: "multiclass", y, k: 2 }, params, {
    seed: 0,
  });
  const pred = argmaxRows(await logreg.predict(model, testX, test.length), test.length, 2);
  let right = 0;
  test.forEach((r, i) => {
    if (pred[i] === d.y[r]) right++;
  });
  return { model, accuracy: right / test.length };
}

/** The next batch of pool rows (indices into d) by `strategy`, given the current head. */
async function nextBatch(
  d: Imdb,
  strategy: string,
  model: unknown,
  labelled: number[],
  open: number[],
  k: number,
  rand: () => number,
): Promise<number[]> {
  if (strategy === "random") return shuffled(open, rand).slice(0, k);
  const covered = gather(d.unit, labelled);
  if (strategy === "coreset") {
    const picks = kCenterGreedy({ candidates: gather(d.unit, open), covered, dim: DIM, k });
    return picks.map((p) => open[p.index]);
  }
  const probs = await logreg.predict(model, gather(d.X, open), open.length);
  const p = { probs, n: open.length, k: 2, exclusive: true };
  if (strategy === "margin") return topIndices(marginUncertainty(p), k).map((i) => open[i]);
  if (strategy === "entropy") return topIndices(entropyUncertainty(p), k).map((i) => open[i]);
  const picks = hybridPicks(marginUncertainty(p), { candidates: gather(d.unit, open), covered, dim: DIM, k });
  return picks.map((q) => open[q.index]);
}

/** One seed's curve per strategy: test accuracy after each round. */
async function runSeed(d: Imdb, seed: number, seconds: Map<string, number>): Promise<Map<string, number[]>> {
  const rand = mulberry32(1000 + seed);
  const pool = shuffled(d.train, rand).slice(0, num("pool"));
  const test = shuffled(d.test, rand).slice(0, num("test"));
  const testX = gather(d.X, test);
  const start = pool.slice(0, num("start"));
  const curves = new Map<string, number[]>();
  for (const strategy of STRATEGIES) {
    const t0 = performance.now();
    const pick = mulberry32(seed);
    const labelled = [...start];
    const curve: number[] = [];
    for (;;) {
      const { model, accuracy } = await fitAndScore(d, labelled, test, testX);
      curve.push(accuracy);
      if (labelled.length >= num("budget")) break;
      const taken = new Set(labelled);
      const open = pool.filter((r) => !taken.has(r));
      labelled.push(...(await nextBatch(d, strategy, model, labelled, open, num("batch"), pick)));
    }
    curves.set(strategy, curve);
    seconds.set(strategy, (seconds.get(strategy) ?? 0) + (performance.now() - t0) / 1000);
  }
  return curves;
}

function printTable(sizes: number[], mean: Map<string, number[]>, seconds: Map<string, number>) {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const show = sizes
    .map((_, i) => i)
    .filter((i) => i === 0 || sizes[i] % 100 === 0 || sizes[i] === 40 || sizes[i] === 60);
  const header = ["labels", ...STRATEGIES];
  const lines = [header.join(" | ")];
  for (const i of show)
    lines.push([String(sizes[i]), ...STRATEGIES.map((s) => pct(mean.get(s)![i]))].join(" | "));
  const area = (c: number[]) => c.reduce((a, b) => a + b, 0) / c.length;
  lines.push(["mean over the curve", ...STRATEGIES.map((s) => pct(area(mean.get(s)!)))].join(" | "));
  lines.push(["seconds (all seeds)", ...STRATEGIES.map((s) => seconds.get(s)!.toFixed(1))].join(" | "));
  console.log(`\n| ${lines[0]} |\n|${header.map(() => "---").join("|")}|`);
  for (const l of lines.slice(1)) console.log(`| ${l} |`);
}

async function main() {
  const cpu = cpus();
  console.log(
    `machine: ${cpu.length} × ${cpu[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  console.log(
    `settings: --seeds ${args.seeds} --pool ${args.pool} --test ${args.test} --start ${args.start} --batch ${args.batch} --budget ${args.budget}`,
  );
  const d = await loadImdbVectors();
  const sum = new Map<string, number[]>();
  const seconds = new Map<string, number>(STRATEGIES.map((s) => [s, 0]));
  for (let seed = 0; seed < num("seeds"); seed++) {
    const t0 = performance.now();
    const curves = await runSeed(d, seed, seconds);
    for (const [s, c] of curves)
      sum.set(
        s,
        c.map((x, i) => x + (sum.get(s)?.[i] ?? 0)),
      );
    console.log(`seed ${seed} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const seeds = num("seeds");
  const mean = new Map([...sum].map(([s, c]) => [s, c.map((x) => x / seeds)]));
  const rounds = mean.get(STRATEGIES[0])!.length;
  const sizes = Array.from({ length: rounds }, (_, i) => num("start") + i * num("batch"));
  printTable(sizes, mean, seconds);
}

await main();
