/**
 * The retrain policy (shared/feedback/policy.ts): a version trained on the feedback goes live only
 * if it scores at least as well as the live one on held-out rows (the dataset's test split);
 * corrections that make it worse leave the alias where it was, and the answer says why.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readAlias } from "../shared/heads/version.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("retrain on feedback, promote only if no worse", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const rows = tinySentimentRows(80, { seed: 5, withSplit: true });
  const knn = { dataset: "films", type: "knn", params: { k: 1 } };

  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(rows));
    await ctx.platform.embed("films");
    await ctx.platform.train({ ...knn, head: "good" });
    await ctx.platform.train({ ...knn, head: "bad" });
  });
  after(() => ctx.cleanup());

  test("a sensible correction: the new version scores as well on held-out rows and goes live", async () => {
    const { platform, store } = ctx;
    const live = (await readAlias(store, "good"))!.value.version;
    await platform.addFeedback("good", { input: "wonderful love great fun brilliant", label: "neg" });
    const out = await platform.retrainWithFeedback("good");
    assert.equal(out.promoted, true, out.reason);
    assert.equal(out.heldOut!.rows, rows.filter((r) => r.split === "test").length);
    assert.equal(out.heldOut!.live.version, live);
    assert.ok(out.heldOut!.candidate.value >= out.heldOut!.live.value);
    assert.equal((await readAlias(store, "good"))!.value.version, out.version);
    const { head } = await platform.headReport("good", out.version);
    assert.equal(head.type, "knn", "the live version's settings");
    assert.equal(head.params.k, 1);
  });

  test("corrections that flip every training row: worse on held-out rows, the alias stays", async () => {
    const { platform, store } = ctx;
    const live = (await readAlias(store, "bad"))!.value.version;
    for (const r of rows.filter((x) => x.split === "train")) {
      await platform.addFeedback("bad", { input: r.text, label: r.label === "pos" ? "neg" : "pos" });
    }
    const out = await platform.retrainWithFeedback("bad");
    assert.equal(out.promoted, false);
    assert.match(out.reason!, /accuracy on \d+ held-out rows: .* against the live version's/);
    assert.ok(out.heldOut!.candidate.value < out.heldOut!.live.value);
    assert.equal((await readAlias(store, "bad"))!.value.version, live, "not promoted");
    assert.equal(out.feedback!.after.value, 1, "it did learn the corrections");
  });
});
