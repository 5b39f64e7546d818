/**
 * Fault injection on the real S3 path: radosgw behind our fault proxy (test/helpers/fault-proxy.ts)
 * answering 500, 503 SlowDown, resets, truncated bodies and stalls for 5% and 20% of requests.
 * The whole loop (test/helpers/s3-fault-loop.ts: publish a backbone, ingest, embed, train,
 * promote, predict) through a Platform on that S3Store either completes or fails with a clean
 * error (a HeadstartError, never a hang or an SDK error), each step retried by the "user" a few
 * times; afterwards `doctor`, reading through a client without the proxy, finds nothing lost,
 * corrupt, missing or duplicated, and what completed is served the same way without faults.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { S3Store } from "../shared/aws/s3-store.ts";
import { StoreUnavailableError } from "../shared/errors.ts";
import { type FaultProxy, startFaultProxy } from "./helpers/fault-proxy.ts";
import { tempDir } from "./helpers/platform.ts";
import { runFaultLoop, SOCKET_TIMEOUT_MS, STALL_MS } from "./helpers/s3-fault-loop.ts";
import { type S3Server, startS3Server } from "./helpers/s3-server.ts";

describe("the platform on radosgw behind a fault-injecting proxy", { timeout: 400_000 }, () => {
  let s3: S3Server;
  let dir: string;
  const proxies: FaultProxy[] = [];

  before(
    async () => {
      dir = await tempDir("headstart-s3-faults-");
      s3 = await startS3Server();
    },
    { timeout: 240_000 },
  );

  after(async () => {
    for (const p of proxies) await p.close();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A store through a fresh proxy (no faults unless injected) on a fresh bucket. */
  async function proxied(opts: { rate?: number; maxAttempts?: number; socketTimeoutMs?: number } = {}) {
    const bucket = await s3.createBucket();
    const proxy = await startFaultProxy(s3.endpoint, { rate: opts.rate ?? 0, seed: 7, stallMs: STALL_MS });
    proxies.push(proxy);
    const store = new S3Store({
      bucket,
      endpoint: proxy.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      socketTimeoutMs: opts.socketTimeoutMs ?? SOCKET_TIMEOUT_MS,
      maxAttempts: opts.maxAttempts,
    });
    return { proxy, store };
  }

  test("a create-only or compare-and-swap write whose first try got through succeeds on its retry", async () => {
    // No stall is injected here: a generous socket timeout keeps a slow (loaded) machine from
    // adding a retry of its own, so each injected fault costs exactly one.
    const { proxy, store } = await proxied({ socketTimeoutMs: 10_000 });
    // The server applies the write, the client never hears: its retry meets 412 on its own bytes.
    proxy.injectNext({ kind: "reset", after: true });
    const created = await store.put("heads/h/aliases/live.json", '{"v":1}', { ifNoneMatch: "*" });
    proxy.injectNext({ kind: "500", after: true });
    const swapped = await store.put("heads/h/aliases/live.json", '{"v":2}', { ifMatch: created.etag });
    assert.equal(new TextDecoder().decode((await store.get("heads/h/aliases/live.json"))!.body), '{"v":2}');
    assert.equal(swapped.etag, (await store.head("heads/h/aliases/live.json"))!.etag);
    assert.equal(store.stats().retries, 2);
    // Someone else's bytes in place are still a lost race.
    proxy.injectNext({ kind: "reset", after: true });
    await assert.rejects(store.put("heads/h/aliases/live.json", '{"v":3}', { ifMatch: created.etag }), {
      code: "precondition_failed",
    });
  });

  test("a body cut short or stalled is read again, not returned short", async () => {
    const { proxy, store } = await proxied();
    const bytes = new Uint8Array(64 * 1024).map((_, i) => i % 251);
    await store.put("datasets/d/files/a.bin", bytes);
    proxy.injectNext({ kind: "truncate" }, { kind: "stall", after: true });
    const got = await store.get("datasets/d/files/a.bin");
    assert.deepEqual(got?.body, bytes);
    assert.equal(store.stats().retries, 2);
    assert.deepEqual(proxy.stats().faults, { 500: 0, 503: 0, reset: 0, truncate: 1, stall: 1 });
  });

  test("a store that keeps failing is a StoreUnavailableError after maxAttempts, in bounded time", async () => {
    const { store } = await proxied({ rate: 1, maxAttempts: 3 });
    const started = Date.now();
    const err = await store.get("datasets/d/_status.json").catch((e: unknown) => e);
    assert.ok(err instanceof StoreUnavailableError, String(err));
    assert.equal(err.code, "unavailable");
    assert.match(err.message, /after 3 attempts/);
    assert.ok(Date.now() - started < 10_000);
  });

  for (const [rate, seed] of [
    [0.05, 5],
    [0.2, 20],
  ] as const) {
    test(`${rate * 100}% of requests fail: every step completes or fails cleanly, doctor finds nothing wrong`, async () => {
      const r = await runFaultLoop(s3, { rate, seed, dir: join(dir, `loop-${seed}`) });
      const summary = JSON.stringify(r, null, 1);
      assert.deepEqual(r.unclean, [], summary);
      // Faults were really injected, and the store retried past them.
      assert.ok(Object.values(r.faults).reduce((a, b) => a + b, 0) > 0, summary);
      assert.ok(r.retries > 0, summary);
      // At 5% bounded retries absorb every fault; at 20% a step may need the user's retry.
      if (rate <= 0.05)
        assert.ok(
          r.outcomes.every((o) => o.ok),
          summary,
        );
      assert.deepEqual(
        { lost: r.lost, corrupt: r.corrupt, duplicated: r.duplicated },
        { lost: 0, corrupt: 0, duplicated: 0 },
        summary,
      );
      // What completed is what a client without faults sees.
      if (r.predicted) {
        assert.deepEqual(r.predicted.labels, ["pos", "neg"]);
        assert.equal(r.served?.version, r.predicted.version);
        if (r.versions.promoted) assert.equal(r.served?.version, r.versions.second);
        else assert.ok([r.versions.first, r.versions.second].includes(r.served?.version));
      }
      process.stderr.write(
        `# ${JSON.stringify({ rate, seconds: r.seconds, retries: r.retries, faults: r.faults })}\n`,
      );
    });
  }
});
