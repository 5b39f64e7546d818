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
 *
 * Groups (`submitAll`): several jobs of one dataset (one per backbone) run as ONE processing job
 * named `<stem>-g<hash of the sorted ids>` (`groupProcessingJobBase`), with every member's plan
 * manifest as an input of its own and `HEADSTART_JOB` = the ids joined by commas. Each member
 * records the group's name as its `externalId`; its state change event updates every member.
 */
import { createHash } from "node:crypto";
import type {
  CreateProcessingJobCommandInput,
  DescribeProcessingJobCommandOutput,
  ProcessingInput,
  ProcessingJobStatus,
  SageMakerClient,
} from "@aws-sdk/client-sagemaker";
import { z } from "zod";
import type { Config, SageMakerSettings } from "../config.ts";
import { jobPlansDir, SAGEMAKER_PLANS_DIR } from "../embed/batch.ts";
import { type EmbedJob, type JobState, readJob, updateJob } from "../embed/job.ts";
import { ConflictError, HeadstartError, NotFoundError, ValidationError } from "../errors.ts";
import { type JobRunner, jobsToRun } from "../jobs/runner.ts";
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

/** SageMaker takes at most 10 ProcessingInputs, one per member of a group. */
export const MAX_GROUP_JOBS = 10;
/** SageMaker's limit on an Environment value; `HEADSTART_JOB` holds a group's ids. */
const MAX_ENV_VALUE = 256;
/** A group's base name ends in `-g` and 15 hex digits; a job id (`embedJobId`) in 16 hex digits. */
const GROUP_BASE = /-g[0-9a-f]{15}$/;

/**
 * The processing job base name of a group of jobs: the members' common stem — `embed-<customer>--`
 * and the dataset's slug, the prefix the stack's IAM policies and event rules scope by — then
 * `-g` and a hash of the sorted ids, so one group always gets one name (its `-rN` retries
 * follow as for a job), and never a job's.
 */
export function groupProcessingJobBase(jobIds: readonly string[]): string {
  const stems = new Set(jobIds.map((id) => id.replace(/-[0-9a-f]{16}$/, "")));
  if (jobIds.length < 2 || stems.size !== 1) {
    throw new ValidationError(
      `a group needs 2 or more jobs of one dataset and customer (ids sharing their stem), got ${jobIds.join(", ")}`,
      { field: "jobs" },
    );
  }
  const hash = createHash("sha256")
    .update([...jobIds].sort().join("\n"))
    .digest("hex")
    .slice(0, 15);
  const base = `${[...stems][0]}-g${hash}`;
  processingJobName(base, MAX_ATTEMPTS); // its last retry's name must be valid too
  return base;
}

export function isGroupProcessingJobBase(base: string): boolean {
  return GROUP_BASE.test(base);
}

/**
 * `jobs` cut into groups SageMaker takes: at most `MAX_GROUP_JOBS` members whose comma-joined
 * ids fit one Environment value. Usually one group; a run of one job is submitted alone.
 */
export function packGroups(jobs: readonly EmbedJob[]): EmbedJob[][] {
  const groups: EmbedJob[][] = [];
  let current: EmbedJob[] = [];
  for (const job of jobs) {
    const ids = [...current, job].map((j) => j.job).join(",");
    if (current.length > 0 && (current.length >= MAX_GROUP_JOBS || ids.length > MAX_ENV_VALUE)) {
      groups.push(current);
      current = [];
    }
    current.push(job);
  }
  if (current.length > 0) groups.push(current);
  return groups;
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
  return processingJobRequest(name, settings, ctx, {
    jobs: job.job,
    inputs: [planInput(job, PLANS_INPUT_NAME, SAGEMAKER_PLANS_DIR, settings, ctx)],
    tags: [
      { Key: "headstart:job", Value: job.job },
      { Key: "headstart:dataset", Value: job.dataset },
      { Key: "headstart:backbone", Value: job.backbone },
    ],
  });
}

/**
 * The CreateProcessingJob request for one attempt of a group of jobs: `HEADSTART_JOB` = their
 * ids joined by commas, and each member's plan manifest as input `plans-<n>` delivered to
 * `<plans>/<job>` (SageMaker wants a local path per input; the batch entry looks there).
 */
