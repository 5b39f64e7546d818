/**
 * Several embedding jobs of one dataset (one per backbone) run as ONE batch job: the batch entry
 * point with a list of jobs in HEADSTART_JOB (each job's plans in a folder of its own), the local
 * runner's `runAll`/`submitAll` in this process and in one worker process, and — against a real
 * S3 server (radosgw) and the SageMaker stand-in running the real container bundle — one
 * processing job for the group whose Completed event succeeds every member.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import type { S3Store } from "../shared/aws/s3-store.ts";
import {
  applyProcessingJobStateChange,
  endedJobs,
  SageMakerJobRunner,
} from "../shared/aws/sagemaker-runner.ts";
import { loadEmbedder } from "../shared/backbone/registry.ts";
import { listCommits } from "../shared/cache/shards.ts";
import { configToEnv } from "../shared/config.ts";
import { batchSettingsFromEnv, jobPlansDir } from "../shared/embed/batch.ts";
import { type EmbedJob, readJob } from "../shared/embed/job.ts";
import { ValidationError } from "../shared/errors.ts";
import { BATCH_ENTRY, LocalJobRunner, workerOutcomes } from "../shared/jobs/runner.ts";
import { keys } from "../shared/layout.ts";
import type { Platform } from "../shared/platform.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { buildEmbedBatchBundle } from "./helpers/bundles.ts";
import { tempDir, tinyPlatform } from "./helpers/platform.ts";
import { type S3Server, s3TestPlatform, startS3Server } from "./helpers/s3-server.ts";
import {
  type ProcessingJobStateChangeEvent,
  type SageMakerStandin,
  startStandinOn,
} from "./helpers/sagemaker-standin.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const A = "tiny-text";
const B = "tiny-text-b";

interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function node(args: string[], env: NodeJS.ProcessEnv): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => {
      stdout += c;
    });
    child.stderr.on("data", (c) => {
      stderr += c;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const lastLine = (stdout: string) => JSON.parse(stdout.trim().split("\n").pop()!);
const logLines = (stderr: string) =>
  stderr
    .trim()
    .split("\n")
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
const committed = async (store: ObjectStore, job: EmbedJob) =>
  (await listCommits(store, job.backbone, job.dataset)).map((c) => c.shard);

/** A platform with two text backbones published: tiny-text and tiny-text-b (other vectors). */
async function twoBackbonePlatform() {
  const ctx = await tinyPlatform();
  await writeTinyBackbone(join(ctx.dir, "backbone-b"), B, { salt: "b" });
  await ctx.platform.addBackbone(join(ctx.dir, "backbone-b"));
  return ctx;
}

let datasets = 0;
/** A fresh dataset planned under both backbones: 4 shards each. */
async function planBoth(platform: Platform): Promise<[EmbedJob, EmbedJob]> {
  const name = `films-${++datasets}`;
  await platform.putManifest(name, "jsonl", toJsonlText(tinySentimentRows(40, { seed: datasets })));
  const a = await platform.planEmbed(name, { shardSize: 10 });
  const b = await platform.planEmbed(name, { backbone: B, shardSize: 10 });
  assert.deepEqual([a.backbone, b.backbone, a.shards, b.shards], [A, B, [0, 1, 2, 3], [0, 1, 2, 3]]);
  return [a, b];
}

