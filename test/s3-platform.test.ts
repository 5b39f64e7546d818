/**
 * The whole platform, unchanged, on a real S3 server (Ceph radosgw on loopback), with the store
 * under a key prefix (`customer-a/`) in a fresh bucket: the Platform API in this process, the
 * real CLI and the batch entry point in child processes (as on a laptop and on a SageMaker
 * instance handed its share of plans by ShardedByS3Key), worker-process jobs as `serve` runs
 * them, and a real radosgw bucket notification fed to the ingest Lambda handler.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3Store } from "../shared/aws/s3-store.ts";
import { resolveBackbone } from "../shared/backbone/registry.ts";
import { embeddingKey, textItemSha } from "../shared/cache/address.ts";
import { decodeNpy } from "../shared/cache/npy.ts";
import { listCommits, loadCache } from "../shared/cache/shards.ts";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { readJob } from "../shared/embed/job.ts";
import { keys } from "../shared/layout.ts";
import { openStore } from "../shared/open-store.ts";
import { Platform } from "../shared/platform.ts";
import { tempDir, tinyPlatform } from "./helpers/platform.ts";
import {
  listenForBucketNotifications,
  type S3Server,
  s3Env,
  s3TestPlatform,
  startS3Server,
} from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, "bin", "headstart.js");
const BATCH_ENTRY = join(PACKAGE_ROOT, "functions", "embed-batch", "main.ts");
const PREFIX = "customer-a";
const BACKBONE = "tiny-text";
/** Workers report their result on stdout, so even a silent worker's job must succeed. */
const WORKER_LOG_LEVEL = "silent";

interface ChildResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function node(args: string[], env: NodeJS.ProcessEnv): Promise<ChildResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd: PACKAGE_ROOT,
      env,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The structured log lines a child wrote to stderr. */
function logLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Uploaded twice: 120 good rows then 3 bad lines; then the same with 10 more good rows. */
const FILMS_V1 = `${toJsonlText(tinySentimentRows(120, { withSplit: true }))}{"text": ""}\nnot json\n{"text": "good", "image": "a.png"}\n`;
const FILMS_V2 = `${toJsonlText(tinySentimentRows(130, { withSplit: true }))}{"text": ""}\nnot json\n{"text": "good", "image": "a.png"}\n`;

