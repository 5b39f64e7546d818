/**
 * `headstart doctor` on the filesystem store: a healthy store is clean; each kind of damage is
 * found under its key and kind; `repair` removes only stray temporaries older than the grace
 * period and leases on committed shards, never committed data. A writer SIGKILLed mid-write
 * leaves a `.~tmp-` file that doctor finds and `--repair` removes, and the store stays readable.
 * The CLI prints the same report and exits non-zero while problems remain.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { readdir, rm, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { createApp } from "../shared/api/app.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { type DoctorReport, runDoctor } from "../shared/doctor/index.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import type { Platform } from "../shared/platform.ts";
import type { FsStore } from "../shared/store/fs.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, "bin", "headstart.js");
const HOUR_AGO = new Date(Date.now() - 3_600_000);

async function headstart(store: string, args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [BIN, "--store", store, "--log-level", "silent", ...args]);
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe("doctor", { timeout: 120_000 }, () => {
  let store: FsStore;
  let platform: Platform;
  let cleanup: () => Promise<void>;
  let dir: string;
  let version: string;

  before(async () => {
    ({ store, platform, cleanup, dir } = await tinyPlatform());
    await writeFile(join(dir, "films.jsonl"), toJsonlText(tinySentimentRows(60, { withSplit: true })));
    await platform.upload("films", join(dir, "films.jsonl"));
    await platform.embed("films", { shardSize: 20 });
    ({ version } = await platform.train({ dataset: "films", head: "films" }));
  });
  after(() => cleanup?.());

  test("a healthy store is clean, and every check looked at something", async () => {
    const report = await runDoctor(store);
    assert.equal(report.ok, true, JSON.stringify(report, null, 1));
    for (const name of ["datasets", "shards", "jobs", "heads", "aliases"] as const)
      assert.ok(report.checks[name].checked > 0, name);
    assert.deepEqual(report.summary, {
      corrupt: 0,
      missing: 0,
      duplicated: 0,
      strayTemporaries: 0,
      staleLeases: 0,
      incomplete: 0,
      repaired: 0,
    });
  });

  test("POST /v1/doctor answers the report; repair is opt-in; a bad body is a 400 naming its field", async () => {
    const app = createApp(platform, makeLogger("test", "silent"));
    const plain = await app.request("/v1/doctor", { method: "POST" });
    assert.equal(plain.status, 200);
    const report = (await plain.json()) as DoctorReport;
    assert.equal(report.ok, true);
    assert.equal(report.repair, false);
    assert.ok(report.checks.shards.checked > 0);
    const post = (body: unknown) =>
      app.request("/v1/doctor", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const repaired = await post({ repair: true, graceSeconds: 60 });
    assert.equal(repaired.status, 200);
    const body = (await repaired.json()) as DoctorReport;
    assert.deepEqual([body.repair, body.graceSeconds], [true, 60]);
    const bad = await post({ repair: "yes" });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { field?: string } }).error.field, "repair");
  });

  test("damage is found by key and kind; repair fixes only what is safe", async () => {
    const t = await tinyPlatform();
    try {
      await writeFile(join(t.dir, "films.jsonl"), toJsonlText(tinySentimentRows(60, { withSplit: true })));
      await t.platform.upload("films", join(t.dir, "films.jsonl"));
      await t.platform.embed("films", { shardSize: 20 });
      const trained = await t.platform.train({ dataset: "films", head: "films" });
      const s = t.store;
      const vectors0 = keys.shardVectors("tiny-text", "films", 0);
      const bytes = (await s.get(vectors0))!.body;
      bytes[bytes.length - 1] ^= 0xff;
      await s.put(vectors0, bytes);
      await s.delete(keys.shardRows("tiny-text", "films", 1));
      await s.put(
        keys.headAlias("films", "canary"),
        JSON.stringify({ head: "films", alias: "canary", version: "v-gone", updatedAt: "x" }),
      );
      const lease = keys.shardLease("tiny-text", "films", 2);
      await s.put(lease, "{}");
      const young = join(s.root, "datasets", "films", "_status.json.~tmp-young");
      const old = join(s.root, "cache", "tiny-text", "films", "shard-00002.npy.~tmp-old");
      await writeFile(young, "x");
      await writeFile(old, "x");
      await utimes(old, HOUR_AGO, HOUR_AGO);

      const found = await runDoctor(s);
      assert.equal(found.ok, false);
      const problems = Object.values(found.checks).flatMap((c) => c.problems);
      assert.deepEqual(
        problems.map((p) => [p.kind, p.key]).sort(),
        [
          ["corrupt", vectors0],
          ["missing", keys.headAlias("films", "canary")],
          ["missing", keys.shardRows("tiny-text", "films", 1)],
          ["staleLease", lease],
          ["strayTemporary", "cache/tiny-text/films/shard-00002.npy.~tmp-old"],
        ].sort(),
      );
      assert.equal(found.summary.corrupt, 1);
      assert.equal(found.summary.missing, 2);

      const repaired = await runDoctor(s, { repair: true });
      assert.equal(repaired.summary.repaired, 2);
      assert.equal(repaired.ok, false, "corrupt and missing data is reported, never 'repaired'");
      const after = await runDoctor(s);
      assert.equal(after.summary.strayTemporaries + after.summary.staleLeases, 0);
      assert.equal(await s.head(lease), undefined);
      // The young temporary may belong to a live writer; committed data is untouched.
      assert.ok((await readdir(join(s.root, "datasets", "films"))).includes("_status.json.~tmp-young"));
      assert.deepEqual((await s.get(vectors0))!.body, bytes);
      assert.ok(await s.head(keys.headFile("films", trained.version, "head.json")));
    } finally {
      await t.cleanup();
    }
  });

  test("a writer SIGKILLed mid-write leaves a temporary; doctor --repair removes it; the store stays readable", async () => {
    // A child putting 8 MiB objects in a loop, killed -9 while one is being written.
    const script = `
      import { FsStore } from ${JSON.stringify(join(PACKAGE_ROOT, "shared", "store", "fs.ts"))};
      const store = new FsStore(${JSON.stringify(store.root)});
      const big = new Uint8Array(8 * 1024 * 1024).fill(7);
      process.stdout.write("ready\\n");
      for (let i = 0; ; i++) await store.put("datasets/films/files/big-" + (i % 4) + ".bin", big);
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      cwd: PACKAGE_ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    const files = join(store.root, "datasets", "films", "files");
    // Kill while a temporary is on disk (each put writes one, then renames it).
    for (let i = 0; i < 2_000; i++) {
      const names = await readdir(files).catch(() => [] as string[]);
      if (names.some((n) => n.includes(".~tmp-"))) break;
      await new Promise((r) => setTimeout(r, 2));
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const left = (await readdir(files)).filter((n) => n.includes(".~tmp-"));
    assert.ok(left.length > 0, "the kill left no temporary; the test did not hit a write");

    // Young: a live writer's, maybe. Reported only once older than the grace period.
    assert.equal((await runDoctor(store)).summary.strayTemporaries, 0);
    const cli = await headstart(store.root, ["--json", "doctor", "--grace", "0"]);
    assert.equal(cli.code, 1, cli.stdout);
    const report = JSON.parse(cli.stdout);
    assert.equal(report.summary.strayTemporaries, left.length);
    assert.ok(
      report.checks.temporaries.problems.every((p: { key: string }) =>
        p.key.startsWith("datasets/films/files/"),
      ),
    );

    const fixed = await headstart(store.root, ["--json", "doctor", "--grace", "0", "--repair"]);
    assert.equal(fixed.code, 0, fixed.stdout);
    assert.equal(JSON.parse(fixed.stdout).summary.repaired, left.length);
    assert.deepEqual(
      (await readdir(files)).filter((n) => n.includes(".~tmp-")),
      [],
    );
    const clean = await headstart(store.root, ["doctor"]);
    assert.equal(clean.code, 0);
    assert.match(clean.stdout, /no problems/);
    // Readable: the objects the child finished, the model, and predictions.
    for (const name of await readdir(files))
      assert.equal((await store.get(`datasets/films/files/${name}`))!.size, 8 * 1024 * 1024);
    const predicted = await platform.predict("films", { inputs: ["wonderful fun"] });
    assert.equal(predicted.version, version);
    await rm(files, { recursive: true, force: true });
  });
});
