/**
 * `npm run bench:heads` — every registered head type against its scikit-learn counterpart, on the same
 * rows, with repetitions interleaved (ours, theirs, ours, theirs…) so a noisy shared machine slows
 * both alike. A benchmark, not a test: nothing is asserted, nothing is written into docs.
 *
 *   npm run bench:heads -- [--reps 3] [--only logreg,mlp] [--skip-sklearn] [--synthetic-rows 50000]
 *     [--seed N] [--no-imdb] [--no-synthetic] [--no-few-shot] [--no-train-command]
 *     [--dir .headstart-bench/export-imdb]
 *
 * Datasets (both as embeddings.npy + rows.jsonl, the `headstart export` format, which
 * scripts/sklearn_heads.py reads as is):
 *   - IMDB GloVe-100d embeddings, exported from the bench store (built as `npm run bench` does when
 *     missing);
 *   - synthetic: overlapping anisotropic Gaussian classes, n × 384 × 10 (+ n/5 test rows), fixed
 *     seed, written once under .headstart-bench/;
 *   - with `--seed N`, a second synthetic set whose dimension, class count and class separation are
 *     drawn from N (synthesisOf), so the figures are not tuned to the fixed one.
 * Besides the fit alone, each head type runs as the whole `headstart train` command with default
 * options (scripts/bench-train-command.ts), interleaved with the two fits, unless --no-train-command.
 * Plus few-shot IMDB: 8 train rows per class, seeds 0..4, default params and grid candidates.
 *
 * Every (dataset, head) pair runs in its own Node worker and its own Python process, so each peak
 * RSS belongs to one head alone (it includes the loaded data, reported separately as "data").
 */
import { type ChildProcess, execFile, fork, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { decodeNpy } from "../shared/cache/npy.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import type { HeadKind, HeadParams } from "../shared/learn/estimator.ts";
import { argmaxRows, classificationMetrics } from "../shared/learn/metrics.ts";
import { HEAD_KINDS } from "../shared/learn/registry.ts";
import { gaussian, mulberry32, shuffleInPlace } from "../shared/learn/split.ts";
import { TrainCommand, type TrainCommandRun } from "./bench-train-command.ts";

const { values: args } = parseArgs({
  options: {
    reps: { type: "string", default: "3" },
    only: { type: "string" },
    "skip-sklearn": { type: "boolean", default: false },
    "synthetic-rows": { type: "string", default: "50000" },
    "no-imdb": { type: "boolean", default: false },
    "no-synthetic": { type: "boolean", default: false },
    "no-few-shot": { type: "boolean", default: false },
    "no-train-command": { type: "boolean", default: false },
    seed: { type: "string" },
    dir: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "export-imdb") },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench") },
    /** Internal: run as the per-head worker on this dataset directory. */
    worker: { type: "string" },
  },
});

const SCRIPT = fileURLToPath(import.meta.url);
const SKLEARN_SCRIPT = join(PACKAGE_ROOT, "scripts", "sklearn_heads.py");
const PYTHON = "/usr/bin/python3";
const SYN_DIMS = 384;
const SYN_CLASSES = 10;
const SYN_SEED = 1;
/**
 * Per-dimension spread of the class centres (noise is 1): at 0.1 the Bayes-optimal accuracy is about
 * 66%, so the classes overlap well short of 100% and a linear model has little to gain from more data.
 */
const SYN_SPREAD = 0.1;
const FEW_SHOT_PER_CLASS = 8;
const FEW_SHOT_SEEDS = [0, 1, 2, 3, 4];
/**
 * A first fit + predict quicker than this counts as a warm-up (JIT, onnxruntime sessions) and is
 * dropped; a slower one is dominated by the work itself and is kept as repetition 1.
 */
const WARM_UP_MAX_SECONDS = 3;
/** A few-shot default fit + predict slower than this skips the head's grid candidates. */
const FEW_SHOT_GRID_MAX_SECONDS = 3;

/** headstart type → the scikit-learn model scripts/sklearn_heads.py fits for it. */
const SKLEARN_PAIR: Record<string, { model: string; name: string; timed: "fit" | "fit+predict" }> = {
  logreg: { model: "logreg", name: "LogisticRegression", timed: "fit" },
  mlp: { model: "mlp", name: "MLPClassifier", timed: "fit" },
  // kNN defers its work to prediction, so fit alone would compare nothing.
  knn: { model: "knn", name: "KNeighborsClassifier", timed: "fit+predict" },
  centroid: { model: "centroid", name: "NearestCentroid", timed: "fit" },
};

// biome-ignore lint/suspicious/noExplicitAny: kinds differ in model and parameter types.
type AnyKind = HeadKind<any, any>;

interface Split {
  X: Float32Array;
  n: number;
  y: Int32Array;
}

interface Dataset {
  d: number;
  labels: string[];
  train: Split;
  test: Split;
}

interface RowMeta {
  label?: unknown;
  split?: string;
}

