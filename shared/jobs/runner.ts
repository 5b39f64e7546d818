/**
 * Where batch jobs run. The local runner embeds in this process (one job at a time, so a
 * laptop's cores are not oversubscribed); the SageMaker runner hands the same job to a GPU
 * processing job. Both run `runEmbedShards` over the stored plan.
 *
 * Several embedding jobs of one dataset (one per backbone) can run as one batch job
 * (`submitAll`): one worker process, one processing job. Each job keeps its own record, plan,
 * leases and state; only the process that runs them is shared.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Embedder } from "../backbone/spec.ts";
import { isCommitted } from "../cache/shards.ts";
import { PACKAGE_ROOT } from "../config.ts";
import { BatchGroupResult } from "../embed/batch.ts";
import { type EmbedJob, readJob, updateJob } from "../embed/job.ts";
import { liveLeases } from "../embed/lease.ts";
import { type EmbedProgress, type RunShardsResult, runEmbedShards } from "../embed/run.ts";
import { HeadstartError } from "../errors.ts";
import type { ObjectStore } from "../store/types.ts";

export interface JobRunner {
  readonly name: string;
  /** Starts the job; resolves once it is accepted (not when it finishes). */
  submit(job: EmbedJob): Promise<EmbedJob>;
  /**
   * Starts the jobs (one dataset's, one per backbone) as one batch job; resolves once it is
   * accepted with each job as recorded, in the given order. Jobs already `succeeded` or with no
   * shards are returned as they are and are not part of it; with 0 or 1 left this is `submit`.
   */
  submitAll(jobs: readonly EmbedJob[]): Promise<EmbedJob[]>;
}

/** The jobs of `jobs` a batch job still has to run, each once. */
export function jobsToRun(jobs: readonly EmbedJob[]): EmbedJob[] {
  const seen = new Set<string>();
  return jobs.filter((j) => {
    if (j.state === "succeeded" || j.shards.length === 0 || seen.has(j.job)) return false;
    seen.add(j.job);
    return true;
  });
}

