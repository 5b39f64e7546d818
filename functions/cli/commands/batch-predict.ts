import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Command } from "commander";
import { PACKAGE_ROOT } from "../../../shared/config.ts";
import { ValidationError } from "../../../shared/errors.ts";
import { parseHeadRef } from "../../../shared/heads/version.ts";
import type { Platform } from "../../../shared/platform.ts";
import type { BatchJob } from "../../../shared/predictions/job.ts";
import { FINAL_STATUSES } from "../../../shared/predictions/job.ts";
import { context, output } from "../context.ts";

const CLI_ENTRY = join(PACKAGE_ROOT, "bin", "headstart.js");

interface BatchFlags {
  dataset?: string;
  version?: string;
  alias?: string;
  wait?: boolean;
}

/** How often `--wait` looks at a job that another process is running. */
const POLL_MS = 500;

export function registerBatchPredict(program: Command): void {
  program
    .command("batch-predict")
    .description(
      "score every row of a dataset, manifest or folder with a head, into predictions/<job>/ in the store",
    )
    .argument("<head>", "head, head@version or head:alias")
    .argument("[input]", "a manifest (JSONL/CSV) or folder to score, instead of --dataset")
    .option("--dataset <dataset>", "score this dataset's current rows")
    .option("--version <version>", "a specific head version instead of the live one")
    .option("--alias <alias>", "the version an alias points to instead of the live one")
    .option("--wait", "run the job here and return when it has finished")
    .action(async (head: string, input: string | undefined, opts: BatchFlags, cmd: Command) => {
      const { platform, json } = context(cmd);
      if ((input === undefined) === (opts.dataset === undefined)) {
        throw new ValidationError("give a manifest or folder, or --dataset <dataset> (one of them)", {
          field: "dataset",
        });
      }
      const ref = parseHeadRef(head);
      const dataset = opts.dataset ?? (await platform.uploadBatchInput(input!));
      const { job } = await platform.startBatchPrediction({
        head: ref.head,
        dataset,
        source: input === undefined ? "dataset" : "manifest",
        version: opts.version ?? ref.version,
        alias: opts.alias ?? ref.alias,
      });
      const final = opts.wait ? await waitFor(platform, job) : startInBackground(cmd, job);
      if (final.status === "failed" || final.status === "cancelled") process.exitCode = 1;
      output(json, batchResult(final), batchLines(final));
    });
  // The background worker of `batch-predict` without --wait: runs one queued job, then exits.
  program
    .command("batch-run", { hidden: true })
    .argument("<job>")
    .action(async (job: string, _opts: unknown, cmd: Command) => {
      const { platform } = context(cmd);
      await platform.runBatchPrediction(job);
    });
}

/** The `--json` document (a contract): the job, its status, counts and the store keys of its files. */
export function batchResult(job: BatchJob) {
  return {
    job: job.job,
    status: job.status,
    counts: job.counts ?? { total: job.progress.rowsTotal, succeeded: 0, failed: 0 },
    outputs: job.outputs,
    errors: job.errors,
  };
}

/** Runs the job here if it is queued; otherwise waits for whoever runs it to finish. */
async function waitFor(platform: Platform, job: BatchJob): Promise<BatchJob> {
  let current = await platform.runBatchPrediction(job.job);
  while (!FINAL_STATUSES.includes(current.status)) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    // Runs it here if the process running it has stopped (see `heartbeatAt`).
    current = await platform.runBatchPrediction(current.job);
  }
  return current;
}

/** A detached worker process runs a queued job, so the command returns at once. */
function startInBackground(cmd: Command, job: BatchJob): BatchJob {
  if (job.status !== "queued") return job;
  const globals = cmd.optsWithGlobals() as { store?: string; endpoint?: string };
  const args = [
    ...(globals.store ? ["--store", globals.store] : []),
    ...(globals.endpoint ? ["--endpoint", globals.endpoint] : []),
  ];
  const child = spawn(process.execPath, [CLI_ENTRY, ...args, "batch-run", job.job], {
    detached: true,
    stdio: "ignore",
    env: process.env,
  });
  child.unref();
  return job;
}

function batchLines(job: BatchJob): string {
  const r = batchResult(job);
  const lines = [`${job.job}\t${job.status}\t${job.head}@${job.version}\t${job.input.dataset}`];
  if (job.counts)
    lines.push(`rows: ${r.counts.total} (${r.counts.succeeded} scored, ${r.counts.failed} failed)`);
  if (job.error) lines.push(`error: ${job.error}`);
  for (const key of [...r.outputs, ...r.errors]) lines.push(`  ${key}`);
  if (job.status === "queued")
    lines.push(`running in the background; \`headstart batch-predict … --wait\` waits`);
  return lines.join("\n");
}