/** Fit/predict outcome of one repetition, ours or sklearn's. */
interface RunResult {
  accuracy: number;
  macroF1: number;
  fitSeconds: number;
  predictSeconds: number;
  maxRssKiB: number;
  info?: Record<string, unknown>;
  settings?: Record<string, unknown>;
  unmapped?: string[];
  error?: string;
}

const median = (xs: number[]) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => {
  const m = mean(xs);
  // Sample standard deviation: 5 seeds are a sample of the possible draws.
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
};
const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(2)}%` : "—");
const secs = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : "—");
const mib = (kib: number) => (Number.isFinite(kib) ? `${Math.round(kib / 1024)}` : "—");

// ---------------------------------------------------------------- data files

function readRows(dir: string): RowMeta[] {
  return readFileSync(join(dir, "rows.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as RowMeta);
}

/** Label order shared with sklearn_heads.py: sorted JSON text of the train labels. */
function labelOrder(meta: RowMeta[]): string[] {
  const keys = new Set<string>();
  for (const r of meta) if (r.label != null && r.split !== "test") keys.add(JSON.stringify(r.label));
  return [...keys].sort();
}

/**
 * The float32 payload without decodeNpy's copy when the data starts 4-byte aligned (our own files
 * pad the header to 64 bytes), so a 50k × 384 matrix is held once.
 */
function readNpy(path: string): { data: Float32Array; rows: number; cols: number } {
  const buf = readFileSync(path);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString("latin1");
  const shape = /'shape':\s*\((\d+),\s*(\d+)\s*,?\s*\)/.exec(header);
  const offset = 10 + headerLen;
  if (
    buf[6] === 1 &&
    /'descr':\s*'<f4'/.test(header) &&
    /'fortran_order':\s*False/.test(header) &&
    shape &&
    (buf.byteOffset + offset) % 4 === 0
  ) {
    const rows = Number(shape[1]);
    const cols = Number(shape[2]);
    if (buf.byteLength - offset >= rows * cols * 4) {
      return { data: new Float32Array(buf.buffer, buf.byteOffset + offset, rows * cols), rows, cols };
    }
  }
  return decodeNpy(buf);
}

function loadDataset(dir: string): Dataset {
  const { data, rows, cols } = readNpy(join(dir, "embeddings.npy"));
  const meta = readRows(dir);
  if (meta.length !== rows)
    throw new Error(`${dir}: rows.jsonl has ${meta.length} rows, embeddings.npy ${rows}`);
  const labels = labelOrder(meta);
  const pick = (want: (r: RowMeta) => boolean): Split => {
    const idx = meta.flatMap((r, i) => (r.label != null && want(r) ? [i] : []));
    const y = Int32Array.from(idx, (i) => labels.indexOf(JSON.stringify(meta[i].label)));
    const unseen = y.indexOf(-1);
    if (unseen >= 0) throw new Error(`${dir}: row ${idx[unseen]} has a label the train split lacks`);
    // A contiguous block (the synthetic files) is a view; IMDB interleaves splits and is copied.
    if (idx.length > 0 && idx[idx.length - 1] - idx[0] === idx.length - 1) {
      return { X: data.subarray(idx[0] * cols, (idx[idx.length - 1] + 1) * cols), n: idx.length, y };
    }
    const X = new Float32Array(idx.length * cols);
    idx.forEach((r, i) => {
      X.set(data.subarray(r * cols, (r + 1) * cols), i * cols);
    });
    return { X, n: idx.length, y };
  };
  return { d: cols, labels, train: pick((r) => r.split !== "test"), test: pick((r) => r.split === "test") };
}

/**
 * k overlapping Gaussian classes in d dims, per-dimension offsets and scales (so standardizing
 * matters), written row block by row block so the whole matrix is never in memory here. Train rows
 * come first, then test rows: each split is one contiguous block. Skipped when already written.
 */
interface Synthesis {
  d: number;
  k: number;
  spread: number;
  seed: number;
}

const FIXED_SYNTHESIS: Synthesis = { d: SYN_DIMS, k: SYN_CLASSES, spread: SYN_SPREAD, seed: SYN_SEED };

/** `--seed N`'s problem: dimension 64–768, 3–20 classes, centre spread 0.05–0.30, all drawn from N. */
function synthesisOf(seed: number): Synthesis {
  const rand = mulberry32(7919 * seed + 13);
  const d = [64, 128, 256, 512, 768][Math.floor(rand() * 5)];
  const k = 3 + Math.floor(rand() * 18);
  const spread = Math.round((0.05 + 0.25 * rand()) * 1000) / 1000;
  return { d, k, spread, seed };
}

function writeSynthetic(root: string, nTrain: number, nTest: number, syn: Synthesis): string {
  const { d, k, spread } = syn;
  const dir = join(root, `synthetic-heads-${nTrain}+${nTest}x${d}x${k}-spread${spread}-seed${syn.seed}`);
  if (existsSync(join(dir, "embeddings.npy")) && existsSync(join(dir, "rows.jsonl"))) return dir;
  mkdirSync(dir, { recursive: true });
  const rand = mulberry32(syn.seed);
  const centers = Array.from({ length: k }, () =>
    Float64Array.from({ length: d }, () => spread * gaussian(rand)),
  );
  const offset = Float64Array.from({ length: d }, () => 3 * gaussian(rand));
  const scale = Float64Array.from({ length: d }, () => 0.2 + 2 * rand());
  const n = nTrain + nTest;

  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${n}, ${d}), }`;
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64);
  header += "\n";
  const head = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(head);
  head.writeUInt16LE(header.length, 8);

  const npyTmp = join(dir, "embeddings.npy.tmp");
  const fd = openSync(npyTmp, "w");
  writeSync(fd, head);
  writeSync(fd, Buffer.from(header, "latin1"));
  const block = 4096;
  const buf = new Float32Array(block * d);
  const rows: string[] = [];
  for (let s = 0; s < n; s += block) {
    const m = Math.min(block, n - s);
    for (let i = 0; i < m; i++) {
      const c = Math.floor(rand() * k);
      const row = s + i;
      rows.push(JSON.stringify({ id: `syn-${row}`, label: `c${c}`, split: row < nTrain ? "train" : "test" }));
      for (let j = 0; j < d; j++) buf[i * d + j] = offset[j] + scale[j] * (centers[c][j] + gaussian(rand));
    }
    writeSync(fd, new Uint8Array(buf.buffer, 0, m * d * 4));
  }
  closeSync(fd);
  const rowsTmp = join(dir, "rows.jsonl.tmp");
  const rfd = openSync(rowsTmp, "w");
  writeSync(rfd, `${rows.join("\n")}\n`);
  closeSync(rfd);
  renameSync(rowsTmp, join(dir, "rows.jsonl"));
  renameSync(npyTmp, join(dir, "embeddings.npy"));
  return dir;
}

