/**
 * Webhooks end to end with a real HTTP receiver on 127.0.0.1: registrations in the store, Standard
 * Webhooks signatures checked by the specification's own verifier, deduplication by `webhook-id`,
 * retries with backoff recorded in the delivery log, bounded waits, and the platform's events
 * (embedded, trained, promoted) from its real use cases.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Webhook } from "standardwebhooks";
import { createApp } from "../shared/api/app.ts";
import { LOCAL_CUSTOMER } from "../shared/auth/api-keys.ts";
import { KeyStore } from "../shared/auth/key-store.ts";
import { embedJobEvent } from "../shared/events/builders.ts";
import { type DeliveryPolicy, deliver, listDeliveries, readDelivery } from "../shared/events/delivery.ts";
import { Notifier } from "../shared/events/notifier.ts";
import { checkWebhookUrl, WebhookRegistry } from "../shared/events/registrations.ts";
import { newWebhookSecret, signDelivery } from "../shared/events/signing.ts";
import { EVENT_TYPES, makeEvent, parseEventTypes } from "../shared/events/types.ts";
import { LocalJobRunner } from "../shared/jobs/runner.ts";
import { keys, parseKey } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { FsStore } from "../shared/store/fs.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir, tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

/** Short pauses, so retries take milliseconds here and seconds in production. */
const FAST: DeliveryPolicy = { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 200, timeoutMs: 1_000 };

async function freshStore() {
  const dir = await tempDir();
  return new FsStore(`${dir}/store`);
}

const sample = (n = 1) =>
  makeEvent("head.trained", ["h", `v${n}`], {
    head: "h",
    version: `v${n}`,
    dataset: "d",
    type: "logreg",
    task: "multiclass",
    promoted: true,
  });

