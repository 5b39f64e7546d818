/**
 * At-least-once safety of planning and embedding: 2, 4 and 8 real `headstart embed` processes of
 * one dataset at once, on FsStore and on S3 (radosgw), left alone, with some SIGKILLed mid-run
 * (then one more run), and with one paused past its lease and resumed after the others are done.
 * Every outcome is one job, `succeeded`, every planned shard committed once, no lease left, no
 * runnable orphan plan, and a cache byte-identical to one uninterrupted run.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { listCommits } from "../shared/cache/shards.ts";
import { loadConfig } from "../shared/config.ts";
import { EmbedJob } from "../shared/embed/job.ts";
import { isStale, ShardLease } from "../shared/embed/lease.ts";
import { readShardPlan } from "../shared/embed/plan.ts";
import { keys, parseKey } from "../shared/layout.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { getJson } from "../shared/store/json.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { CLI_BIN } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";
import { createS3TestStore, type S3Server, s3Env, startS3Server } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const DATASET = "films";
const ITEMS = 6_000;
const SHARD_SIZE = 150;
const SHARDS = ITEMS / SHARD_SIZE;
/** Short, so the paused run's lease lapses quickly; killed runs are detected without waiting. */
const LEASE_TTL_S = "2";

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface EmbedRun {
  child: ChildProcess;
  exit: Promise<Exit>;
}

/** Every child started, so a failed test leaves none behind (a stopped one would hang the file). */
const children = new Set<ChildProcess>();

/** `headstart embed` (or other arguments) in a child process; `onCommit` hears each shard it commits. */
function startEmbed(
  env: NodeJS.ProcessEnv,
  onCommit?: (run: EmbedRun) => void,
  args = ["embed", DATASET],
): EmbedRun {
  const child = spawn(process.execPath, [CLI_BIN, ...args, "--shard-size", String(SHARD_SIZE), "--json"], {
    env: { ...process.env, ...env, HEADSTART_LOG_LEVEL: "info", HEADSTART_LEASE_TTL_S: LEASE_TTL_S },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stdout = "";
  let stderr = "";
  const run: EmbedRun = {
    child,
    exit: new Promise((resolve) => {
      child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    }),
  };
  child.stdout!.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr!.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
    for (const _ of c.match(/"shard committed"/g) ?? []) onCommit?.(run);
  });
  return run;
}

function assertSucceeded(exit: Exit, what: string): { job: EmbedJob; result: { shardsCommitted: number } } {
  assert.equal(exit.code, 0, `${what} exited ${exit.code ?? exit.signal}: ${exit.stderr.slice(-2_000)}`);
  return JSON.parse(exit.stdout);
}

interface Reference {
  commits: Array<[number, string, string]>;
  embeddings: Buffer;
  rows: Buffer;
}

