/**
 * Where batch jobs run. The local runner embeds in this process (one job at a time, so a
 * laptop's cores are not oversubscribed); the SageMaker runner hands the same job to a GPU
 * processing job. Both run `runEmbedShards` over the stored plan.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Embedder } from "../backbone/spec.ts";
import { PACKAGE_ROOT } from "../config.ts";
import { type EmbedProgress, type RunShardsResult, runEmbedShards } from "../embed/run.ts";
import { HeadstartError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";
import { type EmbedJob, updateJob } from "./job.ts";

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

  private async execute(job: EmbedJob, signal?: AbortSignal): Promise<RunShardsResult> {
    const now = new Date().toISOString();
    await updateJob(this.store, job.job, (j) => ({
      state: "running",
      runner: this.name,
      startedAt: j.startedAt ?? now,
      error: undefined,
    }));
    try {
      const result =
        this.opts.mode === "process"
          ? await this.runWorker(job)
          : await runEmbedShards(this.store, job, await this.opts.embedderFor(job.backbone), {
              onProgress: this.opts.onProgress,
              signal,
            });
      await updateJob(this.store, job.job, () => ({
        state: "succeeded",
        finishedAt: new Date().toISOString(),
      }));
      return result;
    } catch (err) {
      await updateJob(this.store, job.job, () => ({
        state: "failed",
        error: (err as Error).message,
        finishedAt: new Date().toISOString(),
      })).catch(() => undefined);
      throw err;
    }
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