describe("Standard Webhooks signatures", () => {
  test("v1 is the base64 HMAC-SHA256 of id.timestamp.body under the secret's bytes; the library verifies it", () => {
    const secret = newWebhookSecret();
    assert.match(secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    const body = JSON.stringify(sample());
    const at = new Date("2026-12-07T02:00:00Z");
    const h = signDelivery(secret, "evt_1", body, at);
    const key = Buffer.from(secret.slice("whsec_".length), "base64");
    const expected = createHmac("sha256", key)
      .update(`evt_1.${h["webhook-timestamp"]}.${body}`)
      .digest("base64");
    assert.equal(h["webhook-timestamp"], String(at.getTime() / 1000));
    assert.equal(h["webhook-signature"], `v1,${expected}`);
    const fresh = signDelivery(secret, "evt_1", body);
    assert.deepEqual(new Webhook(secret).verify(body, { ...fresh }), JSON.parse(body));
    assert.throws(() => new Webhook(newWebhookSecret()).verify(body, { ...fresh }), /No matching signature/);
    assert.throws(() => new Webhook(secret).verify(`${body} `, { ...fresh }), /No matching signature/);
    // Older than the 5-minute tolerance: a replay, refused by receivers.
    const old = signDelivery(secret, "evt_1", body, new Date(Date.now() - 6 * 60_000));
    assert.throws(() => new Webhook(secret).verify(body, { ...old }), /too old/);
  });

  test("event ids name the occurrence: the same one twice is one id", () => {
    assert.equal(sample(1).id, sample(1).id);
    assert.notEqual(sample(1).id, sample(2).id);
    assert.match(sample().id, /^evt_[0-9a-f]{32}$/);
    assert.deepEqual(Object.keys(sample()), ["id", "type", "createdAt", "data"]);
  });

  test("the registration file and the delivery log have their keys under _system/", () => {
    const id = sample().id;
    assert.equal(
      keys.webhookDelivery(id, "wh_0123456789abcdef"),
      `_system/webhook-deliveries/${id}/wh_0123456789abcdef.json`,
    );
    assert.deepEqual(parseKey(keys.webhookDelivery(id, "wh_0123456789abcdef")), {
      kind: "webhookDelivery",
      event: id,
      webhook: "wh_0123456789abcdef",
    });
    assert.deepEqual(parseKey(keys.webhooks()), { kind: "webhooks" });
    assert.throws(() => keys.webhookDelivery("../x", "wh_0123456789abcdef"), /invalid event id/);
  });
});

describe("webhook registrations", () => {
  test("add answers {id, secret} once; list never shows the secret; remove", async () => {
    const registry = new WebhookRegistry(await freshStore());
    const made = await registry.add("https://example.com/hook", ["head.trained", "dataset.failed"]);
    assert.deepEqual(Object.keys(made).sort(), ["id", "secret"]);
    assert.match(made.id, /^wh_[0-9a-f]{16}$/);
    const listed = await registry.list();
    assert.equal(listed.length, 1);
    assert.equal("secret" in listed[0], false);
    assert.deepEqual(listed[0].events, ["head.trained", "dataset.failed"]);
    assert.equal((await registry.subscribers("head.trained"))[0].secret, made.secret);
    assert.equal((await registry.subscribers("head.promoted")).length, 0);
    await registry.remove(made.id);
    assert.deepEqual(await registry.list(), []);
    await assert.rejects(registry.remove(made.id), { name: "NotFoundError" });
  });

  test("concurrent adds all land (compare-and-swap)", async () => {
    const registry = new WebhookRegistry(await freshStore());
    await Promise.all(
      Array.from({ length: 6 }, (_, i) => registry.add(`https://example.com/${i}`, ["head.trained"])),
    );
    assert.equal((await registry.list()).length, 6);
  });

  test("URLs: https, or http to loopback only; no credentials", () => {
    assert.equal(checkWebhookUrl("https://hooks.example.com/x"), "https://hooks.example.com/x");
    assert.equal(checkWebhookUrl("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/x");
    assert.equal(checkWebhookUrl("http://localhost/x"), "http://localhost/x");
    assert.throws(() => checkWebhookUrl("http://example.com/x"), /must be https/);
    assert.throws(() => checkWebhookUrl("http://169.254.169.254/latest"), /must be https/);
    assert.throws(() => checkWebhookUrl("ftp://example.com"), /must be https/);
    assert.throws(() => checkWebhookUrl("https://u:p@example.com"), /credentials/);
    assert.throws(() => checkWebhookUrl("not a url"), /not a URL/);
  });

  test("unknown event names are refused, naming the valid ones", () => {
    assert.deepEqual(parseEventTypes("head.trained, head.promoted,head.trained"), [
      "head.trained",
      "head.promoted",
    ]);
    assert.throws(
      () => parseEventTypes("head.trained,model.deployed"),
      (err: Error) =>
        err.message.includes('"model.deployed"') && EVENT_TYPES.every((t) => err.message.includes(t)),
    );
    assert.throws(() => parseEventTypes(""), /name at least one event/);
  });
});

describe("delivery to a real receiver", () => {
  let secret: string;
  let receiver: Receiver;
  before(async () => {
    secret = newWebhookSecret();
    receiver = await new Receiver(secret).start();
  });
  after(() => receiver.stop());

  const endpoint = (url = receiver.url, s = secret) => ({
    id: "wh_0123456789abcdef",
    url,
    events: [...EVENT_TYPES],
    secret: s,
    createdAt: new Date().toISOString(),
  });

  test("retries with exponential backoff until a 2xx; the log records every attempt", async () => {
    const store = await freshStore();
    receiver.requests.length = 0;
    receiver.failFirst = 2;
    const event = sample(10);
    const record = await deliver(store, endpoint(), event, { policy: FAST });
    assert.equal(record.outcome, "delivered");
    assert.deepEqual(
      record.attempts.map((a) => a.status),
      [500, 500, 204],
    );
    const stored = (await readDelivery(store, event.id, "wh_0123456789abcdef"))!.value;
    assert.deepEqual(stored, record);
    assert.equal(stored.event.id, event.id);
    // The pauses grow: ≥ base/2 after the first failure, ≥ base after the second (jitter is 50–100%).
    const t = receiver.requests.map((r) => r.at);
    assert.ok(t[1] - t[0] >= FAST.baseDelayMs / 2 - 2, `first pause ${t[1] - t[0]}`);
    assert.ok(t[2] - t[1] >= FAST.baseDelayMs - 2, `second pause ${t[2] - t[1]}`);
    assert.equal(receiver.events.get(event.id)?.event.type, "head.trained");
    receiver.failFirst = 0;
  });

  test("the same event emitted again is not delivered again; a receiver dedupes repeats by webhook-id", async () => {
    const store = await freshStore();
    receiver.requests.length = 0;
    const event = sample(11);
    await deliver(store, endpoint(), event, { policy: FAST });
    const again = await deliver(store, endpoint(), event, { policy: FAST });
    assert.equal(again.outcome, "delivered");
    assert.equal(receiver.requests.length, 1, "the delivery log stopped the repeat");
    // At least once: another store (another deployment's log) sends it again; the receiver keeps one.
    await deliver(await freshStore(), endpoint(), event, { policy: FAST });
    assert.equal(receiver.requests.length, 2);
    assert.equal([...receiver.events.keys()].filter((k) => k === event.id).length, 1);
  });

  test("a wrong secret fails verification: 401 on every attempt, then failed", async () => {
    const store = await freshStore();
    receiver.requests.length = 0;
    const record = await deliver(store, endpoint(receiver.url, newWebhookSecret()), sample(12), {
      policy: FAST,
    });
    assert.equal(record.outcome, "failed");
    assert.deepEqual(
      record.attempts.map((a) => a.status),
      [401, 401, 401, 401],
    );
    assert.equal(receiver.events.has(sample(12).id), false);
  });

  test("an endpoint that never answers is cut off by the per-attempt timeout", async () => {
    const store = await freshStore();
    receiver.hang = true;
    const policy = { ...FAST, maxAttempts: 2, timeoutMs: 150 };
    const started = performance.now();
    const record = await deliver(store, endpoint(), sample(13), { policy });
    receiver.hang = false;
    assert.equal(record.outcome, "failed");
    assert.deepEqual(
      record.attempts.map((a) => a.error),
      ["no answer within 150 ms", "no answer within 150 ms"],
    );
    assert.ok(performance.now() - started < 1_500);
  });

  test("nobody listening: connection refused is recorded as the attempt's error", async () => {
    const store = await freshStore();
    const closed = await new Receiver().start();
    await closed.stop();
    const record = await deliver(store, endpoint(closed.url), sample(14), {
      policy: { ...FAST, maxAttempts: 2 },
    });
    assert.equal(record.outcome, "failed");
    assert.equal(record.attempts[0].status, undefined);
    assert.equal(record.attempts[0].error, "ECONNREFUSED");
  });

  test("await mode stays within its budget, leaves the rest pending, and retryPending finishes it", async () => {
    const store = await freshStore();
    const registry = new WebhookRegistry(store);
    const own = await new Receiver().start();
    try {
      const { id, secret: s } = await registry.add(own.url, ["head.trained"]);
      own.secret = s;
      own.failFirst = 100;
      const policy = { maxAttempts: 5, baseDelayMs: 2_000, maxDelayMs: 10_000, timeoutMs: 1_000 };
      const notifier = new Notifier(store, { mode: "await", budgetMs: 300, policy });
      const started = performance.now();
      await notifier.emit(sample(15));
      assert.ok(performance.now() - started < 1_000, `emit took ${performance.now() - started} ms`);
      const pending = (await readDelivery(store, sample(15).id, id))!.value;
      assert.equal(pending.outcome, "pending");
      assert.equal(pending.attempts.length, 1);
      assert.ok(Date.parse(pending.nextAttemptAt!) > Date.now());
      own.failFirst = 0;
      // Later (here: with the pause already over), a retry continues the same record.
      const retry = new Notifier(store, {
        mode: "await",
        budgetMs: 2_000,
        policy: { ...policy, baseDelayMs: 1 },
      });
      const due = { ...pending, nextAttemptAt: new Date().toISOString() };
      await store.put(keys.webhookDelivery(due.event.id, id), JSON.stringify(due));
      assert.deepEqual(await retry.retryPending(), { retried: 1, delivered: 1, failed: 0, pending: 0 });
      const done = (await readDelivery(store, sample(15).id, id))!.value;
      assert.deepEqual(
        done.attempts.map((a) => a.status),
        [500, 204],
      );
      assert.equal(own.events.size, 1);
      assert.equal((await listDeliveries(store)).length, 1);
    } finally {
      await own.stop();
    }
  });

  test("background mode returns at once and delivers after", async () => {
    const store = await freshStore();
    const own = await new Receiver().start();
    try {
      own.secret = (await new WebhookRegistry(store).add(own.url, ["head.trained"])).secret;
      own.failFirst = 1;
      const notifier = new Notifier(store, { mode: "background", policy: FAST });
      await notifier.emit(sample(16));
      assert.equal(own.events.size, 0, "emit did not wait");
      await notifier.idle();
      assert.equal(own.events.size, 1);
      assert.equal(own.requests.length, 2);
    } finally {
      await own.stop();
    }
  });
});

describe("the platform's events", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let receiver: Receiver;
  before(async () => {
    ctx = await tinyPlatform({ notifications: { mode: "await", policy: FAST } });
    receiver = await new Receiver().start();
    receiver.secret = (await ctx.platform.notifier.registry.add(receiver.url, [...EVENT_TYPES])).secret;
  });
  after(async () => {
    await receiver.stop();
    await ctx.cleanup();
  });

  const received = (type: string) => [...receiver.events.values()].filter((e) => e.event.type === type);

  test("embedding, training, promoting and rolling back each tell the endpoint", async () => {
    await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(60)));
    const { job } = await ctx.platform.embed("reviews");
    const [embedded] = received("dataset.embedded");
    assert.equal(embedded.event.data.job, job.job);
    assert.equal(embedded.event.data.dataset, "reviews");
    assert.equal(embedded.event.data.backbone, "tiny-text");

    const first = await ctx.platform.train({ dataset: "reviews", head: "mood" });
    const second = await ctx.platform.train({ dataset: "reviews", head: "mood" });
    assert.deepEqual(
      received("head.trained").map((e) => e.event.data.version),
      [first.version, second.version],
    );
    assert.deepEqual(
      received("head.promoted").map((e) => [e.event.data.version, e.event.data.previous, e.event.data.by]),
      [
        [first.version, null, "promote"],
        [second.version, first.version, "promote"],
      ],
    );
    await ctx.platform.rollback("mood");
    await ctx.platform.promote("mood", second.version);
    const moves = received("head.promoted").map((e) => [e.event.data.version, e.event.data.by]);
    assert.deepEqual(moves.slice(2), [
      [first.version, "rollback"],
      [second.version, "promote"],
    ]);
    // Re-embedding the same dataset version is the same job, already succeeded: the same event, not re-sent.
    const before = receiver.requests.length;
    await ctx.platform.embed("reviews");
    assert.equal(receiver.requests.length, before);
    const log = await listDeliveries(ctx.store);
    assert.equal(log.length, receiver.events.size);
    assert.ok(log.every((d) => d.outcome === "delivered" && d.attempts.length === 1));
  });

  test("a batch prediction that ends sends batch.succeeded once", async () => {
    const { job } = await ctx.platform.startBatchPrediction({ head: "mood", dataset: "reviews" });
    const done = await ctx.platform.runBatchPrediction(job.job);
    assert.equal(done.status, "succeeded");
    const [ended] = received("batch.succeeded");
    assert.equal(ended.event.data.job, job.job);
    assert.deepEqual(ended.event.data.counts, { total: 60, succeeded: 60, failed: 0 });
    assert.deepEqual(ended.event.data.outputs, done.outputs);
    const before = receiver.requests.length;
    await ctx.platform.runBatchPrediction(job.job); // finished: answered as it is, the same event
    assert.equal(receiver.requests.length, before);
  });

  test("a training that fails stores nothing and tells nobody", async () => {
    const before = receiver.requests.length;
    await assert.rejects(ctx.platform.train({ dataset: "reviews", head: "bad", type: "no-such-type" }));
    assert.equal(receiver.requests.length, before);
  });
});

