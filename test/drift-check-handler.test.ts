/**
 * The drift-check Lambda (functions/drift-check/handler.ts) on a real store with the tiny text
 * backbone and a real webhook receiver: of two heads capturing all their inputs, the one whose
 * production inputs moved emits one `drift.detected`, the one seeing its training distribution
 * none; the next scheduled run finds the same drift and emits nothing; two invocations of one
 * scheduled event (Lambda's at-least-once delivery) emit once between them.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Context } from "aws-lambda";
import { DRIFT_CHECK_ACCESS } from "../infra/drift-check.ts";
import { WebhookRegistry } from "../shared/events/registrations.ts";
import { keys } from "../shared/layout.ts";
import { readDriftState } from "../shared/quality/drift-state.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

/** Every store operation while `run` runs, by IAM action: what the Lambda's role must allow. */
async function recordAccess<T>(run: () => Promise<T>) {
  const seen = {
    list: new Set<string>(),
    read: new Set<string>(),
    write: new Set<string>(),
    delete: new Set<string>(),
  };
  const ops = {
    head: "read",
    get: "read",
    localPath: "read",
    localFile: "read",
    list: "list",
    put: "write",
    putFile: "write",
    delete: "delete",
  } as const;
  const proto = FsStore.prototype as unknown as Record<string, (key: string, ...rest: unknown[]) => unknown>;
  const saved = Object.fromEntries(Object.keys(ops).map((op) => [op, proto[op]]));
  for (const [op, kind] of Object.entries(ops)) {
    proto[op] = function (this: FsStore, key: string, ...rest: unknown[]) {
      seen[kind].add(key);
      return saved[op].call(this, key, ...rest);
    };
  }
  try {
    return { result: await run(), seen };
  } finally {
    Object.assign(proto, saved);
  }
}

/** Whether an IAM pattern (`*` spans anything, `/` included) matches a key or prefix. */
const allows = (patterns: readonly string[], key: string) =>
  patterns.some((p) =>
    new RegExp(
      `^${p
        .split("*")
        .map((x) => x.replace(/[.?+^$()[\]{}|\\]/g, "\\$&"))
        .join(".*")}$`,
    ).test(key),
  );

describe("drift-check handler", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let receiver: Receiver;
  let handler: typeof import("../functions/drift-check/handler.ts").handler;
  let ROUND_MARGIN_MS: number;
  const saved = { ...process.env };
  const driftEvents = () => [...receiver.events.values()].filter((e) => e.event.type === "drift.detected");

  before(async () => {
    ctx = await tinyPlatform();
    const { platform } = ctx;
    receiver = await new Receiver().start();
    receiver.secret = (await new WebhookRegistry(ctx.store).add(receiver.url, ["drift.detected"])).secret;
    await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(200, { seed: 1 })));
    await platform.embed("films");
    for (const head of ["mood", "calm"])
      await platform.train({ dataset: "films", head, type: "logreg", capture: "all" });
    // mood's production sends positive reviews only; calm's looks like its training data.
    const later = tinySentimentRows(120, { seed: 21 });
    await platform.predict("mood", { inputs: later.filter((r) => r.label === "pos").map((r) => r.text) });
    await platform.predict("calm", { inputs: later.map((r) => r.text) });
    await platform.captureIdle();
    // The Lambda's environment: the store and a models directory of its own (its /tmp).
    Object.assign(process.env, {
      HEADSTART_STORE: ctx.store.root,
      HEADSTART_MODELS_DIR: join(ctx.dir, "lambda-models"),
      HEADSTART_BUILD_BACKBONES: "false",
      HEADSTART_LOG_LEVEL: "error",
      HEADSTART_METRICS: "off",
    });
    ({ handler, ROUND_MARGIN_MS } = await import("../functions/drift-check/handler.ts"));
  });
  after(async () => {
    process.env = saved;
    await receiver.stop();
    await ctx.cleanup();
  });

  test("drifted captures emit one drift.detected; the same distribution none; within the role's reach", async () => {
    const { result: summary, seen } = await recordAccess(() => handler({}));
    assert.deepEqual(summary, { checked: 2, drift: 1, emitted: 1, skipped: 0, failed: 0 });
    const events = driftEvents();
    assert.equal(events.length, 1);
    assert.equal(events[0].event.data.head, "mood");
    assert.equal(events[0].event.data.current, "capture:mood");
    assert.equal((await readDriftState(ctx.store, "mood"))?.drift, true);
    assert.equal((await readDriftState(ctx.store, "calm"))?.drift, false);
    // The role of infra/drift-check.ts allows every operation of the round, and not more than it needs.
    for (const kind of ["list", "read", "write", "delete"] as const)
      for (const key of seen[kind]) assert.ok(allows(DRIFT_CHECK_ACCESS[kind], key), `${kind} ${key}`);
    assert.ok([...seen.write].some((k) => k.endsWith("drift-state.json")));
    assert.ok(seen.read.has(keys.webhooks()) && !allows(DRIFT_CHECK_ACCESS.read, keys.apiKeys()));
    assert.ok(
      [...seen.read].some((k) => k.startsWith("backbones/tiny-text/")),
      "the head's backbone, from the store",
    );
  });

  test("the next scheduled run finds the drift still there and emits nothing", async () => {
    const summary = await handler({});
    assert.deepEqual(summary, { checked: 2, drift: 1, emitted: 0, skipped: 0, failed: 0 });
    assert.equal(driftEvents().length, 1);
  });

  test("no head's check starts in the last 3 minutes before the timeout: they wait for the next round", async () => {
    const context = { getRemainingTimeInMillis: () => ROUND_MARGIN_MS - 1_000 } as Context;
    const before = await readDriftState(ctx.store, "calm");
    assert.deepEqual(await handler({}, context), { checked: 0, drift: 0, emitted: 0, skipped: 2, failed: 0 });
    assert.deepEqual(await readDriftState(ctx.store, "calm"), before);
  });

  test("one scheduled event delivered twice emits once", async () => {
    await ctx.store.delete(keys.headDriftState("mood"));
    const runs = await Promise.all([handler({}), handler({})]);
    assert.deepEqual(
      runs.map((r) => r.drift),
      [1, 1],
    );
    assert.equal(runs[0].emitted + runs[1].emitted, 1);
    assert.equal(driftEvents().length, 2, "one more drift.detected, not two");
  });
});
