/**
 * Limits on training and its side effects: caps on head sizes and a memory budget refused up front
 * (422 naming the parameter), a wall-clock budget that stops a training storing nothing, a
 * cancelled HTTP client whose training is never stored nor promoted, and a training whose alias
 * moved meanwhile that keeps its version without answering an error.
 */
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { listVersions, readAlias } from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import type { ObjectStore, PutOptions } from "../shared/store/types.ts";
import { tinyPlatform } from "./helpers/platform.ts";

const DIM = 32;
const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

/** Two noisy classes in DIM dims: enough rows that an MLP takes seconds, none are test rows. */
function noisy(n: number) {
  const rand = mulberry32(7);
  const rows = Array.from({ length: n }, (_, i) => ({ id: `r${i}`, label: i % 2 ? "a" : "b" }));
  const embeddings = rows.map((r) =>
    Array.from({ length: DIM }, (_, j) => rand() - 0.5 + (j === 0 && r.label === "a" ? 0.3 : 0)),
  );
  return { rows, embeddings };
}

const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

/** An MLP that trains for ~6 s unless stopped (small batches, no early stopping): long enough to see it stop. */
const SLOW_MLP = {
  dataset: "d",
  backbone: "ext",
  type: "mlp",
  cv: 2,
  params: { units: 64, batchSize: 8, maxEpochs: 40, patience: 1000 },
};

describe("training limits", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.importEmbeddings("d", { backbone: "ext", ...noisy(2000) });
  });
  after(() => ctx.cleanup());

  /** The same store under another configuration (the platform reads its budgets from it). */
  const platformWith = (overrides: Parameters<typeof loadConfig>[1]) =>
    new Platform(ctx.store, loadConfig({}, { ...ctx.config, ...overrides }));
  const appOf = (p: Platform) => createApp(p, makeLogger("test", "silent"));

  test("an MLP over the weight cap is a 422 naming params.units, before any work", async () => {
    const res = await appOf(ctx.platform).request(
      "/v1/heads/wide/train",
      json({ dataset: "d", backbone: "ext", type: "mlp", params: { units: 4096, layers: 2 } }),
    );
    assert.equal(res.status, 422);
    const body = await read(res);
    assert.equal(body.error.field, "params.units");
    assert.match(body.error.message, /weights, over the limit of 10,000,000/);
    assert.deepEqual(await listVersions(ctx.store, "wide"), []);
  });

  test("a training over the memory budget is a 422 naming the budget; nothing is stored", async () => {
    const res = await appOf(platformWith({ trainMaxMemoryMb: 0.5 })).request(
      "/v1/heads/big/train",
      json({ dataset: "d", backbone: "ext" }),
    );
    assert.equal(res.status, 422);
    const body = await read(res);
    assert.equal(body.error.field, "HEADSTART_TRAIN_MAX_MEMORY_MB");
    assert.match(body.error.message, /a logreg head on 2000 rows × 32 dims needs an estimated \d+ MB/);
    assert.deepEqual(await listVersions(ctx.store, "big"), []);
    // The same request within the default budget trains.
    const ok = await appOf(ctx.platform).request(
      "/v1/heads/big/train",
      json({ dataset: "d", backbone: "ext" }),
    );
    assert.equal(ok.status, 200);
  });

  test("a training past its wall-clock budget stops with a 422 naming it; nothing is stored", async () => {
    const started = performance.now();
    const res = await appOf(platformWith({ trainMaxSeconds: 0.5 })).request(
      "/v1/heads/slow/train",
      json(SLOW_MLP),
    );
    const seconds = (performance.now() - started) / 1000;
    assert.equal(res.status, 422);
    const body = await read(res);
    assert.equal(body.error.field, "HEADSTART_TRAIN_MAX_SECONDS");
    assert.match(body.error.message, /wall-clock budget of 0\.5 s/);
    assert.ok(seconds < 5, `stopped after ${seconds.toFixed(1)} s`);
    assert.deepEqual(await listVersions(ctx.store, "slow"), []);
    assert.equal(await readAlias(ctx.store, "slow"), undefined);
  });

  test("a client that disconnects stops its training: no version stored, nothing promoted", async () => {
    const app = appOf(ctx.platform);
    let handled: Promise<Response> | undefined;
    const server = serve({
      fetch: (req: Request) => {
        handled = Promise.resolve(app.fetch(req));
        return handled;
      },
      hostname: "127.0.0.1",
      port: 0,
    });
    try {
      await new Promise<void>((resolve) => server.once("listening", () => resolve()));
      const { port } = server.address() as AddressInfo;
      const client = new AbortController();
      const request = fetch(`http://127.0.0.1:${port}/v1/heads/gone/train`, {
        ...json(SLOW_MLP),
        signal: client.signal,
      });
      await new Promise((r) => setTimeout(r, 700));
      client.abort();
      await assert.rejects(request, { name: "AbortError" });
      assert.ok(handled, "the server received the request");
      const started = performance.now();
      const res = await handled;
      assert.ok(performance.now() - started < 5000, "the training stopped soon after the client left");
      assert.equal(res.status, 422);
      assert.deepEqual(await listVersions(ctx.store, "gone"), []);
      assert.equal(await readAlias(ctx.store, "gone"), undefined);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test("a training whose live alias moved meanwhile keeps its version, answers 200, and is not promoted", async () => {
    const first = await ctx.platform.train({ head: "race", dataset: "d", backbone: "ext", type: "centroid" });
    const second = await ctx.platform.train({
      head: "race",
      dataset: "d",
      backbone: "ext",
      type: "centroid",
      promote: false,
    });
    // Someone promotes `second` right as the next training stores its version.
    let moved = false;
    const racing: ObjectStore = Object.create(ctx.store);
    racing.put = async (key: string, body: Uint8Array | string, opts?: PutOptions) => {
      if (!moved && key.endsWith("/report.json")) {
        moved = true;
        await ctx.platform.promote("race", second.version, first.version);
      }
      return ctx.store.put(key, body, opts);
    };
    const app = appOf(new Platform(racing, ctx.config));
    const res = await app.request(
      "/v1/heads/race/train",
      json({ dataset: "d", backbone: "ext", type: "centroid" }),
    );
    assert.equal(res.status, 200);
    const body = await read(res);
    assert.equal(body.promoted, false);
    assert.equal(body.notPromoted.live, second.version);
    assert.match(body.notPromoted.reason, /moved from .* while this version trained/);
    // The version exists and can be promoted by hand; live stays where the other caller put it.
    assert.ok((await listVersions(ctx.store, "race")).includes(body.version));
    assert.ok(await ctx.store.head(keys.headFile("race", body.version, "head.json")));
    assert.equal((await readAlias(ctx.store, "race"))?.value.version, second.version);
  });
});