/** What one job of a batch job came to. */
export type WorkerOutcome = { ok: true; result: RunShardsResult } | { ok: false; error: Error };

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
    return this.runAll([job], signal).then((results) => results[0]);
  }

  /**
   * Runs the jobs now as one batch job — one after the other in this process, or in ONE worker
   * process — and resolves with their results in order (rejects with the first failure once
   * every job has ended). A job already in flight is joined, not run again.
   */
  async runAll(jobs: readonly EmbedJob[], signal?: AbortSignal): Promise<RunShardsResult[]> {
    const settled = await Promise.allSettled(this.start(jobs, signal));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    return settled.map((s) => (s as PromiseFulfilledResult<RunShardsResult>).value);
  }

  async submit(job: EmbedJob): Promise<EmbedJob> {
    if (job.state === "succeeded") return job;
    this.run(job).catch((err) => this.opts.onError?.(job.job, err));
    return job;
  }

  async submitAll(jobs: readonly EmbedJob[]): Promise<EmbedJob[]> {
    const pending = jobsToRun(jobs);
    if (pending.length === 1) await this.submit(pending[0]);
    else {
      this.start(pending).forEach((p, i) => {
        p.catch((err) => this.opts.onError?.(pending[i].job, err));
      });
    }
    return [...jobs];
  }

  /**
   * Queues one batch job for the jobs not yet in flight and returns each given job's promise
   * (the in-flight one's, for a job already running).
   */
  private start(jobs: readonly EmbedJob[], signal?: AbortSignal): Array<Promise<RunShardsResult>> {
    const fresh = jobs.filter(
      (j, i) => !this.running.has(j.job) && jobs.findIndex((o) => o.job === j.job) === i,
    );
    if (fresh.length > 0) {
      const batch = this.queue.then(() => this.executeAll(fresh, signal));
      this.queue = batch.catch(() => undefined);
      fresh.forEach((job, i) => {
        const promise = batch.then((outcomes) => {
          const o = outcomes[i];
          if (o.ok) return o.result;
          throw o.error;
        });
        this.running.set(job.job, promise);
        promise.finally(() => this.running.delete(job.job)).catch(() => undefined);
      });
    }
    return jobs.map((j) => this.running.get(j.job)!);
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
  private async executeAll(jobs: readonly EmbedJob[], signal?: AbortSignal): Promise<WorkerOutcome[]> {
    const outcomes: Array<WorkerOutcome | undefined> = [];
    for (const job of jobs) {
      // A job whose record cannot be marked running does not run (nor is it recorded as ended).
      const begun = await this.begin(job).then(
        () => undefined,
        (err: Error): WorkerOutcome => ({ ok: false, error: err }),
      );
      // Inline, a job runs as soon as it is marked; a worker process is handed them all at once.
      if (begun || this.opts.mode === "process") outcomes.push(begun);
      else outcomes.push(await this.end(job, await this.runInline(job, signal)));
    }
    if (this.opts.mode !== "process") return outcomes as WorkerOutcome[];
    const runnable = jobs.filter((_, i) => !outcomes[i]);
    const ran = runnable.length
      ? await this.runWorker(runnable).catch((err: Error) =>
          runnable.map((): WorkerOutcome => ({ ok: false, error: err })),
        )
      : [];
    const ended: WorkerOutcome[] = [];
    for (const [i, job] of jobs.entries()) {
      const begun = outcomes[i];
      ended.push(begun ?? (await this.end(job, ran[runnable.indexOf(job)])));
    }
    return ended;
  }

  private async begin(job: EmbedJob): Promise<void> {
    const now = new Date().toISOString();
    await updateJob(this.store, job.job, (j) =>
      j.state === "succeeded"
        ? {}
        : { state: "running", runner: this.name, startedAt: j.startedAt ?? now, error: undefined },
    );
  }

  private async runInline(job: EmbedJob, signal?: AbortSignal): Promise<WorkerOutcome> {
    try {
      const embedder = await this.opts.embedderFor(job.backbone);
      const result = await runEmbedShards(this.store, job, embedder, {
        onProgress: this.opts.onProgress,
        signal,
        leaseTtlMs: this.opts.leaseTtlMs,
      });
      return { ok: true, result };
    } catch (err) {
      return { ok: false, error: err as Error };
    }
  }

  /** Records how the job's run ended, then tells `onFinished`; the outcome is passed on. */
  private async end(job: EmbedJob, outcome: WorkerOutcome): Promise<WorkerOutcome> {
    if (outcome.ok) {
      try {
        if (await allCommitted(this.store, job)) {
          await updateJob(this.store, job.job, (j) =>
            j.state === "succeeded"
              ? {}
              : { state: "succeeded", error: undefined, finishedAt: new Date().toISOString() },
          );
        }
      } catch (err) {
        outcome = { ok: false, error: err as Error };
      }
    }
    if (!outcome.ok) await this.recordFailure(job, outcome.error).catch(() => undefined);
    await this.finished(job.job);
    return outcome;
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
   * level is configured), so the result never depends on the log level. A worker of several jobs
   * prints `{jobs, failed}` (see `BatchGroupResult`) and exits non-zero when any failed.
   */
  private runWorker(jobs: readonly EmbedJob[]): Promise<WorkerOutcome[]> {
    const ids = jobs.map((j) => j.job);
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", BATCH_ENTRY], {
        cwd: PACKAGE_ROOT,
        env: { ...this.opts.workerEnv, HEADSTART_STORE: this.store.url, HEADSTART_JOB: ids.join(",") },
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
        const reason = stderrTail.trim().split("\n").pop() || "no output";
        const exited = new HeadstartError(
          "internal",
          `worker for job ${ids.join(", ")} exited with ${code}: ${reason}`,
        );
        resolve(workerOutcomes(ids, stdout.trim().split("\n").pop() ?? "", code, exited));
      });
    });
  }
}

/**
 * Each job's outcome from the worker's last stdout line: one job's RunShardsResult (exit 0), or
 * a group's `{jobs, failed}`. A job the line does not account for failed with `exited`.
 */
export function workerOutcomes(
  ids: readonly string[],
  lastLine: string,
  code: number | null,
  exited: Error,
): WorkerOutcome[] {
  let parsed: unknown;
  try {
    parsed = lastLine ? JSON.parse(lastLine) : undefined;
  } catch {
    parsed = undefined;
  }
  if (ids.length === 1) {
    const result = parsed as RunShardsResult | undefined;
    return [code === 0 && result?.job === ids[0] ? { ok: true, result } : { ok: false, error: exited }];
  }
  const group = BatchGroupResult.safeParse(parsed);
  return ids.map((id): WorkerOutcome => {
    const result = group.data?.jobs.find((r) => r.job === id);
    if (result) return { ok: true, result: result as unknown as RunShardsResult };
    const failed = group.data?.failed.find((f) => f.job === id);
    if (!failed) return { ok: false, error: exited };
    return {
      ok: false,
      error: new HeadstartError("internal", `worker for job ${id} failed: ${failed.error}`),
    };
  });
}

async function allCommitted(store: ObjectStore, job: EmbedJob): Promise<boolean> {
  for (const shard of job.shards) {
    if (!(await isCommitted(store, job.backbone, job.dataset, shard))) return false;
  }
  return true;
}