/** The IMDB export `npm run bench` writes; produced the same way (demo + export) when missing. */
async function ensureImdbExport(dir: string): Promise<string> {
  if (existsSync(join(dir, "embeddings.npy")) && existsSync(join(dir, "rows.jsonl"))) return dir;
  console.log(
    `IMDB export missing at ${dir}: embedding IMDB with glove-100d into ${args.store} (minutes, once)…`,
  );
  const [{ loadConfig }, { runDemo }, { makeLogger }, { Platform }, { FsStore }] = await Promise.all([
    import("../shared/config.ts"),
    import("../shared/demo.ts"),
    import("../shared/log.ts"),
    import("../shared/platform.ts"),
    import("../shared/store/fs.ts"),
  ]);
  const config = loadConfig(process.env, { store: args.store, logLevel: "warn" });
  const platform = new Platform(new FsStore(config.store), config);
  await runDemo(platform, { log: makeLogger("bench", "warn") });
  await platform.export("imdb", dir, "glove-100d");
  return dir;
}

// ---------------------------------------------------------------- worker (one per dataset × head)

type WorkerCommand =
  | { op: "fit"; type: string }
  | { op: "fewshot"; type: string; params: HeadParams; train: number[]; seed: number }
  | { op: "exit" };

async function workerMain(dir: string): Promise<void> {
  const data = loadDataset(dir);
  const { d, labels } = data;
  const k = labels.length;
  const send = (m: unknown) => process.send!(m);
  process.on("disconnect", () => process.exit(0));

  const fitAndScore = async (
    kind: AnyKind,
    train: Split,
    params: HeadParams,
    seed: number,
  ): Promise<RunResult> => {
    const t0 = performance.now();
    const model = await kind.fit(train.X, train.n, d, { task: "multiclass", y: train.y, k }, params, {
      seed,
    });
    const fitSeconds = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const proba = await kind.predict(model, data.test.X, data.test.n);
    const predictSeconds = (performance.now() - t1) / 1000;
    const m = classificationMetrics(data.test.y, argmaxRows(proba, data.test.n, k), labels);
    return {
      accuracy: m.accuracy,
      macroF1: m.macroF1,
      fitSeconds,
      predictSeconds,
      maxRssKiB: process.resourceUsage().maxRSS,
      info: { ...(kind.info?.(model) ?? {}) },
    };
  };

  process.on("message", async (cmd: WorkerCommand) => {
    try {
      if (cmd.op === "exit") {
        send({ maxRssKiB: process.resourceUsage().maxRSS });
        process.exit(0);
      }
      const kind = HEAD_KINDS[cmd.type];
      if (cmd.op === "fit") {
        const params = kind.resolveParams({}, data.train.n, d);
        send({ ...(await fitAndScore(kind, data.train, params, 0)), settings: params });
      } else {
        const n = cmd.train.length;
        const X = new Float32Array(n * d);
        cmd.train.forEach((r, i) => {
          X.set(data.train.X.subarray(r * d, (r + 1) * d), i * d);
        });
        const y = Int32Array.from(cmd.train, (r) => data.train.y[r]);
        send(await fitAndScore(kind, { X, n, y }, cmd.params, cmd.seed));
      }
    } catch (err) {
      send({
        error: err instanceof Error ? err.message : String(err),
        maxRssKiB: process.resourceUsage().maxRSS,
      });
    }
  });
  send({
    ready: true,
    nTrain: data.train.n,
    nTest: data.test.n,
    d,
    k,
    maxRssKiB: process.resourceUsage().maxRSS,
  });
}