export function createGroupProcessingJobRequest(
  jobs: readonly EmbedJob[],
  name: string,
  settings: SageMakerSettings,
  ctx: RequestContext,
): CreateProcessingJobCommandInput {
  const base = parseProcessingJobName(name)?.job ?? name;
  return processingJobRequest(name, settings, ctx, {
    jobs: jobs.map((j) => j.job).join(","),
    inputs: jobs.map((j, i) =>
      planInput(
        j,
        `${PLANS_INPUT_NAME}-${i + 1}`,
        jobPlansDir(SAGEMAKER_PLANS_DIR, j.job, true),
        settings,
        ctx,
      ),
    ),
    tags: [
      { Key: "headstart:group", Value: base },
      { Key: "headstart:dataset", Value: jobs[0].dataset },
      // Informational (tag values hold at most 256 characters); the ids are in HEADSTART_JOB.
      {
        Key: "headstart:backbones",
        Value: jobs
          .map((j) => j.backbone)
          .join(" ")
          .slice(0, 256),
      },
    ],
  });
}

/** One job's plan manifest as a processing input (split across instances when there are several). */
function planInput(
  job: EmbedJob,
  inputName: string,
  localPath: string,
  settings: SageMakerSettings,
  ctx: RequestContext,
): ProcessingInput {
  return {
    InputName: inputName,
    S3Input: {
      S3Uri: s3Uri(ctx.storeUrl, keys.jobPlanManifest(job.job)),
      S3DataType: "ManifestFile",
      LocalPath: localPath,
      S3InputMode: "File",
      S3DataDistributionType: settings.instanceCount > 1 ? "ShardedByS3Key" : "FullyReplicated",
      S3CompressionType: "None",
    },
  };
}

