/**
 * `npm run bench:active` — simulated active-learning curves: start from `--start` random labels,
 * then ask each strategy for `--batch` more rows at a time (the oracle reveals their labels) up to
 * `--budget`, refitting a logreg head (shared/learn, default parameters) every round and scoring it
 * on held-out test rows. `random` is the baseline. Two tasks (scripts/active-tasks.ts): `imdb`
 * (IMDB reviews on glove-100d, 2 classes) and `fashion` (Fashion-MNIST on the default image
 * backbone, 10 classes). Each curve is the mean over `--seeds` seeds (each seed draws its own pool, test sample
 * and start set, shared by every strategy). A benchmark, not a test: nothing is asserted. Figures
 * and the settings behind them: docs/benchmarks.md.
 *
 *   npm run bench:active -- [--task imdb|fashion|all] [--seeds 3] [--seed-base 0] [--pool N]
 *     [--test N] [--start 20] [--batch 20] [--budget 400]
 *     [--strategies random,margin,entropy,coreset,hybrid] [--fashion-train 6000] [--fashion-test 3000] [--store .headstart-bench]
 *   npm run bench:active -- --cost     (only: seconds of the hybrid's grouping at three sizes)
 *
 * `--start-by random|hybrid|coreset` draws the start set as random rows (default) or as a cold
 * start of `headstart suggest` picks it (hybrid: typical rows; coreset: k-center greedy).
 *
 * `--pool`/`--test` default per task (imdb 10,000/5,000 of 25,000/25,000 reviews; fashion
 * 5,000/3,000 of the first `--fashion-train`/`--fashion-test` images). A strategy `hybrid:P` is the
 * hybrid keeping the P·k most uncertain rows (`hybrid` uses learn/active.ts's HYBRID_POOL). `hybrid`
 * scores uncertainty as `headstart suggest` does: from COMMITTEE_MIN_ROWS labels on by a committee of
 * bootstrap heads (learn/active.ts's committeeProbabilities), below by the head's own probabilities;
 * `hybrid-head` always by the head's own probabilities; `hybrid-kcenter` is the default before
 * (the committee's margin, its 2·k most uncertain rows, then k-center greedy among them, away from
 * the labelled rows). `--seed-base B` runs seeds B … B + seeds − 1 (a fresh set to confirm a
 * choice on).
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PACKAGE_ROOT } from "../shared/config.ts";
import {
  COMMITTEE_MIN_ROWS,
  committeeProbabilities,
  entropyUncertainty,
  HYBRID_POOL,
  hybridPicks,
  hybridPoolSize,
  kCenterGreedy,
  marginUncertainty,
  topIndices,
  typicalPicks,
  unitRows,
} from "../shared/learn/active.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { headKind } from "../shared/learn/registry.ts";
import { mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { type ActiveTask, fashionTask, imdbTask } from "./active-tasks.ts";
import { machine } from "./bench-common.ts";
import { FASHION_SOURCE } from "./fashion-dataset.ts";

const { values: args } = parseArgs({
  options: {
    task: { type: "string", default: "all" },
    seeds: { type: "string", default: "3" },
    "seed-base": { type: "string", default: "0" },
    pool: { type: "string" },
    test: { type: "string" },
    start: { type: "string", default: "20" },
    batch: { type: "string", default: "20" },
    budget: { type: "string", default: "400" },
    strategies: { type: "string", default: "random,margin,entropy,coreset,hybrid" },
    "fashion-train": { type: "string", default: "6000" },
    "fashion-test": { type: "string", default: "3000" },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench") },
    "models-dir": { type: "string", default: join(PACKAGE_ROOT, ".models") },
    source: { type: "string", default: FASHION_SOURCE },
    /** Fashion-MNIST's image backbone (default: the platform's image default). */
    "fashion-backbone": { type: "string" },
    /** How the start set is drawn: random rows, or a cold start's `hybrid` (typical) or `coreset` picks. */
    "start-by": { type: "string", default: "random" },
    /** Only time the hybrid's grouping (k-means over its pool) on random unit rows, then exit. */
    cost: { type: "boolean", default: false },
  },
});
const num = (name: keyof typeof args) => Number(args[name]);
const STRATEGIES = String(args.strategies).split(",");
const TASKS = args.task === "all" ? ["imdb", "fashion"] : [String(args.task)];
if (args.cost) TASKS.length = 0;
for (const t of TASKS) {
  if (t !== "imdb" && t !== "fashion") throw new Error(`--task must be imdb, fashion or all, got ${t}`);
}
const SIZES = { imdb: { pool: 10000, test: 5000 }, fashion: { pool: 5000, test: 3000 } };