// ---------------------------------------------------------------- orchestration

/** One request, one reply, in order: a tiny RPC over a Node IPC channel or Python's stdio. */
class Peer {
  private waiting: Array<(m: Record<string, unknown>) => void> = [];
  private stderr = "";
  readonly ready: Promise<Record<string, unknown>>;

  constructor(
    private readonly child: ChildProcess,
    private readonly name: string,
    private readonly write: (m: unknown) => void,
    subscribe: (on: (m: Record<string, unknown>) => void) => void,
  ) {
    child.stderr?.on("data", (b: Buffer) => {
      this.stderr = (this.stderr + b.toString()).slice(-4000);
    });
    this.ready = new Promise((resolve) => this.waiting.push(resolve));
    subscribe((m) => this.waiting.shift()?.(m));
    child.on("exit", (code) => {
      const err = {
        error: `${this.name} exited with ${code}: ${this.stderr.trim().split("\n").slice(-3).join(" | ")}`,
      };
      for (const w of this.waiting.splice(0)) w(err);
    });
  }

  static node(dir: string): Peer {
    const child = fork(SCRIPT, ["--worker", dir], { stdio: ["ignore", "inherit", "pipe", "ipc"] });
    return new Peer(
      child,
      "node worker",
      (m) => child.send(m as never),
      (on) => child.on("message", (m) => on(m as Record<string, unknown>)),
    );
  }

  static python(dir: string): Peer {
    const child = spawn(PYTHON, [SKLEARN_SCRIPT, dir, "--serve"], { stdio: ["pipe", "pipe", "pipe"] });
    return new Peer(
      child,
      "sklearn_heads.py",
      (m) => child.stdin!.write(`${JSON.stringify(m)}\n`),
      (on) => createInterface({ input: child.stdout! }).on("line", (l) => on(JSON.parse(l))),
    );
  }

  request(m: unknown): Promise<Record<string, unknown>> {
    if (this.child.exitCode !== null) return Promise.resolve({ error: `${this.name} is not running` });
    const p = new Promise<Record<string, unknown>>((resolve) => this.waiting.push(resolve));
    this.write(m);
    return p;
  }

  async close(): Promise<number> {
    const r = await this.request({ op: "exit" });
    return typeof r.maxRssKiB === "number" ? r.maxRssKiB : Number.NaN;
  }
}

interface HeadRow {
  dataset: string;
  head: string;
  impl: string;
  accuracy: number;
  macroF1: number;
  fitSeconds: number;
  predictSeconds: number;
  dataRssKiB: number;
  peakRssKiB: number;
  fitRuns: number[];
  note: string;
}

interface PairRow {
  dataset: string;
  pair: string;
  timed: string;
  ours: number;
  theirs: number;
}

/** The whole `train` command of one head type on one dataset, next to scikit-learn's fit alone. */
interface TrainCommandRow {
  dataset: string;
  head: string;
  runs: TrainCommandRun[];
  /** Median fit of our head alone and of scikit-learn's counterpart, from the same interleaved reps. */
  oursFit: number;
  sklearnFit: number;
  sklearnAccuracy: number;
}

interface FewShotRow {
  head: string;
  impl: string;
  params: string;
  accs: number[];
  note: string;
}

function table(header: string[], rows: string[][], right: boolean[] = []): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i])))
      .join("  ")
      .trimEnd();
  return [line(header), line(w.map((n) => "-".repeat(n))), ...rows.map(line)].join("\n");
}

const markdown = (header: string[], rows: string[][]) =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");

/** `key=value …`; with `base`, only the entries that differ from it (grid candidates vs defaults). */
function describeParams(p: Record<string, unknown> | undefined, base?: Record<string, unknown>): string {
  if (!p) return "";
  return Object.entries(p)
    .filter(([key, v]) => key !== "n_iter" && (!base || JSON.stringify(base[key]) !== JSON.stringify(v)))
    .map(([key, v]) => `${key}=${Array.isArray(v) ? v.join("x") : String(v)}`)
    .join(" ");
}

function describeInfo(info: Record<string, unknown> | undefined): string {
  if (!info) return "";
  return Object.entries(info)
    .map(([key, v]) => `${key} ${v}`)
    .join(", ");
}

async function machine() {
  const run = promisify(execFile);
  const lscpu = await run("lscpu").then(
    (r) => r.stdout,
    () => "",
  );
  const cpu = (/Model name:\s*(.+)/.exec(lscpu)?.[1] ?? cpus()[0]?.model ?? "unknown").trim();
  const ortPkg = JSON.parse(
    readFileSync(join(PACKAGE_ROOT, "node_modules", "onnxruntime-node", "package.json"), "utf8"),
  ) as { version: string };
  const py = await run(PYTHON, [SKLEARN_SCRIPT, "--versions"]).then(
    (r) => JSON.parse(r.stdout) as { python: string; sklearn: string; numpy: string },
    (e: { stderr?: string; message: string }) => ({ error: (e.stderr || e.message).trim() }),
  );
  return {
    cpu,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: ortPkg.version,
    python: py,
  };
}