describe("embedding jobs that end", () => {
  test("a failed job reports dataset.failed through the runner's onFinished", async () => {
    const store = await freshStore();
    const ended: string[] = [];
    const runner = new LocalJobRunner(store, {
      embedderFor: () => Promise.reject(new Error("backbone file missing")),
      onFinished: async (job) => {
        ended.push(embedJobEvent(job)?.type ?? "none");
      },
    });
    const now = new Date().toISOString();
    const job = {
      job: "job-1",
      kind: "embed" as const,
      dataset: "d",
      datasetVersion: "a".repeat(64),
      backbone: "b",
      backboneSha: "c".repeat(64),
      shards: [0],
      shardSize: 10,
      items: { toEmbed: 1, cached: 0, unsupported: 0 },
      state: "planned" as const,
      createdAt: now,
      updatedAt: now,
    };
    await store.put(keys.job("job-1"), JSON.stringify(job));
    await assert.rejects(runner.run(job), /backbone file missing/);
    assert.deepEqual(ended, ["dataset.failed"]);
    const failed = embedJobEvent({ ...job, state: "failed", error: "x", finishedAt: now });
    assert.equal(failed?.data.error, "x");
    assert.equal(embedJobEvent({ ...job, state: "running" }), undefined);
  });
});

describe("headstart webhooks", () => {
  let dir: string;
  before(async () => {
    dir = await tempDir();
  });
  const run = (...args: string[]) => cli(["--store", `${dir}/store`, ...args]);

  test("add --json prints exactly {id, secret}; list and remove; bad input exits 2 naming the problem", async () => {
    const added = await run(
      "webhooks",
      "add",
      "https://example.com/h",
      "--events",
      "head.trained,head.promoted",
      "--json",
    );
    assert.equal(added.code, 0, added.stderr);
    const made = JSON.parse(added.stdout);
    assert.deepEqual(Object.keys(made).sort(), ["id", "secret"]);
    assert.match(made.secret, /^whsec_/);
    const listed = JSON.parse((await run("webhooks", "list", "--json")).stdout);
    assert.deepEqual(
      listed.map((w: { id: string; events: string[] }) => [w.id, w.events]),
      [[made.id, ["head.trained", "head.promoted"]]],
    );
    assert.equal(JSON.stringify(listed).includes(made.secret), false);
    const unknown = await run("webhooks", "add", "https://example.com/h", "--events", "head.deployed");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown event "head\.deployed": use dataset\.embedded, dataset\.failed/);
    const insecure = await run("webhooks", "add", "http://example.com/h", "--events", "head.trained");
    assert.equal(insecure.code, 2);
    assert.match(insecure.stderr, /must be https/);
    const removed = await run("webhooks", "remove", made.id, "--json");
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse((await run("webhooks", "list", "--json")).stdout), []);
    assert.equal((await run("webhooks", "remove", made.id)).code, 2);
    const log = await run("webhooks", "deliveries", "--json");
    assert.deepEqual(JSON.parse(log.stdout), []);
  });
});

