/** The cloud-only Lambda entry points: the API-key authorizer and the train Lambda. */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { mockClient } from "aws-sdk-client-mock";
import { createApp } from "../shared/api/app.ts";
import {
  hashKey,
  newApiKey,
  parseApiKeyFile,
  parseScopes,
  presentedKey,
  verifyApiKey,
} from "../shared/auth/api-keys.ts";
import { KeyStore } from "../shared/auth/key-store.ts";
import { LambdaTrainDispatcher } from "../shared/aws/lambda-train-dispatcher.ts";
import { TrainEvent } from "../shared/heads/train-dispatch.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { FsStore } from "../shared/open-store.ts";
import { loadEvent } from "./helpers/events.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("API keys", () => {
  test("only an active key with its own id, of this customer, passes, with its scopes", () => {
    const a = newApiKey("ci", ["predict", "train"], "acme");
    const b = newApiKey("ops", ["admin"], "acme");
    const c = newApiKey("other", ["admin"], "acme-eu");
    const file = {
      version: 1 as const,
      keys: [a.entry, { ...b.entry, revokedAt: new Date().toISOString() }, c.entry],
    };
    assert.deepEqual(verifyApiKey(a.key, file, "acme"), { keyId: "ci", scopes: ["predict", "train"] });
    assert.equal(verifyApiKey(b.key, file, "acme"), undefined, "revoked");
    assert.equal(verifyApiKey(c.key, file, "acme"), undefined, "another customer's key");
    assert.deepEqual(verifyApiKey(c.key, file, "acme-eu"), { keyId: "other", scopes: ["admin"] });
    assert.equal(verifyApiKey(a.key, file, "acme-eu"), undefined, "bound to acme only");
    assert.equal(verifyApiKey(`${a.key}x`, file, "acme"), undefined);
    assert.equal(
      verifyApiKey(a.key.replace("hs_ci_", "hs_ops_"), file, "acme"),
      undefined,
      "id must match the hash",
    );
    assert.equal(verifyApiKey(undefined, file, "acme"), undefined);
    assert.equal(verifyApiKey("", file, "acme"), undefined);
    assert.match(a.key, /^hs_ci_[A-Za-z0-9_-]{43}$/);
    assert.equal(a.entry.sha256, hashKey(a.key));
    assert.ok(!JSON.stringify(file).includes(a.key), "the key file never holds a usable key");
  });

  test("keys come from x-api-key or a bearer token", () => {
    assert.equal(presentedKey({ "X-Api-Key": " k1 " }), "k1");
    assert.equal(presentedKey({ authorization: "Bearer k2" }), "k2");
    assert.equal(presentedKey({ authorization: "Basic abc" }), undefined);
    assert.equal(presentedKey(undefined), undefined);
  });

  test("scopes are checked, and a malformed key file is an error naming it", () => {
    assert.deepEqual(parseScopes(["train,predict", "predict"]), ["predict", "train"]);
    assert.throws(() => parseScopes(["read"]), { name: "ValidationError", message: /unknown scope "read"/ });
    assert.throws(() => parseScopes([]), { name: "ValidationError" });
    assert.throws(() => parseApiKeyFile("{"), /not JSON/);
    assert.throws(
      () => parseApiKeyFile('{"version": 1, "keys": [{"id": "A", "sha256": "x"}]}'),
      /keys\.0\.id/,
    );
    assert.throws(() => newApiKey("Bad Id", ["predict"], "acme"), { name: "ValidationError" });
  });
});

