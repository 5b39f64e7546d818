/**
 * Where batch jobs run. The local runner embeds in this process (one job at a time, so a
 * laptop's cores are not oversubscribed); the SageMaker runner hands the same job to a GPU
 * processing job. Both run `runEmbedShards` over the stored plan.
 */
import type { Embedder } from "../backbone/spec.ts";
import { type EmbedProgress, type RunShardsResult, runEmbedShards } from "../embed/run.ts";
import type { ObjectStore } from "../store/types.ts";
import { type EmbedJob, updateJob } from "./job.ts";

export interface JobRunner {
  readonly name: string;
  /** Starts the job; resolves once it is accepted (not when it finishes). */
  submit(job: EmbedJob): Promise<EmbedJob>;
}

export interface LocalJobRunnerOptions {
  embedderFor: (backbone: string) => Promise<Embedder>;
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
    await updateJob(this.store, job.job, (j) => ({ state: "running", runner: this.name, startedAt: j.startedAt ?? now, error: undefined }));
    try {
      const embedder = await this.opts.embedderFor(job.backbone);
      const result = await runEmbedShards(this.store, job, embedder, { onProgress: this.opts.onProgress, signal });
      await updateJob(this.store, job.job, () => ({ state: "succeeded", finishedAt: new Date().toISOString() }));
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
}
