/**
 * The cloud path end to end, with real SDK clients and no API call to start it: a manifest
 * uploaded straight to the bucket (radosgw on loopback) → radosgw's bucket notification → the
 * ingest Lambda handler (HEADSTART_RUNNER=sagemaker) → SageMakerJobRunner → a real
 * SageMakerClient → the local SageMaker stand-in, which runs the real batch entry point on 2
 * "instances", each handed its share of the plans (ShardedByS3Key over the plan manifest) →
 * shards committed in the bucket → the state change event → the job-complete Lambda handler →
 * train → predict. Also: a duplicate S3 event starts no second job, and a failed job is
 * recorded with its reason and retried under the next name.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3Store } from "../shared/aws/s3-store.ts";
import { SageMakerJobRunner } from "../shared/aws/sagemaker-runner.ts";
import { listCommits, loadCache } from "../shared/cache/shards.ts";
import { loadConfig } from "../shared/config.ts";
import { readDatasetStatus } from "../shared/datasets/ingest.ts";
import { compareSequencers } from "../shared/datasets/sequencer.ts";
import { readJob } from "../shared/embed/job.ts";
import { ValidationError } from "../shared/errors.ts";
import { keys } from "../shared/layout.ts";
import type { Platform } from "../shared/platform.ts";
import { readBatchJob } from "../shared/predictions/job.ts";
import { buildEmbedBatchBundle } from "./helpers/bundles.ts";
import { tempDir } from "./helpers/platform.ts";
import {
  type BucketNotifications,
  listenForBucketNotifications,
  type S3Server,
  s3Env,
  s3TestPlatform,
  startS3Server,
} from "./helpers/s3-server.ts";
import {
  type ProcessingJobStateChangeEvent,
  type SageMakerStandin,
  startStandinOn,
} from "./helpers/sagemaker-standin.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const PREFIX = "customer-a";
const BACKBONE = "tiny-text";
const ROLE_ARN = "arn:aws:iam::123456789012:role/headstart-customer-a-embed-job";
const IMAGE_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com/headstart-embed:test";
const KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
/** Planning makes one shard per instance (ingest asks for at least 2 shards), so each instance gets a plan. */
const ROWS = 5000;

type IngestHandler = typeof import("../functions/ingest/handler.ts").handler;
type JobCompleteHandler = typeof import("../functions/job-complete/handler.ts").handler;

