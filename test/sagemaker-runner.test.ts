/**
 * SageMakerJobRunner's requests and error paths against a mocked SageMaker API
 * (aws-sdk-client-mock), over a real filesystem store that calls itself `s3://…` (the runner
 * only needs the store's URL to name S3 locations), and the job-state-change handling with the
 * sample EventBridge events from events/.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import {
  CreateProcessingJobCommand,
  DescribeProcessingJobCommand,
  ResourceInUse,
  ResourceLimitExceeded,
  ResourceNotFound,
  SageMakerClient,
  StopProcessingJobCommand,
} from "@aws-sdk/client-sagemaker";
import { mockClient } from "aws-sdk-client-mock";
import {
  applyProcessingJobStateChange,
  EMBED_CONTAINER_ENTRYPOINT,
  endedJobs,
  groupProcessingJobBase,
  hasInstanceStorage,
  isGroupProcessingJobBase,
  MAX_GROUP_JOBS,
  packGroups,
  parseProcessingJobName,
  processingJobName,
  SageMakerJobRunner,
} from "../shared/aws/sagemaker-runner.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import { bootstrap } from "../shared/bootstrap.ts";
import type { SageMakerSettings } from "../shared/config.ts";
import { type EmbedJob, readJob, updateJob } from "../shared/embed/job.ts";
import { planEmbedJob } from "../shared/embed/plan.ts";
import { runEmbedShards } from "../shared/embed/run.ts";
import { HeadstartError, isUserError, NotFoundError, ValidationError } from "../shared/errors.ts";
import { WebhookRegistry } from "../shared/events/registrations.ts";
import { keys } from "../shared/layout.ts";
import type { ObjectStore, PutOptions } from "../shared/store/types.ts";
import { loadEvent } from "./helpers/events.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

const STORE_URL = "s3://acme-data/customer-a";
const SETTINGS: SageMakerSettings = {
  roleArn: "arn:aws:iam::123456789012:role/headstart-acme-embed-job",
  imageUri: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/headstart-embed:latest",
  instanceType: "ml.p3.2xlarge",
  instanceCount: 2,
  maxRuntimeSeconds: 7200,
  volumeSizeGb: 50,
  kmsKeyId: "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
};

/** A real store under another name: what the runner sees of an S3Store is its URL. */
/** The job-complete Lambda handler on `ctx`'s store: it reads its environment at import, as in Lambda. */
async function jobCompleteHandler(ctx: { store: { root: string }; dir: string }) {
  const saved = { ...process.env };
  Object.assign(process.env, {
    HEADSTART_STORE: ctx.store.root,
    HEADSTART_DEFAULT_BACKBONE: "tiny-text",
    HEADSTART_MODELS_DIR: join(ctx.dir, "models"),
    HEADSTART_LOG_LEVEL: "silent",
  });
  const { handler } = await import("../functions/job-complete/handler.ts");
  for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
  Object.assign(process.env, saved);
  return handler;
}

function namedStore(inner: ObjectStore, url: string): ObjectStore {
  return {
    url,
    get: (k: string) => inner.get(k),
    head: (k: string) => inner.head(k),
    put: (k: string, b: Uint8Array | string, o?: PutOptions) => inner.put(k, b, o),
    list: (p: string) => inner.list(p),
    delete: (k: string) => inner.delete(k),
    localPath: (k: string) => inner.localPath(k),
    localFile: (k: string) => inner.localFile(k),
  };
}

const sdkError = (name: string, message: string) =>
  Object.assign(new Error(message), { name, $fault: "client", $metadata: { httpStatusCode: 400 } });

const described = (name: string, status: string, extra: Record<string, unknown> = {}) => ({
  ProcessingJobName: name,
  ProcessingJobArn: `arn:aws:sagemaker:eu-west-1:123456789012:processing-job/${name}`,
  ProcessingJobStatus: status as "InProgress",
  CreationTime: new Date("2026-11-28T12:00:00Z"),
  ...extra,
});