async function benchDataset(
  name: string,
  dir: string,
  kinds: [string, AnyKind][],
  reps: number,
  withSklearn: boolean,
  out: { heads: HeadRow[]; pairs: PairRow[]; train: TrainCommandRow[] },
): Promise<void> {
  const command = args["no-train-command"] ? undefined : await TrainCommand.prepare(dir, args.store);
  for (const [type] of kinds) {
    const pair = withSklearn ? SKLEARN_PAIR[type] : undefined;
    const ours = Peer.node(dir);
    const theirs = pair ? Peer.python(dir) : undefined;
    const [ready, theirReady] = await Promise.all([ours.ready, theirs?.ready]);
    if (ready.error) throw new Error(String(ready.error));
    process.stdout.write(`  ${name} ${type}: `);

    const oursRuns: Record<string, unknown>[] = [];
    const theirRuns: Record<string, unknown>[] = [];
    const commandRuns: TrainCommandRun[] = [];
    let first = true;
    while (oursRuns.length < reps) {
      // Interleaved: a slow spell of the shared machine lands on both sides of the pair.
      const a = await ours.request({ op: "fit", type });
      const b =
        pair && theirs && !theirReady?.error
          ? await theirs.request({ op: "fit", model: pair.model, params: a.settings })
          : undefined;
      const c = command ? await command.run(type) : undefined;
      const quick = !a.error && Number(a.fitSeconds) + Number(a.predictSeconds) < WARM_UP_MAX_SECONDS;
      if (first && quick) {
        // Both sides' first runs are dropped so each pair's medians cover the same interleaved slots.
        first = false;
        process.stdout.write("warm-up ");
        continue;
      }
      first = false;
      oursRuns.push(a);
      if (b) theirRuns.push(b);
      if (c) commandRuns.push(c);
      process.stdout.write(`${oursRuns.length} `);
      if (a.error) break;
    }
    const oursPeak = await ours.close();
    const theirPeak = theirs ? await theirs.close() : Number.NaN;
    process.stdout.write("\n");

    const summarize = (
      impl: string,
      runs: Record<string, unknown>[],
      dataRss: number,
      peak: number,
      note: string,
    ) => {
      const ok = runs.filter((x) => !x.error) as unknown as RunResult[];
      const err = runs.find((x) => x.error)?.error;
      const last = ok[ok.length - 1];
      out.heads.push({
        dataset: name,
        head: type,
        impl,
        accuracy: last?.accuracy ?? Number.NaN,
        macroF1: last?.macroF1 ?? Number.NaN,
        fitSeconds: median(ok.map((x) => x.fitSeconds)),
        predictSeconds: median(ok.map((x) => x.predictSeconds)),
        dataRssKiB: dataRss,
        peakRssKiB: peak,
        fitRuns: ok.map((x) => x.fitSeconds),
        note: err ? `error: ${String(err).slice(0, 200)}` : note,
      });
      return ok;
    };
    const lastOurs = oursRuns[oursRuns.length - 1] as unknown as RunResult | undefined;
    const o = summarize(
      "headstart",
      oursRuns,
      Number(ready.maxRssKiB),
      oursPeak,
      [describeParams(lastOurs?.settings), describeInfo(lastOurs?.info)].filter(Boolean).join("; "),
    );
    if (pair) {
      const lastTheirs = theirRuns[theirRuns.length - 1] as unknown as RunResult | undefined;
      const unmapped = lastTheirs?.unmapped?.length
        ? `; no sklearn counterpart: ${lastTheirs.unmapped.join(", ")}`
        : "";
      const iters =
        lastTheirs?.settings?.n_iter !== undefined ? `; n_iter ${lastTheirs.settings.n_iter}` : "";
      const t = summarize(
        `sklearn ${pair.name}`,
        theirReady?.error ? [theirReady] : theirRuns,
        Number(theirReady?.maxRssKiB),
        theirPeak,
        `${describeParams(lastTheirs?.settings)}${iters}${unmapped}`,
      );
      const time = (x: RunResult) => (pair.timed === "fit" ? x.fitSeconds : x.fitSeconds + x.predictSeconds);
      if (commandRuns.length) {
        out.train.push({
          dataset: name,
          head: type,
          runs: commandRuns,
          oursFit: median(o.map(time)),
          sklearnFit: median(t.map(time)),
          sklearnAccuracy: t[t.length - 1]?.accuracy ?? Number.NaN,
        });
      }
      if (o.length && t.length) {
        out.pairs.push({
          dataset: name,
          pair: `${type} ↔ ${pair.name}`,
          timed: pair.timed,
          ours: median(o.map(time)),
          theirs: median(t.map(time)),
        });
      }
    }
  }
}