describe("/v1/webhooks", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  let receiver: Receiver;
  const headers: Record<string, string> = { "content-type": "application/json" };
  const call = (method: string, path: string, body?: unknown, as = headers) =>
    app.request(path, { method, headers: as, body: body === undefined ? undefined : JSON.stringify(body) });
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
  const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();
  before(async () => {
    ctx = await tinyPlatform({ notifications: { mode: "await", policy: FAST } });
    app = createApp(ctx.platform, makeLogger("test", "silent"), { keyCacheMs: 0 });
    const keyStore = new KeyStore(ctx.store, LOCAL_CUSTOMER);
    headers["x-api-key"] = (await keyStore.create("root", ["admin"])).key;
    receiver = await new Receiver().start();
  });
  after(async () => {
    await receiver.stop();
    await ctx.cleanup();
  });

  test("admin registers, lists, reads the delivery log and removes; the secret is answered once", async () => {
    const res = await call("POST", "/v1/webhooks", { url: receiver.url, events: ["head.trained"] });
    assert.equal(res.status, 201);
    const made = await json(res);
    assert.deepEqual(Object.keys(made).sort(), ["id", "secret"]);
    receiver.secret = made.secret;
    const listed = await json(call("GET", "/v1/webhooks"));
    assert.deepEqual(
      listed.webhooks.map((w: { id: string; url: string }) => [w.id, w.url]),
      [[made.id, receiver.url]],
    );
    assert.equal(JSON.stringify(listed).includes(made.secret), false);
    await ctx.platform.notifier.emit(sample(20));
    const log = await json(call("GET", "/v1/webhooks/deliveries"));
    assert.deepEqual(
      log.deliveries.map((d: { event: { id: string }; outcome: string }) => [d.event.id, d.outcome]),
      [[sample(20).id, "delivered"]],
    );
    assert.equal((await call("DELETE", `/v1/webhooks/${made.id}`)).status, 200);
    const again = await call("DELETE", `/v1/webhooks/${made.id}`);
    assert.equal(again.status, 404);
  });

  test("bad input is a 400 naming the field; other scopes are refused", async () => {
    const badEvent = await call("POST", "/v1/webhooks", { url: receiver.url, events: ["head.deployed"] });
    assert.equal(badEvent.status, 400);
    const { error } = await json(badEvent);
    assert.equal(error.field, "events[0]");
    assert.match(error.message, /head\.promoted/);
    const badUrl = await call("POST", "/v1/webhooks", {
      url: "http://example.com/x",
      events: ["head.trained"],
    });
    assert.equal(badUrl.status, 400);
    assert.equal((await json(badUrl)).error.field, "url");
    const predictKey = (await new KeyStore(ctx.store, LOCAL_CUSTOMER).create("app", ["predict"])).key;
    const refused = await call("GET", "/v1/webhooks", undefined, { "x-api-key": predictKey });
    assert.equal(refused.status, 403);
    assert.deepEqual(await new WebhookRegistry(ctx.store).list(), []);
  });
});

