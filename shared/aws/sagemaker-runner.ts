/**
 * Runs embedding jobs as SageMaker Processing jobs: one job per headstart job (per attempt),
 * its container running the same batch entry point as the local worker. Every instance is handed
 * its share of the job's stored shard plans (`ShardedByS3Key` over an explicit manifest of
 * exactly this job's `_plan-NNNNN.json` objects) and writes shards straight to the store.
 *
 * Idempotence: the processing job's name is derived from the headstart job id (itself derived
 * from dataset version and backbone), so a second S3 event for the same upload asks SageMaker
 * for a job that already exists, which answers `ResourceInUse`: that is "already started".
 * SageMaker never reuses a name, so a job that failed is retried under `<job>-r2`, `<job>-r3`…
 */
import type {
  CreateProcessingJobCommandInput,
  DescribeProcessingJobCommandOutput,
  ProcessingJobStatus,
  SageMakerClient,
} from "@aws-sdk/client-sagemaker";
import { z } from "zod";
import type { Config, SageMakerSettings } from "../config.ts";
import { SAGEMAKER_PLANS_DIR } from "../embed/batch.ts";
import { type EmbedJob, type JobState, readJob, updateJob } from "../embed/job.ts";
import { ConflictError, HeadstartError, NotFoundError, ValidationError } from "../errors.ts";
import type { JobRunner } from "../jobs/runner.ts";
import { isValidName, keys, parseKey } from "../layout.ts";
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";

/**
 * The container's command, relative to the image's working directory (the Dockerfile's `WORKDIR`):
 * the bundle `npm run build` makes of the local worker's entry point (`BATCH_ENTRY`).
 */
export const EMBED_CONTAINER_ENTRYPOINT = [
  "node",
  "--enable-source-maps",
  "dist/functions/embed-batch/index.mjs",
];

/** Input channel name of the plans in the processing job. */
export const PLANS_INPUT_NAME = "plans";

/** Instance families with local NVMe storage, for which SageMaker rejects `VolumeKmsKeyId`. */
const INSTANCE_STORAGE_FAMILIES = new Set([
  "c5d",
  "m5d",
  "r5d",
  "c6id",
  "m6id",
  "r6id",
  "c7gd",
  "m7gd",
  "r7gd",
  "g4dn",
  "g5",
  "g6",
  "g6e",
  "gr6",
  "p3dn",
  "p4d",
  "p4de",
  "p5",
  "p5e",
  "p5en",
  "trn1",
  "trn1n",
]);

export function hasInstanceStorage(instanceType: string): boolean {
  return INSTANCE_STORAGE_FAMILIES.has(instanceType.split(".")[1] ?? "");
}

/** SageMaker processing job names: 1-63 of `[a-zA-Z0-9-]`, starting with a letter or digit. */
const SAGEMAKER_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const MAX_ATTEMPTS = 20;

/** The processing job name of a headstart job's `attempt` (1-based): the job id, then `<id>-rN`. */
export function processingJobName(job: string, attempt = 1): string {
  if (!Number.isInteger(attempt) || attempt < 1) {
    throw new ValidationError(`attempt must be a positive integer, got ${attempt}`, { field: "attempt" });
  }
  const name = attempt === 1 ? job : `${job}-r${attempt}`;
  if (!SAGEMAKER_NAME.test(name)) {
    throw new ValidationError(
      `job id ${JSON.stringify(job)} does not make a SageMaker job name (≤ 63 of [a-zA-Z0-9-]): ${name}`,
      { field: "job" },
    );
  }
  return name;
}

/** The inverse of `processingJobName`; undefined for names headstart did not make. */
export function parseProcessingJobName(name: string): { job: string; attempt: number } | undefined {
  const m = /^(.+)-r(\d{1,3})$/.exec(name);
  const parsed = m && Number(m[2]) >= 2 ? { job: m[1], attempt: Number(m[2]) } : { job: name, attempt: 1 };
  return isValidName(parsed.job) ? parsed : undefined;
}

/** `s3://bucket[/prefix]` of an S3-backed store, split. */
export function s3Location(storeUrl: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(storeUrl);
  if (!m) {
    throw new ValidationError(`the SageMaker runner needs an s3:// store, got ${storeUrl}`, {
      field: "store",
    });
  }
  return { bucket: m[1], prefix: m[2].replace(/\/+$/, "") };
}

function s3Uri(storeUrl: string, key: string): string {
  const { bucket, prefix } = s3Location(storeUrl);
  return `s3://${bucket}/${prefix ? `${prefix}/` : ""}${key}`;
}

