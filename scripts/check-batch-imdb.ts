/**
 * `npm run check:batch-imdb`: issue 15's end-to-end check of batch predictions on IMDB, as a user
 * runs it, from a cold store. The demo head (GloVe + logistic regression, trained on the official
 * train split) scores the 25,000 official test reviews as one batch job, given as a manifest file
 * the store has never seen (so every review is embedded again by the job), plus one corrupt row.
 * The accuracy computed from the job's output must equal the test accuracy the head's report
 * states, every input id must appear exactly once across predictions and errors, and the corrupt
 * row must be a row-level error. Then the same through the bucket door on real S3 (radosgw on
 * loopback): the demo trained in that store, the manifest uploaded to `batch/<head>/…`, radosgw's
 * own notification handed to the ingest Lambda's handler. Prints the figures and the machine;
 * exits 1 on any mismatch.
 *
 *   npm run check:batch-imdb [-- --per-block N] [--no-door]   (N per split and label; default 12,500)
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { runDemo } from "../shared/demo.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import {
  listenForBucketNotifications,
  s3Env,
  s3TestPlatform,
  startS3Server,
} from "../test/helpers/s3-server.ts";

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

interface TestSet {
  rows: Array<{ id: string; text: string }>;
  truth: Map<string, string>;
  jsonl: string;
}

async function testSet(perBlock: number): Promise<TestSet> {
  const test = (await loadImdb(perBlock)).filter((r) => r.split === "test");
  const rows = [...test.map((r) => ({ id: r.id, text: r.text })), { id: CORRUPT_ID, text: "" }];
  const jsonl = `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
  return { rows, truth: new Map(test.map((r) => [r.id, r.label])), jsonl };
}

async function main(): Promise<void> {
  const i = process.argv.indexOf("--per-block");
  const perBlock = i > 0 ? Number(process.argv[i + 1]) : 12_500;
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`);
  const set = await testSet(perBlock);
  console.log("— the CLI on a local store");
  await checkCli(perBlock, set);
  if (process.argv.includes("--no-door")) return;
  console.log("— the bucket door on radosgw");
  await checkDoor(perBlock, set);
}

/** `headstart demo`, then `batch-predict <head> <manifest> --wait` and `export-predictions`. */
async function checkCli(perBlock: number, { rows, truth, jsonl }: TestSet): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "headstart-batch-imdb-"));
  const env = { HEADSTART_STORE: join(dir, "store") };
  try {
    const demo = (await timed("demo (ingest, embed 2 splits, train)", () =>
      headstart(env, "demo", "--limit", String(perBlock)),
    )) as { head: string; version: string; accuracy: number; testRows: number };
    const manifest = join(dir, "imdb-test.jsonl");
    await writeFile(manifest, jsonl);

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

/** The demo in an S3 store, then an upload to `batch/<head>/imdb-test.jsonl` and its notification. */
async function checkDoor(perBlock: number, { rows, truth, jsonl }: TestSet): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "headstart-batch-door-"));
  const s3 = await timed("radosgw started", () => startS3Server());
  const saved = { ...process.env };
  try {
    const prefix = "customer-a";
    const { store, platform } = await s3TestPlatform(s3, { dir, prefix, defaultBackbone: "glove-100d" });
    const log = makeLogger("check-batch-imdb", "warn");
    const demo = await timed("demo in S3 (ingest, embed, train)", () => runDemo(platform, { perBlock, log }));
    const notifications = await listenForBucketNotifications(s3, store.bucket, prefix, "batch/");
    Object.assign(process.env, s3Env(s3, store.bucket, prefix), {
      HEADSTART_MODELS_DIR: join(dir, "models"),
      HEADSTART_SCRATCH_DIR: join(dir, "lambda-scratch"),
      HEADSTART_LOG_LEVEL: "warn",
    });
    const { handler } = await import("../functions/ingest/handler.ts");
    const key = `${prefix}/${keys.batchUpload(demo.head, "imdb-test", "jsonl")}`;
    const { batches } = await timed(`upload → ingest handler (${rows.length} rows)`, async () => {
      await s3.client.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: jsonl }));
      return handler(await notifications.eventFor(key, 30_000));
    });
    await notifications.close();
    const [started] = batches;
    if (started?.state !== "started")
      throw new Error(`the upload was not started: ${JSON.stringify(started)}`);
    const out = join(dir, "out");
    const files = await platform.exportPredictions(started.job!, out);
    const predictions = readJsonl(await readFile(files.predictions, "utf8"));
    const errors = readJsonl(await readFile(files.errors, "utf8"));
    const { job: id, status, counts = {} } = await platform.batchPrediction(started.job!);
    report({
      demo,
      job: { job: id, status, counts },
      summary: checkOutput(rows, predictions, errors, truth),
    });
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    await s3.stop();
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