describe("SageMakerJobRunner", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let store: ObjectStore;
  const sm = mockClient(SageMakerClient);
  let dataset = 0;

  /** A freshly planned job of 4 shards (a new dataset each time, so jobs never collide). */
  async function plannedJob(rows = 40): Promise<EmbedJob> {
    const name = `reviews-${++dataset}`;
    await ctx.platform.putManifest(name, "jsonl", toJsonlText(tinySentimentRows(rows, { seed: dataset })));
    return ctx.platform.planEmbed(name, { shardSize: 10 });
  }

  const runner = (settings: Partial<SageMakerSettings> = {}) =>
    new SageMakerJobRunner(
      store,
      { ...SETTINGS, ...settings },
      { region: "eu-west-1", logLevel: "info", client: new SageMakerClient({ region: "eu-west-1" }) },
    );

  before(async () => {
    ctx = await tinyPlatform();
    store = namedStore(ctx.store, STORE_URL);
  });
  after(async () => {
    sm.restore();
    await ctx.cleanup();
  });
  beforeEach(() => sm.reset());

  test("job names: the job id, then -r2, -r3 for retries; parsed back; SageMaker's limits enforced", () => {
    const id = "embed-reviews-0123456789abcdef";
    assert.equal(processingJobName(id), id);
    assert.equal(processingJobName(id, 3), `${id}-r3`);
    assert.deepEqual(parseProcessingJobName(id), { job: id, attempt: 1 });
    assert.deepEqual(parseProcessingJobName(`${id}-r3`), { job: id, attempt: 3 });
    assert.equal(parseProcessingJobName("Some-Other-Job"), undefined);
    assert.throws(() => processingJobName(`embed-${"a".repeat(50)}-0123456789abcdef`), ValidationError);
    assert.throws(() => processingJobName("embed_x.y"), ValidationError);
    assert.throws(() => processingJobName(id, 0), ValidationError);
  });

  test("submit: CreateProcessingJob with the job's resources, environment and sharded plan manifest", async () => {
    const job = await plannedJob();
    assert.deepEqual(job.shards, [0, 1, 2, 3]);
    sm.on(CreateProcessingJobCommand).resolves({ ProcessingJobArn: "arn:…" });

    const submitted = await runner().submit(job);

    const calls = sm.commandCalls(CreateProcessingJobCommand);
    assert.equal(calls.length, 1);
    const req = calls[0].args[0].input;
    assert.equal(req.ProcessingJobName, job.job);
    assert.ok(req.ProcessingJobName!.length <= 63 && /^[a-zA-Z0-9-]+$/.test(req.ProcessingJobName!));
    assert.equal(req.RoleArn, SETTINGS.roleArn);
    assert.deepEqual(req.AppSpecification, {
      ImageUri: SETTINGS.imageUri,
      ContainerEntrypoint: ["node", "--enable-source-maps", "dist/functions/embed-batch/index.mjs"],
    });
    assert.deepEqual(EMBED_CONTAINER_ENTRYPOINT, req.AppSpecification?.ContainerEntrypoint);
    assert.deepEqual(req.ProcessingResources, {
      ClusterConfig: {
        InstanceType: "ml.p3.2xlarge",
        InstanceCount: 2,
        VolumeSizeInGB: 50,
        VolumeKmsKeyId: SETTINGS.kmsKeyId,
      },
    });
    assert.deepEqual(req.StoppingCondition, { MaxRuntimeInSeconds: 7200 });
    assert.deepEqual(req.Environment, {
      HEADSTART_STORE: STORE_URL,
      HEADSTART_JOB: job.job,
      AWS_REGION: "eu-west-1",
      HEADSTART_LOG_LEVEL: "info",
    });
    assert.deepEqual(req.ProcessingInputs, [
      {
        InputName: "plans",
        S3Input: {
          S3Uri: `${STORE_URL}/jobs/${job.job}/plans.manifest.json`,
          S3DataType: "ManifestFile",
          LocalPath: "/opt/ml/processing/input/plans",
          S3InputMode: "File",
          S3DataDistributionType: "ShardedByS3Key",
          S3CompressionType: "None",
        },
      },
    ]);
    assert.deepEqual(
      req.Tags?.map((t) => [t.Key, t.Value]),
      [
        ["headstart:job", job.job],
        ["headstart:dataset", job.dataset],
        ["headstart:backbone", "tiny-text"],
      ],
    );

    // The manifest lists exactly this job's plan objects, relative to the cache prefix.
    const manifest = JSON.parse(
      new TextDecoder().decode((await store.get(keys.jobPlanManifest(job.job)))!.body),
    );
    assert.deepEqual(manifest, [
      { prefix: `${STORE_URL}/cache/tiny-text/${job.dataset}/` },
      "_plan-00000.json",
      "_plan-00001.json",
      "_plan-00002.json",
      "_plan-00003.json",
    ]);
    for (const rel of (manifest as string[]).slice(1)) {
      assert.ok(await store.head(`${keys.cachePrefix("tiny-text", job.dataset)}${rel}`), rel);
    }

    assert.equal(submitted.state, "running");
    assert.equal(submitted.runner, "sagemaker");
    assert.equal(submitted.externalId, job.job);
    const stored = (await readJob(store, job.job))!.value;
    assert.deepEqual(
      [stored.state, stored.runner, stored.externalId, typeof stored.startedAt],
      ["running", "sagemaker", job.job, "string"],
    );
  });

  test("one instance: FullyReplicated input; no KMS key, no VolumeKmsKeyId", async () => {
    const job = await plannedJob();
    sm.on(CreateProcessingJobCommand).resolves({});
    await runner({ instanceCount: 1, kmsKeyId: undefined }).submit(job);
    const req = sm.commandCalls(CreateProcessingJobCommand)[0].args[0].input;
    assert.equal(req.ProcessingInputs?.[0].S3Input?.S3DataDistributionType, "FullyReplicated");
    assert.deepEqual(req.ProcessingResources?.ClusterConfig, {
      InstanceType: "ml.p3.2xlarge",
      InstanceCount: 1,
      VolumeSizeInGB: 50,
    });
  });

  test("a customer's jobs carry its headstart:customer tag, which the stack's IAM conditions check", async () => {
    const job = await plannedJob();
    sm.reset();
    sm.on(CreateProcessingJobCommand).resolves({});
    await runner({ customer: "acme" }).submit(job);
    const req = sm.commandCalls(CreateProcessingJobCommand)[0].args[0].input;
    assert.deepEqual(
      req.Tags?.find((t) => t.Key === "headstart:customer"),
      { Key: "headstart:customer", Value: "acme" },
    );
  });

  test("instance types with local NVMe storage get no VolumeKmsKeyId (SageMaker refuses it)", async () => {
    const job = await plannedJob();
    sm.reset();
    sm.on(CreateProcessingJobCommand).resolves({});
    await runner({ instanceType: "ml.g5.xlarge" }).submit(job);
    const cluster =
      sm.commandCalls(CreateProcessingJobCommand)[0].args[0].input.ProcessingResources?.ClusterConfig;
    assert.equal(cluster?.InstanceType, "ml.g5.xlarge");
    assert.equal(cluster?.VolumeKmsKeyId, undefined);
    assert.equal(hasInstanceStorage("ml.g4dn.xlarge"), true);
    assert.equal(hasInstanceStorage("ml.p3.2xlarge"), false);
    assert.equal(hasInstanceStorage("ml.m5.large"), false);
  });

  test("duplicate submit (a second S3 event): ResourceInUse means already started, no second job", async () => {
    const job = await plannedJob();
    sm.on(CreateProcessingJobCommand)
      .resolvesOnce({ ProcessingJobArn: "arn:…" })
      .rejects(new ResourceInUse({ message: "Processing job names must be unique", $metadata: {} }));
    sm.on(DescribeProcessingJobCommand).resolves(described(job.job, "InProgress"));
    const r = runner();

    const first = await r.submit(job);
    // Both events planned the same job; the second hands the runner the same (planned) job.
    const second = await r.submit(job);
    const third = await r.submit((await readJob(store, job.job))!.value);

    const names = sm.commandCalls(CreateProcessingJobCommand).map((c) => c.args[0].input.ProcessingJobName);
    assert.deepEqual(names, [job.job, job.job, job.job], "never another name: no second job");
    for (const j of [first, second, third]) {
      assert.deepEqual([j.state, j.runner, j.externalId], ["running", "sagemaker", job.job]);
    }
  });

  test("a taken name reported as ValidationException ('already exists') is also 'already started'", async () => {
    const job = await plannedJob();
    sm.on(CreateProcessingJobCommand).rejects(
      sdkError(
        "ValidationException",
        "Job name must be unique within an AWS account and region, and a job with this name already exists",
      ),
    );
    sm.on(DescribeProcessingJobCommand).resolves(described(job.job, "InProgress"));
    const j = await runner().submit(job);
    assert.equal(j.externalId, job.job);
    assert.equal(sm.commandCalls(CreateProcessingJobCommand).length, 1);
  });

  test("a failed attempt is retried under the next name; a duplicate of that retry starts nothing new", async () => {
    const job = await plannedJob();
    sm.on(CreateProcessingJobCommand, { ProcessingJobName: job.job }).rejects(
      new ResourceInUse({ message: "exists", $metadata: {} }),
    );
    sm.on(DescribeProcessingJobCommand, { ProcessingJobName: job.job }).resolves(
      described(job.job, "Failed", { FailureReason: "AlgorithmError: boom" }),
    );
    sm.on(CreateProcessingJobCommand, { ProcessingJobName: `${job.job}-r2` }).resolves({});
    const retried = await runner().submit(job);
    assert.equal(retried.externalId, `${job.job}-r2`);
    assert.equal(retried.state, "running");

    // The job file now names attempt 2: a duplicate event goes straight to that name.
    sm.reset();
    sm.on(CreateProcessingJobCommand).rejects(new ResourceInUse({ message: "exists", $metadata: {} }));
    sm.on(DescribeProcessingJobCommand).resolves(described(`${job.job}-r2`, "InProgress"));
    const dup = await runner().submit((await readJob(store, job.job))!.value);
    assert.equal(dup.externalId, `${job.job}-r2`);
    assert.deepEqual(
      sm.commandCalls(CreateProcessingJobCommand).map((c) => c.args[0].input.ProcessingJobName),
      [`${job.job}-r2`],
    );

    // Recorded as failed (by the completion handler): the next submit starts attempt 3.
    await updateJob(store, job.job, () => ({ state: "failed", error: "AlgorithmError" }));
    sm.reset();
    sm.on(CreateProcessingJobCommand).resolves({});
    const third = await runner().submit((await readJob(store, job.job))!.value);
    assert.equal(third.externalId, `${job.job}-r3`);
    assert.equal(third.error, undefined);
  });

  test("a succeeded job or one with nothing to embed is not submitted", async () => {
    const job = await plannedJob();
    const done = await runner().submit({ ...job, state: "succeeded" });
    assert.equal(done.state, "succeeded");
    assert.equal(sm.commandCalls(CreateProcessingJobCommand).length, 0);
  });

  test("SDK errors map to the platform's errors; a failed create leaves the job planned", async () => {
    const job = await plannedJob();
    const cases: Array<[Error, (e: unknown) => boolean]> = [
      [
        sdkError("ValidationException", "1 validation error detected: Value 'x' at 'roleArn'"),
        (e) => e instanceof ValidationError && /roleArn/.test((e as Error).message),
      ],
      [
        new ResourceLimitExceeded({ message: "account-level service limit 'ml.g5.2xlarge'", $metadata: {} }),
        (e) =>
          !isUserError(e) &&
          e instanceof HeadstartError &&
          e.code === "internal" &&
          (e.details as { retryable: boolean }).retryable &&
          (e.cause as Error).name === "ResourceLimitExceeded",
      ],
      [
        sdkError("ThrottlingException", "Rate exceeded"),
        (e) =>
          e instanceof HeadstartError && e.code === "internal" && /Rate exceeded/.test((e as Error).message),
      ],
      [new ResourceNotFound({ message: "role not found", $metadata: {} }), (e) => e instanceof NotFoundError],
    ];
    for (const [err, check] of cases) {
      sm.reset();
      sm.on(CreateProcessingJobCommand).rejects(err);
      await assert.rejects(runner().submit(job), check, err.name);
    }
    const stored = (await readJob(store, job.job))!.value;
    assert.equal(stored.state, "planned");
    assert.equal(stored.externalId, undefined);
  });

  test("describe and stop address the recorded processing job", async () => {
    const job = await plannedJob();
    sm.on(CreateProcessingJobCommand).resolves({});
    await runner().submit(job);
    sm.on(DescribeProcessingJobCommand).resolves(
      described(job.job, "Stopping", {
        ProcessingStartTime: new Date("2026-11-28T12:01:00Z"),
        FailureReason: undefined,
      }),
    );
    sm.on(StopProcessingJobCommand).resolves({});
    const info = await runner().describe(job.job);
    assert.deepEqual(info, {
      job: job.job,
      name: job.job,
      status: "Stopping",
      createdAt: "2026-11-28T12:00:00.000Z",
      startedAt: "2026-11-28T12:01:00.000Z",
    });
    await runner().stop(job);
    assert.deepEqual(
      sm.commandCalls(StopProcessingJobCommand).map((c) => c.args[0].input),
      [{ ProcessingJobName: job.job }],
    );

    sm.reset();
    sm.on(DescribeProcessingJobCommand).rejects(
      new ResourceNotFound({ message: "no such job", $metadata: {} }),
    );
    await assert.rejects(runner().describe(job.job), NotFoundError);
    sm.on(StopProcessingJobCommand).rejects(
      sdkError(
        "ValidationException",
        "The request was rejected because the processing job is in status Completed.",
      ),
    );
    await assert.rejects(runner().stop(job.job), ValidationError);
    await assert.rejects(runner().describe("embed-nope-0000000000000000"), NotFoundError);
  });

  test("needs an s3:// store", () => {
    assert.throws(
      () =>
        new SageMakerJobRunner(ctx.store, SETTINGS, { client: new SageMakerClient({ region: "eu-west-1" }) }),
      ValidationError,
    );
  });

  test("bootstrap wires the runner when HEADSTART_RUNNER=sagemaker", () => {
    const env = {
      HEADSTART_STORE: "s3://acme-data/customer-a",
      HEADSTART_RUNNER: "sagemaker",
      HEADSTART_SAGEMAKER_ROLE_ARN: SETTINGS.roleArn,
      HEADSTART_EMBED_IMAGE_URI: SETTINGS.imageUri,
      HEADSTART_SAGEMAKER_ENDPOINT: "http://127.0.0.1:9/",
      AWS_REGION: "eu-west-1",
      HEADSTART_LOG_LEVEL: "silent",
    };
    const { platform } = bootstrap("test", env);
    assert.ok(platform.runner instanceof SageMakerJobRunner);
    assert.equal(platform.runner.name, "sagemaker");
    const local = bootstrap("test", { ...env, HEADSTART_RUNNER: "local" });
    assert.equal(local.platform.runner, local.platform.local);
  });

  describe("job state change events", () => {
    /** The sample event for `job`, on this store. */
    function eventFor(name: string, job: EmbedJob, file = "sagemaker-job-state-change") {
      const e = loadEvent<{ detail: Record<string, unknown> & { Environment: Record<string, string> } }>(
        file,
      );
      e.detail.ProcessingJobName = name;
      e.detail.Environment.HEADSTART_JOB = job.job;
      e.detail.Environment.HEADSTART_STORE = STORE_URL;
      return e;
    }

    test("Completed: succeeded only once every shard is committed, else failed naming the missing ones", async () => {
      const job = await plannedJob();
      sm.on(CreateProcessingJobCommand).resolves({});
      await runner().submit(job);
      const early = await applyProcessingJobStateChange(store, eventFor(job.job, job));
      assert.equal(early.state, "failed");
      assert.deepEqual(early.missingShards, [0, 1, 2, 3]);

      const embedder = await loadEmbedder(store, "tiny-text", ctx.config);
      await runEmbedShards(store, job, embedder, { shards: [0, 2, 3] });
      const partial = await applyProcessingJobStateChange(store, eventFor(job.job, job));
      assert.deepEqual(partial.missingShards, [1]);
      assert.match(String(partial.error), /shards 1 are not committed/);
      assert.equal((await readJob(store, job.job))!.value.state, "failed");

      await runEmbedShards(store, job, embedder, { shards: [1] });
      const done = await applyProcessingJobStateChange(store, eventFor(job.job, job));
      assert.deepEqual([done.outcome, done.state, done.error], ["updated", "succeeded", undefined]);
      const stored = (await readJob(store, job.job))!.value;
      assert.deepEqual(
        [stored.state, stored.error, typeof stored.finishedAt],
        ["succeeded", undefined, "string"],
      );
      // EventBridge delivers at least once: a replay changes nothing.
      const replay = await applyProcessingJobStateChange(store, eventFor(job.job, job));
      assert.equal(replay.outcome, "unchanged");
      assert.equal((await readJob(store, job.job))!.value.updatedAt, stored.updatedAt);
    });

    test("Failed: failed with SageMaker's FailureReason; Stopped: failed as stopped", async () => {
      const job = await plannedJob();
      const failed = await applyProcessingJobStateChange(
        store,
        eventFor(job.job, job, "sagemaker-job-state-change-failed"),
      );
      assert.equal(failed.state, "failed");
      const stored = (await readJob(store, job.job))!.value;
      assert.equal(stored.state, "failed");
      assert.equal(stored.externalId, job.job);
      assert.equal(
        stored.error,
        `SageMaker processing job ${job.job} failed: AlgorithmError: See job logs for more information`,
      );

      const stopped = eventFor(`${job.job}-r2`, job, "sagemaker-job-state-change-failed");
      stopped.detail.ProcessingJobStatus = "Stopped";
      stopped.detail.FailureReason = undefined;
      const r = await applyProcessingJobStateChange(store, stopped);
      assert.equal(r.error, `SageMaker processing job ${job.job}-r2 was stopped`);
      assert.equal((await readJob(store, job.job))!.value.externalId, `${job.job}-r2`);
    });

    test("ignored: other stores' jobs, unknown jobs, superseded attempts, other events", async () => {
      const job = await plannedJob();
      sm.on(CreateProcessingJobCommand).resolves({});
      await updateJob(store, job.job, () => ({ externalId: `${job.job}-r2`, state: "running" }));
      const other = eventFor(job.job, job);
      other.detail.Environment.HEADSTART_STORE = "s3://someone-else";
      const unknown = eventFor("embed-nope-0000000000000000", job);
      unknown.detail.Environment.HEADSTART_JOB = "embed-nope-0000000000000000";
      const cases: Array<[unknown, RegExp]> = [
        [other, /another store/],
        [unknown, /not found/],
        [eventFor(job.job, job, "sagemaker-job-state-change-failed"), /superseded by .*-r2/],
        [loadEvent("s3-manifest-put"), /not a SageMaker/],
        [{}, /not a SageMaker/],
      ];
      for (const [event, reason] of cases) {
        const r = await applyProcessingJobStateChange(store, event);
        assert.equal(r.outcome, "ignored");
        assert.match(String(r.reason), reason);
      }
      assert.equal((await readJob(store, job.job))!.value.state, "running");
      // Without Environment, the job is found from the processing job name.
      const bare = eventFor(`${job.job}-r2`, job, "sagemaker-job-state-change-failed");
      bare.detail.Environment = undefined as never;
      assert.equal((await applyProcessingJobStateChange(store, bare)).state, "failed");
    });

    test("the job-complete Lambda handler records the sample events", async () => {
      const handler = await jobCompleteHandler(ctx);

      // A webhook receiver hears each ended job once, replays included.
      const receiver = await new Receiver().start();
      receiver.secret = (
        await new WebhookRegistry(ctx.store).add(receiver.url, ["dataset.embedded", "dataset.failed"])
      ).secret;

      const job = await plannedJob(15);
      const event = eventFor(job.job, job, "sagemaker-job-state-change-failed");
      event.detail.Environment.HEADSTART_STORE = ctx.store.url;
      const r = await handler(event);
      assert.deepEqual([r.outcome, r.job, r.state], ["updated", job.job, "failed"]);
      assert.match(String((await readJob(ctx.store, job.job))!.value.error), /AlgorithmError/);

      await runEmbedShards(ctx.store, job, await loadEmbedder(ctx.store, "tiny-text", ctx.config));
      const ok = eventFor(job.job, job);
      ok.detail.Environment.HEADSTART_STORE = ctx.store.url;
      assert.equal((await handler(ok)).state, "succeeded");
      assert.equal((await handler(ok)).outcome, "unchanged"); // a replay: the same event, not re-sent
      assert.equal((await handler(loadEvent("sagemaker-job-state-change"))).outcome, "ignored");
      assert.deepEqual(
        [...receiver.events.values()].map((e) => [e.event.type, e.event.data.job]),
        [
          ["dataset.failed", job.job],
          ["dataset.embedded", job.job],
        ],
      );
      assert.equal(receiver.requests.length, 2);
      await receiver.stop();
    });
  });

  describe("groups: several jobs of one dataset as ONE processing job (submitAll)", () => {
    const B = "tiny-text-b";
    before(async () => {
      await writeTinyBackbone(join(ctx.dir, "backbone-b"), B, { salt: "b" });
      await ctx.platform.addBackbone(join(ctx.dir, "backbone-b"));
    });

    /** A fresh dataset planned under tiny-text and tiny-text-b (4 shards each), optionally a customer's. */
    async function plannedPair(customer?: string): Promise<[EmbedJob, EmbedJob]> {
      const name = `films-${++dataset}`;
      await ctx.platform.putManifest(name, "jsonl", toJsonlText(tinySentimentRows(40, { seed: dataset })));
      const plan = async (id: string) =>
        planEmbedJob(ctx.store, name, await ctx.platform.backbone(id), { shardSize: 10, customer });
      return [await plan("tiny-text"), await plan(B)];
    }

    /** The state change event of the group's processing job `name`, as EventBridge sends it. */
    function groupEvent(name: string, jobs: EmbedJob[], status = "Completed", storeUrl = STORE_URL) {
      const e = loadEvent<{ detail: Record<string, unknown> & { Environment: Record<string, string> } }>(
        "sagemaker-job-state-change-failed",
      );
      e.detail.ProcessingJobName = name;
      e.detail.ProcessingJobStatus = status;
      e.detail.Environment.HEADSTART_JOB = jobs.map((j) => j.job).join(",");
      e.detail.Environment.HEADSTART_STORE = storeUrl;
      return e;
    }

    const stored = async (job: EmbedJob) => (await readJob(store, job.job))!.value;
    const commit = async (job: EmbedJob, shards: number[]) =>
      runEmbedShards(store, job, await loadEmbedder(store, job.backbone, ctx.config), { shards });

    test("group names: the members' stem, then -g and a hash of the ids; order-free; refused across datasets", async () => {
      const [a, b] = await plannedPair("acme");
      const base = groupProcessingJobBase([a.job, b.job]);
      assert.equal(groupProcessingJobBase([b.job, a.job]), base);
      assert.equal(base, `${a.job.slice(0, -17)}-g${base.slice(-15)}`);
      assert.match(base, /^embed-acme--films-\d+-g[0-9a-f]{15}$/);
      assert.ok(processingJobName(base, 99).length <= 63);
      assert.equal(isGroupProcessingJobBase(base), true);
      assert.equal(isGroupProcessingJobBase(a.job), false, "a job id is never a group's name");
      assert.deepEqual(parseProcessingJobName(`${base}-r2`), { job: base, attempt: 2 });
      const [other] = await plannedPair("acme");
      for (const ids of [[a.job, other.job], [a.job]]) {
        assert.throws(
          () => groupProcessingJobBase(ids),
          (e) => e instanceof ValidationError && e.field === "jobs",
        );
      }
    });

    test("packGroups: at most 10 members whose comma-joined ids fit SageMaker's 256-character value", async () => {
      const [a] = await plannedPair();
      const many = Array.from({ length: 12 }, (_, i) => ({
        ...a,
        job: `embed-x-${String(i).padStart(16, "0")}`,
      }));
      assert.deepEqual(
        packGroups(many).map((g) => g.length),
        [MAX_GROUP_JOBS, 2],
      );
      const long = Array.from({ length: 5 }, (_, i) => ({
        ...a,
        job: `embed-${"y".repeat(36)}-${String(i).padStart(16, "0")}`,
      }));
      const packed = packGroups(long);
      assert.deepEqual(
        packed.map((g) => g.length),
        [4, 1],
      );
      for (const g of packed) assert.ok(g.map((j) => j.job).join(",").length <= 256);
    });

    test("submitAll: ONE CreateProcessingJob — group name, every id in HEADSTART_JOB, an input per member, tags", async () => {
      const [a, b] = await plannedPair("acme");
      sm.on(CreateProcessingJobCommand).resolves({});
      const submitted = await runner({ customer: "acme" }).submitAll([a, b]);

      const calls = sm.commandCalls(CreateProcessingJobCommand);
      assert.equal(calls.length, 1, "one processing job for the group");
      const req = calls[0].args[0].input;
      const name = groupProcessingJobBase([a.job, b.job]);
      assert.equal(req.ProcessingJobName, name);
      assert.ok(req.ProcessingJobName!.startsWith("embed-acme--"), "the prefix IAM scopes by");
      assert.deepEqual(req.Environment, {
        HEADSTART_STORE: STORE_URL,
        HEADSTART_JOB: `${a.job},${b.job}`,
        AWS_REGION: "eu-west-1",
        HEADSTART_LOG_LEVEL: "info",
      });
      assert.deepEqual(
        req.ProcessingInputs,
        [a, b].map((j, i) => ({
          InputName: `plans-${i + 1}`,
          S3Input: {
            S3Uri: `${STORE_URL}/jobs/${j.job}/plans.manifest.json`,
            S3DataType: "ManifestFile",
            LocalPath: `/opt/ml/processing/input/plans/${j.job}`,
            S3InputMode: "File",
            S3DataDistributionType: "ShardedByS3Key",
            S3CompressionType: "None",
          },
        })),
      );
      assert.deepEqual(
        req.Tags?.map((t) => [t.Key, t.Value]),
        [
          ["headstart:group", name],
          ["headstart:dataset", a.dataset],
          ["headstart:backbones", `tiny-text ${B}`],
          ["headstart:customer", "acme"],
        ],
      );
      for (const j of [a, b]) {
        const manifest = JSON.parse(
          new TextDecoder().decode((await store.get(keys.jobPlanManifest(j.job)))!.body),
        );
        assert.deepEqual(manifest.slice(1), [
          "_plan-00000.json",
          "_plan-00001.json",
          "_plan-00002.json",
          "_plan-00003.json",
        ]);
        assert.equal(manifest[0].prefix, `${STORE_URL}/cache/${j.backbone}/${j.dataset}/`);
      }
      assert.deepEqual(
        submitted.map((j) => [j.job, j.state, j.runner, j.externalId]),
        [
          [a.job, "running", "sagemaker", name],
          [b.job, "running", "sagemaker", name],
        ],
      );
      assert.deepEqual((await stored(b)).externalId, name);
    });

    test("submitAll: one instance gets FullyReplicated inputs; one job left is a plain submit", async () => {
      const [a, b] = await plannedPair();
      sm.on(CreateProcessingJobCommand).resolves({});
      await runner({ instanceCount: 1 }).submitAll([a, b]);
      const group = sm.commandCalls(CreateProcessingJobCommand)[0].args[0].input;
      assert.deepEqual(
        group.ProcessingInputs?.map((i) => i.S3Input?.S3DataDistributionType),
        ["FullyReplicated", "FullyReplicated"],
      );

      const [c, d] = await plannedPair();
      sm.reset();
      sm.on(CreateProcessingJobCommand).resolves({});
      const out = await runner().submitAll([{ ...c, state: "succeeded" }, d]);
      const req = sm.commandCalls(CreateProcessingJobCommand)[0].args[0].input;
      assert.equal(req.ProcessingJobName, d.job);
      assert.equal(req.Environment?.HEADSTART_JOB, d.job);
      assert.deepEqual(
        req.ProcessingInputs?.map((i) => [i.InputName, i.S3Input?.LocalPath]),
        [["plans", "/opt/ml/processing/input/plans"]],
      );
      assert.deepEqual(
        out.map((j) => [j.job, j.state]),
        [
          [c.job, "succeeded"],
          [d.job, "running"],
        ],
      );
      assert.equal((await stored(c)).state, "planned", "the succeeded copy was left out, not submitted");
    });

    test("submitAll: a duplicate submit finds the group's job in use and starts no second one", async () => {
      const [a, b] = await plannedPair();
      const name = groupProcessingJobBase([a.job, b.job]);
      sm.on(CreateProcessingJobCommand)
        .resolvesOnce({})
        .rejects(new ResourceInUse({ message: "Processing job names must be unique", $metadata: {} }));
      sm.on(DescribeProcessingJobCommand).resolves(described(name, "InProgress"));
      const r = runner();
      await r.submitAll([a, b]);
      const second = await r.submitAll([a, b]); // the callers' copies: still planned
      const third = await r.submitAll([b, a]); // another order: the same group
      assert.deepEqual(
        sm.commandCalls(CreateProcessingJobCommand).map((c) => c.args[0].input.ProcessingJobName),
        [name, name, name],
      );
      for (const j of [...second, ...third]) assert.deepEqual([j.state, j.externalId], ["running", name]);
      assert.deepEqual(
        third.map((j) => j.job),
        [b.job, a.job],
        "in the given order",
      );

      // A member submitted alone while its group runs is already started: no processing job of its own.
      sm.resetHistory();
      const alone = await r.submit(await stored(a));
      assert.equal(sm.commandCalls(CreateProcessingJobCommand).length, 0);
      assert.equal(alone.externalId, name);
    });

    test("submitAll: a failed group attempt is retried as -r2, then -r3 once the members are recorded failed", async () => {
      const [a, b] = await plannedPair();
      const base = groupProcessingJobBase([a.job, b.job]);
      sm.on(CreateProcessingJobCommand, { ProcessingJobName: base }).rejects(
        new ResourceInUse({ message: "exists", $metadata: {} }),
      );
      sm.on(DescribeProcessingJobCommand, { ProcessingJobName: base }).resolves(
        described(base, "Failed", { FailureReason: "AlgorithmError: boom" }),
      );
      sm.on(CreateProcessingJobCommand, { ProcessingJobName: `${base}-r2` }).resolves({});
      const retried = await runner().submitAll([a, b]);
      assert.deepEqual(
        retried.map((j) => [j.state, j.externalId]),
        [
          ["running", `${base}-r2`],
          ["running", `${base}-r2`],
        ],
      );

      // Its Failed event records both members failed (nothing committed): the next submit is -r3.
      const failed = await applyProcessingJobStateChange(store, groupEvent(`${base}-r2`, [a, b], "Failed"));
      assert.deepEqual(
        failed.jobs?.map((j) => j.state),
        ["failed", "failed"],
      );
      sm.reset();
      sm.on(CreateProcessingJobCommand).resolves({});
      const third = await runner().submitAll([await stored(a), await stored(b)]);
      assert.deepEqual(
        sm.commandCalls(CreateProcessingJobCommand).map((c) => c.args[0].input.ProcessingJobName),
        [`${base}-r3`],
      );
      assert.deepEqual(
        third.map((j) => [j.state, j.error]),
        [
          ["running", undefined],
          ["running", undefined],
        ],
      );
    });

    test("state change: every member by its own shards — one succeeds, one fails naming its missing shard", async () => {
      const [a, b] = await plannedPair();
      sm.on(CreateProcessingJobCommand).resolves({});
      await runner().submitAll([a, b]);
      const name = groupProcessingJobBase([a.job, b.job]);
      await commit(a, [0, 1, 2, 3]);
      await commit(b, [0, 1, 3]);

      const r = await applyProcessingJobStateChange(store, groupEvent(name, [a, b]));
      assert.deepEqual(
        [r.outcome, r.processingJob, r.status, r.job, r.state],
        ["updated", name, "Completed", undefined, undefined],
      );
      assert.deepEqual(
        r.jobs?.map((j) => [j.job, j.outcome, j.state, j.missingShards]),
        [
          [a.job, "updated", "succeeded", undefined],
          [b.job, "updated", "failed", [2]],
        ],
      );
      assert.equal(
        r.jobs?.[1].error,
        `SageMaker processing job ${name} completed, but shards 2 are not committed`,
      );
      assert.deepEqual(endedJobs(r), [a.job, b.job]);
      const [sa, sb] = [await stored(a), await stored(b)];
      assert.deepEqual(
        [sa.state, sa.externalId, sb.state, sb.externalId],
        ["succeeded", name, "failed", name],
      );

      // At least once: a replay changes nothing (and still names both as ended, for the handler).
      const replay = await applyProcessingJobStateChange(store, groupEvent(name, [a, b]));
      assert.equal(replay.outcome, "unchanged");
      assert.deepEqual(endedJobs(replay), [a.job, b.job]);
      assert.equal((await stored(a)).updatedAt, sa.updatedAt);

      // Resubmitted, only b is left: it runs alone under its own name.
      sm.reset();
      sm.on(CreateProcessingJobCommand).resolves({});
      await runner().submitAll([a, b]);
      assert.deepEqual(
        sm.commandCalls(CreateProcessingJobCommand).map((c) => c.args[0].input.ProcessingJobName),
        [b.job],
      );
    });

    test("state change: a failed group still succeeds the member whose shards are all committed", async () => {
      const [a, b] = await plannedPair();
      const name = groupProcessingJobBase([a.job, b.job]);
      await commit(a, [0, 1, 2, 3]);
      await commit(b, [0]);
      const r = await applyProcessingJobStateChange(store, groupEvent(name, [a, b], "Failed"));
      assert.deepEqual(
        r.jobs?.map((j) => [j.job, j.state]),
        [
          [a.job, "succeeded"],
          [b.job, "failed"],
        ],
      );
      assert.equal(
        (await stored(b)).error,
        `SageMaker processing job ${name} failed: AlgorithmError: See job logs for more information`,
      );
      const stopped = await applyProcessingJobStateChange(store, groupEvent(name, [a, b], "Stopped"));
      assert.match(String(stopped.jobs?.[1].error), /was stopped/);
      assert.equal((await stored(a)).state, "succeeded");
    });

    test("superseded: an older group attempt, or a group after a member was submitted alone, is ignored per member", async () => {
      const [a, b] = await plannedPair();
      const base = groupProcessingJobBase([a.job, b.job]);
      for (const j of [a, b])
        await updateJob(store, j.job, () => ({ state: "running", externalId: `${base}-r2` }));

      const old = await applyProcessingJobStateChange(store, groupEvent(base, [a, b], "Failed"));
      assert.equal(old.outcome, "ignored");
      assert.deepEqual(
        old.jobs?.map((j) => j.reason),
        [`superseded by ${base}-r2`, `superseded by ${base}-r2`],
      );
      assert.deepEqual(endedJobs(old), []);

      // b was since submitted alone: the group's event is no longer b's; a's attempt is current.
      await updateJob(store, b.job, () => ({ externalId: b.job }));
      const r2 = await applyProcessingJobStateChange(store, groupEvent(`${base}-r2`, [a, b], "Failed"));
      assert.equal(r2.outcome, "updated");
      assert.deepEqual(
        r2.jobs?.map((j) => [j.job, j.outcome, j.state ?? j.reason]),
        [
          [a.job, "updated", "failed"],
          [b.job, "ignored", `superseded by ${b.job}`],
        ],
      );
      assert.equal((await stored(b)).state, "running");

      // And the other way round: a's single-job event after a joined a group is not a's any more.
      const single = loadEvent<{ detail: Record<string, unknown> & { Environment: Record<string, string> } }>(
        "sagemaker-job-state-change",
      );
      single.detail.ProcessingJobName = a.job;
      single.detail.Environment.HEADSTART_JOB = a.job;
      single.detail.Environment.HEADSTART_STORE = STORE_URL;
      const late = await applyProcessingJobStateChange(store, single);
      assert.deepEqual([late.outcome, late.job, late.reason], ["ignored", a.job, `superseded by ${base}-r2`]);
    });

    test("describe and stop of a member address the group's processing job", async () => {
      const [a, b] = await plannedPair();
      const name = groupProcessingJobBase([a.job, b.job]);
      sm.on(CreateProcessingJobCommand).resolves({});
      await runner().submitAll([a, b]);
      sm.on(DescribeProcessingJobCommand).resolves(described(name, "InProgress"));
      sm.on(StopProcessingJobCommand).resolves({});
      const info = await runner().describe(b.job);
      assert.deepEqual([info.job, info.name, info.status], [b.job, name, "InProgress"]);
      await runner().stop(a);
      assert.deepEqual(
        sm.commandCalls(StopProcessingJobCommand).map((c) => c.args[0].input),
        [{ ProcessingJobName: name }],
      );
    });

    test("the job-complete handler announces every member of a group that ended", async () => {
      const handler = await jobCompleteHandler(ctx);

      const registry = new WebhookRegistry(ctx.store);
      for (const w of await registry.list()) await registry.remove(w.id);
      const receiver = await new Receiver().start();
      receiver.secret = (await registry.add(receiver.url, ["dataset.embedded", "dataset.failed"])).secret;

      const [a, b] = await plannedPair();
      const name = groupProcessingJobBase([a.job, b.job]);
      await runEmbedShards(ctx.store, a, await loadEmbedder(ctx.store, "tiny-text", ctx.config));
      const event = groupEvent(name, [a, b], "Completed", ctx.store.url);
      const r = await handler(event);
      assert.deepEqual([r.outcome, r.jobs?.map((j) => j.state)], ["updated", ["succeeded", "failed"]]);
      assert.equal((await handler(event)).outcome, "unchanged");
      assert.deepEqual(
        [...receiver.events.values()].map((e) => [e.event.type, e.event.data.job]).sort(),
        [
          ["dataset.embedded", a.job],
          ["dataset.failed", b.job],
        ].sort(),
      );
      assert.equal(receiver.requests.length, 2, "a replay announces nothing twice");
      await receiver.stop();
    });
  });
});