/** SageMaker's manifest format: a prefix object, then object keys relative to it. */
export function planManifest(storeUrl: string, job: EmbedJob): unknown[] {
  const prefix = keys.cachePrefix(job.backbone, job.dataset);
  return [
    { prefix: s3Uri(storeUrl, prefix) },
    ...job.shards.map((s) => keys.shardPlan(job.backbone, job.dataset, s).slice(prefix.length)),
  ];
}

export interface RequestContext {
  storeUrl: string;
  region?: string;
  logLevel?: string;
}

/** The CreateProcessingJob request for one attempt of `job` (pure: the request-shape tests use it). */
export function createProcessingJobRequest(
  job: EmbedJob,
  name: string,
  settings: SageMakerSettings,
  ctx: RequestContext,
): CreateProcessingJobCommandInput {
  const environment: Record<string, string> = {
    HEADSTART_STORE: ctx.storeUrl,
    HEADSTART_JOB: job.job,
  };
  if (ctx.region) environment.AWS_REGION = ctx.region;
  if (ctx.logLevel) environment.HEADSTART_LOG_LEVEL = ctx.logLevel;
  return {
    ProcessingJobName: name,
    RoleArn: settings.roleArn,
    AppSpecification: { ImageUri: settings.imageUri, ContainerEntrypoint: [...EMBED_CONTAINER_ENTRYPOINT] },
    ProcessingResources: {
      ClusterConfig: {
        InstanceType: settings.instanceType as never,
        InstanceCount: settings.instanceCount,
        VolumeSizeInGB: settings.volumeSizeGb,
        // SageMaker refuses a volume key for instance types with local NVMe storage (encrypted
        // by the hardware); for the others the customer key encrypts the attached volume.
        ...(settings.kmsKeyId && !hasInstanceStorage(settings.instanceType)
          ? { VolumeKmsKeyId: settings.kmsKeyId }
          : {}),
      },
    },
    StoppingCondition: { MaxRuntimeInSeconds: settings.maxRuntimeSeconds },
    Environment: environment,
    ProcessingInputs: [
      {
        InputName: PLANS_INPUT_NAME,
        S3Input: {
          S3Uri: s3Uri(ctx.storeUrl, keys.jobPlanManifest(job.job)),
          S3DataType: "ManifestFile",
          LocalPath: SAGEMAKER_PLANS_DIR,
          S3InputMode: "File",
          S3DataDistributionType: settings.instanceCount > 1 ? "ShardedByS3Key" : "FullyReplicated",
          S3CompressionType: "None",
        },
      },
    ],
    Tags: [
      { Key: "headstart:job", Value: job.job },
      { Key: "headstart:dataset", Value: job.dataset },
      { Key: "headstart:backbone", Value: job.backbone },
      ...(settings.customer ? [{ Key: "headstart:customer", Value: settings.customer }] : []),
    ],
  };
}

/** SageMaker's error names (the SDK's exception `name`) → the platform's error types. */
export function mapSageMakerError(err: unknown, what: string): Error {
  if (err instanceof HeadstartError) return err;
  const e = err as { name?: string; message?: string; $retryable?: unknown };
  const name = e?.name ?? "Error";
  const message = `SageMaker ${what}: ${name}: ${e?.message ?? String(err)}`;
  switch (name) {
    case "ResourceNotFound":
      return Object.assign(new NotFoundError(what, { field: "job" }), { cause: err });
    case "ValidationException":
      // SageMaker answers Describe/Stop of an unknown job with a ValidationException on some APIs.
      if (/could not find|not found|does not exist/i.test(e.message ?? "")) {
        return Object.assign(new NotFoundError(what, { field: "job" }), { cause: err });
      }
      return new ValidationError(message, { field: "sagemaker", cause: err });
    case "ResourceInUse":
      return new HeadstartError("conflict", message, { field: "job", cause: err });
    default:
      // Throttling, ResourceLimitExceeded, 5xx, network: internal, which entry points treat as
      // retryable (the ingest Lambda rethrows, so the event is redriven and finally dead-lettered).
      return new HeadstartError("internal", message, {
        cause: err,
        details: { sagemakerError: name, retryable: true },
      });
  }
}

function isAlreadyExists(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  if (e?.name === "ResourceInUse") return true;
  // Some SageMaker Create* APIs report a taken name as a ValidationException.
  return e?.name === "ValidationException" && /already exists|must be unique/i.test(e.message ?? "");
}