function processingJobRequest(
  name: string,
  settings: SageMakerSettings,
  ctx: RequestContext,
  parts: { jobs: string; inputs: ProcessingInput[]; tags: Array<{ Key: string; Value: string }> },
): CreateProcessingJobCommandInput {
  const environment: Record<string, string> = {
    HEADSTART_STORE: ctx.storeUrl,
    HEADSTART_JOB: parts.jobs,
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
    ProcessingInputs: parts.inputs,
    Tags: [
      ...parts.tags,
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

/**
 * Where to start `base`'s attempts: the latest attempt any member records, or the next one where
 * that attempt failed for it.
 */
function firstAttempt(members: readonly EmbedJob[], base: string): number {
  let attempt = 1;
  for (const job of members) {
    const recorded = job.externalId ? parseProcessingJobName(job.externalId) : undefined;
    if (!recorded || recorded.job !== base) continue;
    attempt = Math.max(attempt, job.state === "failed" ? recorded.attempt + 1 : recorded.attempt);
  }
  return attempt;
}

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
    if (await this.runsInGroup(job)) return job;
    await this.putPlanManifest(job);
    const [recorded] = await this.startAttempt([job], job.job, (name) =>
      createProcessingJobRequest(job, name, this.settings, this.requestContext()),
    );
    return recorded;
  }

  /**
   * Starts the jobs as one processing job (a group; see the header), or finds the one already
   * started for them; resolves with each job as recorded, in the given order. Jobs `succeeded`
   * or without shards are left out; a lone remaining job is `submit`ted. Jobs that do not fit
   * one processing job (`packGroups`) go to as few as they fit in.
   */
  async submitAll(jobs: readonly EmbedJob[]): Promise<EmbedJob[]> {
    // From the records, not the caller's copies: a member that succeeded since stays out, and
    // one recorded under the group's attempt resumes from it.
    const recorded = new Map<string, EmbedJob>();
    for (const job of jobsToRun(jobs)) {
      recorded.set(job.job, (await readJob(this.store, job.job))?.value ?? job);
    }
    for (const group of packGroups(jobsToRun([...recorded.values()]))) {
      const started = group.length === 1 ? [await this.submit(group[0])] : await this.submitGroup(group);
      for (const j of started) recorded.set(j.job, j);
    }
    return jobs.map((j) => recorded.get(j.job) ?? j);
  }

  private async submitGroup(jobs: readonly EmbedJob[]): Promise<EmbedJob[]> {
    const datasets = new Set(jobs.map((j) => j.dataset));
    if (datasets.size !== 1) {
      throw new ValidationError(`a group's jobs must embed one dataset, got ${[...datasets].join(", ")}`, {
        field: "jobs",
      });
    }
    const base = groupProcessingJobBase(jobs.map((j) => j.job));
    for (const job of jobs) await this.putPlanManifest(job);
    return this.startAttempt(jobs, base, (name) =>
      createGroupProcessingJobRequest(jobs, name, this.settings, this.requestContext()),
    );
  }

  /**
   * Whether the job is running in a group's processing job that is still going: its own name
   * would start a second one (a group member submitted alone, by a duplicate event).
   */
  private async runsInGroup(job: EmbedJob): Promise<boolean> {
    const recorded = job.externalId ? parseProcessingJobName(job.externalId) : undefined;
    if (job.state !== "running" || !recorded || !isGroupProcessingJobBase(recorded.job)) return false;
    const { status } = await this.describeName(job.job, job.externalId!);
    return status === "InProgress" || status === "Stopping";
  }

  /** Deterministic content: every plan of the job (committed shards are skipped by the workers). */
  private async putPlanManifest(job: EmbedJob): Promise<void> {
    await this.store.put(keys.jobPlanManifest(job.job), JSON.stringify(planManifest(this.store.url, job)), {
      contentType: "application/json",
    });
  }

  private requestContext(): RequestContext {
    return { storeUrl: this.store.url, region: this.opts.region, logLevel: this.opts.logLevel };
  }

  /**
   * Creates the processing job of the first attempt of `base` not known to have failed, for one
   * job or a group; a taken name is this submission's own (a duplicate event) unless that attempt
   * failed or was stopped, or completed leaving a member failed: then the next attempt.
   */
  private async startAttempt(
    members: readonly EmbedJob[],
    base: string,
    request: (name: string) => CreateProcessingJobCommandInput,
  ): Promise<EmbedJob[]> {
    const ids = members.map((j) => j.job).join(",");
    for (let attempt = firstAttempt(members, base); attempt <= MAX_ATTEMPTS; attempt++) {
      const name = processingJobName(base, attempt);
      if (await this.create(request(name))) {
        this.opts.log?.info("processing job created", { job: ids, processingJob: name });
        return this.markAllRunning(members, name);
      }
      const existing = await this.describeName(members[0].job, name);
      const current = await Promise.all(
        members.map(async (j) => (await readJob(this.store, j.job))?.value ?? j),
      );
      const retryable =
        existing.status === "Failed" ||
        existing.status === "Stopped" ||
        (existing.status === "Completed" &&
          current.some((c) => c.state === "failed" && c.externalId === name));
      if (!retryable) {
        this.opts.log?.info("processing job already started", {
          job: ids,
          processingJob: name,
          status: existing.status,
        });
        return this.markAllRunning(current, name, true);
      }
    }
    throw new ConflictError(`job ${ids} has used all ${MAX_ATTEMPTS} SageMaker attempts`, { field: "job" });
  }

  /** Creates the processing job; false when its name is taken (SageMaker never reuses one). */
  private async create(request: CreateProcessingJobCommandInput): Promise<boolean> {
    try {
      const { CreateProcessingJobCommand } = await sagemakerSdk();
      await (await this.client()).send(new CreateProcessingJobCommand(request));
      return true;
    } catch (err) {
      if (isAlreadyExists(err)) return false;
      throw mapSageMakerError(err, `CreateProcessingJob ${request.ProcessingJobName}`);
    }
  }

  /** Marks each job running under `name` (`ended`: a job that already ended is left as it is). */
  private async markAllRunning(jobs: readonly EmbedJob[], name: string, ended = false): Promise<EmbedJob[]> {
    const recorded: EmbedJob[] = [];
    for (const job of jobs) {
      const done = job.state === "succeeded" || job.state === "failed";
      recorded.push(ended && done ? job : await this.markRunning(job.job, name));
    }
    return recorded;
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

  private markRunning(job: string, name: string): Promise<EmbedJob> {
    const now = new Date().toISOString();
    return updateJob(this.store, job, (cur) => {
      // The completion event of this very attempt may have been handled already; and
      // `succeeded` is never undone (a group member submitted again with a stale record).
      if (cur.state === "succeeded" || (cur.externalId === name && cur.state === "failed")) return {};
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

/** What a state change event did to one job (of a group's, each member's). */
export interface MemberStateChange {
  job: string;
  outcome: "updated" | "unchanged" | "ignored";
  state?: JobState;
  error?: string;
  /** Shards of the job that have no commit marker when its processing job completed (then failed). */
  missingShards?: number[];
  /** Why the event was ignored for this job. */
  reason?: string;
}

/**
 * What a state change event did. For a single job's processing job the job's fields stand at the
 * top, as they always have; for a group's, `outcome` sums the members' (`updated` if any was)
 * and `job`/`state` are unset. `jobs` lists every job the event named, member by member.
 */
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
  /** Each job the event is about (one, or a group's members), in `HEADSTART_JOB`'s order. */
  jobs?: MemberStateChange[];
}

/** The jobs a state change result ended (succeeded or failed, replays included): to announce, to continue. */
export function endedJobs(result: JobStateChangeResult): string[] {
  return (result.jobs ?? [])
    .filter((m) => m.outcome !== "ignored" && (m.state === "succeeded" || m.state === "failed"))
    .map((m) => m.job);
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
 *
 * A group's event is applied to every member on its own: each succeeds only once all ITS shards
 * are committed — also when the processing job failed or stopped, since a member's finished work
 * must not wait on another backbone's failure — and one whose record names a later attempt or
 * another processing job (it was submitted again since) is left alone.
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
  const base = { processingJob: d.ProcessingJobName, status: d.ProcessingJobStatus };
  const named = jobsOfEvent(store, d);
  if ("reason" in named) return { ...base, outcome: "ignored", reason: named.reason };
  const jobs: MemberStateChange[] = [];
  for (const id of named.ids) jobs.push(await applyToJob(store, d, id, named.ids.length > 1, log));
  if (named.ids.length === 1) return { ...base, ...jobs[0], jobs };
  const outcome = jobs.some((j) => j.outcome === "updated")
    ? "updated"
    : jobs.some((j) => j.outcome === "unchanged")
      ? "unchanged"
      : "ignored";
  const reason = outcome === "ignored" ? jobs.map((j) => `${j.job}: ${j.reason}`).join("; ") : undefined;
  return { ...base, outcome, ...(reason ? { reason } : {}), jobs };
}

type JobStateChangeDetail = ProcessingJobStateChange["detail"];

/** The headstart jobs the event is about, or why it is about none: another store's, not headstart's. */
function jobsOfEvent(store: ObjectStore, d: JobStateChangeDetail): { ids: string[] } | { reason: string } {
  const env = d.Environment ?? {};
  if (env.HEADSTART_STORE !== undefined && env.HEADSTART_STORE !== store.url) {
    return { reason: `job of another store (${env.HEADSTART_STORE})` };
  }
  const ids = env.HEADSTART_JOB?.split(",") ?? [parseProcessingJobName(d.ProcessingJobName)?.job];
  if (!ids.every((id): id is string => id !== undefined && isValidName(id))) {
    return { reason: "not a headstart job" };
  }
  return { ids };
}

/** The event's effect on one job (see `applyProcessingJobStateChange`). */
async function applyToJob(
  store: ObjectStore,
  d: JobStateChangeDetail,
  jobId: string,
  group: boolean,
  log?: Logger,
): Promise<MemberStateChange> {
  const name = d.ProcessingJobName;
  const found = await readJob(store, jobId);
  if (!found) return { job: jobId, outcome: "ignored", reason: `job ${jobId} not found` };
  const cur = found.value;
  const newer = supersededBy(cur, name);
  if (newer) return { job: jobId, outcome: "ignored", reason: `superseded by ${newer}` };
  const target = await memberTarget(store, d, cur, group);
  if (!target) return { job: jobId, outcome: "unchanged", state: cur.state };
  if (cur.state === target.state && cur.externalId === name && cur.error === target.error) {
    return { job: jobId, outcome: "unchanged", ...target };
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
  return { job: jobId, outcome: "updated", ...target };
}

/**
 * The processing job the job's record names instead of the event's, when that one supersedes it:
 * a later attempt of the same job or group, or — where a group is involved on either side —
 * another processing job (the job was submitted again, alone or in another group, since).
 */
function supersededBy(job: EmbedJob, eventName: string): string | undefined {
  const recorded = job.externalId ? parseProcessingJobName(job.externalId) : undefined;
  if (!recorded) return undefined;
  const fromName = parseProcessingJobName(eventName);
  const eventBase = fromName && isGroupProcessingJobBase(fromName.job) ? fromName.job : job.job;
  const attempt = fromName?.job === eventBase ? fromName.attempt : 1;
  if (recorded.job !== eventBase) {
    return isGroupProcessingJobBase(recorded.job) || eventBase !== job.job ? job.externalId : undefined;
  }
  return recorded.attempt > attempt ? job.externalId : undefined;
}

/** `targetState`, where a group member whose shards are all committed succeeds whatever the status. */
async function memberTarget(
  store: ObjectStore,
  d: JobStateChangeDetail,
  job: EmbedJob,
  group: boolean,
): Promise<{ state: JobState; error?: string; missingShards?: number[] } | undefined> {
  const target = await targetState(store, d, job);
  if (!group || target?.state !== "failed" || d.ProcessingJobStatus === "Completed") return target;
  return (await uncommittedShards(store, job)).length === 0 ? { state: "succeeded" } : target;
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