const TRAIN_HEADER = [
  "dataset",
  "head",
  "train wall s",
  "trainSeconds",
  "load · fit · calibrate · evaluate · unknown · report · write (s)",
  "accuracy",
  "fit alone s",
  "scikit-learn fit s",
  "scikit-learn accuracy",
  "scikit-learn fit / train wall",
];

function trainCommandRows(rows: TrainCommandRow[]): string[][] {
  return rows.map((r) => {
    const ok = r.runs.filter((x) => !x.error);
    const med = (f: (x: TrainCommandRun) => number) => median(ok.map(f));
    const wall = med((x) => x.wallSeconds);
    const phases = ok.length
      ? (Object.keys(ok[0].timings) as (keyof TrainCommandRun["timings"])[])
          .map((p) => med((x) => x.timings[p]).toFixed(2))
          .join(" · ")
      : `error: ${r.runs.find((x) => x.error)?.error ?? "no run"}`;
    return [
      r.dataset,
      r.head,
      secs(wall),
      secs(med((x) => x.trainSeconds)),
      phases,
      pct(ok[ok.length - 1]?.accuracy ?? Number.NaN),
      secs(r.oursFit),
      secs(r.sklearnFit),
      pct(r.sklearnAccuracy),
      (r.sklearnFit / wall).toFixed(2),
    ];
  });
}

/** Train-split positions of `perClass` rows per class, drawn with `seed`. */
function fewShotRows(y: Int32Array, k: number, perClass: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const picked: number[] = [];
  for (let c = 0; c < k; c++) {
    const idx: number[] = [];
    for (let i = 0; i < y.length; i++) if (y[i] === c) idx.push(i);
    shuffleInPlace(idx, rand);
    picked.push(...idx.slice(0, perClass));
  }
  return picked.sort((a, b) => a - b);
}

async function fewShot(dir: string, kinds: [string, AnyKind][], withSklearn: boolean): Promise<FewShotRow[]> {
  const meta = readRows(dir);
  const labels = labelOrder(meta);
  const train = meta.filter((r) => r.label != null && r.split !== "test");
  const y = Int32Array.from(train, (r) => labels.indexOf(JSON.stringify(r.label)));
  const draws = FEW_SHOT_SEEDS.map((s) => fewShotRows(y, labels.length, FEW_SHOT_PER_CLASS, s));
  const n = labels.length * FEW_SHOT_PER_CLASS;
  const rows: FewShotRow[] = [];

  const worker = Peer.node(dir);
  const ready = await worker.ready;
  const d = Number(ready.d);
  for (const [type, kind] of kinds) {
    let candidates: HeadParams[];
    const note = "";
    try {
      const dflt = kind.resolveParams({}, n, d) as HeadParams;
      const seen = new Set([JSON.stringify(dflt)]);
      candidates = [dflt];
      for (const p of kind.grid(n, d) as HeadParams[]) {
        if (!seen.has(JSON.stringify(p))) {
          seen.add(JSON.stringify(p));
          candidates.push(p);
        }
      }
    } catch (err) {
      rows.push({
        head: type,
        impl: "headstart",
        params: "",
        accs: [],
        note: `error: ${(err as Error).message}`,
      });
      continue;
    }
    for (const [ci, params] of candidates.entries()) {
      const accs: number[] = [];
      let error = "";
      let slowest = 0;
      for (const [si, train] of draws.entries()) {
        const r = await worker.request({ op: "fewshot", type, params, train, seed: FEW_SHOT_SEEDS[si] });
        if (r.error) {
          error = String(r.error);
          break;
        }
        accs.push(Number(r.accuracy));
        slowest = Math.max(slowest, Number(r.fitSeconds) + Number(r.predictSeconds));
      }
      rows.push({
        head: type,
        impl: "headstart",
        params: ci === 0 ? `default: ${describeParams(params)}` : describeParams(params, candidates[0]),
        accs,
        note: error ? `error: ${error.slice(0, 160)}` : note,
      });
      if (ci === 0 && slowest > FEW_SHOT_GRID_MAX_SECONDS && candidates.length > 1) {
        rows.push({
          head: type,
          impl: "headstart",
          params: `grid (${candidates.length - 1} candidates)`,
          accs: [],
          note: `skipped: a default fit + predict took ${slowest.toFixed(1)} s`,
        });
        break;
      }
    }
    process.stdout.write(`  few-shot ${type}: ${candidates.length} parameter sets × ${draws.length} seeds\n`);
  }
  await worker.close();

  if (withSklearn) {
    const py = Peer.python(dir);
    const pyReady = await py.ready;
    for (const [model, name] of [
      ["logreg", "LogisticRegression"],
      ["knn", "KNeighborsClassifier"],
      ["centroid", "NearestCentroid"],
    ] as const) {
      if (pyReady.error) {
        rows.push({
          head: model,
          impl: `sklearn ${name}`,
          params: "",
          accs: [],
          note: String(pyReady.error),
        });
        continue;
      }
      // The same settings our head's defaults map to, when that head is registered.
      const ours = HEAD_KINDS[model]?.resolveParams({}, n, d) ?? {};
      const accs: number[] = [];
      let settings: Record<string, unknown> | undefined;
      let error = "";
      for (const [si, train] of draws.entries()) {
        const r = await py.request({ op: "fewshot", model, params: ours, train, seed: FEW_SHOT_SEEDS[si] });
        if (r.error) {
          error = String(r.error);
          break;
        }
        accs.push(Number(r.accuracy));
        settings = r.settings as Record<string, unknown>;
      }
      rows.push({
        head: model,
        impl: `sklearn ${name}`,
        params: describeParams(settings),
        accs,
        note: error,
      });
    }
    await py.close();
  }
  return rows;
}

