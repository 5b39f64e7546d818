/**
 * A local stand-in of SageMaker's control plane for Processing jobs, for a real SageMakerClient
 * (`endpoint` override). It speaks awsJson1_1 (`POST /`, `X-Amz-Target: SageMaker.<Operation>`,
 * `application/x-amz-json-1.1`, errors as `{"__type": "ResourceInUse", "message": …}` with 400)
 * and implements CreateProcessingJob, DescribeProcessingJob and StopProcessingJob.
 *
 * A created job really runs: for each of its InstanceCount instances the stand-in downloads the
 * instance's share of every S3 input (a `ManifestFile`'s listed objects or an `S3Prefix`'s,
 * split across instances when `ShardedByS3Key`) from the S3 server into a temp dir that mirrors
 * `/opt/ml/processing/...`, then runs the request's ContainerEntrypoint (`node` → this Node) in
 * the package root, as the image's WORKDIR, with the request's Environment only, plus
 * HEADSTART_PLANS_DIR pointing at the mirrored plans folder and the test S3 server's endpoint and
 * credentials. Status goes InProgress → Completed (every instance exited 0) or Failed (the first
 * failing instance's last stderr line as FailureReason), or Stopped; each change can be delivered
 * as an EventBridge "SageMaker Processing Job State Change" event.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { PACKAGE_ROOT } from "../../shared/config.ts";
import { SAGEMAKER_PLANS_DIR } from "../../shared/embed/batch.ts";
import type { S3Server } from "./s3-server.ts";

export type StandinStatus = "InProgress" | "Completed" | "Failed" | "Stopping" | "Stopped";

interface S3InputSpec {
  S3Uri: string;
  LocalPath?: string;
  S3DataType: "ManifestFile" | "S3Prefix";
  S3InputMode?: string;
  S3DataDistributionType?: "FullyReplicated" | "ShardedByS3Key";
  S3CompressionType?: string;
}

/** The CreateProcessingJob request as received (the fields the stand-in uses, plus the rest). */
export interface CreateRequest {
  ProcessingJobName: string;
  RoleArn: string;
  AppSpecification: { ImageUri: string; ContainerEntrypoint?: string[]; ContainerArguments?: string[] };
  ProcessingResources: {
    ClusterConfig: {
      InstanceCount: number;
      InstanceType: string;
      VolumeSizeInGB: number;
      VolumeKmsKeyId?: string;
    };
  };
  StoppingCondition?: { MaxRuntimeInSeconds: number };
  Environment?: Record<string, string>;
  ProcessingInputs?: Array<{ InputName: string; S3Input?: S3InputSpec }>;
  Tags?: Array<{ Key: string; Value: string }>;
  [k: string]: unknown;
}

export interface InstanceRun {
  host: string;
  /** The objects this instance was handed, per input name (keys relative to the input's prefix). */
  inputs: Record<string, string[]>;
  exitCode?: number | null;
  stdout: string;
  stderr: string;
}

export interface StandinJob {
  request: CreateRequest;
  arn: string;
  status: StandinStatus;
  failureReason?: string;
  exitMessage?: string;
  createdAt: Date;
  startedAt?: Date;
  endedAt?: Date;
  lastModifiedAt: Date;
  instances: InstanceRun[];
  /** Resolves when the job reaches Completed, Failed or Stopped. */
  done: Promise<StandinJob>;
}

export interface ProcessingJobStateChangeEvent {
  version: "0";
  id: string;
  "detail-type": "SageMaker Processing Job State Change";
  source: "aws.sagemaker";
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown> & { ProcessingJobName: string; ProcessingJobStatus: StandinStatus };
}

export interface SageMakerStandinOptions {
  /** Reads the jobs' S3 inputs (a client of the test S3 server). */
  s3: S3Client;
  /** Added to every instance's environment: the test S3 server's endpoint and credentials. */
  containerEnv?: Record<string, string>;
  region?: string;
  account?: string;
  /** Each state change as EventBridge would deliver it (InProgress, then the final state). */
  onEvent?: (event: ProcessingJobStateChangeEvent) => void | Promise<void>;
  /** Echo the instances' stderr (their structured logs) to this process's stderr. */
  echo?: boolean;
}

