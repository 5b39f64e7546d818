/**
 * Fault injection on the real S3 path: radosgw behind our fault proxy (test/helpers/fault-proxy.ts)
 * answering 500, 503 SlowDown, resets, truncated bodies and stalls for 5% and 20% of requests.
 * The whole loop (publish a backbone, ingest, embed, train, promote, predict) through a Platform
 * on that S3Store either completes or fails with a clean error (a HeadstartError, never a hang or
 * an SDK error), each step retried by the "user" a few times; afterwards `doctor`, reading
 * through a client without the proxy, finds nothing corrupt, missing or duplicated, and what
 * completed is served the same way without faults.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../shared/config.ts";
import { runDoctor } from "../shared/doctor/index.ts";
import { HeadstartError, StoreUnavailableError } from "../shared/errors.ts";
import { Platform } from "../shared/platform.ts";
import { S3Store } from "../shared/store/s3.ts";
import { type FaultProxy, startFaultProxy } from "./helpers/fault-proxy.ts";
import { tempDir } from "./helpers/platform.ts";
import { type S3Server, startS3Server } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const BACKBONE = "tiny-text";
const SOCKET_TIMEOUT_MS = 1_000;
const STALL_MS = 2_000;
/** A step that takes longer than this hangs, which is the one thing it must never do. */
const STEP_DEADLINE_MS = 60_000;
const USER_TRIES = 4;

interface StepOutcome {
  step: string;
  tries: number;
  ok: boolean;
  errors: string[];
}

/** A user's view: run the step, retry a failure a few times; every failure must be clean. */
async function asUser<T>(
  step: string,
  fn: () => Promise<T>,
  outcomes: StepOutcome[],
): Promise<T | undefined> {
  const outcome: StepOutcome = { step, tries: 0, ok: false, errors: [] };
  outcomes.push(outcome);
  for (let i = 0; i < USER_TRIES; i++) {
    outcome.tries++;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${step} hung for ${STEP_DEADLINE_MS} ms`)),
        STEP_DEADLINE_MS,
      );
    });
    try {
      const value = await Promise.race([fn(), deadline]);
      outcome.ok = true;
      return value;
    } catch (err) {
      assert.ok(err instanceof HeadstartError, `${step}: not a clean error: ${(err as Error).stack}`);
      assert.notEqual(err.code, "internal", `${step}: internal error: ${err.message}`);
      assert.ok(!/127\.0\.0\.1|http:\/\//.test(err.message), `${step}: the message names the endpoint`);
      outcome.errors.push(`${err.code}: ${err.message}`);
    } finally {
      clearTimeout(timer);
    }
  }
  return undefined;
}

describe("the platform on radosgw behind a fault-injecting proxy", { timeout: 400_000 }, () => {
  let s3: S3Server;
  let dir: string;
  const proxies: FaultProxy[] = [];

  before(
    async () => {
      dir = await tempDir("headstart-s3-faults-");
      s3 = await startS3Server();
      await writeTinyBackbone(join(dir, "backbone"));
      await writeFile(join(dir, "films.jsonl"), toJsonlText(tinySentimentRows(120, { withSplit: true })));
    },
    { timeout: 240_000 },
  );

  after(async () => {
    for (const p of proxies) await p.close();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A store through a fresh proxy (no faults unless injected) on a fresh bucket. */
  async function proxied(opts: { rate?: number; maxAttempts?: number } = {}) {
    const bucket = await s3.createBucket();
    const proxy = await startFaultProxy(s3.endpoint, { rate: opts.rate ?? 0, seed: 7, stallMs: STALL_MS });
    proxies.push(proxy);
    const store = new S3Store({
      bucket,
      endpoint: proxy.endpoint,
      region: s3.region,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      socketTimeoutMs: SOCKET_TIMEOUT_MS,
      maxAttempts: opts.maxAttempts,
    });
    return { proxy, store };
  }

  test("a create-only or compare-and-swap write whose first try got through succeeds on its retry", async () => {
    const { proxy, store } = await proxied();
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
      const bucket = await s3.createBucket();
      const proxy = await startFaultProxy(s3.endpoint, { rate, seed, stallMs: STALL_MS });
      proxies.push(proxy);
      const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
      const scratchDir = join(dir, `scratch-${seed}`);
      const faulty = new S3Store({
        bucket,
        prefix: "acme",
        endpoint: proxy.endpoint,
        region: s3.region,
        credentials,
        scratchDir,
        socketTimeoutMs: SOCKET_TIMEOUT_MS,
        connectTimeoutMs: SOCKET_TIMEOUT_MS,
      });
      const clean = new S3Store({
        bucket,
        prefix: "acme",
        endpoint: s3.endpoint,
        region: s3.region,
        credentials,
      });
      const config = loadConfig(
        {},
        {
          store: faulty.url,
          s3Endpoint: proxy.endpoint,
          region: s3.region,
          defaultBackbone: BACKBONE,
          modelsDir: join(dir, "models"),
          scratchDir,
          logLevel: "silent",
        },
      );
      const platform = new Platform(faulty, config);
      const outcomes: StepOutcome[] = [];
      const started = Date.now();

      await asUser("backbone", () => platform.addBackbone(join(dir, "backbone")), outcomes);
      await asUser("ingest", () => platform.upload("films", join(dir, "films.jsonl")), outcomes);
      await asUser("embed", () => platform.embed("films", { shardSize: 20 }), outcomes);
      const first = await asUser(
        "train",
        () => platform.train({ dataset: "films", head: "films" }),
        outcomes,
      );
      const second = await asUser(
        "train again",
        () => platform.train({ dataset: "films", head: "films", promote: false }),
        outcomes,
      );
      if (second) await asUser("promote", () => platform.promote("films", second.version), outcomes);
      const predicted = await asUser(
        "predict",
        () => platform.predict("films", { inputs: ["wonderful brilliant fun", "awful dull boring"] }),
        outcomes,
      );
      const seconds = (Date.now() - started) / 1000;
      const stats = { proxy: proxy.stats(), store: faulty.stats() };
      const summary = JSON.stringify({ rate, seconds, outcomes, stats }, null, 1);

      // Faults were really injected, and the store retried past them.
      assert.ok(Object.values(stats.proxy.faults).reduce((a, b) => a + b, 0) > 0, summary);
      assert.ok(stats.store.retries > 0, summary);
      // At 5% bounded retries absorb every fault; at 20% a step may need the user's retry.
      if (rate <= 0.05)
        assert.ok(
          outcomes.every((o) => o.ok),
          summary,
        );

      const report = await runDoctor(clean);
      const { corrupt, missing, duplicated } = report.summary;
      assert.deepEqual(
        { corrupt, missing, duplicated },
        { corrupt: 0, missing: 0, duplicated: 0 },
        JSON.stringify(report, null, 1),
      );
      assert.ok(report.checks.shards.checked > 0 || !outcomes.find((o) => o.step === "embed")?.ok);

      // What completed is what a client without faults sees.
      if (predicted) {
        assert.deepEqual(
          predicted.predictions.map((p) => p.label),
          ["pos", "neg"],
        );
        const served = new Platform(clean, { ...config, store: clean.url, s3Endpoint: s3.endpoint });
        const again = await served.predict("films", {
          inputs: ["wonderful brilliant fun", "awful dull boring"],
        });
        assert.equal(again.version, predicted.version);
        if (second && outcomes.find((o) => o.step === "promote")?.ok)
          assert.equal(again.version, second.version);
        else if (first) assert.ok([first.version, second?.version].includes(again.version));
      }
      process.stderr.write(`# ${summary.replace(/\n/g, " ")}\n`);
    });
  }
});
