/**
 * Where batch jobs run. The local runner embeds in this process (one job at a time, so a
 * laptop's cores are not oversubscribed); the SageMaker runner hands the same job to a GPU
 * processing job. Both run `runEmbedShards` over the stored plan.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Embedder } from "../backbone/spec.ts";
import { isCommitted } from "../cache/shards.ts";
import { PACKAGE_ROOT } from "../config.ts";
import { type EmbedJob, readJob, updateJob } from "../embed/job.ts";
import { liveLeases } from "../embed/lease.ts";
import { type EmbedProgress, type RunShardsResult, runEmbedShards } from "../embed/run.ts";
import { HeadstartError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";

export interface JobRunner {
  readonly name: string;
  /** Starts the job; resolves once it is accepted (not when it finishes). */
  submit(job: EmbedJob): Promise<EmbedJob>;
}

export const BATCH_ENTRY = join(PACKAGE_ROOT, "functions", "embed-batch", "main.ts");

export interface LocalJobRunnerOptions {
  embedderFor: (backbone: string) => Promise<Embedder>;
  /**
   * `inline` embeds in this process (the CLI, with a progress bar); `process` runs the batch
   * entry point as a worker process, as SageMaker would, so a server's event loop stays free.
   */
  mode?: "inline" | "process";
  /**
   * Environment for worker processes: the caller's (credentials, PATH) overlaid with the
   * platform's configuration (see `configToEnv`), so flags like `--endpoint` reach the worker.
   */
  workerEnv?: NodeJS.ProcessEnv;
  onProgress?: (event: EmbedProgress) => void;
  onError?: (job: string, err: unknown) => void;
  /** Shard lease TTL for inline runs (`Config.leaseTtlSeconds`); workers read it from their env. */
  leaseTtlMs?: number;
  /**
   * Called with the job's record when a run ends and the job is `succeeded` or `failed` (the
   * platform's events); awaited before the run resolves, and never fails it.
   */
  onFinished?: (job: EmbedJob) => Promise<void> | void;
}

export class LocalJobRunner implements JobRunner {
  readonly name = "local";
  private queue: Promise<unknown> = Promise.resolve();
  private readonly running = new Map<string, Promise<RunShardsResult>>();

  constructor(
    private readonly store: ObjectStore,
    private readonly opts: LocalJobRunnerOptions,
  ) {}

  /** Runs the job now and resolves with its result; a job already in flight is joined, not re-run. */
  run(job: EmbedJob, signal?: AbortSignal): Promise<RunShardsResult> {
    const inFlight = this.running.get(job.job);
    if (inFlight) return inFlight;
    const promise = this.queue.then(() => this.execute(job, signal));
    this.queue = promise.catch(() => undefined);
    this.running.set(job.job, promise);
    promise.finally(() => this.running.delete(job.job)).catch(() => undefined);
    return promise;
  }

  async submit(job: EmbedJob): Promise<EmbedJob> {
    if (job.state === "succeeded") return job;
    this.run(job).catch((err) => this.opts.onError?.(job.job, err));
    return job;
  }

  /** Resolves when every job submitted so far has finished. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Other runs of the same job may be going on in other processes (a second `headstart embed`,
   * a server's worker): a job that is `succeeded` stays so, it becomes `succeeded` only once
   * every shard is committed, and a failing run calls it `failed` only when no live lease shows
   * another run still at work (otherwise it stays `running` and that run finishes it).
   */
  private async execute(job: EmbedJob, signal?: AbortSignal): Promise<RunShardsResult> {
    const now = new Date().toISOString();
    await updateJob(this.store, job.job, (j) =>
      j.state === "succeeded"
        ? {}
        : { state: "running", runner: this.name, startedAt: j.startedAt ?? now, error: undefined },
    );
    try {
      const result =
        this.opts.mode === "process"
          ? await this.runWorker(job)
          : await runEmbedShards(this.store, job, await this.opts.embedderFor(job.backbone), {
              onProgress: this.opts.onProgress,
              signal,
              leaseTtlMs: this.opts.leaseTtlMs,
            });
      if (await allCommitted(this.store, job)) {
        await updateJob(this.store, job.job, (j) =>
          j.state === "succeeded"
            ? {}
            : { state: "succeeded", error: undefined, finishedAt: new Date().toISOString() },
        );
      }
      await this.finished(job.job);
      return result;
    } catch (err) {
      await this.recordFailure(job, err).catch(() => undefined);
      await this.finished(job.job);
      throw err;
    }
  }

  /** Hands the job's final record to `onFinished`; a job another run is still finishing is not final. */
  private async finished(jobId: string): Promise<void> {
    if (!this.opts.onFinished) return;
    try {
      const current = (await readJob(this.store, jobId))?.value;
      if (current?.state === "succeeded" || current?.state === "failed") await this.opts.onFinished(current);
    } catch {
      // Telling others is never a reason for the run to fail.
    }
  }

  private async recordFailure(job: EmbedJob, err: unknown): Promise<void> {
    if (await allCommitted(this.store, job)) return; // another run finished it meanwhile
    const others = await liveLeases(this.store, job);
    if (others.length > 0) return; // still `running`: those runs finish it or record their failure
    await updateJob(this.store, job.job, (j) =>
      j.state === "succeeded"
        ? {}
        : { state: "failed", error: (err as Error).message, finishedAt: new Date().toISOString() },
    );
  }

  /**
   * The worker prints its result as one JSON line on stdout (its logs go to stderr, at whatever
   * level is configured), so the result never depends on the log level.
   */
  private runWorker(job: EmbedJob): Promise<RunShardsResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", BATCH_ENTRY], {
        cwd: PACKAGE_ROOT,
        env: { ...this.opts.workerEnv, HEADSTART_STORE: this.store.url, HEADSTART_JOB: job.job },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderrTail = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk: string) => {
        stdout += chunk;
      });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk: string) => {
        process.stderr.write(chunk);
        stderrTail = (stderrTail + chunk).slice(-2_000);
      });
      child.on("error", reject);
      child.on("close", (code) => {
        const last = stdout.trim().split("\n").pop() ?? "";
        let result: RunShardsResult | undefined;
        try {
          result = last ? (JSON.parse(last) as RunShardsResult) : undefined;
        } catch {
          result = undefined;
        }
        if (code === 0 && result?.job === job.job) return resolve(result);
        const reason = stderrTail.trim().split("\n").pop() || "no output";
        reject(new HeadstartError("internal", `worker for job ${job.job} exited with ${code}: ${reason}`));
      });
    });
  }
}

async function allCommitted(store: ObjectStore, job: EmbedJob): Promise<boolean> {
  for (const shard of job.shards) {
    if (!(await isCommitted(store, job.backbone, job.dataset, shard))) return false;
  }
  return true;
}