const gather = (src: Float32Array, dim: number, rows: readonly number[]) => {
  const out = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    out.set(src.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  return out;
};

const logreg = headKind("logreg");

function shuffled(rows: readonly number[], rand: () => number): number[] {
  const out = [...rows];
  shuffleInPlace(out, rand);
  return out;
}

/** A logreg head with `headstart train`'s default parameters, fitted on the pool rows `rows`. */
function fitHead(d: ActiveTask, rows: readonly number[]): Promise<unknown> {
  const X = gather(d.X, d.dim, rows);
  const y = Int32Array.from(rows, (r) => d.y[r]);
  const params = logreg.resolveParams({}, rows.length, d.dim);
  const target = { task: "multiclass" as const, y, k: d.k };
  return logreg.fit(X, rows.length, d.dim, target, params, { seed: 0 });
}

async function fitAndScore(d: ActiveTask, labelled: number[], test: number[], testX: Float32Array) {
  const model = await fitHead(d, labelled);
  const pred = argmaxRows(await logreg.predict(model, testX, test.length), test.length, d.k);
  let right = 0;
  test.forEach((r, i) => {
    if (pred[i] === d.y[r]) right++;
  });
  return { model, accuracy: right / test.length };
}

/** The next batch of pool rows (indices into d) by `strategy`, given the current head. */
async function nextBatch(
  d: ActiveTask,
  strategy: string,
  model: unknown,
  labelled: number[],
  open: number[],
  k: number,
  rand: () => number,
): Promise<number[]> {
  if (strategy === "random") return shuffled(open, rand).slice(0, k);
  const covered = gather(d.unit, d.dim, labelled);
  const candidates = () => gather(d.unit, d.dim, open);
  if (strategy === "coreset") {
    const picks = kCenterGreedy({ candidates: candidates(), covered, dim: d.dim, k });
    return picks.map((p) => open[p.index]);
  }
  const openX = gather(d.X, d.dim, open);
  const probs = await logreg.predict(model, openX, open.length);
  const p = { probs, n: open.length, k: d.k, exclusive: true };
  if (strategy === "margin") return topIndices(marginUncertainty(p), k).map((i) => open[i]);
  if (strategy === "entropy") return topIndices(entropyUncertainty(p), k).map((i) => open[i]);
  const [name, factor] = strategy.split(":");
  const input = { candidates: candidates(), covered, dim: d.dim, k };
  if (!["hybrid", "hybrid-head", "hybrid-kcenter"].includes(name))
    throw new Error(`unknown strategy ${strategy}`);
  // The default hybrid scores with a committee of bootstrap heads from COMMITTEE_MIN_ROWS labels
  // on, as `headstart suggest` does; `hybrid-head` always with the head's own probabilities.
  const committee = name !== "hybrid-head" && labelled.length >= COMMITTEE_MIN_ROWS;
  const ys = Int32Array.from(labelled, (r) => d.y[r]);
  const uncertain = committee ? { ...p, probs: await committeeProbabilities(ys, memberProbs) } : p;
  const scores = marginUncertainty(uncertain);
  if (name === "hybrid-kcenter") {
    const among = topIndices(scores, 2 * k);
    return kCenterGreedy({ ...input, among, first: among[0] }).map((q) => open[q.index]);
  }
  const picks = hybridPicks(scores, input, factor ? Number(factor) : HYBRID_POOL);
  return picks.map((q) => open[q.index]);

  async function memberProbs(rows: Int32Array): Promise<Float64Array> {
    const member = await fitHead(
      d,
      Array.from(rows, (i) => labelled[i]),
    );
    return Float64Array.from(await logreg.predict(member, openX, open.length));
  }
}

/**
 * The `--start-by` start set: the pool's first rows (random, as the pool is a seeded shuffle), or
 * what `headstart suggest` answers a cold start with nothing labelled (`hybrid`: typical rows) or
 * with `--strategy coreset` (k-center greedy).
 */
function startSet(d: ActiveTask, pool: number[], k: number): number[] {
  const by = String(args["start-by"]);
  if (by === "random") return pool.slice(0, k);
  const candidates = gather(d.unit, d.dim, pool);
  if (by === "hybrid") return typicalPicks({ candidates, dim: d.dim, k }).map((p) => pool[p.index]);
  if (by === "coreset") {
    const picks = kCenterGreedy({ candidates, covered: new Float32Array(0), dim: d.dim, k });
    return picks.map((p) => pool[p.index]);
  }
  throw new Error(`--start-by must be random, hybrid or coreset, got ${by}`);
}

/** One seed's curve per strategy: test accuracy after each round. */
async function runSeed(d: ActiveTask, seed: number, seconds: Map<string, number>) {
  const sizes = SIZES[d.name as keyof typeof SIZES];
  const rand = mulberry32(1000 + seed);
  const pool = shuffled(d.train, rand).slice(0, args.pool ? num("pool") : sizes.pool);
  const test = shuffled(d.test, rand).slice(0, args.test ? num("test") : sizes.test);
  const testX = gather(d.X, d.dim, test);
  const start = startSet(d, pool, num("start"));
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
  return { curves, pool: pool.length, test: test.length };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const area = (c: number[]) => c.reduce((a, b) => a + b, 0) / c.length;

/** The fewest labels at which `curve` reaches `target` (null: never within the budget). */
function labelsToReach(curve: number[], sizes: number[], target: number): number | null {
  const i = curve.findIndex((x) => x >= target - 1e-12);
  return i < 0 ? null : sizes[i];
}

function printTable(sizes: number[], mean: Map<string, number[]>, seconds: Map<string, number>) {
  const show = sizes
    .map((_, i) => i)
    .filter((i) => i === 0 || sizes[i] % 100 === 0 || sizes[i] === 40 || sizes[i] === 60);
  const header = ["labels", ...STRATEGIES];
  const lines = [header.join(" | ")];
  for (const i of show)
    lines.push([String(sizes[i]), ...STRATEGIES.map((s) => pct(mean.get(s)![i]))].join(" | "));
  lines.push(["mean over the curve", ...STRATEGIES.map((s) => pct(area(mean.get(s)!)))].join(" | "));
  const random = mean.get("random");
  if (random) {
    const target = random[random.length - 1];
    const reach = STRATEGIES.map((s) => labelsToReach(mean.get(s)!, sizes, target) ?? "never");
    lines.push(
      [`labels to reach random's ${sizes[sizes.length - 1]} (${pct(target)})`, ...reach].join(" | "),
    );
  }
  lines.push(
    ["seconds (fits + choosing, all seeds)", ...STRATEGIES.map((s) => seconds.get(s)!.toFixed(1))].join(
      " | ",
    ),
  );
  console.log(`\n| ${lines[0]} |\n|${header.map(() => "---").join("|")}|`);
  for (const l of lines.slice(1)) console.log(`| ${l} |`);
}

async function loadTask(name: string): Promise<ActiveTask> {
  if (name === "imdb") return imdbTask(String(args.store));
  return fashionTask({
    source: String(args.source),
    modelsDir: String(args["models-dir"]),
    cacheDir: join(String(args.store), "quality"),
    trainImages: num("fashion-train"),
    testImages: num("fashion-test"),
    backbone: args["fashion-backbone"],
  });
}

/** The mean curve per strategy over the seeds, printed as a table; returns the means. */
async function benchTask(name: string): Promise<Map<string, number[]>> {
  const d = await loadTask(name);
  const sum = new Map<string, number[]>();
  const seconds = new Map<string, number>(STRATEGIES.map((s) => [s, 0]));
  let drawn = "";
  for (let seed = num("seed-base"); seed < num("seed-base") + num("seeds"); seed++) {
    const t0 = performance.now();
    const { curves, pool, test } = await runSeed(d, seed, seconds);
    drawn = `pool ${pool}, test ${test}`;
    for (const [s, c] of curves)
      sum.set(
        s,
        c.map((x, i) => x + (sum.get(s)?.[i] ?? 0)),
      );
    console.error(`${name}: seed ${seed} done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  const mean = new Map([...sum].map(([s, c]) => [s, c.map((x) => x / num("seeds"))]));
  const rounds = mean.get(STRATEGIES[0])!.length;
  const sizes = Array.from({ length: rounds }, (_, i) => num("start") + i * num("batch"));
  console.log(`\n${name}: ${d.backbone}, ${d.k} classes, ${drawn} per seed, mean of ${args.seeds} seeds`);
  printTable(sizes, mean, seconds);
  return mean;
}

async function main() {
  const m = await machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}`);
  console.log(
    `settings: --task ${args.task} --seeds ${args.seeds} --seed-base ${args["seed-base"]} --start ${args.start} --start-by ${args["start-by"]} --batch ${args.batch} --budget ${args.budget}${args.pool ? ` --pool ${args.pool}` : ""}${args.test ? ` --test ${args.test}` : ""}`,
  );
  if (args.cost) return groupingCost();
  const means: Map<string, number[]>[] = [];
  for (const t of TASKS) means.push(await benchTask(t));
  if (means.length > 1) {
    const both = STRATEGIES.map((s) =>
      pct(means.reduce((a, mean) => a + area(mean.get(s)!), 0) / means.length),
    );
    console.log(
      `\nmean over the curve, both tasks: ${STRATEGIES.map((s, i) => `${s} ${both[i]}`).join(", ")}`,
    );
  }
}

/** `--cost`: seconds of one hybridPicks call (median of 3) on random unit rows, per size. */
function groupingCost() {
  const rand = mulberry32(1);
  console.log("\n| candidates | k | dim | pool | seconds (median of 3) |\n|---|---|---|---|---|");
  for (const [n, k, dim] of [
    [5000, 50, 384],
    [5000, 50, 1536],
    [20000, 1000, 384],
  ]) {
    const X = unitRows(
      Float32Array.from({ length: n * dim }, () => rand() - 0.5),
      n,
      dim,
    );
    const u = Float64Array.from({ length: n }, () => rand());
    const times = [0, 1, 2].map(() => {
      const t0 = performance.now();
      hybridPicks(u, { candidates: X, dim, k });
      return (performance.now() - t0) / 1000;
    });
    const median = times.sort((a, b) => a - b)[1];
    console.log(`| ${n} | ${k} | ${dim} | ${hybridPoolSize(n, k)} | ${median.toFixed(3)} |`);
  }
}

await main();