describe("cloud path: bucket upload → ingest → SageMaker (stand-in) → job-complete → train → predict", {
  timeout: 300_000,
}, () => {
  let s3: S3Server;
  let store: S3Store;
  let bucket: string;
  let dir: string;
  let platform: Platform;
  let standin: SageMakerStandin;
  let ingest: IngestHandler;
  let jobComplete: JobCompleteHandler;
  const stateEvents: ProcessingJobStateChangeEvent[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  const savedEnv = { ...process.env };
  let notifications: BucketNotifications;

  const eventsOf = (name: string) => stateEvents.filter((e) => e.detail.ProcessingJobName === name);

  before(
    async () => {
      dir = await tempDir("headstart-cloud-e2e-");
      // The container runs the bundle `npm run build` makes (EMBED_CONTAINER_ENTRYPOINT).
      await buildEmbedBatchBundle();
      s3 = await startS3Server();
      ({ store, platform } = await s3TestPlatform(s3, { dir, prefix: PREFIX, defaultBackbone: BACKBONE }));
      bucket = store.bucket;
      // The operator's side: the backbone is published to the bucket once.
      await writeTinyBackbone(join(dir, "backbone"));
      await platform.addBackbone(join(dir, "backbone"));

      // radosgw pushes upload notifications for `<prefix>/datasets/` to a loopback listener.
      notifications = await listenForBucketNotifications(s3, bucket, PREFIX);
      cleanups.push(() => notifications.close());

      // SageMaker's side: the containers reach the same S3 server with the job role's credentials.
      standin = await startStandinOn(s3, (e) => {
        stateEvents.push(e);
      });
      cleanups.push(() => standin.stop());

      // The Lambdas read their environment at import, as the stack configures it.
      Object.assign(process.env, s3Env(s3, bucket, PREFIX), {
        HEADSTART_RUNNER: "sagemaker",
        HEADSTART_SAGEMAKER_ROLE_ARN: ROLE_ARN,
        HEADSTART_EMBED_IMAGE_URI: IMAGE_URI,
        HEADSTART_EMBED_INSTANCE_TYPE: "ml.g5.xlarge",
        HEADSTART_EMBED_INSTANCE_COUNT: "2",
        HEADSTART_EMBED_MAX_RUNTIME_S: "900",
        HEADSTART_KMS_KEY_ID: KMS_KEY,
        HEADSTART_SAGEMAKER_ENDPOINT: standin.endpoint,
        HEADSTART_DEFAULT_BACKBONE: BACKBONE,
        HEADSTART_MODELS_DIR: join(dir, "lambda-models"),
        HEADSTART_SCRATCH_DIR: join(dir, "lambda-scratch"),
        // Also the containers' level (the job's Environment): errors reach the failure reason.
        HEADSTART_LOG_LEVEL: "error",
      });
      ingest = (await import("../functions/ingest/handler.ts")).handler;
      jobComplete = (await import("../functions/job-complete/handler.ts")).handler;
    },
    { timeout: 240_000 },
  );

  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await s3?.stop();
    if (dir) {
      const { rm } = await import("node:fs/promises");
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("an upload alone embeds on 2 instances, the completion event finishes the job, a head trains", async () => {
    const manifestKey = `${PREFIX}/${keys.manifest("reviews", "jsonl")}`;
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: manifestKey,
        Body: toJsonlText(tinySentimentRows(ROWS, { withSplit: true, seed: 11 })),
        ContentType: "application/x-ndjson",
      }),
    );
    const event = await notifications.eventFor(manifestKey);

    const { results } = await ingest(event);
    assert.equal(results.length, 1);
    assert.deepEqual(
      [results[0].dataset, results[0].state, results[0].accepted],
      ["reviews", "ingested", ROWS],
    );
    const jobId = results[0].job!;
    const submitted = (await readJob(store, jobId))!.value;
    assert.deepEqual(submitted.shards, [0, 1]);
    assert.deepEqual(
      [
        submitted.runner,
        submitted.externalId,
        submitted.state === "running" || submitted.state === "succeeded",
      ],
      ["sagemaker", jobId, true],
    );

    // S3 delivers events at least once: the same event again is recognized by its sequencer
    // and skipped before any work, so no second job is even asked for.
    const dup = await ingest(event);
    assert.deepEqual(
      dup.results.map((r) => r.state),
      ["stale"],
    );
    const creates = standin.requests.filter((r) => r.operation === "CreateProcessingJob");
    assert.equal(creates.length, 1);
    assert.equal(standin.jobs.size, 1, "one processing job only");

    // What the runner asked SageMaker for.
    const job = standin.jobs.get(jobId)!;
    const req = job.request;
    assert.equal(req.RoleArn, ROLE_ARN);
    assert.deepEqual(req.AppSpecification.ContainerEntrypoint, [
      "node",
      "--enable-source-maps",
      "dist/functions/embed-batch/index.mjs",
    ]);
    assert.deepEqual(req.ProcessingResources.ClusterConfig, {
      InstanceType: "ml.g5.xlarge",
      InstanceCount: 2,
      VolumeSizeInGB: 30,
      // g5 has local NVMe storage: SageMaker refuses a volume key there (the stand-in too).
    });
    assert.deepEqual(req.StoppingCondition, { MaxRuntimeInSeconds: 900 });
    assert.deepEqual(req.Environment, {
      HEADSTART_STORE: `s3://${bucket}/${PREFIX}`,
      HEADSTART_JOB: jobId,
      AWS_REGION: s3.region,
      HEADSTART_LOG_LEVEL: "error",
    });
    assert.deepEqual(req.ProcessingInputs?.[0].S3Input, {
      S3Uri: `s3://${bucket}/${PREFIX}/${keys.jobPlanManifest(jobId)}`,
      S3DataType: "ManifestFile",
      LocalPath: "/opt/ml/processing/input/plans",
      S3InputMode: "File",
      S3DataDistributionType: "ShardedByS3Key",
      S3CompressionType: "None",
    });

    // The job runs; each instance was handed one of the two plans and committed that shard.
    await job.done;
    assert.equal(job.status, "Completed", job.failureReason);
    assert.deepEqual(
      job.instances.map((i) => [i.host, i.inputs.plans, i.exitCode]),
      [
        ["algo-1", ["_plan-00000.json"], 0],
        ["algo-2", ["_plan-00001.json"], 0],
      ],
    );
    const perInstance = {
      job: jobId,
      shardsCommitted: 1,
      shardsSkipped: 0,
      itemsEmbedded: ROWS / 2,
      itemsFailed: 0,
      failures: [],
    };
    assert.deepEqual(
      job.instances.map((i) => JSON.parse(i.stdout.trim())),
      [perInstance, perInstance],
    );
    assert.deepEqual(
      (await listCommits(store, BACKBONE, "reviews")).map((c) => [c.shard, c.count, c.job]),
      [
        [0, ROWS / 2, jobId],
        [1, ROWS / 2, jobId],
      ],
    );

    // EventBridge delivers the state changes to the job-complete Lambda.
    const events = eventsOf(jobId);
    assert.deepEqual(
      events.map((e) => e.detail.ProcessingJobStatus),
      ["InProgress", "Completed"],
    );
    for (const e of events) await jobComplete(structuredClone(e));
    const finished = (await readJob(store, jobId))!.value;
    assert.deepEqual([finished.state, finished.error, finished.externalId], ["succeeded", undefined, jobId]);
    assert.ok(finished.finishedAt);
    // A redelivered completion event changes nothing.
    assert.equal((await jobComplete(structuredClone(events[1]))).outcome, "unchanged");

    // Train on the cache the SageMaker job wrote, then predict.
    assert.equal((await loadCache(store, BACKBONE, "reviews")).vectors.size, ROWS);
    const trained = await platform.train({ dataset: "reviews", head: "reviews-sentiment" });
    assert.equal(trained.evaluation, "test-split");
    assert.equal(trained.counts.test, ROWS / 5);
    assert.ok(trained.metrics!.accuracy > 0.9, JSON.stringify(trained.metrics));
    const predicted = await platform.predict("reviews-sentiment", {
      inputs: ["wonderful brilliant fun", "awful dull boring"],
    });
    assert.deepEqual(
      predicted.predictions.map((p) => p.label),
      ["pos", "neg"],
    );
  });

  test("a batch job handed to job-complete parks on the SageMaker job it submitted; that job's end scores it, once", async () => {
    const rows = tinySentimentRows(12, { seed: 23 }).map((r) => ({ ...r, id: `t${r.id}` }));
    await platform.putManifest("tonight", "jsonl", toJsonlText(rows));
    const { job } = await platform.startBatchPrediction({ head: "reviews-sentiment", dataset: "tonight" });
    // What the API's dispatcher sends (an asynchronous invocation).
    assert.deepEqual((await jobComplete({ batchJob: job.job })).batchJobs, [job.job]);
    const parked = (await readBatchJob(store, job.job))!.value;
    assert.deepEqual([parked.status, parked.progress.phase], ["running", "waiting-for-embedding"]);
    const embedJob = parked.waitingFor![0];
    assert.equal((await readJob(store, embedJob))!.value.items.toEmbed, 12, "the missing items only");
    const processing = standin.jobs.get(embedJob)!;
    await processing.done;
    assert.equal(processing.status, "Completed", processing.failureReason);

    const events = eventsOf(embedJob);
    const results = [];
    for (const e of events) results.push(await jobComplete(structuredClone(e)));
    assert.deepEqual(results.at(-1)!.batchJobs, [job.job]);
    const done = (await readBatchJob(store, job.job))!.value;
    assert.equal(done.status, "succeeded", done.error);
    assert.deepEqual(done.counts, { total: 12, succeeded: 12, failed: 0 });
    // A redelivered completion: nothing is scored or written again.
    const before = await store.head(keys.batchJob(job.job));
    assert.equal((await jobComplete(structuredClone(events.at(-1)!))).batchJobs, undefined);
    assert.equal((await store.head(keys.batchJob(job.job)))!.etag, before!.etag);
    assert.equal(standin.jobs.has(`${embedJob}-r2`), false);
  });

  test("a failed job is recorded with SageMaker's reason and retried under the next name", async () => {
    await platform.putManifest("flaky", "jsonl", toJsonlText(tinySentimentRows(30, { seed: 4 })));
    const job = await platform.planEmbed("flaky", { shardSize: 10 });
    assert.deepEqual(job.shards, [0, 1, 2]);
    const runner = SageMakerJobRunner.fromConfig(store, loadConfig(process.env));

    // One shard's plan names a file that is not in the bucket: that instance's batch run fails.
    const planKey = keys.shardPlan(BACKBONE, "flaky", 1);
    const plan = (await store.get(planKey))!;
    const broken = JSON.parse(new TextDecoder().decode(plan.body));
    broken.items[0] = { sha: broken.items[0].sha, id: broken.items[0].id, image: "missing.png" };
    await store.put(planKey, JSON.stringify(broken));
    const started = await runner.submit(job);
    assert.equal(started.externalId, job.job);
    const first = standin.jobs.get(job.job)!;
    await first.done;
    assert.equal(first.status, "Failed");
    assert.deepEqual(
      first.instances.map((i) => [i.inputs.plans, i.exitCode]),
      [
        [["_plan-00000.json", "_plan-00002.json"], 0],
        [["_plan-00001.json"], 2],
      ],
    );
    for (const e of eventsOf(job.job)) await jobComplete(structuredClone(e));
    const failed = (await readJob(store, job.job))!.value;
    assert.equal(failed.state, "failed");
    assert.match(
      String(failed.error),
      new RegExp(
        `^SageMaker processing job ${job.job} failed: AlgorithmError: .*datasets/flaky/files/missing\\.png.*not found`,
      ),
    );
    assert.equal((await runner.describe(job.job)).status, "Failed");

    // The plan is back; the next submit (a re-upload, an operator) starts attempt 2.
    await store.put(planKey, plan.body);
    const retried = await runner.submit(failed);
    assert.equal(retried.externalId, `${job.job}-r2`);
    const second = standin.jobs.get(`${job.job}-r2`)!;
    await second.done;
    assert.equal(second.status, "Completed", second.failureReason);
    // The shards the first attempt committed are skipped, not embedded again.
    const results = second.instances.map((i) => JSON.parse(i.stdout.trim()));
    assert.deepEqual(
      results.map((r) => [r.shardsCommitted, r.shardsSkipped]),
      [
        [0, 2],
        [1, 0],
      ],
    );
    // A late event of the first attempt cannot undo the second.
    for (const e of [...eventsOf(`${job.job}-r2`), ...eventsOf(job.job)])
      await jobComplete(structuredClone(e));
    const done = (await readJob(store, job.job))!.value;
    assert.deepEqual([done.state, done.externalId, done.error], ["succeeded", `${job.job}-r2`, undefined]);
    assert.equal((await loadCache(store, BACKBONE, "flaky")).vectors.size, 30);
  });

  test("radosgw's own notifications, repeated, concurrent and late: the newer upload stays current", async () => {
    const key = `${PREFIX}/${keys.manifest("late", "jsonl")}`;
    const upload = async (rows: number, n: number) => {
      await s3.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: toJsonlText(tinySentimentRows(rows, { seed: n })),
          ContentType: "application/x-ndjson",
        }),
      );
      // The notification of this very upload: the n-th for this key (the listener keeps them all).
      const deadline = Date.now() + 10_000;
      for (;;) {
        const mine = notifications.received.filter((n) => n.Records.some((r) => r.s3.object.key === key));
        if (mine.length >= n) return structuredClone(mine[n - 1]);
        if (Date.now() > deadline) throw new Error(`no notification ${n} for ${key}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const older = await upload(20, 1);
    const newer = await upload(24, 2);
    const seq = (e: typeof older) => String((e.Records[0].s3.object as { sequencer?: string }).sequencer);
    // radosgw's sequencers do not always order as AWS's do (observed: a later upload with a
    // lexicographically smaller sequencer); the outcome below must hold either way.
    const ordered = compareSequencers(seq(newer), seq(older)) > 0;

    // The newer event twice at once: one ingests, the other is refused (retried) or skipped.
    const settled = await Promise.allSettled([ingest(newer), ingest(structuredClone(newer))]);
    const ingested = settled.filter(
      (s) => s.status === "fulfilled" && s.value.results[0].state === "ingested",
    );
    assert.equal(ingested.length, 1);
    const current = await readDatasetStatus(store, "late");
    assert.equal(current?.rows.accepted, 24);
    // The older upload's event arrives last: skipped (or, with a mis-ordered sequencer, the
    // bucket's current manifest ingested again); the newer version stays current either way.
    const late = await ingest(older);
    assert.deepEqual(
      late.results.map((r) => r.state),
      [ordered ? "stale" : "ingested"],
    );
    const after = await readDatasetStatus(store, "late");
    assert.equal(after?.version, current?.version);
    assert.equal(after?.rows.accepted, 24);
  });

  test("stop: the runner stops the processing job; its Stopped event fails the job", async () => {
    await platform.putManifest("halted", "jsonl", toJsonlText(tinySentimentRows(20, { seed: 9 })));
    const job = await platform.planEmbed("halted", { shardSize: 10 });
    const runner = SageMakerJobRunner.fromConfig(store, loadConfig(process.env));
    await runner.submit(job);
    // A Node process takes far longer to start than this request takes to arrive.
    const stopping = await runner.stop(job.job);
    assert.ok(["Stopping", "Stopped"].includes(stopping.status), stopping.status);
    const standinJob = standin.jobs.get(job.job)!;
    await standinJob.done;
    assert.equal(standinJob.status, "Stopped");
    await assert.rejects(runner.stop(job.job), ValidationError, "a stopped job cannot be stopped again");
    for (const e of eventsOf(job.job)) await jobComplete(structuredClone(e));
    const stopped = (await readJob(store, job.job))!.value;
    assert.deepEqual(
      [stopped.state, stopped.error],
      ["failed", `SageMaker processing job ${job.job} was stopped`],
    );
  });
});