describe("the CLI delivers before it exits", () => {
  test("promote tells the endpoint; webhooks retry finishes a pending delivery", async () => {
    const ctx = await tinyPlatform();
    const receiver = await new Receiver().start();
    try {
      await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(40)));
      await ctx.platform.embed("reviews");
      const first = await ctx.platform.train({ dataset: "reviews", head: "mood" });
      await ctx.platform.train({ dataset: "reviews", head: "mood" });
      const registry = new WebhookRegistry(ctx.store);
      receiver.secret = (await registry.add(receiver.url, ["head.promoted", "head.trained"])).secret;
      const run = (...args: string[]) => cli(["--store", ctx.store.root, ...args]);

      const promoted = await run("promote", "mood", first.version);
      assert.equal(promoted.code, 0, promoted.stderr);
      const [event] = [...receiver.events.values()].map((e) => e.event);
      assert.deepEqual(
        [event.type, event.data.version, event.data.by],
        ["head.promoted", first.version, "promote"],
      );

      // A delivery left pending (the endpoint was down within the budget) is finished by `retry`.
      receiver.failFirst = receiver.requests.length + 1;
      const notifier = new Notifier(ctx.store, { budgetMs: 200, policy: { ...FAST, baseDelayMs: 10_000 } });
      await notifier.emit(sample(30));
      const [pending] = (await listDeliveries(ctx.store)).filter((d) => d.outcome === "pending");
      assert.equal(pending.event.id, sample(30).id);
      await ctx.store.put(
        keys.webhookDelivery(pending.event.id, pending.webhook),
        JSON.stringify({ ...pending, nextAttemptAt: new Date().toISOString() }),
      );
      const retried = await run("webhooks", "retry", "--json");
      assert.equal(retried.code, 0, retried.stderr);
      assert.deepEqual(JSON.parse(retried.stdout), { retried: 1, delivered: 1, failed: 0, pending: 0 });
      assert.ok(receiver.events.has(sample(30).id));
    } finally {
      await receiver.stop();
      await ctx.cleanup();
    }
  });
});

