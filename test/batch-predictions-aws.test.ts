/**
 * Batch predictions in the deployed shape: the embedding stage runs elsewhere (a SageMaker
 * Processing job; here a stand-in runner that only records the submit, the "instance" being
 * `runEmbedShards` on the same store), so a run submits the embedding job of what is missing,
 * parks the batch job (`waiting-for-embedding`) and returns. The job-complete Lambda's handler,
 * given the EventBridge state change, continues it: the job finishes with its outputs; a
 * duplicate event does no work twice; a failed embedding job fails the batch job.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { createApp } from "../shared/api/app.ts";
import { LambdaBatchDispatcher } from "../shared/aws/lambda-batch-dispatcher.ts";
import { processingJobName } from "../shared/aws/sagemaker-runner.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import { type EmbedJob, readJob, updateJob } from "../shared/embed/job.ts";
import { runEmbedShards } from "../shared/embed/run.ts";
import { WebhookRegistry } from "../shared/events/registrations.ts";
import type { JobRunner } from "../shared/jobs/runner.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { BatchRunEvent } from "../shared/predictions/dispatch.ts";
import { readBatchJob } from "../shared/predictions/job.ts";
import { readSummary } from "../shared/predictions/output.ts";
import { waitersOf } from "../shared/predictions/waits.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { loadEvent } from "./helpers/events.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

/** SageMaker's control plane as the platform sees it: a submit starts a processing job, nothing more. */
class StandinRunner implements JobRunner {
  readonly name = "sagemaker";
  readonly submitted: string[] = [];
  constructor(private readonly store: ObjectStore) {}

  async submit(job: EmbedJob): Promise<EmbedJob> {
    if (job.state === "succeeded") return job;
    this.submitted.push(job.job);
    return updateJob(this.store, job.job, () => ({
      state: "running",
      runner: "sagemaker",
      externalId: processingJobName(job.job),
      startedAt: new Date().toISOString(),
    }));
  }

  async submitAll(jobs: readonly EmbedJob[]): Promise<EmbedJob[]> {
    const out: EmbedJob[] = [];
    for (const job of jobs) out.push(await this.submit(job));
    return out;
  }
}

/** EventBridge's "SageMaker Processing Job State Change" for the job's processing job. */
function stateChange(store: ObjectStore, job: string, status: "Completed" | "Failed", reason?: string) {
  const event = loadEvent<{ detail: Record<string, unknown> }>("sagemaker-job-state-change");
  event.detail.ProcessingJobName = processingJobName(job);
  event.detail.ProcessingJobStatus = status;
  event.detail.Environment = { HEADSTART_STORE: store.url, HEADSTART_JOB: job };
  if (reason) event.detail.FailureReason = reason;
  return event;
}