describe("authorizer handler", () => {
  const dir = mkdtempSync(join(tmpdir(), "headstart-authorizer-"));
  const keyStore = new KeyStore(new FsStore(dir), "acme");
  let handler: typeof import("../functions/authorizer/handler.ts").handler;
  let clearKeyCache: () => void;

  before(async () => {
    process.env.HEADSTART_STORE = dir;
    process.env.HEADSTART_CUSTOMER = "acme";
    process.env.HEADSTART_LOG_LEVEL = "silent";
    process.env.AWS_REGION = "eu-west-1";
    ({ handler, clearKeyCache } = await import("../functions/authorizer/handler.ts"));
    delete process.env.HEADSTART_CUSTOMER;
  });

  test("allows this customer's active keys with their scopes, for any route alike, and refuses others", async () => {
    const ci = await keyStore.create("ci", ["predict"]);
    const ops = await keyStore.create("ops", ["train", "ingest"]);
    const foreign = await new KeyStore(new FsStore(dir), "acme-eu").create("eu", ["admin"]);
    clearKeyCache();
    const event = loadEvent<{ headers: Record<string, string>; rawPath: string }>("api-authorizer");
    event.headers["x-api-key"] = ci.key;
    const allowed = { isAuthorized: true, context: { apiKeyId: "ci", scopes: "predict" } };
    assert.deepEqual(await handler(event), allowed);
    // The answer is cached per key by API Gateway and reused for every route, so it must not
    // depend on the route: the app checks the scopes per route (test/api-keys-scopes.test.ts).
    assert.deepEqual(await handler({ ...event, rawPath: "/v1/heads/sentiment/train" }), allowed);
    event.headers["x-api-key"] = ops.key;
    assert.deepEqual(await handler(event), {
      isAuthorized: true,
      context: { apiKeyId: "ops", scopes: "train,ingest" },
    });
    event.headers["x-api-key"] = foreign.key;
    assert.deepEqual(await handler(event), { isAuthorized: false }, "another customer's key");
    event.headers["x-api-key"] = newApiKey("ci", ["predict"], "acme").key;
    assert.deepEqual(await handler(event), { isAuthorized: false }, "unknown secret");
    delete event.headers["x-api-key"];
    assert.deepEqual(await handler(event), { isAuthorized: false });

    await keyStore.revoke("ci");
    event.headers["x-api-key"] = ci.key;
    assert.deepEqual(await handler(event), allowed, "the key file is cached for a minute");
    clearKeyCache();
    assert.deepEqual(await handler(event), { isAuthorized: false }, "revoked");
  });

  test("a key file that cannot be read fails closed (throws, so API Gateway answers 500, not allow)", async () => {
    await new FsStore(dir).put(keys.apiKeys(), "{not json");
    clearKeyCache();
    const event = loadEvent<{ headers: Record<string, string> }>("api-authorizer");
    event.headers["x-api-key"] = newApiKey("ci", ["predict"], "acme").key;
    await assert.rejects(handler(event), /not valid JSON/);
  });
});

