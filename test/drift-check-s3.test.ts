/**
 * The drift-check Lambda on radosgw, as in AWS: the captures' window read from S3's LastModified,
 * the per-head record's create-only and If-Match writes on a real S3 server, and one event for a
 * scheduled event run twice at once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { WebhookRegistry } from "../shared/events/registrations.ts";
import { keys } from "../shared/layout.ts";
import { readDriftState } from "../shared/quality/drift-state.ts";
import { describeOnRadosgw, s3TinyPlatform } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

describeOnRadosgw("drift-check handler on S3", (server) => {
  let ctx: Awaited<ReturnType<typeof s3TinyPlatform>>;
  let receiver: Receiver;
  let handler: typeof import("../functions/drift-check/handler.ts").handler;
  const saved = { ...process.env };
  const driftEvents = () => [...receiver.events.values()].filter((e) => e.event.type === "drift.detected");

  before(
    async () => {
      ctx = await s3TinyPlatform(server(), "drift");
      const { platform } = ctx;
      receiver = await new Receiver().start();
      receiver.secret = (await new WebhookRegistry(ctx.store).add(receiver.url, ["drift.detected"])).secret;
      await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(200, { seed: 1 })));
      await platform.embed("films");
      await platform.train({ dataset: "films", head: "mood", type: "logreg", capture: "all" });
      const positive = tinySentimentRows(120, { seed: 21 }).filter((r) => r.label === "pos");
      await platform.predict("mood", { inputs: positive.map((r) => r.text) });
      await platform.captureIdle();
      Object.assign(process.env, {
        ...ctx.env,
        HEADSTART_MODELS_DIR: join(ctx.dir, "lambda-models"),
        HEADSTART_SCRATCH_DIR: join(ctx.dir, "lambda-tmp"),
        HEADSTART_BUILD_BACKBONES: "false",
        HEADSTART_LOG_LEVEL: "error",
        HEADSTART_METRICS: "off",
      });
      handler = (await import("../functions/drift-check/handler.ts")).handler as typeof handler;
    },
    { timeout: 120_000 },
  );
  after(async () => {
    process.env = saved;
    await receiver?.stop();
    await ctx?.cleanup();
  });

  test("drift is news once; a rerun and a doubled run add no event", async () => {
    assert.deepEqual(await handler({}), { checked: 1, drift: 1, emitted: 1, skipped: 0, failed: 0 });
    assert.equal(driftEvents().length, 1);
    const first = (await readDriftState(ctx.store, "mood"))!;
    assert.equal(first.n.current, 60, "every capture is within the window by its LastModified");
    assert.deepEqual(await handler({}), { checked: 1, drift: 1, emitted: 0, skipped: 0, failed: 0 });
    assert.equal((await readDriftState(ctx.store, "mood"))?.driftSince, first.driftSince);
    await ctx.store.delete(keys.headDriftState("mood"));
    const runs = await Promise.all([handler({}), handler({})]);
    assert.equal(runs[0].emitted + runs[1].emitted, 1);
    assert.equal(driftEvents().length, 2);
  });
});
