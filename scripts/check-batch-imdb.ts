/**
 * `npm run check:batch-imdb`: issue 15's end-to-end check of batch predictions on IMDB, as a user
 * runs it, from a cold store. The demo head (GloVe + logistic regression, trained on the official
 * train split) scores the 25,000 official test reviews as one batch job, given as a manifest file
 * the store has never seen (so every review is embedded again by the job), plus one corrupt row.
 * The accuracy computed from the job's output must equal the test accuracy the head's report
 * states, every input id must appear exactly once across predictions and errors, and the corrupt
 * row must be a row-level error. Prints the figures and the machine; exits 1 on any mismatch.
 *
 *   npm run check:batch-imdb [-- --per-block N]   (N reviews per split and label; default 12,500)
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { loadImdb } from "../shared/samples/imdb.ts";

const run = promisify(execFile);
const BIN = join(import.meta.dirname, "..", "bin", "headstart.js");
const CORRUPT_ID = "corrupt-empty-text";

interface Line {
  id: string;
  label?: string;
  reason?: string;
}

async function headstart(env: NodeJS.ProcessEnv, ...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [BIN, ...args, "--json"], {
    env: { ...process.env, HEADSTART_LOG_LEVEL: "warn", ...env },
    maxBuffer: 256 * 1024 * 1024,
  });
  return JSON.parse(stdout);
}

async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  console.log(`${label.padEnd(34)} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

function readJsonl(text: string): Line[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Line);
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--per-block");
  const perBlock = i > 0 ? Number(process.argv[i + 1]) : 12_500;
  const dir = await mkdtemp(join(tmpdir(), "headstart-batch-imdb-"));
  const env = { HEADSTART_STORE: join(dir, "store") };
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`);
  try {
    const demo = (await timed("demo (ingest, embed 2 splits, train)", () =>
      headstart(env, "demo", "--limit", String(perBlock)),
    )) as { head: string; version: string; accuracy: number; testRows: number };

    const test = (await loadImdb(perBlock)).filter((r) => r.split === "test");
    const truth = new Map(test.map((r) => [r.id, r.label]));
    const manifest = join(dir, "imdb-test.jsonl");
    const rows = [...test.map((r) => ({ id: r.id, text: r.text })), { id: CORRUPT_ID, text: "" }];
    await writeFile(manifest, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);

    const job = (await timed(`batch-predict (${rows.length} rows, cold)`, () =>
      headstart(env, "batch-predict", demo.head, manifest, "--wait"),
    )) as { job: string; status: string; counts: { total: number; succeeded: number; failed: number } };
    const out = join(dir, "out");
    await mkdir(out);
    await headstart(env, "export-predictions", job.job, "--out", out);
    const predictions = readJsonl(await readFile(join(out, "predictions.jsonl"), "utf8"));
    const errors = readJsonl(await readFile(join(out, "errors.jsonl"), "utf8"));
    const summary = checkOutput(rows, predictions, errors, truth);
    report({ demo, job, summary });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function checkOutput(
  rows: ReadonlyArray<{ id: string }>,
  predictions: Line[],
  errors: Line[],
  truth: Map<string, string>,
) {
  const seen = [...predictions, ...errors].map((l) => l.id);
  const once = seen.length === rows.length && new Set(seen).size === rows.length;
  const corrupt = errors.find((e) => e.id === CORRUPT_ID);
  const correct = predictions.filter((p) => truth.get(p.id) === p.label).length;
  return { once, corrupt, accuracy: correct / truth.size, scored: predictions.length };
}

function report(r: {
  demo: { accuracy: number; testRows: number };
  job: { job: string; status: string; counts: object };
  summary: ReturnType<typeof checkOutput>;
}): void {
  const { demo, job, summary } = r;
  console.log(`job ${job.job}: ${job.status} ${JSON.stringify(job.counts)}`);
  console.log(`accuracy from the output: ${summary.accuracy} over ${summary.scored} scored reviews`);
  console.log(`accuracy in the head's report: ${demo.accuracy} over ${demo.testRows} test reviews`);
  console.log(`corrupt row: ${summary.corrupt ? `in errors (${summary.corrupt.reason})` : "MISSING"}`);
  const ok =
    summary.once &&
    summary.corrupt !== undefined &&
    summary.accuracy === demo.accuracy &&
    job.status === "succeeded-with-errors";
  console.log(ok ? "OK: every id once, accuracy equal, corrupt row reported" : "MISMATCH");
  if (!ok) process.exitCode = 1;
}

await main();