describe("batch entry point with several jobs", () => {
  let ctx: Awaited<ReturnType<typeof twoBackbonePlatform>>;
  before(async () => {
    ctx = await twoBackbonePlatform();
  });
  after(() => ctx.cleanup());

  const entry = (jobs: string, extra: Record<string, string> = {}) =>
    node(["--import", "tsx", BATCH_ENTRY], {
      PATH: process.env.PATH,
      ...configToEnv(ctx.config),
      HEADSTART_LOG_LEVEL: "info",
      HEADSTART_JOB: jobs,
      ...extra,
    });

  /** What SageMaker copies onto one instance for a group: each job's plans in `<plans>/<job>`. */
  async function handOut(name: string, plans: Array<[EmbedJob, EmbedJob, number]>): Promise<string> {
    const plansDir = join(ctx.dir, name);
    for (const [folderOf, planOf, shard] of plans) {
      const dir = jobPlansDir(plansDir, folderOf.job, true);
      await mkdir(dir, { recursive: true });
      const obj = await ctx.store.get(keys.shardPlan(planOf.backbone, planOf.dataset, shard));
      await writeFile(
        join(dir, `${planOf.backbone}-_plan-${String(shard).padStart(5, "0")}.json`),
        obj!.body,
      );
    }
    return plansDir;
  }

  test("HEADSTART_JOB=a,b runs each job's own plans folder in turn; one {jobs, failed} result line", async () => {
    const [a, b] = await planBoth(ctx.platform);
    // b's plan 0 lying in a's folder is not a's: it is ignored there (and b does not get it).
    const plansDir = await handOut("plans-ab", [
      [a, a, 0],
      [a, a, 2],
      [a, b, 0],
      [b, b, 1],
      [b, b, 3],
    ]);
    const run = await entry(`${a.job},${b.job}`, { HEADSTART_PLANS_DIR: plansDir });
    assert.equal(run.code, 0, run.stderr);
    const line = lastLine(run.stdout);
    assert.deepEqual(Object.keys(line).sort(), ["failed", "jobs"]);
    assert.deepEqual(line.failed, []);
    assert.deepEqual(
      line.jobs.map((r: { job: string; shardsCommitted: number; itemsEmbedded: number }) => [
        r.job,
        r.shardsCommitted,
        r.itemsEmbedded,
      ]),
      [
        [a.job, 2, 20],
        [b.job, 2, 20],
      ],
    );
    const starts = logLines(run.stderr).filter((l) => l.message === "batch stage starting");
    assert.deepEqual(
      starts.map((l) => [l.job, l.backbone, l.shards, l.assignedBy]),
      [
        [a.job, A, [0, 2], join(plansDir, a.job)],
        [b.job, B, [1, 3], join(plansDir, b.job)],
      ],
    );
    assert.deepEqual(await committed(ctx.store, a), [0, 2]);
    assert.deepEqual(await committed(ctx.store, b), [1, 3]);

    // One id is today's contract, byte for byte: its RunShardsResult is the line (no plans
    // folder outside SageMaker: the whole job, the committed shards skipped).
    const single = await entry(a.job, { HEADSTART_PLANS_DIR: join(ctx.dir, "no-such-folder") });
    assert.equal(single.code, 0, single.stderr);
    const result = lastLine(single.stdout);
    assert.equal(result.jobs, undefined);
    assert.deepEqual(
      [result.job, result.shardsCommitted, result.shardsSkipped, result.itemsEmbedded],
      [a.job, 2, 2, 20],
    );
    assert.deepEqual(await committed(ctx.store, a), [0, 1, 2, 3]);
  });

  test("a member that fails does not stop the next one; the line names it; exit 2 for a user error", async () => {
    const [, b] = await planBoth(ctx.platform);
    const missing = "embed-nope-0000000000000000";
    const run = await entry(`${missing},${b.job}`);
    assert.equal(run.code, 2, run.stderr);
    const line = lastLine(run.stdout);
    assert.deepEqual(
      line.jobs.map((r: { job: string; shardsCommitted: number }) => [r.job, r.shardsCommitted]),
      [[b.job, 4]],
    );
    assert.equal(line.failed.length, 1);
    assert.equal(line.failed[0].job, missing);
    assert.match(line.failed[0].error, /not found/);
    assert.ok(logLines(run.stderr).some((l) => l.message === "batch job failed" && l.job === missing));
    assert.deepEqual(await committed(ctx.store, b), [0, 1, 2, 3]);
  });

  test("HEADSTART_JOB: ids separated by commas; empty ids and repeats are refused naming the variable", () => {
    assert.deepEqual(batchSettingsFromEnv({ HEADSTART_JOB: "a, b" }).jobs, ["a", "b"]);
    assert.deepEqual(batchSettingsFromEnv({ HEADSTART_JOB: "a" }).jobs, ["a"]);
    for (const bad of ["", "a,,b", "a,", "a,a"]) {
      assert.throws(
        () => batchSettingsFromEnv({ HEADSTART_JOB: bad }),
        (e) => e instanceof ValidationError && e.field === "HEADSTART_JOB",
        JSON.stringify(bad),
      );
    }
    assert.equal(jobPlansDir("/p", "j", false), "/p");
    assert.equal(jobPlansDir("/p", "j", true), "/p/j");
  });
});