describe("batch predictions with the embedding stage on SageMaker", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let aws: Platform;
  let runner: StandinRunner;
  let handler: typeof import("../functions/job-complete/handler.ts").handler;
  const saved = { ...process.env };

  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 2 })));
    await ctx.platform.embed("films");
    await ctx.platform.train({ dataset: "films", head: "films" });
    runner = new StandinRunner(ctx.store);
    aws = new Platform(ctx.store, ctx.config, { runner });
    // The job-complete Lambda on the same store (its own platform, built from the environment).
    Object.assign(process.env, {
      HEADSTART_STORE: ctx.config.store,
      HEADSTART_MODELS_DIR: join(ctx.dir, "lambda-models"),
      HEADSTART_DEFAULT_BACKBONE: "tiny-text",
      HEADSTART_LOG_LEVEL: "error",
    });
    handler = (await import("../functions/job-complete/handler.ts")).handler as typeof handler;
  });
  after(async () => {
    process.env = saved;
    await ctx.cleanup();
  });

  /** The processing job's work: its shards embedded and committed in the store (not its record). */
  async function runProcessingJob(job: string) {
    const embedder = await loadEmbedder(ctx.store, "tiny-text", ctx.config);
    await runEmbedShards(ctx.store, job, embedder);
  }

  test("a run parks on the embedding job it submitted; the job's end finishes it, once", async () => {
    const rows = tinySentimentRows(17, { seed: 5 }).map((r) => ({ ...r, id: `p${r.id}` }));
    await ctx.platform.putManifest("fresh", "jsonl", toJsonlText(rows));
    const { job } = await aws.startBatchPrediction({ head: "films", dataset: "fresh", partRows: 5 });
    const parked = await aws.runBatchPrediction(job.job);
    assert.equal(parked.status, "running");
    assert.equal(parked.progress.phase, "waiting-for-embedding");
    assert.equal(runner.submitted.length, 1, "one embedding job, of the missing items only");
    const embedJob = runner.submitted[0];
    assert.deepEqual(parked.waitingFor, [embedJob]);
    assert.equal((await readJob(ctx.store, embedJob))?.value.items.toEmbed, 17);
    assert.deepEqual(await waitersOf(ctx.store, embedJob), [job.job]);
    assert.equal(parked.outputs.length, 0);

    // Running it again (a duplicate dispatch, the CLI polling) submits nothing and stays parked.
    const again = await aws.runBatchPrediction(job.job);
    assert.equal(again.progress.phase, "waiting-for-embedding");
    assert.equal(runner.submitted.length, 1);

    await runProcessingJob(embedJob);
    const result = await handler(stateChange(ctx.store, embedJob, "Completed"));
    assert.equal(result.state, "succeeded");
    assert.deepEqual(result.batchJobs, [job.job]);
    const done = (await readBatchJob(ctx.store, job.job))!;
    assert.equal(done.value.status, "succeeded", done.value.error);
    assert.deepEqual(done.value.counts, { total: 17, succeeded: 17, failed: 0 });
    assert.equal(done.value.outputs.length, 4, "17 rows in parts of 5");
    assert.deepEqual(await waitersOf(ctx.store, embedJob), [], "the marker is gone");
    const summary = await readSummary(ctx.store, job.job);
    assert.equal(summary?.counts.succeeded, 17);

    // EventBridge delivers at least once: the same event again writes nothing.
    const etag = (await ctx.store.head(keys.batchJob(job.job)))?.etag;
    const partEtag = (await ctx.store.head(done.value.outputs[0]))?.etag;
    const replay = await handler(stateChange(ctx.store, embedJob, "Completed"));
    assert.equal(replay.batchJobs, undefined, "no batch job continued twice");
    assert.equal((await ctx.store.head(keys.batchJob(job.job)))?.etag, etag);
    assert.equal((await ctx.store.head(done.value.outputs[0]))?.etag, partEtag);
    assert.equal(runner.submitted.length, 1);
  });

  test("two copies of the event at once: one continuation scores, the other finds it taken", async () => {
    const rows = tinySentimentRows(9, { seed: 8 }).map((r) => ({ ...r, id: `q${r.id}` }));
    await ctx.platform.putManifest("twice", "jsonl", toJsonlText(rows));
    const { job } = await aws.startBatchPrediction({ head: "films", dataset: "twice" });
    await aws.runBatchPrediction(job.job);
    const embedJob = runner.submitted.at(-1)!;
    await runProcessingJob(embedJob);
    const event = stateChange(ctx.store, embedJob, "Completed");
    await Promise.all([handler(event), handler(structuredClone(event))]);
    const done = (await readBatchJob(ctx.store, job.job))!.value;
    assert.equal(done.status, "succeeded", done.error);
    assert.deepEqual(done.counts, { total: 9, succeeded: 9, failed: 0 });
    assert.equal(done.outputs.length, 1);
  });

  test("a failed embedding job fails the batch job with its reason, and batch.failed says it", async () => {
    const receiver = await new Receiver().start();
    receiver.secret = (await new WebhookRegistry(ctx.store).add(receiver.url, ["batch.failed"])).secret;
    const rows = tinySentimentRows(6, { seed: 13 }).map((r) => ({ ...r, id: `f${r.id}` }));
    await ctx.platform.putManifest("doomed", "jsonl", toJsonlText(rows));
    const { job } = await aws.startBatchPrediction({ head: "films", dataset: "doomed" });
    assert.equal((await aws.runBatchPrediction(job.job)).progress.phase, "waiting-for-embedding");
    const embedJob = runner.submitted.at(-1)!;
    const result = await handler(stateChange(ctx.store, embedJob, "Failed", "CapacityError: no ml.g5"));
    assert.equal(result.state, "failed");
    const failed = (await readBatchJob(ctx.store, job.job))!.value;
    assert.equal(failed.status, "failed");
    assert.match(failed.error ?? "", /embedding job .* failed: .*CapacityError: no ml\.g5/);
    assert.deepEqual(await waitersOf(ctx.store, embedJob), []);
    const told = [...receiver.events.values()].map((r) => r.event);
    await receiver.stop();
    assert.deepEqual(
      told.map((e) => [e.type, (e.data as { job: string }).job]),
      [["batch.failed", job.job]],
    );
    assert.match((told[0].data as { error: string }).error, /CapacityError/);
  });

  test("rows already cached: the run scores at once and submits nothing", async () => {
    const before = runner.submitted.length;
    const { job } = await aws.startBatchPrediction({ head: "films", dataset: "films" });
    const done = await aws.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded", done.error);
    assert.equal(runner.submitted.length, before);
  });

  test("the API's dispatch event runs a started job in the Lambda, up to its park", async () => {
    const rows = tinySentimentRows(4, { seed: 21 }).map((r) => ({ ...r, id: `d${r.id}` }));
    await ctx.platform.putManifest("dispatched", "jsonl", toJsonlText(rows));
    const { job } = await aws.startBatchPrediction({ head: "films", dataset: "dispatched" });
    const result = await handler({ batchJob: job.job });
    assert.deepEqual(result.batchJobs, [job.job]);
    assert.equal((await readBatchJob(ctx.store, job.job))?.value.status, "succeeded");
  });

  test("in the API Lambda, POST …/batch-predictions hands the job to job-complete and runs nothing", async () => {
    const lambda = mockClient(LambdaClient);
    try {
      lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
      const api = new Platform(ctx.store, ctx.config, {
        runner,
        batchDispatcher: new LambdaBatchDispatcher("headstart-acme-job-complete", { region: "eu-west-1" }),
      });
      const rows = tinySentimentRows(5, { seed: 34 }).map((r) => ({ ...r, id: `h${r.id}` }));
      await ctx.platform.putManifest("handed", "jsonl", toJsonlText(rows));
      const app = createApp(api, makeLogger("test", "silent"));
      const res = await app.request("/v1/heads/films/batch-predictions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ dataset: "handed" }),
      });
      assert.equal(res.status, 202, await res.clone().text());
      const { job } = (await res.json()) as { job: string };
      const call = lambda.commandCalls(InvokeCommand)[0].args[0].input;
      assert.equal(call.FunctionName, "headstart-acme-job-complete");
      assert.equal(call.InvocationType, "Event");
      const payload = JSON.parse(new TextDecoder().decode(call.Payload as Uint8Array));
      assert.deepEqual(payload, { batchJob: job });
      assert.equal(BatchRunEvent.safeParse(payload).success, true, "what job-complete parses");
      await api.batchIdle();
      assert.equal((await readBatchJob(ctx.store, job))?.value.status, "queued", "nothing ran in the API");

      // job-complete's run of it (its platform has the SageMaker runner): parked on its embedding job.
      const parked = await api.runBatchPrediction(job);
      assert.equal(parked.progress.phase, "waiting-for-embedding");
    } finally {
      lambda.restore();
    }
  });
});