export interface SageMakerStandin {
  /** e.g. `http://127.0.0.1:41234`: a SageMakerClient's `endpoint`. */
  endpoint: string;
  jobs: Map<string, StandinJob>;
  /** Every request received: operation and body, in order. */
  requests: Array<{ operation: string; body: Record<string, unknown> }>;
  stop(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;
const TERMINAL: StandinStatus[] = ["Completed", "Failed", "Stopped"];

function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) throw new ApiError("ValidationException", `invalid S3 URI ${uri}`);
  return { bucket: m[1], key: m[2] };
}

/** The last structured ERROR log line's message and error, else the last line of stderr. */
function lastError(stderr: string): string {
  const lines = stderr.trim().split("\n");
  for (const line of [...lines].reverse()) {
    try {
      const entry = JSON.parse(line) as { level?: string; message?: string; error?: string };
      if (entry.level === "ERROR") return [entry.message, entry.error].filter(Boolean).join(": ");
    } catch {
      // not a log line
    }
  }
  return lines.pop() ?? "";
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = "";
  req.setEncoding("utf8");
  for await (const chunk of req) body += chunk;
  return body;
}

export async function startSageMakerStandin(opts: SageMakerStandinOptions): Promise<SageMakerStandin> {
  const region = opts.region ?? "us-east-1";
  const account = opts.account ?? "123456789012";
  const root = await mkdtemp(join(tmpdir(), "headstart-sagemaker-"));
  const jobs = new Map<string, StandinJob>();
  const requests: SageMakerStandin["requests"] = [];
  const children = new Map<string, ChildProcess[]>();
  const pendingEvents: Array<Promise<unknown>> = [];
  let eventSeq = 0;

  const describe = (job: StandinJob) => ({
    ...job.request,
    ProcessingJobArn: job.arn,
    ProcessingJobStatus: job.status,
    ...(job.failureReason ? { FailureReason: job.failureReason } : {}),
    ...(job.exitMessage ? { ExitMessage: job.exitMessage } : {}),
    Tags: undefined,
  });

  const emit = (job: StandinJob) => {
    if (!opts.onEvent) return;
    const ms = (d?: Date) => d?.getTime();
    const detail = {
      ...describe(job),
      CreationTime: ms(job.createdAt),
      ProcessingStartTime: ms(job.startedAt),
      ProcessingEndTime: ms(job.endedAt),
      LastModifiedTime: ms(job.lastModifiedAt),
      Tags: Object.fromEntries((job.request.Tags ?? []).map((t) => [t.Key, t.Value])),
    };
    const event: ProcessingJobStateChangeEvent = {
      version: "0",
      id: `standin-${++eventSeq}`,
      "detail-type": "SageMaker Processing Job State Change",
      source: "aws.sagemaker",
      account,
      time: new Date().toISOString(),
      region,
      resources: [job.arn],
      detail: JSON.parse(JSON.stringify(detail)),
    };
    pendingEvents.push(Promise.resolve(opts.onEvent(event)).catch(() => undefined));
  };

  const setStatus = (job: StandinJob, status: StandinStatus, reason?: string) => {
    if (TERMINAL.includes(job.status)) return;
    job.status = status;
    job.lastModifiedAt = new Date();
    if (TERMINAL.includes(status)) job.endedAt = job.lastModifiedAt;
    if (reason) job.failureReason = reason;
    emit(job);
  };

  /** The objects one input delivers (keys relative to its prefix), in S3 key order. */
  async function inputObjects(
    input: S3InputSpec,
  ): Promise<{ bucket: string; prefix: string; rel: string[] }> {
    const { bucket, key } = parseS3Uri(input.S3Uri);
    if (input.S3DataType === "ManifestFile") {
      const obj = await opts.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const manifest = JSON.parse(await obj.Body!.transformToString()) as [{ prefix: string }, ...string[]];
      const prefix = parseS3Uri(manifest[0].prefix);
      return { bucket: prefix.bucket, prefix: prefix.key, rel: (manifest.slice(1) as string[]).sort() };
    }
    const rel: string[] = [];
    let token: string | undefined;
    do {
      const res = await opts.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: key, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) rel.push(o.Key!.slice(key.length).replace(/^\//, ""));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    const prefix = key && !key.endsWith("/") ? `${key}/` : key;
    return { bucket, prefix, rel: rel.sort() };
  }

  async function runJob(job: StandinJob): Promise<void> {
    const req = job.request;
    const count = req.ProcessingResources.ClusterConfig.InstanceCount;
    const dir = join(root, req.ProcessingJobName);
    job.instances = Array.from({ length: count }, (_, i) => ({
      host: `algo-${i + 1}`,
      inputs: {},
      stdout: "",
      stderr: "",
    }));
    // Download every instance's share of every input ("ClientError" is how SageMaker reports these).
    try {
      for (const input of req.ProcessingInputs ?? []) {
        if (!input.S3Input) continue;
        const s3in = input.S3Input;
        const { bucket, prefix, rel } = await inputObjects(s3in);
        const sharded = s3in.S3DataDistributionType === "ShardedByS3Key";
        for (const [i, inst] of job.instances.entries()) {
          const mine = sharded ? rel.filter((_, j) => j % count === i) : rel;
          inst.inputs[input.InputName] = mine;
          const localDir = join(
            dir,
            inst.host,
            s3in.LocalPath ?? `/opt/ml/processing/input/${input.InputName}`,
          );
          await mkdir(localDir, { recursive: true });
          for (const r of mine) {
            const obj = await opts.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${r}` }));
            const target = join(localDir, r);
            await mkdir(dirname(target), { recursive: true });
            await writeFile(target, await obj.Body!.transformToByteArray());
          }
        }
      }
    } catch (err) {
      setStatus(job, "Failed", `ClientError: failed to download input data: ${(err as Error).message}`);
      return;
    }
    if (job.status === "Stopping") return setStatus(job, "Stopped"); // stopped while downloading

    const [command, ...args] = [
      ...(req.AppSpecification.ContainerEntrypoint ?? []),
      ...(req.AppSpecification.ContainerArguments ?? []),
    ];
    const procs = job.instances.map((inst) => {
      const home = join(dir, inst.host);
      const child = spawn(command === "node" ? process.execPath : command, args, {
        cwd: PACKAGE_ROOT,
        env: {
          // A container sees only its image's and the job's environment.
          PATH: process.env.PATH,
          HOME: home,
          HEADSTART_MODELS_DIR: join(home, "tmp", "models"),
          HEADSTART_SCRATCH_DIR: join(home, "tmp"),
          ...req.Environment,
          ...opts.containerEnv,
          HEADSTART_PLANS_DIR: join(home, SAGEMAKER_PLANS_DIR),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stdout!.setEncoding("utf8");
      child.stdout!.on("data", (c: string) => {
        inst.stdout += c;
      });
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (c: string) => {
        inst.stderr += c;
        if (opts.echo) process.stderr.write(c);
      });
      const exited = new Promise<void>((resolve) => {
        child.on("error", (err) => {
          inst.stderr += `${err.message}\n`;
          inst.exitCode = -1;
          resolve();
        });
        child.on("close", (code) => {
          inst.exitCode = code;
          resolve();
        });
      });
      return { child, exited };
    });
    // Kept for StopProcessingJob.
    children.set(
      req.ProcessingJobName,
      procs.map((p) => p.child),
    );
    await Promise.all(procs.map((p) => p.exited));
    children.delete(req.ProcessingJobName);
    if ((job.status as StandinStatus) === "Stopping") return setStatus(job, "Stopped");
    const failed = job.instances.find((i) => i.exitCode !== 0);
    if (failed) {
      const last = lastError(failed.stderr);
      job.exitMessage = last.slice(0, 1024);
      setStatus(
        job,
        "Failed",
        `AlgorithmError: ${failed.host} exited with ${failed.exitCode}: ${last}`.slice(0, 1024),
      );
    } else {
      setStatus(job, "Completed");
    }
  }

  const handlers: Record<string, (body: Record<string, unknown>) => unknown> = {
    CreateProcessingJob(body) {
      const req = body as unknown as CreateRequest;
      const name = req.ProcessingJobName;
      if (typeof name !== "string" || !NAME.test(name)) {
        throw new ApiError(
          "ValidationException",
          `1 validation error detected: Value '${name}' at 'processingJobName'`,
        );
      }
      if (!req.RoleArn || !req.AppSpecification?.ImageUri) {
        throw new ApiError("ValidationException", "RoleArn and AppSpecification.ImageUri are required");
      }
      const count = req.ProcessingResources?.ClusterConfig?.InstanceCount;
      if (!Number.isInteger(count) || count < 1) {
        throw new ApiError(
          "ValidationException",
          "ProcessingResources.ClusterConfig.InstanceCount must be ≥ 1",
        );
      }
      // SageMaker's documented rule: no volume key for instance types with local storage.
      const cluster = req.ProcessingResources?.ClusterConfig;
      if (
        cluster?.VolumeKmsKeyId &&
        /^ml\.(g4dn|g5|g6|g6e|p3dn|p4d|p5|c5d|m5d|r5d)\./.test(cluster.InstanceType)
      ) {
        throw new ApiError(
          "ValidationException",
          "You can't request a VolumeKmsKeyId when using an instance type with local storage.",
        );
      }
      if (jobs.has(name)) {
        throw new ApiError(
          "ResourceInUse",
          `Processing job names must be unique within an AWS account and region, and a processing job with this name already exists (${name})`,
        );
      }
      const now = new Date();
      const job: StandinJob = {
        request: req,
        arn: `arn:aws:sagemaker:${region}:${account}:processing-job/${name.toLowerCase()}`,
        status: "InProgress",
        createdAt: now,
        startedAt: now,
        lastModifiedAt: now,
        instances: [],
        done: Promise.resolve(undefined as never),
      };
      let finish: (j: StandinJob) => void = () => undefined;
      job.done = new Promise((resolve) => {
        finish = resolve;
      });
      jobs.set(name, job);
      emit(job);
      setImmediate(() => {
        runJob(job)
          .catch((err) => setStatus(job, "Failed", `InternalServerError: ${(err as Error).message}`))
          .finally(async () => {
            await Promise.all(pendingEvents);
            finish(job);
          });
      });
      return { ProcessingJobArn: job.arn };
    },
    DescribeProcessingJob(body) {
      const job = jobs.get(String(body.ProcessingJobName));
      if (!job)
        throw new ApiError("ResourceNotFound", `Processing job ${body.ProcessingJobName} does not exist.`);
      const s = (d?: Date) => (d ? d.getTime() / 1000 : undefined);
      return {
        ...describe(job),
        CreationTime: s(job.createdAt),
        ProcessingStartTime: s(job.startedAt),
        ProcessingEndTime: s(job.endedAt),
        LastModifiedTime: s(job.lastModifiedAt),
      };
    },
    StopProcessingJob(body) {
      const name = String(body.ProcessingJobName);
      const job = jobs.get(name);
      if (!job) throw new ApiError("ResourceNotFound", `Processing job ${name} does not exist.`);
      if (job.status !== "InProgress") {
        throw new ApiError(
          "ValidationException",
          `The request was rejected because the processing job is in status ${job.status}.`,
        );
      }
      job.status = "Stopping";
      job.lastModifiedAt = new Date();
      for (const c of children.get(name) ?? []) c.kill("SIGTERM");
      return {};
    },
  };

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, {
      "content-type": "application/x-amz-json-1.1",
      "x-amzn-requestid": `req-${Date.now()}`,
    });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer((req, res) => {
    readBody(req)
      .then((text) => {
        const target = String(req.headers["x-amz-target"] ?? "");
        const operation = target.startsWith("SageMaker.") ? target.slice("SageMaker.".length) : "";
        const handler = req.method === "POST" && req.url === "/" ? handlers[operation] : undefined;
        if (!handler)
          throw new ApiError("UnknownOperationException", `unsupported operation ${target || req.url}`);
        const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        requests.push({ operation, body });
        send(res, 200, handler(body));
      })
      .catch((err) => {
        if (err instanceof ApiError) return send(res, 400, { __type: err.type, message: err.message });
        send(res, 500, { __type: "InternalFailure", message: (err as Error).message });
      });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));

  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    jobs,
    requests,
    async stop() {
      for (const list of children.values()) for (const c of list) c.kill("SIGKILL");
      await new Promise((r) => server.close(r));
      await Promise.allSettled([...jobs.values()].map((j) => j.done));
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** The stand-in over a test S3 server: its containers reach that server with its credentials. */
export function startStandinOn(
  s3: S3Server,
  onEvent: SageMakerStandinOptions["onEvent"],
): Promise<SageMakerStandin> {
  return startSageMakerStandin({
    s3: s3.client,
    region: s3.region,
    containerEnv: {
      HEADSTART_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    },
    onEvent,
  });
}