describe("concurrent `headstart embed` runs of one dataset", () => {
  let dir: string;
  let s3: S3Server;
  let reference: Reference;
  let stores = 0;
  let exports = 0;

  /** A fresh store with the tiny backbone and the dataset ingested (not embedded). */
  async function freshStore(
    kind: "fs" | "s3",
    ingest = true,
  ): Promise<{ store: ObjectStore; env: NodeJS.ProcessEnv; platform: Platform }> {
    const n = stores++;
    const store: ObjectStore =
      kind === "fs" ? new FsStore(join(dir, `store-${n}`)) : await createS3TestStore(s3);
    const env =
      kind === "fs"
        ? { HEADSTART_STORE: (store as FsStore).root }
        : s3Env(s3, (store as Awaited<ReturnType<typeof createS3TestStore>>).bucket);
    const config = loadConfig(
      { ...env, HEADSTART_LOG_LEVEL: "silent" },
      { defaultBackbone: "tiny-text", modelsDir: join(dir, "models"), scratchDir: join(dir, `scratch-${n}`) },
    );
    const platform = new Platform(store, config);
    await platform.addBackbone(join(dir, "backbone"));
    if (ingest) await platform.upload(DATASET, join(dir, "films.jsonl"));
    return { store, env: { ...env, HEADSTART_DEFAULT_BACKBONE: "tiny-text" }, platform };
  }

  /** What every scenario must end with, whatever happened to its processes. */
  async function assertComplete(store: ObjectStore, platform: Platform): Promise<EmbedJob> {
    const jobKeys = (await store.list("jobs/")).filter((o) => parseKey(o.key)?.kind === "job");
    assert.equal(jobKeys.length, 1, `one job file: ${jobKeys.map((o) => o.key).join(", ")}`);
    const job = (await getJson(store, jobKeys[0]!.key, EmbedJob))!.value;
    assert.equal(job.state, "succeeded");
    assert.equal(job.shards.length, SHARDS);

    const objects = await store.list(keys.cachePrefix("tiny-text", DATASET));
    const byKind = (kind: string) =>
      objects
        .map((o) => parseKey(o.key))
        .flatMap((p) => (p && p.kind === kind && "shard" in p ? [p.shard] : []));
    assert.deepEqual(byKind("shardCommit"), job.shards, "every planned shard committed, nothing else");
    assert.deepEqual(byKind("shardLease"), [], "no lease left behind");
    const plans = byKind("shardPlan");
    assert.ok(
      job.shards.every((s) => plans.includes(s)),
      "every planned shard keeps its plan",
    );
    for (const shard of plans.filter((s) => !job.shards.includes(s))) {
      const plan = await readShardPlan(store, "tiny-text", DATASET, shard);
      assert.ok(plan.orphaned && plan.items.length === 0, `plan ${shard} outside the job is withdrawn`);
    }

    const commits = await listCommits(store, "tiny-text", DATASET);
    assert.ok(commits.every((c) => c.job === job.job));
    assert.deepEqual(
      commits.map((c) => [c.count, c.vectorsSha256, c.rowsSha256]),
      reference.commits,
      "shard for shard, the same bytes as one uninterrupted run",
    );
    // Export loads every shard, checked against its commit marker, and joins it with the rows.
    const out = join(dir, `export-${exports++}`);
    await platform.export(DATASET, out);
    assert.ok((await readFile(join(out, "embeddings.npy"))).equals(reference.embeddings), "embeddings.npy");
    assert.ok((await readFile(join(out, "rows.jsonl"))).equals(reference.rows), "rows.jsonl");
    return job;
  }

  before(
    async () => {
      dir = await tempDir();
      await writeTinyBackbone(join(dir, "backbone"));
      await writeFile(
        join(dir, "films.jsonl"),
        toJsonlText(tinySentimentRows(ITEMS, { seed: 5, withSplit: true })),
      );
      s3 = await startS3Server();
      // The reference: one run, alone and uninterrupted.
      const { store, env, platform } = await freshStore("fs");
      const single = assertSucceeded(await startEmbed(env).exit, "the reference run");
      assert.equal(single.result.shardsCommitted, SHARDS);
      const out = join(dir, "reference");
      await platform.export(DATASET, out);
      reference = {
        commits: (await listCommits(store, "tiny-text", DATASET)).map((c) => [
          c.count,
          c.vectorsSha256,
          c.rowsSha256,
        ]),
        embeddings: await readFile(join(out, "embeddings.npy")),
        rows: await readFile(join(out, "rows.jsonl")),
      };
    },
    { timeout: 300_000 },
  );
  after(async () => {
    for (const child of children) child.kill("SIGKILL");
    await s3?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  for (const kind of ["fs", "s3"] as const) {
    for (const n of [2, 4, 8]) {
      test(`${n} runs at once on ${kind}: each shard embedded by exactly one of them`, async () => {
        const { store, env, platform } = await freshStore(kind);
        const runs = Array.from({ length: n }, () => startEmbed(env));
        const exits = await Promise.all(runs.map((r) => r.exit));
        const results = exits.map((e, i) => assertSucceeded(e, `run ${i}`));
        const job = await assertComplete(store, platform);
        for (const r of results) assert.equal(r.job.job, job.job);
        assert.equal(
          results.reduce((sum, r) => sum + r.result.shardsCommitted, 0),
          SHARDS,
          "commits across all runs",
        );
      });

      const kills = Math.max(1, Math.floor(n / 2) - (n === 8 ? 1 : 0));
      test(`${n} runs at once on ${kind}, ${kills} SIGKILLed mid-run, then one more run`, async () => {
        const { store, env, platform } = await freshStore(kind);
        const killed = new Set<EmbedRun>();
        // Kill a run right after it commits a shard: it is then mid-way through the next one.
        const onCommit = (run: EmbedRun) => {
          if (killed.size < kills && !killed.has(run)) {
            killed.add(run);
            run.child.kill("SIGKILL");
          }
        };
        const runs = Array.from({ length: n }, () => startEmbed(env, onCommit));
        const exits = await Promise.all(runs.map((r) => r.exit));
        let wereKilled = 0;
        exits.forEach((e, i) => {
          if (killed.has(runs[i]!) && e.signal === "SIGKILL") wereKilled++;
          else assertSucceeded(e, `run ${i}`);
        });
        assert.ok(wereKilled >= 1, "at least one run was killed mid-job");
        // The survivors took over the killed runs' shards themselves.
        await assertComplete(store, platform);
        const final = assertSucceeded(await startEmbed(env).exit, "the final run");
        assert.equal(final.result.shardsCommitted, 0);
        assert.equal(final.job.state, "succeeded");
        await assertComplete(store, platform);
      });
    }

    test(`4 runs of \`headstart ingest\` of the same file at once on ${kind}: one version, one job, one cache`, async () => {
      const { store, env, platform } = await freshStore(kind, false);
      const args = ["ingest", join(dir, "films.jsonl"), "--dataset", DATASET];
      const runs = Array.from({ length: 4 }, () => startEmbed(env, undefined, args));
      const outputs = (await Promise.all(runs.map((r) => r.exit))).map((e, i) =>
        assertSucceeded(e, `ingest ${i}`),
      ) as unknown as Array<{ status: { version: string }; embedding: { job: EmbedJob } }>;
      const versions = new Set(outputs.map((o) => o.status.version));
      assert.equal(versions.size, 1, "every run reports the same dataset version");
      assert.equal(new Set(outputs.map((o) => o.embedding.job.job)).size, 1, "and the same job");
      await assertComplete(store, platform);
    });

    test(`on ${kind}, a run paused past its lease loses its shard to 3 others and, resumed, ends cleanly`, async () => {
      const { store, env, platform } = await freshStore(kind);
      // The victim starts alone and is stopped right after its first commit, then let go in
      // short steps until it holds a lease on a shard it has not committed yet.
      let resolveFirst!: () => void;
      const first = new Promise<void>((r) => {
        resolveFirst = r;
      });
      let stopped = false;
      const victim = startEmbed(env, (run) => {
        if (stopped) return;
        stopped = true;
        run.child.kill("SIGSTOP");
        resolveFirst();
      });
      await first;
      const shard = await pauseHoldingLease(store, victim);
      const runs = [victim, ...Array.from({ length: 3 }, () => startEmbed(env))];
      for (const [i, e] of (await Promise.all(runs.slice(1).map((r) => r.exit))).entries()) {
        assertSucceeded(e, `run ${i + 1}`);
      }
      // The others took the paused run's shard over once its lease had lapsed.
      assert.ok((await listCommits(store, "tiny-text", DATASET)).some((c) => c.shard === shard));
      await assertComplete(store, platform);
      victim.child.kill("SIGCONT");
      const resumed = assertSucceeded(await victim.exit, "the resumed run");
      assert.equal(resumed.job.state, "succeeded");
      await assertComplete(store, platform);
    });
  }
});

/**
 * Lets a stopped run go on in short steps until, stopped again, it holds a live lease on an
 * uncommitted shard (as the store shows), and returns that shard.
 */
async function pauseHoldingLease(store: ObjectStore, run: EmbedRun): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    for (const o of await store.list(keys.cachePrefix("tiny-text", DATASET))) {
      if (parseKey(o.key)?.kind !== "shardLease") continue;
      const lease = (await getJson(store, o.key, ShardLease))?.value;
      if (!lease?.owner.includes(`:${run.child.pid}:`) || isStale(lease)) continue;
      // Not one it has just committed (and not yet released): that one needs no taking over.
      if (!(await store.head(keys.shardCommit("tiny-text", DATASET, lease.shard)))) return lease.shard;
    }
    run.child.kill("SIGCONT");
    await sleep(2 + attempt / 10);
    run.child.kill("SIGSTOP");
  }
  throw new Error("the run never held a lease while stopped");
}
