/**
 * The webhook-retry Lambda (functions/webhook-retry/handler.ts) on a real store and a real HTTP
 * receiver: a delivery an emitting Lambda left pending (the endpoint was down) is continued by
 * the scheduled run once its next attempt is due, found by its pending marker, and a later run
 * has nothing left to do.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { readDelivery } from "../shared/events/delivery.ts";
import { Notifier } from "../shared/events/notifier.ts";
import { WebhookRegistry } from "../shared/events/registrations.ts";
import { makeEvent } from "../shared/events/types.ts";
import { keys } from "../shared/layout.ts";
import { FsStore } from "../shared/store/fs.ts";
import { putJson } from "../shared/store/json.ts";
import { tempDir } from "./helpers/platform.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

const event = makeEvent("head.trained", ["h", "v1"], {
  head: "h",
  version: "v1",
  dataset: "d",
  type: "logreg",
  task: "multiclass",
  promoted: true,
});

describe("webhook-retry handler", () => {
  let store: FsStore;
  let receiver: Receiver;
  let handler: typeof import("../functions/webhook-retry/handler.ts").handler;
  const saved = { ...process.env };

  before(async () => {
    store = new FsStore(join(await tempDir(), "store"));
    receiver = await new Receiver().start();
    Object.assign(process.env, { HEADSTART_STORE: store.root, HEADSTART_LOG_LEVEL: "error" });
    handler = (await import("../functions/webhook-retry/handler.ts")).handler as typeof handler;
  });
  after(async () => {
    process.env = saved;
    await receiver.stop();
  });

  test("continues a pending delivery once due, then finds nothing left", async () => {
    const { id, secret } = await new WebhookRegistry(store).add(receiver.url, ["head.trained"]);
    receiver.secret = secret;
    receiver.failFirst = 100; // the endpoint is down while the emitting Lambda delivers
    const policy = { maxAttempts: 5, baseDelayMs: 60_000, maxDelayMs: 60_000, timeoutMs: 1_000 };
    await new Notifier(store, { mode: "await", budgetMs: 300, policy }).emit(event);
    const pending = (await readDelivery(store, event.id, id))!.value;
    assert.equal(pending.outcome, "pending");
    assert.ok(await store.head(keys.webhookPending(event.id, id)), "a pending marker");

    // A minute later (the record made due) the endpoint is back; the scheduled run delivers.
    receiver.failFirst = 0;
    await putJson(store, keys.webhookDelivery(event.id, id), {
      ...pending,
      nextAttemptAt: new Date().toISOString(),
    });
    assert.deepEqual(await handler({}), { retried: 1, delivered: 1, failed: 0, pending: 0 });
    const done = (await readDelivery(store, event.id, id))!.value;
    assert.equal(done.outcome, "delivered");
    assert.deepEqual(
      done.attempts.map((a) => a.status),
      [500, 204],
    );
    assert.equal(receiver.events.size, 1);
    assert.equal(await store.head(keys.webhookPending(event.id, id)), undefined, "marker dropped");
    assert.deepEqual(await handler({}), { retried: 0, delivered: 0, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 2);
  });
});