export interface ProcessingJobInfo {
  job: string;
  name: string;
  status: ProcessingJobStatus;
  failureReason?: string;
  exitMessage?: string;
  createdAt?: string;
  startedAt?: string;
  finishedAt?: string;
}

const iso = (d: Date | undefined) => (d ? d.toISOString() : undefined);

function info(job: string, out: DescribeProcessingJobCommandOutput): ProcessingJobInfo {
  return {
    job,
    name: out.ProcessingJobName!,
    status: out.ProcessingJobStatus!,
    ...(out.FailureReason ? { failureReason: out.FailureReason } : {}),
    ...(out.ExitMessage ? { exitMessage: out.ExitMessage } : {}),
    ...(out.CreationTime ? { createdAt: iso(out.CreationTime) } : {}),
    ...(out.ProcessingStartTime ? { startedAt: iso(out.ProcessingStartTime) } : {}),
    ...(out.ProcessingEndTime ? { finishedAt: iso(out.ProcessingEndTime) } : {}),
  };
}

export interface SageMakerJobRunnerOptions {
  /** Region of the SageMaker API (and the job's AWS_REGION); the SDK default chain when unset. */
  region?: string;
  /** The job container's HEADSTART_LOG_LEVEL. */
  logLevel?: string;
  /** A ready client (a mock in tests); otherwise one is created from the settings. */
  client?: SageMakerClient;
  log?: Logger;
}

/**
 * The SageMaker SDK (≈ 420 KB of bundled code) is loaded on the first call, not at init: the API
 * and ingest functions construct this runner on every cold start but submit jobs rarely.
 */
const sagemakerSdk = () => import("@aws-sdk/client-sagemaker");

export class SageMakerJobRunner implements JobRunner {
  readonly name = "sagemaker";
  private clientPromise?: Promise<SageMakerClient>;

  constructor(
    private readonly store: ObjectStore,
    private readonly settings: SageMakerSettings,
    private readonly opts: SageMakerJobRunnerOptions = {},
  ) {
    s3Location(store.url); // fail at construction, not at the first upload
  }

  private client(): Promise<SageMakerClient> {
    this.clientPromise ??= this.opts.client
      ? Promise.resolve(this.opts.client)
      : sagemakerSdk().then(
          ({ SageMakerClient }) =>
            new SageMakerClient({
              ...(this.opts.region ? { region: this.opts.region } : {}),
              ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
            }),
        );
    return this.clientPromise;
  }

  /** From the platform's configuration (`config.sagemaker` must be set: HEADSTART_RUNNER=sagemaker). */
  static fromConfig(store: ObjectStore, config: Config, log?: Logger): SageMakerJobRunner {
    if (!config.sagemaker) {
      throw new ValidationError("SageMaker settings are missing (set HEADSTART_RUNNER=sagemaker)", {
        field: "HEADSTART_RUNNER",
      });
    }
    return new SageMakerJobRunner(store, config.sagemaker, {
      region: config.region,
      logLevel: config.logLevel,
      log,
    });
  }

  /**
   * Starts the job's processing job, or finds the one already started for it. Resolves with the
   * job as recorded: `running` on `sagemaker` with `externalId` = the processing job's name.
   */
  async submit(job: EmbedJob): Promise<EmbedJob> {
    if (job.state === "succeeded" || job.shards.length === 0) return job;
    const manifestKey = keys.jobPlanManifest(job.job);
    // Deterministic content: every plan of the job (committed shards are skipped by the workers).
    await this.store.put(manifestKey, JSON.stringify(planManifest(this.store.url, job)), {
      contentType: "application/json",
    });

    let attempt = this.firstAttempt(job);
    for (; attempt <= MAX_ATTEMPTS; attempt++) {
      const name = processingJobName(job.job, attempt);
      const request = createProcessingJobRequest(job, name, this.settings, {
        storeUrl: this.store.url,
        region: this.opts.region,
        logLevel: this.opts.logLevel,
      });
      try {
        const { CreateProcessingJobCommand } = await sagemakerSdk();
        await (await this.client()).send(new CreateProcessingJobCommand(request));
        this.opts.log?.info("processing job created", { job: job.job, processingJob: name });
        return await this.markRunning(job.job, name);
      } catch (err) {
        if (!isAlreadyExists(err)) throw mapSageMakerError(err, `CreateProcessingJob ${name}`);
      }
      // The name is taken: by this job's own earlier submit (a duplicate event) or a failed attempt.
      const existing = await this.describeName(job.job, name);
      const current = (await readJob(this.store, job.job))?.value ?? job;
      const retryable =
        existing.status === "Failed" ||
        existing.status === "Stopped" ||
        (existing.status === "Completed" && current.state === "failed" && current.externalId === name);
      if (!retryable) {
        this.opts.log?.info("processing job already started", {
          job: job.job,
          processingJob: name,
          status: existing.status,
        });
        if (current.state === "succeeded" || current.state === "failed") return current;
        return await this.markRunning(job.job, name);
      }
    }
    throw new ConflictError(`job ${job.job} has used all ${MAX_ATTEMPTS} SageMaker attempts`, {
      field: "job",
    });
  }