describe("LocalJobRunner.runAll / submitAll", () => {
  let ctx: Awaited<ReturnType<typeof twoBackbonePlatform>>;
  before(async () => {
    ctx = await twoBackbonePlatform();
  });
  after(() => ctx.cleanup());

  const state = async (job: EmbedJob) => (await readJob(ctx.store, job.job))!.value;

  /** An inline runner that records which backbones it loaded and which jobs it announced. */
  function inlineRunner(fail?: string) {
    const loaded: string[] = [];
    const finished: Array<[string, string]> = [];
    const runner = new LocalJobRunner(ctx.store, {
      embedderFor: (id) => {
        loaded.push(id);
        return id === fail
          ? Promise.reject(new Error(`backbone ${id} is broken`))
          : loadEmbedder(ctx.store, id, ctx.config);
      },
      onFinished: (job) => {
        finished.push([job.job, job.state]);
      },
    });
    return { runner, loaded, finished };
  }

  test("inline: the jobs one after the other, each recorded and announced; a job in flight is joined", async () => {
    const [a, b] = await planBoth(ctx.platform);
    const { runner, loaded, finished } = inlineRunner();
    const first = runner.run(a);
    const results = await runner.runAll([a, b]);
    assert.deepEqual(
      results.map((r) => [r.job, r.shardsCommitted]),
      [
        [a.job, 4],
        [b.job, 4],
      ],
    );
    assert.equal((await first).job, a.job);
    assert.deepEqual(loaded, [A, B], "a ran once: runAll joined the run in flight");
    assert.deepEqual(finished, [
      [a.job, "succeeded"],
      [b.job, "succeeded"],
    ]);
    assert.deepEqual([(await state(a)).state, (await state(b)).state], ["succeeded", "succeeded"]);
    assert.deepEqual(await committed(ctx.store, b), [0, 1, 2, 3]);
  });

  test("inline: a failing job fails alone; runAll rejects with its error once both have ended", async () => {
    const [a, b] = await planBoth(ctx.platform);
    const { runner, finished } = inlineRunner(B);
    await assert.rejects(runner.runAll([b, a]), /backbone tiny-text-b is broken/);
    const [sa, sb] = [await state(a), await state(b)];
    assert.deepEqual([sa.state, sb.state], ["succeeded", "failed"]);
    assert.match(String(sb.error), /broken/);
    assert.deepEqual(finished, [
      [b.job, "failed"],
      [a.job, "succeeded"],
    ]);
  });

  /** A process runner whose workers append their pid to a file (a preload via NODE_OPTIONS). */
  async function processRunner() {
    const dir = await tempDir("headstart-group-worker-");
    const pids = join(dir, "pids");
    const preload = join(dir, "pid.cjs");
    await writeFile(
      preload,
      `if (require("node:worker_threads").isMainThread) require("node:fs").appendFileSync(${JSON.stringify(pids)}, process.pid + "\\n");\n`,
    );
    await writeFile(pids, "");
    const finished: string[] = [];
    const runner = new LocalJobRunner(ctx.store, {
      mode: "process",
      embedderFor: () => Promise.reject(new Error("a process runner loads nothing here")),
      workerEnv: {
        ...process.env,
        ...configToEnv(ctx.config),
        HEADSTART_LOG_LEVEL: "silent",
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${preload}`.trim(),
      },
      onFinished: (job) => {
        finished.push(`${job.job}:${job.state}`);
      },
    });
    const workers = async () => (await readFile(pids, "utf8")).trim().split("\n").filter(Boolean).length;
    return { runner, workers, finished };
  }

  test("process: both jobs in ONE worker process, each job's result and state from its line", async () => {
    const [a, b] = await planBoth(ctx.platform);
    const { runner, workers, finished } = await processRunner();
    const results = await runner.runAll([a, b]);
    assert.deepEqual(
      results.map((r) => [r.job, r.shardsCommitted, r.itemsEmbedded]),
      [
        [a.job, 4, 40],
        [b.job, 4, 40],
      ],
    );
    assert.equal(await workers(), 1);
    assert.deepEqual([(await state(a)).state, (await state(b)).state], ["succeeded", "succeeded"]);
    assert.deepEqual(finished, [`${a.job}:succeeded`, `${b.job}:succeeded`]);
  });

  test("process: a job the worker could not run is failed with its error, the other succeeds", async () => {
    const [a, b] = await planBoth(ctx.platform);
    // A job whose backbone is not published: the worker fails it and goes on with a.
    const broken: EmbedJob = {
      ...b,
      job: `${b.job.slice(0, -16)}ffffffffffffffff`,
      backbone: "tiny-missing",
    };
    await ctx.store.put(keys.job(broken.job), JSON.stringify(broken));
    const { runner, workers, finished } = await processRunner();
    await assert.rejects(runner.runAll([broken, a]), (e: Error) =>
      new RegExp(`worker for job ${broken.job} failed: .*tiny-missing`).test(e.message),
    );
    assert.equal(await workers(), 1);
    const [sa, sx] = [await state(a), await state(broken)];
    assert.deepEqual([sa.state, sx.state], ["succeeded", "failed"]);
    assert.match(String(sx.error), /tiny-missing/);
    assert.deepEqual(finished, [`${broken.job}:failed`, `${a.job}:succeeded`]);
  });

  test("submitAll: succeeded jobs left out, the others started in the background as one batch job", async () => {
    const [a, b] = await planBoth(ctx.platform);
    const { runner, loaded } = inlineRunner();
    const done = { ...a, state: "succeeded" as const };
    const accepted = await runner.submitAll([done, b]);
    assert.deepEqual(accepted, [done, b], "answered with the jobs as given, before they run");
    await runner.idle();
    assert.deepEqual(loaded, [B]);
    assert.equal((await state(b)).state, "succeeded");
    assert.equal((await state(a)).state, "planned");
  });

  test("workerOutcomes: one job's line, a group's line, and jobs the line does not account for", () => {
    const exited = new Error("worker exited with 1");
    const r = (job: string) => ({
      job,
      shardsCommitted: 1,
      shardsSkipped: 0,
      itemsEmbedded: 3,
      itemsFailed: 0,
      failures: [],
    });
    assert.deepEqual(workerOutcomes(["a"], JSON.stringify(r("a")), 0, exited), [
      { ok: true, result: r("a") },
    ]);
    assert.deepEqual(workerOutcomes(["a"], JSON.stringify(r("a")), 1, exited), [
      { ok: false, error: exited },
    ]);
    assert.deepEqual(workerOutcomes(["a"], "not json", 0, exited), [{ ok: false, error: exited }]);
    const line = JSON.stringify({ jobs: [r("b")], failed: [{ job: "a", error: "boom" }] });
    const [oa, ob, oc] = workerOutcomes(["a", "b", "c"], line, 1, exited);
    assert.equal(oa.ok, false);
    assert.match(String(!oa.ok && oa.error.message), /worker for job a failed: boom/);
    assert.deepEqual(ob, { ok: true, result: r("b") });
    assert.deepEqual(oc, { ok: false, error: exited });
  });
});

describe("one SageMaker processing job (stand-in) for a group, on S3 (radosgw)", { timeout: 300_000 }, () => {
  let s3: S3Server;
  let store: S3Store;
  let platform: Platform;
  let standin: SageMakerStandin;
  let dir: string;
  const events: ProcessingJobStateChangeEvent[] = [];

  before(
    async () => {
      dir = await tempDir("headstart-group-e2e-");
      await buildEmbedBatchBundle(); // the container runs the bundle, as the image does
      s3 = await startS3Server();
      ({ store, platform } = await s3TestPlatform(s3, { dir, prefix: "customer-a", defaultBackbone: A }));
      await writeTinyBackbone(join(dir, "backbone-a"));
      await platform.addBackbone(join(dir, "backbone-a"));
      await writeTinyBackbone(join(dir, "backbone-b"), B, { salt: "b" });
      await platform.addBackbone(join(dir, "backbone-b"));
      standin = await startStandinOn(s3, (e) => {
        events.push(e);
      });
    },
    { timeout: 240_000 },
  );
  after(async () => {
    await standin?.stop();
    await s3?.stop();
  });

  test("both jobs' shards split over 2 instances; the Completed event succeeds both; a resubmit starts nothing", async () => {
    const [a, b] = await planBoth(platform);
    const runner = new SageMakerJobRunner(
      store,
      {
        roleArn: "arn:aws:iam::123456789012:role/headstart-customer-a-embed-job",
        imageUri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/headstart-embed:test",
        instanceType: "ml.g5.xlarge",
        instanceCount: 2,
        maxRuntimeSeconds: 900,
        volumeSizeGb: 30,
      },
      {
        region: s3.region,
        logLevel: "error",
        client: new SageMakerClient({
          region: s3.region,
          endpoint: standin.endpoint,
          credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
        }),
      },
    );
    const submitted = await runner.submitAll([a, b]);
    const name = submitted[0].externalId!;
    assert.match(name, /^embed-films-\d+-g[0-9a-f]{15}$/);
    assert.deepEqual(
      submitted.map((j) => [j.job, j.state, j.externalId]),
      [
        [a.job, "running", name],
        [b.job, "running", name],
      ],
    );
    assert.deepEqual([...standin.jobs.keys()], [name], "one processing job for both");
    const processing = standin.jobs.get(name)!;
    await processing.done;
    assert.equal(processing.status, "Completed", processing.failureReason);
    // ShardedByS3Key per input: each instance got half of each job's plans, in its own folder.
    assert.deepEqual(
      processing.instances.map((i) => i.inputs),
      [
        {
          "plans-1": ["_plan-00000.json", "_plan-00002.json"],
          "plans-2": ["_plan-00000.json", "_plan-00002.json"],
        },
        {
          "plans-1": ["_plan-00001.json", "_plan-00003.json"],
          "plans-2": ["_plan-00001.json", "_plan-00003.json"],
        },
      ],
    );
    for (const inst of processing.instances) {
      const line = lastLine(inst.stdout);
      assert.deepEqual(
        line.jobs.map((r: { job: string; shardsCommitted: number }) => [r.job, r.shardsCommitted]),
        [
          [a.job, 2],
          [b.job, 2],
        ],
      );
    }
    assert.deepEqual(await committed(store, a), [0, 1, 2, 3]);
    assert.deepEqual(await committed(store, b), [0, 1, 2, 3]);

    const final = events.filter((e) => e.detail.ProcessingJobName === name).pop()!;
    assert.equal(final.detail.ProcessingJobStatus, "Completed");
    const result = await applyProcessingJobStateChange(store, structuredClone(final));
    assert.equal(result.outcome, "updated");
    assert.deepEqual(endedJobs(result), [a.job, b.job]);
    for (const j of [a, b]) assert.equal((await readJob(store, j.job))!.value.state, "succeeded");

    const again = await runner.submitAll([(await readJob(store, a.job))!.value, b]);
    assert.equal(again[0].state, "succeeded");
    assert.equal(standin.jobs.size, 1, "a resubmit of a finished group starts nothing");
  });
});
