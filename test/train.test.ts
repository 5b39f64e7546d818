import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConflictError, ValidationError } from "../shared/errors.ts";
import { ALIAS_CACHE_MS, listVersions, readAlias, readHeadVersion } from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("training heads on the cache", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest(
      "split",
      "jsonl",
      toJsonlText(tinySentimentRows(200, { withSplit: true })),
    );
    await ctx.platform.embed("split");
    await ctx.platform.putManifest("nosplit", "jsonl", toJsonlText(tinySentimentRows(120, { seed: 3 })));
    await ctx.platform.embed("nosplit");
  });
  after(() => ctx.cleanup());

  test("evaluates on the test split and stores an immutable version made live", async () => {
    const r = await ctx.platform.train({ dataset: "split", head: "sentiment" });
    assert.equal(r.evaluation, "test-split");
    assert.equal(r.counts.test, 40);
    assert.equal(r.counts.train, 160);
    assert.ok(r.metrics!.accuracy > 0.95, `accuracy ${r.metrics!.accuracy}`);
    assert.equal(
      r.metrics!.confusion.flat().reduce((a, b) => a + b, 0),
      40,
    );
    assert.deepEqual(Object.keys(r.metrics!.perClass).sort(), ["neg", "pos"]);
    assert.equal((await readAlias(ctx.store, "sentiment"))?.value.version, r.version);
    const { head, report } = await readHeadVersion(ctx.store, "sentiment", r.version);
    assert.deepEqual(head.labels, ["neg", "pos"]);
    assert.equal(head.backbone.id, "tiny-text");
    assert.equal(report?.metrics?.accuracy, r.metrics!.accuracy);
    // Versions are create-only: rewriting one fails and leaves it intact.
    await assert.rejects(
      ctx.store.put(keys.headFile("sentiment", r.version, "head.json"), "{}", { ifNoneMatch: "*" }),
      { name: "PreconditionFailedError" },
    );
  });

  test("reports where its time went, phase by phase", async () => {
    const calibrated = await ctx.platform.train({ dataset: "split", head: "timed", promote: false });
    const t = calibrated.timings;
    assert.deepEqual(Object.keys(t), ["load", "fit", "calibrate", "evaluate", "unknown", "report", "write"]);
    for (const [phase, s] of Object.entries(t)) assert.ok(s >= 0 && Number.isFinite(s), `${phase} ${s}`);
    // Calibration's out-of-fold fits, scoring the test split and the stored files all take time.
    for (const phase of ["load", "fit", "calibrate", "evaluate", "write"] as const)
      assert.ok(t[phase] > 0, `${phase} took no time`);
    // trainSeconds ends before the report and the write: the phases up to it fit inside it.
    const upToUnknown = t.load + t.fit + t.calibrate + t.evaluate + t.unknown;
    assert.ok(upToUnknown <= calibrated.trainSeconds + 1e-3, `${upToUnknown} vs ${calibrated.trainSeconds}`);
    const plain = await ctx.platform.train({
      dataset: "split",
      head: "timed",
      calibrate: false,
      promote: false,
    });
    assert.equal(plain.timings.calibrate, 0, "no calibration, no calibration time");
  });

  test("falls back to stratified k-fold cross-validation without a test split", async () => {
    const r = await ctx.platform.train({ dataset: "nosplit", head: "cv-head", cv: 4, seed: 1 });
    assert.equal(r.evaluation, "cv");
    assert.equal(r.metrics!.n, 120);
    assert.equal(r.counts.train, 120);
    assert.ok(r.metrics!.accuracy > 0.9, `accuracy ${r.metrics!.accuracy}`);
    const again = await ctx.platform.train({ dataset: "nosplit", head: "cv-head", cv: 4, seed: 1 });
    assert.equal(again.metrics!.accuracy, r.metrics!.accuracy, "deterministic given a seed");
    assert.deepEqual(await listVersions(ctx.store, "cv-head"), [r.version, again.version].sort());
  });

  test("predicts texts and embeddings with the live version", async () => {
    const out = await ctx.platform.predict("sentiment", {
      inputs: ["great fun wonderful", "awful boring worst"],
    });
    assert.deepEqual(
      out.predictions.map((p) => p.label),
      ["pos", "neg"],
    );
    for (const p of out.predictions) {
      assert.ok(Math.abs(p.scores!.pos + p.scores!.neg - 1) < 1e-9);
      assert.equal(p.score, Math.max(p.scores!.pos, p.scores!.neg));
    }
    await assert.rejects(ctx.platform.predict("sentiment", { embeddings: [[1, 2, 3]] }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.field, "embeddings[0]");
      return true;
    });
  });

  test("predict sees a move made here at once, and one made by another process within ALIAS_CACHE_MS", async () => {
    const first = await ctx.platform.train({ dataset: "split", head: "cached", seed: 1 });
    const second = await ctx.platform.train({ dataset: "split", head: "cached", seed: 2 });
    const served = async () => (await ctx.platform.predict("cached", { inputs: ["great fun"] })).version;
    assert.equal(await served(), second.version, "a training's promotion is seen at once");
    await ctx.platform.promote("cached", first.version);
    assert.equal(await served(), first.version, "a promotion through this process is seen at once");
    // Another process moves it: the alias document is rewritten behind this process's back.
    const key = keys.headAlias("cached", "live");
    const doc = JSON.parse(new TextDecoder().decode((await ctx.store.get(key))!.body));
    await ctx.store.put(key, JSON.stringify({ ...doc, version: second.version }));
    assert.equal(await served(), first.version, "within the cache window the alias read is reused");
    await new Promise((r) => setTimeout(r, ALIAS_CACHE_MS + 50));
    assert.equal(await served(), second.version, "after it, the move is seen");
  });

  test("rejects bad training requests with the offending field", async () => {
    await assert.rejects(ctx.platform.train({ dataset: "split", head: "x", type: "svm" }), (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.field, "type");
      assert.match(err.message, /available: logreg/);
      return true;
    });
    await assert.rejects(ctx.platform.train({ dataset: "split", head: "x", cv: 1 }), {
      name: "ValidationError",
    });
    await assert.rejects(ctx.platform.train({ dataset: "missing", head: "x" }), { name: "NotFoundError" });
    await assert.rejects(ctx.platform.train({ dataset: "split", head: "Bad/Name" }), {
      name: "InvalidNameError",
    });
    await ctx.platform.putManifest(
      "one-label",
      "jsonl",
      toJsonlText([
        { text: "good", label: "a" },
        { text: "bad", label: "a" },
      ]),
    );
    await ctx.platform.embed("one-label");
    await assert.rejects(
      ctx.platform.train({ dataset: "one-label", head: "x" }),
      /at least 2 distinct labels/,
    );
  });

  test("refuses to train on rows that are not embedded yet", async () => {
    await ctx.platform.putManifest("fresh", "jsonl", toJsonlText(tinySentimentRows(10)));
    await assert.rejects(
      ctx.platform.train({ dataset: "fresh", head: "x" }),
      /dataset fresh has no embeddings from tiny-text yet; run `headstart embed fresh --backbone tiny-text`/,
    );
  });

  test("the live alias moves only by compare-and-swap", async () => {
    const first = await ctx.platform.train({ dataset: "split", head: "cas", promote: true });
    const second = await ctx.platform.train({ dataset: "split", head: "cas", promote: false });
    assert.equal((await readAlias(ctx.store, "cas"))?.value.version, first.version);
    await assert.rejects(ctx.platform.promote("cas", second.version, "not-the-live-one"), ConflictError);
    await ctx.platform.promote("cas", second.version, first.version);
    assert.equal((await readAlias(ctx.store, "cas"))?.value.version, second.version);
    await assert.rejects(ctx.platform.promote("cas", "v-does-not-exist"), { name: "NotFoundError" });
  });
});