async function main(): Promise<void> {
  const reps = Number(args.reps);
  if (!Number.isInteger(reps) || reps < 1)
    throw new Error(`--reps must be a positive integer, got ${args.reps}`);
  const synRows = Number(args["synthetic-rows"]);
  if (!Number.isInteger(synRows) || synRows < 10) {
    throw new Error(`--synthetic-rows must be an integer >= 10, got ${args["synthetic-rows"]}`);
  }
  const only = args.only ? args.only.split(",").map((s) => s.trim()) : undefined;
  for (const t of only ?? []) {
    if (!HEAD_KINDS[t])
      throw new Error(`--only: unknown head type ${t}; registered: ${Object.keys(HEAD_KINDS).join(", ")}`);
  }
  const selected = Object.entries(HEAD_KINDS).filter(([t]) => !only || only.includes(t));
  const kinds = selected.filter(([, k]) => k.task === "multiclass");
  const skipped = selected.filter(([, k]) => k.task !== "multiclass");

  const m = await machine();
  const withSklearn = !args["skip-sklearn"] && !("error" in m.python);
  console.log(
    `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, onnxruntime-node ${m.onnxruntime}`,
  );
  console.log(
    "error" in m.python
      ? `python: scikit-learn unavailable (${m.python.error})`
      : `python ${m.python.python}, scikit-learn ${m.python.sklearn}, numpy ${m.python.numpy}`,
  );
  console.log(
    `head types: ${kinds.map(([t]) => t).join(", ") || "(none)"}; reps ${reps} (medians, interleaved)`,
  );
  for (const [t, k] of skipped)
    console.log(`  skipped ${t}: task ${k.task} (this benchmark scores multiclass heads)`);
  for (const [t] of kinds)
    if (withSklearn && !SKLEARN_PAIR[t]) console.log(`  ${t}: no scikit-learn counterpart, ours only`);
  console.log("");

  const out = { heads: [] as HeadRow[], pairs: [] as PairRow[], train: [] as TrainCommandRow[] };
  const datasets: Array<{ name: string; dir: string; shape: string }> = [];
  if (!args["no-imdb"]) {
    const dir = await ensureImdbExport(args.dir);
    datasets.push({
      name: "imdb",
      dir,
      shape: "IMDB GloVe-100d: 25,000 train / 25,000 test × 100, 2 classes",
    });
  }
  if (!args["no-synthetic"]) {
    const nTest = Math.max(1, Math.round(synRows / 5));
    const dir = writeSynthetic(args.store, synRows, nTest, FIXED_SYNTHESIS);
    datasets.push({
      name: "synthetic",
      dir,
      shape: `synthetic: ${synRows} train / ${nTest} test × ${SYN_DIMS}, ${SYN_CLASSES} overlapping Gaussian classes (seed ${SYN_SEED})`,
    });
  }
  if (args.seed !== undefined) {
    const seed = Number(args.seed);
    if (!Number.isInteger(seed) || seed < 0)
      throw new Error(`--seed must be an integer >= 0, got ${args.seed}`);
    const syn = synthesisOf(seed);
    const nTest = Math.max(1, Math.round(synRows / 5));
    datasets.push({
      name: `seed-${seed}`,
      dir: writeSynthetic(args.store, synRows, nTest, syn),
      shape: `synthetic --seed ${seed}: ${synRows} train / ${nTest} test × ${syn.d}, ${syn.k} Gaussian classes, centre spread ${syn.spread}`,
    });
  }
  for (const ds of datasets) {
    console.log(`${ds.shape}`);
    await benchDataset(ds.name, ds.dir, kinds, reps, withSklearn, out);
  }
  const few =
    !args["no-imdb"] && !args["no-few-shot"] && kinds.length
      ? await fewShot(args.dir, kinds, withSklearn)
      : [];

  // ------------------------------------------------------------ report
  const headHeader = [
    "dataset",
    "head",
    "impl",
    "accuracy",
    "macro-F1",
    "fit s",
    "predict s",
    "RSS MiB data/peak",
    "notes",
  ];
  const headRows = out.heads.map((h) => [
    h.dataset,
    h.head,
    h.impl,
    pct(h.accuracy),
    pct(h.macroF1),
    secs(h.fitSeconds),
    secs(h.predictSeconds),
    `${mib(h.dataRssKiB)}/${mib(h.peakRssKiB)}`,
    h.note,
  ]);
  console.log(`\nheads (fit/predict: median of ${reps}; RSS: the process after loading the data / its peak)`);
  console.log(table(headHeader, headRows, [false, false, false, true, true, true, true, true, false]));
  console.log("\nfit runs (s):");
  for (const h of out.heads)
    console.log(`  ${h.dataset} ${h.head} ${h.impl}: ${h.fitRuns.map(secs).join(", ")}`);

  const pairHeader = ["dataset", "pair", "timed", "headstart s", "sklearn s", "sklearn / headstart"];
  const pairRows = out.pairs.map((p) => [
    p.dataset,
    p.pair,
    p.timed,
    secs(p.ours),
    secs(p.theirs),
    (p.theirs / p.ours).toFixed(2),
  ]);
  if (pairRows.length) {
    console.log("\nspeed (medians; > 1 means headstart is faster)");
    console.log(table(pairHeader, pairRows, [false, false, false, true, true, true]));
  }

  const trainRows = trainCommandRows(out.train);
  if (trainRows.length) {
    console.log(
      `\nthe whole \`headstart train\` command (default options; medians of ${reps}) vs scikit-learn's fit alone`,
    );
    console.log(
      table(
        TRAIN_HEADER,
        trainRows,
        TRAIN_HEADER.map((_, i) => i >= 2 && i < TRAIN_HEADER.length - 1),
      ),
    );
  }

  const fewHeader = ["head", "impl", "params", "accuracy mean ± std", "seeds", "notes"];
  const fewRow = (f: FewShotRow) => [
    f.head,
    f.impl,
    f.params,
    f.accs.length ? `${pct(mean(f.accs))} ± ${(100 * std(f.accs)).toFixed(2)}` : "—",
    String(f.accs.length),
    f.note,
  ];
  let bestLine = "";
  if (few.length) {
    const complete = few.filter((f) => f.impl === "headstart" && f.accs.length === FEW_SHOT_SEEDS.length);
    const defaults = complete.filter((f) => f.params.startsWith("default"));
    const best = (rows: FewShotRow[]) => rows.reduce((a, b) => (mean(b.accs) > mean(a.accs) ? b : a));
    if (defaults.length) {
      const b = best(defaults);
      bestLine = `best head with default params: ${b.head} (${pct(mean(b.accs))})`;
      const g = best(complete);
      const what = g.params.startsWith("default")
        ? "with defaults"
        : `with ${g.params} (other params default)`;
      bestLine += `; best of all candidates: ${g.head} ${what} (${pct(mean(g.accs))})`;
    }
    console.log(
      `\nfew-shot IMDB: ${FEW_SHOT_PER_CLASS} train rows per class, seeds ${FEW_SHOT_SEEDS.join(",")}, scored on all 25,000 test rows`,
    );
    console.log(table(fewHeader, few.map(fewRow), [false, false, false, true, true, false]));
    if (bestLine) console.log(bestLine);
  }

  console.log("\n--- markdown for docs/benchmarks.md ---\n");
  console.log(
    `Machine: ${m.cpu} (${m.cores} cores), ${m.memoryGiB} GiB, Node ${m.node}, onnxruntime-node ${m.onnxruntime}` +
      ("error" in m.python
        ? ""
        : `, Python ${m.python.python}, scikit-learn ${m.python.sklearn}, NumPy ${m.python.numpy}`) +
      `. \`npm run bench:heads -- --reps ${reps}\`.\n`,
  );
  for (const ds of datasets) console.log(`- ${ds.shape}`);
  console.log("");
  console.log(
    markdown(
      [
        "dataset",
        "head",
        "implementation",
        "test accuracy",
        "macro-F1",
        `fit (s, median of ${reps})`,
        "predict (s)",
        "peak RSS (MiB)",
      ],
      out.heads.map((h) => [
        h.dataset,
        h.head,
        h.impl.replace(/^sklearn /, "scikit-learn "),
        pct(h.accuracy),
        pct(h.macroF1),
        secs(h.fitSeconds),
        secs(h.predictSeconds),
        mib(h.peakRssKiB),
      ]),
    ),
  );
  if (pairRows.length) {
    console.log("");
    console.log(
      markdown(
        pairHeader.map((h) => h.replace("sklearn", "scikit-learn")),
        pairRows,
      ),
    );
  }
  if (trainRows.length) {
    console.log("");
    console.log(markdown(TRAIN_HEADER, trainRows));
  }
  if (few.length) {
    const withNotes = few.some((f) => f.note) ? 6 : 5;
    console.log("");
    console.log(
      markdown(
        fewHeader.slice(0, withNotes),
        few.map((f) => fewRow(f).slice(0, withNotes)),
      ),
    );
    if (bestLine) console.log(`\n${bestLine[0].toUpperCase()}${bestLine.slice(1)}.`);
  }
}

if (args.worker) {
  await workerMain(args.worker);
} else {
  try {
    await main();
  } catch (err) {
    console.error(`bench:heads: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
}