  /** The processing job of the job's latest attempt. */
  async describe(job: EmbedJob | string): Promise<ProcessingJobInfo> {
    const current = await this.current(job);
    return this.describeName(current.job, current.externalId ?? processingJobName(current.job));
  }

  /** Asks SageMaker to stop the job's processing job; its state change event records the outcome. */
  async stop(job: EmbedJob | string): Promise<ProcessingJobInfo> {
    const current = await this.current(job);
    const name = current.externalId ?? processingJobName(current.job);
    try {
      const { StopProcessingJobCommand } = await sagemakerSdk();
      await (await this.client()).send(new StopProcessingJobCommand({ ProcessingJobName: name }));
    } catch (err) {
      throw mapSageMakerError(err, `StopProcessingJob ${name}`);
    }
    return this.describeName(current.job, name);
  }

  private async describeName(job: string, name: string): Promise<ProcessingJobInfo> {
    try {
      const { DescribeProcessingJobCommand } = await sagemakerSdk();
      const out = await (await this.client()).send(
        new DescribeProcessingJobCommand({ ProcessingJobName: name }),
      );
      return info(job, out);
    } catch (err) {
      throw mapSageMakerError(err, `processing job ${name}`);
    }
  }

  private async current(job: EmbedJob | string): Promise<EmbedJob> {
    const id = typeof job === "string" ? job : job.job;
    const found = await readJob(this.store, id);
    if (!found) throw new NotFoundError(`job ${id}`, { field: "job" });
    return found.value;
  }

  /** Where to start: the recorded attempt, or the next one when that attempt failed. */
  private firstAttempt(job: EmbedJob): number {
    const recorded = job.externalId ? parseProcessingJobName(job.externalId) : undefined;
    if (!recorded || recorded.job !== job.job) return 1;
    return job.state === "failed" ? recorded.attempt + 1 : recorded.attempt;
  }

  private markRunning(job: string, name: string): Promise<EmbedJob> {
    const now = new Date().toISOString();
    return updateJob(this.store, job, (cur) => {
      // The completion event of this very attempt may have been handled already.
      if (cur.externalId === name && (cur.state === "succeeded" || cur.state === "failed")) return {};
      return {
        state: "running",
        runner: this.name,
        externalId: name,
        startedAt: cur.startedAt ?? now,
        error: undefined,
        finishedAt: undefined,
      };
    });
  }
}

/**
 * EventBridge's "SageMaker Processing Job State Change" event: `detail` is the processing job as
 * DescribeProcessingJob returns it (times as epoch milliseconds).
 */
export const ProcessingJobStateChange = z.object({
  source: z.literal("aws.sagemaker"),
  "detail-type": z.literal("SageMaker Processing Job State Change"),
  detail: z.object({
    ProcessingJobName: z.string().min(1),
    ProcessingJobStatus: z.enum(["InProgress", "Completed", "Failed", "Stopping", "Stopped"]),
    FailureReason: z.string().optional(),
    ExitMessage: z.string().optional(),
    Environment: z.record(z.string(), z.string()).optional(),
  }),
});
export type ProcessingJobStateChange = z.infer<typeof ProcessingJobStateChange>;

export interface JobStateChangeResult {
  outcome: "updated" | "unchanged" | "ignored";
  processingJob?: string;
  status?: string;
  job?: string;
  state?: JobState;
  error?: string;
  /** Shards of a Completed job that have no commit marker (the job is then failed). */
  missingShards?: number[];
  /** Why an event was ignored. */
  reason?: string;
}

/** Shards of `job` without a commit marker, from one listing of the cache prefix. */
export async function uncommittedShards(store: ObjectStore, job: EmbedJob): Promise<number[]> {
  const committed = new Set<number>();
  for (const o of await store.list(keys.cachePrefix(job.backbone, job.dataset))) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "shardCommit") committed.add(parsed.shard);
  }
  return job.shards.filter((s) => !committed.has(s));
}