describe("the local server delivers after answering", () => {
  test("PUT …/aliases/live answers, then head.promoted reaches the endpoint in the background", async () => {
    const ctx = await tinyPlatform({ notifications: { mode: "background", policy: FAST } });
    const receiver = await new Receiver().start();
    try {
      await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(40)));
      await ctx.platform.embed("reviews");
      const first = await ctx.platform.train({ dataset: "reviews", head: "mood" });
      await ctx.platform.train({ dataset: "reviews", head: "mood" });
      await ctx.platform.notifier.idle();
      receiver.secret = (await ctx.platform.notifier.registry.add(receiver.url, ["head.promoted"])).secret;
      receiver.failFirst = 1; // the first attempt fails: the retry happens after the response
      const app = createApp(ctx.platform, makeLogger("test", "silent"));
      const res = await app.request("/v1/heads/mood/aliases/live", {
        method: "PUT",
        headers: { "content-type": "application/json", host: "127.0.0.1" },
        body: JSON.stringify({ version: first.version }),
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(receiver.events.size, 0, "the response did not wait for the retry");
      await ctx.platform.notifier.idle();
      const [event] = [...receiver.events.values()].map((e) => e.event);
      assert.deepEqual([event.type, event.data.version], ["head.promoted", first.version]);
      assert.equal(receiver.requests.length, 2);
    } finally {
      await receiver.stop();
      await ctx.cleanup();
    }
  });
});
