/**
 * End to end through the real CLI in child processes: ingest → embed → train → predict →
 * export (read back by numpy), plus a SIGKILL mid-embedding followed by a resume that matches an
 * uninterrupted run byte for byte.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { resolveBackbone } from "../shared/backbone/registry.ts";
import { embeddingKey, textItemSha } from "../shared/cache/address.ts";
import { listCommits, loadCache } from "../shared/cache/shards.ts";
import { keys } from "../shared/layout.ts";
import { FsStore } from "../shared/store/fs.ts";
import { CLI_BIN as BIN, cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const run = promisify(execFile);

function hasNumpy(): Promise<boolean> {
  return run("/usr/bin/python3", ["-c", "import numpy"]).then(
    () => true,
    () => false,
  );
}

describe("headstart CLI end to end", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await tempDir();
    await writeTinyBackbone(join(dir, "backbone"));
    await writeFile(join(dir, "train.jsonl"), toJsonlText(tinySentimentRows(300, { withSplit: true })));
    env = { HEADSTART_STORE: join(dir, "store"), HEADSTART_DEFAULT_BACKBONE: "tiny-text" };
    const added = await cli(["backbone", "add", join(dir, "backbone"), "--json"], env);
    assert.equal(added.code, 0, added.stderr);
  });

  test("ingest → train → predict → export", async () => {
    const bad = `${toJsonlText(tinySentimentRows(300, { withSplit: true }))}{"text": ""}\nnot json\n`;
    await writeFile(join(dir, "mixed.jsonl"), bad);
    const ingest = await cli(["ingest", join(dir, "mixed.jsonl"), "--dataset", "films", "--json"], env);
    assert.equal(ingest.code, 0, ingest.stderr);
    const ingested = JSON.parse(ingest.stdout);
    assert.equal(ingested.status.rows.accepted, 300);
    assert.deepEqual(
      ingested.status.rejected.map((r: { line: number }) => r.line),
      [301, 302],
    );
    assert.equal(ingested.embedding.result.itemsEmbedded, 300);

    const train = await cli(["train", "films", "--head", "films-sentiment", "--json"], env);
    assert.equal(train.code, 0, train.stderr);
    const t = JSON.parse(train.stdout);
    assert.equal(t.evaluation, "test-split");
    assert.ok(t.metrics.accuracy > 0.9 && t.metrics.macroF1 > 0.9, JSON.stringify(t.metrics));
    assert.equal(typeof t.trainSeconds, "number");
    assert.equal(t.type, "logreg");

    const predict = await cli(
      ["predict", "films-sentiment", "--text", "wonderful brilliant fun", "awful dull", "--json"],
      env,
    );
    assert.equal(predict.code, 0, predict.stderr);
    assert.deepEqual(
      JSON.parse(predict.stdout).predictions.map((p: { label: string }) => p.label),
      ["pos", "neg"],
    );

    const out = join(dir, "export");
    const exp = await cli(["export", "films", "--out", out, "--json"], env);
    assert.equal(exp.code, 0, exp.stderr);
    assert.equal(JSON.parse(exp.stdout).rows, 300);
    const rows = (await readFile(join(out, "rows.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(rows[0].id, "r0");
    assert.equal(
      await hasNumpy(),
      true,
      "numpy is needed to check the export (scripts/system-deps.sh installs it)",
    );
    // numpy reads the export with no headstart code, and row i equals the cached vector of rows[i].
    const py = `
import json, sys, numpy as np
x = np.load(sys.argv[1])
assert x.dtype == np.float32 and x.shape == (300, 8), (x.dtype, x.shape)
print(json.dumps(x[[0, 299]].tolist()))`;
    const { stdout } = await run("/usr/bin/python3", ["-c", py, join(out, "embeddings.npy")]);
    const [first, last] = JSON.parse(stdout) as number[][];
    const store = new FsStore(join(dir, "store"));
    const spec = await resolveBackbone(store, "tiny-text", { modelsDir: dir });
    const cache = await loadCache(store, "tiny-text", "films");
    const texts = tinySentimentRows(300, { withSplit: true });
    for (const [vec, row] of [
      [first, texts[0]],
      [last, texts[299]],
    ] as const) {
      const cached = cache.vectors.get(textItemSha(embeddingKey(spec), row.text))!;
      assert.deepEqual(vec, Array.from(cached));
    }
  });

  test("bad input exits 2 with a message naming the problem; a missing head exits 2 too", async () => {
    const r1 = await cli(["train", "films", "--head", "x", "--cv", "one"], env);
    assert.equal(r1.code, 2);
    assert.match(r1.stderr, /--cv must be an integer/);
    const r2 = await cli(["predict", "ghost", "--text", "hi", "--json"], env);
    assert.equal(r2.code, 2);
    assert.equal(JSON.parse(r2.stdout).error.code, "not_found");
    await writeFile(join(dir, "empty.csv"), "");
    const r3 = await cli(["ingest", join(dir, "empty.csv"), "--dataset", "empty"], env);
    assert.equal(r3.code, 2);
    assert.match(r3.stderr, /manifest is empty/);
    const r4 = await cli(["frobnicate"], env);
    assert.equal(r4.code, 2);
  });

  test("SIGKILL mid-embedding, then re-run: same cache as an uninterrupted run, no committed item re-embedded", async () => {
    const big = toJsonlText(tinySentimentRows(30_000, { seed: 11 }));
    await writeFile(join(dir, "big.jsonl"), big);
    const killedEnv = { ...env, HEADSTART_STORE: join(dir, "killed") };
    const cleanEnv = { ...env, HEADSTART_STORE: join(dir, "clean") };
    for (const e of [killedEnv, cleanEnv]) {
      assert.equal((await cli(["backbone", "add", join(dir, "backbone")], e)).code, 0);
      assert.equal(
        (await cli(["ingest", join(dir, "big.jsonl"), "--dataset", "big", "--no-embed"], e)).code,
        0,
      );
    }

    // Kill the worker as soon as its second shard is committed.
    const child: ChildProcess = spawn(process.execPath, [BIN, "embed", "big", "--shard-size", "500"], {
      env: { ...process.env, ...killedEnv, HEADSTART_LOG_LEVEL: "info" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let commits = 0;
    const exited = new Promise<number | null>((resolve) =>
      child.on("exit", (_code, signal) => resolve(signal ? -1 : _code)),
    );
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      commits += (chunk.match(/"shard committed"/g) ?? []).length;
      if (commits >= 2) child.kill("SIGKILL");
    });
    assert.equal(await exited, -1, "the embed process was killed");

    const killedStore = new FsStore(join(dir, "killed"));
    const before = await listCommits(killedStore, "tiny-text", "big");
    assert.ok(before.length >= 2 && before.length < 60, `committed before the kill: ${before.length}`);

    const resumed = await cli(["embed", "big", "--shard-size", "500", "--json"], killedEnv);
    assert.equal(resumed.code, 0, resumed.stderr);
    const r = JSON.parse(resumed.stdout);
    assert.equal(r.result.shardsSkipped, before.length);
    assert.equal(
      r.result.itemsEmbedded,
      30_000 - before.length * 500,
      "only uncommitted items were embedded",
    );

    const clean = await cli(["embed", "big", "--shard-size", "500", "--json"], cleanEnv);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(JSON.parse(clean.stdout).job.datasetVersion, r.job.datasetVersion, "same dataset version");

    const cleanStore = new FsStore(join(dir, "clean"));
    const a = await listCommits(killedStore, "tiny-text", "big");
    const b = await listCommits(cleanStore, "tiny-text", "big");
    assert.deepEqual(a.slice(0, before.length), before, "commits made before the kill were not rewritten");
    assert.equal(a.length, 60);
    assert.deepEqual(
      a.map((c) => [c.shard, c.count, c.vectorsSha256, c.rowsSha256]),
      b.map((c) => [c.shard, c.count, c.vectorsSha256, c.rowsSha256]),
      "byte-identical shards",
    );
    const k0 = await killedStore.get(keys.shardVectors("tiny-text", "big", 59));
    const c0 = await cleanStore.get(keys.shardVectors("tiny-text", "big", 59));
    assert.deepEqual(k0?.body, c0?.body);
  });

  after(() => rm(dir, { recursive: true, force: true }));
});
