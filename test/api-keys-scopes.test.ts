/**
 * Scoped keys through the real app (Hono's own request handling, a real filesystem store):
 * finding "every API key has every right". Locally the app checks keys against the store's key
 * file; behind API Gateway it checks the scopes the authorizer put in its context.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { KeyStore } from "../shared/auth/key-store.ts";
import { ROUTE_SCOPES, routeAccess } from "../shared/auth/scopes.ts";
import { keys as layout } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

describe("scoped API keys", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  const key: Record<string, string> = {};
  const as = (who: string | undefined, method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: {
        ...(who ? { "x-api-key": key[who] } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const manifest = toJsonlText(tinySentimentRows(60));
  const putManifest = (who: string) =>
    app.request("/v1/datasets/films/manifest", {
      method: "PUT",
      headers: { "x-api-key": key[who], "content-type": "application/x-ndjson" },
      body: manifest,
    });

  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"), { keyCacheMs: 0 });
  });
  after(() => ctx.cleanup());

  test("a loopback store without keys needs none; the first admin key (made by the API) switches keys on", async () => {
    assert.equal((await as(undefined, "GET", "/v1/keys")).status, 200);
    const res = await as(undefined, "POST", "/v1/keys", { id: "root", scopes: ["admin"] });
    assert.equal(res.status, 201);
    const made = await read(res);
    assert.match(made.key, /^hs_root_/);
    assert.deepEqual(made.info.scopes, ["admin"]);
    assert.equal(made.info.customer, "local");
    key.root = made.key;

    const refused = await as(undefined, "GET", "/v1/heads/any");
    assert.equal(refused.status, 401);
    assert.equal((await read(refused)).error.field, "x-api-key");
    assert.equal((await as(undefined, "GET", "/health")).status, 200, "public routes stay public");
    assert.equal((await as(undefined, "GET", "/openapi.json")).status, 200);
  });

  test("admin makes keys of each scope; the store and the list hold no key and no hash", async () => {
    for (const [id, scopes] of [
      ["app", ["predict"]],
      ["loader", ["ingest"]],
      ["trainer", ["train"]],
    ] as const) {
      const res = await as("root", "POST", "/v1/keys", { id, scopes });
      assert.equal(res.status, 201, id);
      key[id] = (await read(res)).key;
    }
    const taken = await as("root", "POST", "/v1/keys", { id: "app", scopes: ["predict"] });
    assert.equal(taken.status, 409);
    const bad = await as("root", "POST", "/v1/keys", { id: "x", scopes: ["read"] });
    assert.equal(bad.status, 400);
    assert.match((await read(bad)).error.field, /^scopes/);

    const listed = await as("root", "GET", "/v1/keys");
    const text = await listed.text();
    assert.deepEqual(
      JSON.parse(text).keys.map((k: { id: string; scopes: string[]; revoked: boolean }) => [
        k.id,
        k.scopes,
        k.revoked,
      ]),
      [
        ["root", ["admin"], false],
        ["app", ["predict"], false],
        ["loader", ["ingest"], false],
        ["trainer", ["train"], false],
      ],
    );
    const stored = new TextDecoder().decode((await ctx.store.get(layout.apiKeys()))!.body);
    for (const k of Object.values(key)) {
      assert.ok(!text.includes(k) && !stored.includes(k), "no key in the list or the store");
      assert.ok(!text.includes(k.slice(-20)));
    }
    assert.ok(!/sha256|[0-9a-f]{64}/.test(text), "the list shows no hash");
  });

  test("each key may do what its scope says and nothing else; admin may do all", async () => {
    // ingest: upload, but not train, promote, predict or manage keys
    assert.equal((await putManifest("app")).status, 403, "predict key cannot upload");
    assert.equal((await putManifest("loader")).status, 200);
    await ctx.platform.local.idle();
    assert.equal((await as("loader", "GET", "/v1/datasets/films")).status, 200);
    assert.equal((await as("loader", "POST", "/v1/heads/films/train", { dataset: "films" })).status, 403);

    // train: train and promote, but not upload
    assert.equal((await putManifest("trainer")).status, 403);
    assert.equal((await as("app", "POST", "/v1/heads/films/train", { dataset: "films" })).status, 403);
    const trained = await as("trainer", "POST", "/v1/heads/films/train", { dataset: "films" });
    assert.equal(trained.status, 200);
    const { version } = await read(trained);
    const promote = (who: string) => as(who, "PUT", "/v1/heads/films/aliases/canary", { version });
    assert.equal((await promote("loader")).status, 403, "an ingest key cannot promote");
    assert.equal((await promote("app")).status, 403, "a predict key cannot promote");
    assert.equal((await promote("trainer")).status, 200);
    assert.equal((await as("app", "POST", "/v1/heads/films/aliases/canary/rollback")).status, 403);

    // predict: predict and read the head, not export its weights
    const predicted = await as("app", "POST", "/v1/heads/films/predict", { inputs: ["great fun"] });
    assert.equal(predicted.status, 200);
    assert.equal((await as("app", "GET", "/v1/heads/films")).status, 200);
    assert.equal((await as("app", "GET", `/v1/heads/films/versions/${version}/model.onnx`)).status, 403);
    assert.equal((await as("loader", "POST", "/v1/heads/films/predict", { inputs: ["x"] })).status, 403);

    // keys management is admin's alone
    for (const who of ["app", "loader", "trainer"]) {
      const res = await as(who, "GET", "/v1/keys");
      assert.equal(res.status, 403, who);
      const body = await read(res);
      assert.equal(body.error.code, "forbidden");
      assert.equal(body.error.field, "x-api-key");
      assert.deepEqual(body.error.details.required, ["admin"]);
    }
    // admin may do all
    assert.equal((await putManifest("root")).status, 200);
    assert.equal(
      (await as("root", "POST", "/v1/heads/films/predict", { inputs: ["great fun"] })).status,
      200,
    );
    assert.equal((await as("root", "PUT", "/v1/heads/films/aliases/canary", { version })).status, 200);
    // a route the table does not know needs admin: a new route is closed by default
    assert.equal((await as("app", "GET", "/v1/nothing-here")).status, 403);
    assert.equal((await as("root", "GET", "/v1/nothing-here")).status, 404);
    assert.deepEqual(routeAccess("POST", "/v1/doctor"), ["admin"]);
  });

  test("a revoked key is refused at once; another customer's key never passes", async () => {
    assert.equal((await as("root", "DELETE", "/v1/keys/app")).status, 200);
    const refused = await as("app", "POST", "/v1/heads/films/predict", { inputs: ["great fun"] });
    assert.equal(refused.status, 401);
    const again = await read(await as("root", "DELETE", "/v1/keys/app"));
    assert.equal(again.revoked, true, "revoking twice changes nothing");
    assert.equal((await as("root", "DELETE", "/v1/keys/nobody")).status, 404);

    // A key bound to customer acme-eu, in this very store, is refused by this (local) deployment.
    const foreign = await new KeyStore(ctx.store, "acme-eu").create("eu-admin", ["admin"]);
    const res = await app.request("/v1/keys", { headers: { "x-api-key": foreign.key } });
    assert.equal(res.status, 401);
  });

  test("behind API Gateway the authorizer's scopes are checked per route, and no answer is refused", async () => {
    const gateway = (scopes?: string) => ({
      requestContext: {
        requestId: "r-1",
        ...(scopes === undefined ? {} : { authorizer: { lambda: { apiKeyId: "ci", scopes } } }),
      },
    });
    const predict = () => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["great fun"] }),
    });
    const train = () => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ dataset: "films" }),
    });
    // No x-api-key here: behind the gateway the app trusts the authorizer's context, not the store.
    assert.equal((await app.request("/v1/heads/films/predict", predict(), gateway("predict"))).status, 200);
    const refused = await app.request("/v1/heads/films/train", train(), gateway("predict"));
    assert.equal(refused.status, 403);
    assert.match((await read(refused)).error.message, /needs scope train/);
    assert.equal((await app.request("/v1/keys", {}, gateway("train,ingest"))).status, 403);
    assert.equal((await app.request("/v1/keys", {}, gateway("admin"))).status, 200);
    assert.equal(
      (await app.request("/v1/heads/films/predict", predict(), gateway())).status,
      403,
      "fail closed",
    );
    assert.equal((await app.request("/health", {}, gateway())).status, 200);
  });

  test("the OpenAPI document names each operation's scopes", async () => {
    const doc = await read(await app.request("/openapi.json"));
    assert.deepEqual(doc.paths["/v1/heads/{head}/predict"].post["x-required-scopes"], ["predict"]);
    assert.deepEqual(doc.paths["/v1/heads/{head}/train"].post["x-required-scopes"], ["train"]);
    assert.deepEqual(doc.paths["/v1/keys"].post["x-required-scopes"], ["admin"]);
    assert.equal(doc.paths["/health"].get["x-required-scopes"], undefined);
  });

  test("every documented operation has its line in the scope table (only the doctor is admin by default)", async () => {
    const doc = await read(await app.request("/openapi.json"));
    const unlisted = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
      .filter((route) => !(route in ROUTE_SCOPES));
    assert.deepEqual(unlisted, ["POST /v1/doctor"]);
  });
});
