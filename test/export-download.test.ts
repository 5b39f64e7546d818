/**
 * Exports above HEADSTART_EXPORT_INLINE_MAX_BYTES are stored and answered as JSON with a URL
 * (Lambda answers at most 6 MB): locally the server's own download route, on S3 a presigned GET.
 * The bytes behind the URL are the model (sha256 as announced, loadable by onnxruntime), a repeat
 * export reuses the stored object, and exports under the limit still answer their bytes.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InferenceSession } from "onnxruntime-node";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { tempDir } from "./helpers/platform.ts";
import { createS3TestStore, type S3Server, startS3Server } from "./helpers/s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const LIMIT = 1000;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

async function trainedApp(store: ObjectStore, dir: string, extra: Record<string, unknown> = {}) {
  const config = loadConfig(
    { HEADSTART_EXPORT_INLINE_MAX_BYTES: String(LIMIT) },
    { store: store.url, defaultBackbone: "tiny-text", modelsDir: join(dir, "models"), ...extra },
  );
  const platform = new Platform(store, config);
  await writeTinyBackbone(join(dir, "backbone"));
  await platform.addBackbone(join(dir, "backbone"));
  await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { withSplit: true })));
  await platform.embed("films");
  const { version } = await platform.train({ dataset: "films", head: "sentiment" });
  return { platform, version, app: createApp(platform, makeLogger("test", "silent")) };
}

interface Download {
  url: string;
  bytes: number;
  sha256: string;
  filename: string;
  expiresAt?: string;
}

async function exportJson(app: ReturnType<typeof createApp>, path: string): Promise<Download> {
  const res = await app.request(path);
  assert.equal(res.status, 200, await res.clone().text());
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return (await res.json()) as Download;
}

async function assertModel(bytes: Uint8Array, announced: Download): Promise<void> {
  assert.equal(bytes.byteLength, announced.bytes);
  assert.equal(sha256(bytes), announced.sha256);
  const session = await InferenceSession.create(bytes);
  assert.ok(session.outputNames.includes("probabilities"), session.outputNames.join());
  await session.release();
}

describe("large exports, filesystem store: a URL of the local server", () => {
  let dir: string;
  let ctx: Awaited<ReturnType<typeof trainedApp>>;
  before(async () => {
    dir = await tempDir("headstart-export-download-");
    ctx = await trainedApp(new FsStore(join(dir, "store")), dir);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("over the limit: JSON with a download route that streams the stored model", async () => {
    const { app, version } = ctx;
    const base = `/v1/heads/sentiment/versions/${version}/model.onnx`;
    const first = await exportJson(app, `http://127.0.0.1${base}?fused=true`);
    assert.ok(first.bytes > LIMIT);
    assert.equal(first.filename, `sentiment-${version}-fused.onnx`);
    assert.equal(first.expiresAt, undefined, "a local URL does not expire");
    assert.equal(first.url, `http://127.0.0.1${base}/download?fused=true`);
    const res = await app.request(first.url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-disposition") ?? "", /sentiment-.*-fused\.onnx/);
    await assertModel(new Uint8Array(await res.arrayBuffer()), first);
    // The very bytes the platform builds, stored under their hash.
    const built = (await ctx.platform.exportHead(`sentiment@${version}`, { fused: true })).bytes;
    assert.equal(sha256(built), first.sha256);
    const key = keys.headExport("sentiment", version, true, first.sha256);
    assert.ok(await ctx.platform.store.head(key));
  });

  test("a repeat export reuses the stored object instead of rebuilding it", async () => {
    const { app, version, platform } = ctx;
    const path = `/v1/heads/sentiment/versions/${version}/model.onnx?fused=true`;
    const first = await exportJson(app, path);
    const key = keys.headExport("sentiment", version, true, first.sha256);
    const etag = (await platform.store.head(key))?.etag;
    let built = 0;
    const exportHead = platform.exportHead.bind(platform);
    platform.exportHead = async (...args) => {
      built++;
      return exportHead(...args);
    };
    try {
      const again = await exportJson(app, path);
      assert.deepEqual(again, first);
    } finally {
      platform.exportHead = exportHead;
    }
    assert.equal(built, 0, "served from the store");
    assert.equal((await platform.store.head(key))?.etag, etag, "not rewritten");
    assert.equal((await platform.store.list(keys.headExportPrefix("sentiment", version, true))).length, 1);
  });

  test("under the limit the bytes come back as before; the download route serves only stored exports", async () => {
    const { app, version } = ctx;
    // The head alone is smaller than the fused model: raise the limit above it with a new platform.
    const config = { ...ctx.platform.config, exportInlineMaxBytes: 10 * 1024 * 1024 };
    const small = createApp(new Platform(ctx.platform.store, config), makeLogger("test", "silent"));
    const res = await small.request(`/v1/heads/sentiment/versions/${version}/model.onnx`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/octet-stream");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.ok((await InferenceSession.create(bytes)).outputNames.includes("probabilities"));
    // Nothing stored for the alone export (it was answered inline), so nothing to download.
    const missing = await app.request(`/v1/heads/sentiment/versions/${version}/model.onnx/download`);
    assert.equal(missing.status, 404);
    const err = (await missing.json()) as { error: { code: string; field?: string; message: string } };
    assert.equal(err.error.field, "version");
    assert.doesNotMatch(err.error.message, /exports\/|file:/, "no store key or path");
    for (const bad of ["..%2F..%2Fapi-keys", "%2E%2E"]) {
      const r = await app.request(`/v1/heads/sentiment/versions/${bad}/model.onnx/download`);
      assert.ok(r.status === 400 || r.status === 404, `${bad}: ${r.status}`);
    }
  });
});

describe("large exports, S3 store (radosgw): a presigned URL", () => {
  let dir: string;
  let s3: S3Server;
  let ctx: Awaited<ReturnType<typeof trainedApp>>;
  before(
    async () => {
      dir = await tempDir("headstart-export-s3-");
      s3 = await startS3Server();
      const store = await createS3TestStore(s3, { prefix: "exports-test", scratchDir: join(dir, "scratch") });
      ctx = await trainedApp(store, dir, {
        s3Endpoint: s3.endpoint,
        region: s3.region,
        scratchDir: join(dir, "scratch"),
      });
    },
    { timeout: 240_000 },
  );
  after(async () => {
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("the URL is a presigned GET: plain fetch gets the model, saved under its filename", async () => {
    const { app, version } = ctx;
    const path = `/v1/heads/sentiment/versions/${version}/model.onnx?fused=true`;
    const first = await exportJson(app, path);
    assert.match(first.url, /X-Amz-Signature=/);
    assert.ok(Date.parse(first.expiresAt ?? "") > Date.now());
    const res = await fetch(first.url);
    assert.equal(res.status, 200);
    assert.equal(
      res.headers.get("content-disposition"),
      `attachment; filename="sentiment-${version}-fused.onnx"`,
    );
    await assertModel(new Uint8Array(await res.arrayBuffer()), first);
    // A repeat export answers the same object.
    const again = await exportJson(app, path);
    assert.equal(again.sha256, first.sha256);
    assert.equal(
      (await ctx.platform.store.list(keys.headExportPrefix("sentiment", version, true))).length,
      1,
    );
  });
});