describe("train handler", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let handler: (e: unknown) => Promise<Record<string, unknown>>;
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(60)));
    await ctx.platform.embed("reviews");
    process.env.HEADSTART_STORE = ctx.store.root;
    process.env.HEADSTART_DEFAULT_BACKBONE = "tiny-text";
    process.env.HEADSTART_MODELS_DIR = join(ctx.dir, "models");
    process.env.HEADSTART_LOG_LEVEL = "silent";
    handler = (await import("../functions/train/handler.ts")).handler as never;
  });
  after(() => ctx.cleanup());

  test("trains from the sample event", async () => {
    const result = await handler(loadEvent("train-request"));
    assert.equal(result.head, "sentiment");
    assert.equal(result.evaluation, "cv");
    assert.ok((result.metrics as { accuracy: number }).accuracy > 0.9);
  });

  test("a repeated delivery trains once and gets the stored result; a concurrent one is refused", async () => {
    const versions = async () => (await ctx.store.list(keys.headVersionPrefix("dup"))).length;
    const event = {
      ...loadEvent<Record<string, unknown>>("train-request"),
      head: "dup",
      idempotencyKey: "k-1",
    };
    const first = await handler(event);
    const before = await versions();
    const again = await handler(structuredClone(event));
    assert.equal(again.version, first.version);
    assert.equal(await versions(), before, "no second version");

    const other = { ...event, idempotencyKey: "k-2" };
    const settled = await Promise.allSettled([handler(other), handler(structuredClone(other))]);
    assert.deepEqual(settled.map((s) => s.status).sort(), ["fulfilled", "rejected"]);
    const refused = settled.find((s) => s.status === "rejected") as PromiseRejectedResult;
    assert.match(String(refused.reason), /already in progress/);
    const trained = settled.find((s) => s.status === "fulfilled") as PromiseFulfilledResult<{
      version: string;
    }>;
    assert.notEqual(trained.value.version, first.version, "another key is another request");
    // Lambda's retry of the refused one gets the stored result.
    assert.equal((await handler(other)).version, trained.value.version);
  });

  test("bad requests are answered with the field, not retried", async () => {
    const event = loadEvent<Record<string, unknown>>("train-request");
    event.cv = 1;
    const r = (await handler(event)) as { error: { code: string; field: string } };
    assert.equal(r.error.code, "invalid_input");
    assert.equal(r.error.field, "cv");
    const missing = (await handler({
      ...loadEvent<Record<string, unknown>>("train-request"),
      dataset: "ghost",
    })) as {
      error: { code: string };
    };
    assert.equal(missing.error.code, "not_found");
  });
});

describe("API → train Lambda hand-off", () => {
  const lambda = mockClient(LambdaClient);
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  after(async () => {
    lambda.restore();
    await ctx?.cleanup();
  });

  test("with a train function configured, POST /train answers 202 and invokes it asynchronously", async () => {
    ctx = await tinyPlatform({
      trainDispatcher: new LambdaTrainDispatcher("headstart-acme-train", { region: "eu-west-1" }),
    });
    await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(20)));
    lambda.on(InvokeCommand).resolves({ StatusCode: 202 });
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (head: string, body: unknown) =>
      app.request(`/v1/heads/${head}/train`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const res = await post("sentiment", { dataset: "reviews", cv: 3 });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { accepted: true, head: "sentiment", dataset: "reviews" });
    const call = lambda.commandCalls(InvokeCommand)[0].args[0].input;
    assert.equal(call.FunctionName, "headstart-acme-train");
    assert.equal(call.InvocationType, "Event");
    const payload = JSON.parse(new TextDecoder().decode(call.Payload as Uint8Array));
    // The idempotency key: the request's correlation id when the client sent no Idempotency-Key.
    assert.equal(payload.idempotencyKey, res.headers.get("x-correlation-id"));
    assert.deepEqual(payload, {
      head: "sentiment",
      dataset: "reviews",
      cv: 3,
      promote: true,
      idempotencyKey: payload.idempotencyKey,
    });
    // The payload is exactly what the train Lambda accepts.
    assert.equal(TrainEvent.safeParse(payload).success, true);

    // A client's Idempotency-Key becomes the event's, so its retries of the call train once.
    const keyed = await app.request("/v1/heads/sentiment/train", {
      method: "POST",
      headers: { "content-type": "application/json", "idempotency-key": "client-key-7" },
      body: JSON.stringify({ dataset: "reviews", cv: 3 }),
    });
    assert.equal(keyed.status, 202);
    const keyedCall = lambda.commandCalls(InvokeCommand)[1].args[0].input;
    assert.equal(
      JSON.parse(new TextDecoder().decode(keyedCall.Payload as Uint8Array)).idempotencyKey,
      "client-key-7",
    );

    const missing = await post("sentiment", { dataset: "ghost" });
    assert.equal(missing.status, 404, "an unknown dataset is refused before dispatch");
    assert.equal(lambda.commandCalls(InvokeCommand).length, 2);

    lambda.on(InvokeCommand).resolves({ StatusCode: 500 });
    const failed = await post("sentiment", { dataset: "reviews" });
    assert.equal(failed.status, 500);
  });
});