describe("the platform on a real S3 server (radosgw), under a key prefix", { timeout: 300_000 }, () => {
  let s3: S3Server;
  let store: S3Store;
  let bucket: string;
  let dir: string;
  let platform: Platform;
  let childEnv: NodeJS.ProcessEnv;
  const savedEnv = { ...process.env };
  const cleanups: Array<() => Promise<unknown>> = [];

  /** Every key in the bucket, as S3 has it (prefix included). */
  async function bucketKeys(): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const res = await s3.client.send(
        new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
      );
      for (const o of res.Contents ?? []) out.push(o.Key!);
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  before(
    async () => {
      dir = await tempDir("headstart-s3-platform-");
      s3 = await startS3Server();
      ({ store, platform } = await s3TestPlatform(s3, { dir, prefix: PREFIX, defaultBackbone: BACKBONE }));
      bucket = store.bucket;

      childEnv = {
        ...process.env,
        ...s3Env(s3, bucket, PREFIX),
        HEADSTART_DEFAULT_BACKBONE: BACKBONE,
        HEADSTART_MODELS_DIR: join(dir, "child-models"),
        // A scratch dir of its own: the child downloads the backbone from S3 itself.
        HEADSTART_SCRATCH_DIR: join(dir, "child-scratch"),
        HEADSTART_LOG_LEVEL: "warn",
      };
    },
    { timeout: 240_000 },
  );

  after(async () => {
    for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
    Object.assign(process.env, savedEnv);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("Platform API: backbone, upload with bad rows, sharded embed, train, predict, cache layout", async () => {
    await writeTinyBackbone(join(dir, "backbone"));
    const spec = await platform.addBackbone(join(dir, "backbone"));
    assert.equal(spec.id, BACKBONE);

    await writeFile(join(dir, "films.jsonl"), FILMS_V1);
    const status = await platform.upload("films", join(dir, "films.jsonl"));
    assert.equal(status.state, "ingested");
    assert.equal(status.rows.accepted, 120);
    assert.deepEqual(
      status.rejected.map((r) => r.line),
      [121, 122, 123],
    );

    const { job, result } = await platform.embed("films", { shardSize: 25 });
    assert.deepEqual(job.shards, [0, 1, 2, 3, 4]);
    assert.equal(job.state, "succeeded");
    assert.deepEqual(result, {
      job: job.job,
      shardsCommitted: 5,
      shardsSkipped: 0,
      itemsEmbedded: 120,
      itemsFailed: 0,
      failures: [],
    });

    // On S3 every object lives under the prefix; each shard has vectors, rows, plan and commit.
    const all = await bucketKeys();
    assert.ok(all.length > 0);
    for (const k of all) assert.ok(k.startsWith(`${PREFIX}/`), `${k} escaped the prefix`);
    const cacheKeys = all.filter((k) => k.startsWith(`${PREFIX}/${keys.cachePrefix(BACKBONE, "films")}`));
    const expected = [0, 1, 2, 3, 4].flatMap((s) =>
      [
        keys.shardCommit(BACKBONE, "films", s),
        keys.shardPlan(BACKBONE, "films", s),
        keys.shardVectors(BACKBONE, "films", s),
        keys.shardRows(BACKBONE, "films", s),
      ].map((k) => `${PREFIX}/${k}`),
    );
    assert.deepEqual(cacheKeys, expected.sort());
    assert.ok(all.includes(`${PREFIX}/${keys.job(job.job)}`));
    assert.ok(all.includes(`${PREFIX}/${keys.backboneSpec(BACKBONE)}`));
    const commits = await listCommits(store, BACKBONE, "films");
    assert.deepEqual(
      commits.map((c) => [c.shard, c.count, c.job]),
      [0, 1, 2, 3, 4].map((s) => [s, s < 4 ? 25 : 20, job.job]),
    );

    const cache = await loadCache(store, BACKBONE, "films");
    assert.equal(cache.shards, 5);
    assert.equal(cache.dim, 8);
    assert.equal(cache.vectors.size, 120);
    const ek = embeddingKey(spec);
    for (const row of tinySentimentRows(120)) {
      const v = cache.vectors.get(textItemSha(ek, row.text));
      assert.ok(v && v.length === 8 && v.every(Number.isFinite), `vector of ${row.id}`);
    }

    const trained = await platform.train({ dataset: "films", head: "films-sentiment" });
    assert.equal(trained.evaluation, "test-split");
    assert.equal(trained.counts.test, 24);
    assert.ok(trained.metrics!.accuracy > 0.9, JSON.stringify(trained.metrics));
    assert.equal(trained.promoted, true);
    const predicted = await platform.predict("films-sentiment", {
      inputs: ["wonderful brilliant fun", "awful dull boring", "the plot was great"],
    });
    assert.equal(predicted.version, trained.version);
    assert.deepEqual(
      predicted.predictions.map((p) => p.label),
      ["pos", "neg", "pos"],
    );

    // Resume is a no-op: every shard is committed, nothing is embedded again.
    const again = await platform.embed("films", { shardSize: 25 });
    assert.equal(again.job.job, job.job);
    assert.deepEqual(again.result, {
      job: job.job,
      shardsCommitted: 0,
      shardsSkipped: 5,
      itemsEmbedded: 0,
      itemsFailed: 0,
      failures: [],
    });

    // A re-upload with 10 new rows embeds only those, into the next free shard index.
    await writeFile(join(dir, "films.jsonl"), FILMS_V2);
    assert.equal((await platform.upload("films", join(dir, "films.jsonl"))).rows.accepted, 130);
    const grown = await platform.embed("films", { shardSize: 25 });
    assert.notEqual(grown.job.job, job.job);
    assert.deepEqual(grown.job.shards, [5]);
    assert.deepEqual(grown.job.items, { toEmbed: 10, cached: 120, unsupported: 0 });
    assert.equal(grown.result.itemsEmbedded, 10);
    assert.equal((await loadCache(store, BACKBONE, "films")).vectors.size, 130);
  });

  test("CLI in a child process on the same bucket: train, predict, export equal to an FsStore export", async () => {
    // Export through the global flags instead of HEADSTART_STORE / HEADSTART_S3_ENDPOINT.
    const {
      HEADSTART_STORE: _store,
      HEADSTART_S3_ENDPOINT: _endpoint,
      ...flagEnv
    } = childEnv as Record<string, string>;
    const out = join(dir, "export-s3");
    const [train, exp] = await Promise.all([
      node([BIN, "train", "films", "--head", "cli-sentiment", "--json"], childEnv),
      node(
        [
          BIN,
          "export",
          "films",
          "--out",
          out,
          "--store",
          `s3://${bucket}/${PREFIX}`,
          "--endpoint",
          s3.endpoint,
          "--json",
        ],
        flagEnv,
      ),
    ]);
    assert.equal(train.code, 0, train.stderr);
    const t = JSON.parse(train.stdout);
    assert.equal(t.head, "cli-sentiment");
    assert.equal(t.evaluation, "test-split");
    assert.equal(t.type, "logreg");
    assert.ok(t.metrics.accuracy > 0.9 && t.metrics.macroF1 > 0.9, JSON.stringify(t.metrics));
    assert.equal(typeof t.trainSeconds, "number");
    assert.ok(
      (await bucketKeys()).includes(`${PREFIX}/${keys.headFile("cli-sentiment", t.version, "head.json")}`),
    );

    // The CLI's head and the one trained in this process both serve from the bucket.
    const [p1, p2] = await Promise.all(
      ["cli-sentiment", "films-sentiment"].map((head) =>
        node([BIN, "predict", head, "--text", "wonderful brilliant fun", "awful dull", "--json"], childEnv),
      ),
    );
    for (const p of [p1, p2]) {
      assert.equal(p.code, 0, p.stderr);
      assert.deepEqual(
        JSON.parse(p.stdout).predictions.map((x: { label: string }) => x.label),
        ["pos", "neg"],
      );
    }
    assert.equal(JSON.parse(p1.stdout).version, t.version);

    assert.equal(exp.code, 0, exp.stderr);
    const e = JSON.parse(exp.stdout);
    assert.equal(e.rows, 130);
    assert.equal(e.dim, 8);

    // The same final manifest on an FsStore, embedded fresh in one go with another shard size.
    const fs = await tinyPlatform();
    cleanups.push(fs.cleanup);
    await fs.platform.putManifest("films", "jsonl", FILMS_V2);
    await fs.platform.embed("films", { shardSize: 1000 });
    const fsOut = join(fs.dir, "export-fs");
    await fs.platform.export("films", fsOut);
    const [s3Npy, fsNpy] = await Promise.all([
      readFile(join(out, "embeddings.npy")),
      readFile(join(fsOut, "embeddings.npy")),
    ]);
    assert.ok(s3Npy.equals(fsNpy), "embeddings.npy from S3 (incremental, 6 shards) = from FsStore (1 shard)");
    assert.equal(
      await readFile(join(out, "rows.jsonl"), "utf8"),
      await readFile(join(fsOut, "rows.jsonl"), "utf8"),
    );

    // And row i of the export is the S3 cache's vector of manifest row i.
    const { data, rows, cols } = decodeNpy(new Uint8Array(s3Npy));
    assert.deepEqual([rows, cols], [130, 8]);
    const spec = await resolveBackbone(store, BACKBONE, { modelsDir: join(dir, "models") });
    const cache = await loadCache(store, BACKBONE, "films");
    tinySentimentRows(130).forEach((row, i) => {
      assert.deepEqual(
        data.subarray(i * 8, (i + 1) * 8),
        cache.vectors.get(textItemSha(embeddingKey(spec), row.text)),
        `row ${i}`,
      );
    });
  });

  test("batch entry point: each run commits exactly the shards whose plans it was handed", async () => {
    await platform.putManifest("batch", "jsonl", toJsonlText(tinySentimentRows(90, { seed: 7 })));
    const job = await platform.planEmbed("batch", { shardSize: 20 });
    assert.deepEqual(job.shards, [0, 1, 2, 3, 4]);
    assert.equal(job.state, "planned");
    assert.deepEqual(await listCommits(store, BACKBONE, "batch"), []);

    // What ShardedByS3Key copies onto one instance: some of the job's `_plan-NNNNN.json` objects.
    // A plan of another job (films) lying in the same folder must be ignored.
    const handOut = async (name: string, plans: Array<[string, number]>) => {
      const plansDir = join(dir, name);
      await mkdir(plansDir, { recursive: true });
      for (const [dataset, shard] of plans) {
        const obj = await store.get(keys.shardPlan(BACKBONE, dataset, shard));
        assert.ok(obj, `plan ${dataset}/${shard}`);
        await writeFile(join(plansDir, `${dataset}-_plan-${String(shard).padStart(5, "0")}.json`), obj.body);
      }
      return plansDir;
    };
    const batch = (plansDir: string) =>
      node(["--import", "tsx", BATCH_ENTRY], {
        ...childEnv,
        HEADSTART_JOB: job.job,
        HEADSTART_PLANS_DIR: plansDir,
        HEADSTART_BATCH_SIZE: "7",
        HEADSTART_LOG_LEVEL: "info",
      });
    const filmsCommits = await listCommits(store, BACKBONE, "films");

    const first = await batch(
      await handOut("plans-a", [
        ["batch", 0],
        ["batch", 2],
        ["films", 1],
      ]),
    );
    assert.equal(first.code, 0, first.stderr);
    const logs1 = logLines(first.stderr);
    assert.deepEqual(logs1.find((l) => l.message === "batch stage starting")?.shards, [0, 2]);
    const finished1 = logs1.find((l) => l.message === "batch stage finished");
    assert.deepEqual(
      [finished1?.shardsCommitted, finished1?.shardsSkipped, finished1?.itemsEmbedded],
      [2, 0, 40],
    );
    assert.deepEqual(
      (await listCommits(store, BACKBONE, "batch")).map((c) => [c.shard, c.count, c.job]),
      [
        [0, 20, job.job],
        [2, 20, job.job],
      ],
    );
    // Nothing at all was written for the shards this instance was not given.
    const written = (await bucketKeys()).filter((k) => /\/shard-\d{5}\./.test(k) && k.includes("/batch/"));
    assert.deepEqual(
      written,
      [0, 2].flatMap((s) => [
        `${PREFIX}/${keys.shardVectors(BACKBONE, "batch", s)}`,
        `${PREFIX}/${keys.shardRows(BACKBONE, "batch", s)}`,
      ]),
    );
    assert.deepEqual(await listCommits(store, BACKBONE, "films"), filmsCommits, "films untouched");

    // The other instance's share (plus a shard the first one already committed, as on a retry).
    const second = await batch(
      await handOut("plans-b", [
        ["batch", 1],
        ["batch", 2],
        ["batch", 3],
        ["batch", 4],
      ]),
    );
    assert.equal(second.code, 0, second.stderr);
    const finished2 = logLines(second.stderr).find((l) => l.message === "batch stage finished");
    assert.deepEqual(
      [finished2?.shardsCommitted, finished2?.shardsSkipped, finished2?.itemsEmbedded],
      [3, 1, 50],
    );
    const commits = await listCommits(store, BACKBONE, "batch");
    assert.deepEqual(
      commits.map((c) => [c.shard, c.count]),
      [
        [0, 20],
        [1, 20],
        [2, 20],
        [3, 20],
        [4, 10],
      ],
    );
    assert.equal((await loadCache(store, BACKBONE, "batch")).vectors.size, 90);
    const info = await platform.datasetInfo("batch");
    assert.equal(info.embedding.cachedItems, 90);
    assert.equal(info.embedding.job?.shardsCommitted, 5);
    // Planning again returns the same job, and the dataset is trainable from the cache alone.
    assert.deepEqual((await platform.planEmbed("batch", { shardSize: 20 })).shards, job.shards);
    const trained = await platform.train({ dataset: "batch", head: "batch-sentiment" });
    assert.equal(trained.evaluation, "cv");
    assert.equal(trained.counts.train, 90);
  });

  test("worker-process jobs (as `headstart serve --store s3://… --endpoint …`) reach the same server", async () => {
    // Credentials from the environment as usual; store and endpoint only from flags (config overrides).
    for (const k of ["HEADSTART_STORE", "HEADSTART_S3_ENDPOINT"]) delete process.env[k];
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    });
    const config = loadConfig(
      {},
      {
        store: store.url,
        s3Endpoint: s3.endpoint,
        region: s3.region,
        defaultBackbone: BACKBONE,
        modelsDir: join(dir, "worker-models"),
        scratchDir: join(dir, "worker-scratch"),
        logLevel: WORKER_LOG_LEVEL,
      },
    );
    const errors: unknown[] = [];
    const served = new Platform(openStore(config), config, {
      worker: "process",
      onJobError: (_job, err) => errors.push(err),
    });
    await served.putManifest("served", "jsonl", toJsonlText(tinySentimentRows(30, { seed: 5 })));
    const job = await served.submitEmbed("served", { shardSize: 10 });
    assert.deepEqual(job.shards, [0, 1, 2]);
    await served.local.idle();
    assert.deepEqual(errors, []);
    const done = await readJob(store, job.job);
    assert.equal(done?.value.state, "succeeded", done?.value.error);
    assert.equal((await loadCache(store, BACKBONE, "served")).vectors.size, 30);
  });

  test("a radosgw bucket notification for an uploaded manifest drives the ingest Lambda handler", async () => {
    // radosgw pushes ObjectCreated events under `<prefix>/datasets/` to a loopback listener.
    const notifications = await listenForBucketNotifications(s3, bucket, PREFIX);
    cleanups.push(() => notifications.close());
    const keysSeen = () => notifications.received.flatMap((e) => e.Records.map((r) => r.s3.object.key));

    // The Lambda reads its environment at import; it gets this store from it.
    Object.assign(process.env, childEnv, { HEADSTART_LOG_LEVEL: "silent" });
    const { handler } = await import("../functions/ingest/handler.ts");

    // Another customer's upload is outside the filter; then the data owner uploads a manifest
    // straight to the bucket, as with `aws s3 cp`.
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `customer-b/datasets/reviews/manifest.jsonl`,
        Body: toJsonlText(tinySentimentRows(5)),
      }),
    );
    const manifestKey = `${PREFIX}/${keys.manifest("reviews", "jsonl")}`;
    await s3.client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: manifestKey,
        Body: `${toJsonlText(tinySentimentRows(40, { withSplit: true, seed: 3 }))}{"label": "pos"}\n`,
        ContentType: "application/x-ndjson",
      }),
    );
    const event = await notifications.eventFor(manifestKey);
    assert.equal(event.Records[0].eventSource, "ceph:s3");
    assert.ok(!keysSeen().some((k) => k.startsWith("customer-b/")), "the prefix filter holds");

    const { results } = await handler(event);
    assert.equal(results.length, 1);
    assert.equal(results[0].dataset, "reviews");
    assert.equal(results[0].state, "ingested");
    assert.equal(results[0].accepted, 40);
    assert.equal(results[0].rejected, 1);
    assert.ok(results[0].job);

    const info = await platform.datasetInfo("reviews");
    assert.equal(info.status.rows.accepted, 40);
    assert.equal(info.embedding.cachedItems, 40);
    assert.equal((await readJob(store, results[0].job))?.value.state, "succeeded");

    // The handler's own writes (`_rows.jsonl`, `_status.json`) notify too, and are ignored.
    const own = await notifications.eventFor(`${PREFIX}/${keys.datasetStatus("reviews")}`);
    assert.deepEqual((await handler(own)).results, []);
    const trained = await platform.train({ dataset: "reviews", head: "reviews-sentiment" });
    assert.equal(trained.evaluation, "test-split");
  });
});