/**
 * Records a processing job's state change in `jobs/<job>.json`: Completed → succeeded once every
 * shard of the job is committed (else failed, naming the missing shards); Failed/Stopped →
 * failed with SageMaker's FailureReason. Idempotent (EventBridge delivers at least once); events
 * of other stores, of jobs headstart did not start and of superseded attempts are ignored.
 */
export async function applyProcessingJobStateChange(
  store: ObjectStore,
  event: unknown,
  log?: Logger,
): Promise<JobStateChangeResult> {
  const parsed = ProcessingJobStateChange.safeParse(event);
  if (!parsed.success) {
    return { outcome: "ignored", reason: "not a SageMaker Processing Job State Change event" };
  }
  const d = parsed.data.detail;
  const name = d.ProcessingJobName;
  const base = { processingJob: name, status: d.ProcessingJobStatus };
  const matched = await jobOfEvent(store, d, base);
  if ("outcome" in matched) return matched;
  const { jobId, job: cur } = matched;
  const target = await targetState(store, d, cur);
  if (!target) return { ...base, job: jobId, outcome: "unchanged", state: cur.state };
  if (cur.state === target.state && cur.externalId === name && cur.error === target.error) {
    return { ...base, job: jobId, outcome: "unchanged", ...target };
  }
  const terminal = target.state === "succeeded" || target.state === "failed";
  const now = new Date().toISOString();
  await updateJob(store, jobId, (j) => ({
    state: target.state,
    runner: "sagemaker",
    externalId: name,
    error: target.error,
    startedAt: j.startedAt ?? now,
    ...(terminal ? { finishedAt: now } : {}),
  }));
  log?.[target.state === "failed" ? "warn" : "info"]("embedding job state recorded", {
    job: jobId,
    processingJob: name,
    ...target,
  });
  return { ...base, job: jobId, outcome: "updated", ...target };
}

type JobStateChangeDetail = ProcessingJobStateChange["detail"];

/**
 * The headstart job the event is about, or the result that ignores it: another store's job, no
 * headstart job, an unknown job, or a retry attempt older than the one the job records.
 */
async function jobOfEvent(
  store: ObjectStore,
  d: JobStateChangeDetail,
  base: { processingJob: string; status: JobStateChangeDetail["ProcessingJobStatus"] },
): Promise<JobStateChangeResult | { jobId: string; job: EmbedJob }> {
  const env = d.Environment ?? {};
  if (env.HEADSTART_STORE !== undefined && env.HEADSTART_STORE !== store.url) {
    return { ...base, outcome: "ignored", reason: `job of another store (${env.HEADSTART_STORE})` };
  }
  const fromName = parseProcessingJobName(d.ProcessingJobName);
  const jobId = env.HEADSTART_JOB ?? fromName?.job;
  if (!jobId || !isValidName(jobId)) {
    return { ...base, outcome: "ignored", reason: "not a headstart job" };
  }
  const found = await readJob(store, jobId);
  if (!found) return { ...base, job: jobId, outcome: "ignored", reason: `job ${jobId} not found` };
  const recorded = found.value.externalId ? parseProcessingJobName(found.value.externalId) : undefined;
  const attempt = fromName?.job === jobId ? fromName.attempt : 1;
  if (recorded && recorded.job === jobId && recorded.attempt > attempt) {
    return { ...base, job: jobId, outcome: "ignored", reason: `superseded by ${found.value.externalId}` };
  }
  return { jobId, job: found.value };
}

/** The state the event moves the job to, or undefined when it moves nothing. */
async function targetState(
  store: ObjectStore,
  d: JobStateChangeDetail,
  job: EmbedJob,
): Promise<{ state: JobState; error?: string; missingShards?: number[] } | undefined> {
  const name = d.ProcessingJobName;
  switch (d.ProcessingJobStatus) {
    case "InProgress":
      return job.state === "planned" ? { state: "running" } : undefined;
    case "Completed": {
      const missing = await uncommittedShards(store, job);
      return missing.length
        ? {
            state: "failed",
            error: `SageMaker processing job ${name} completed, but shards ${missing.join(", ")} are not committed`,
            missingShards: missing,
          }
        : { state: "succeeded" };
    }
    case "Failed":
      return {
        state: "failed",
        error: `SageMaker processing job ${name} failed: ${d.FailureReason ?? d.ExitMessage ?? "no reason given"}`,
      };
    case "Stopped":
      return {
        state: "failed",
        error: `SageMaker processing job ${name} was stopped${d.FailureReason ? `: ${d.FailureReason}` : ""}`,
      };
    case "Stopping":
      return undefined;
  }
}
