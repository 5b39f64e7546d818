/**
 * One contract, two adapters: FsStore on a temp dir and S3Store on a real radosgw. Whatever the
 * rest of the platform relies on (atomic create-only, compare-and-swap, sorted prefix listing,
 * local paths for ONNX Runtime) is asserted here once for both.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { S3Store } from "../shared/aws/s3-store.ts";
import { PreconditionFailedError, ValidationError } from "../shared/errors.ts";
import { FsStore } from "../shared/store/fs.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { createS3TestStore, type S3Server, startS3Server } from "./helpers/s3-server.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function readLocal(store: ObjectStore, key: string): Promise<Buffer> {
  const path = await store.localPath(key);
  assert.ok(path, `localPath(${key}) should exist`);
  return fs.readFile(path);
}

interface ContractOptions {
  /** Keys written for the big-listing test; must exceed the store's list page size. */
  manyKeys: number;
}

function storeContract(makeStore: () => Promise<ObjectStore>, opts: ContractOptions): void {
  test("bytes with all 256 values, strings and empty bodies round-trip", async () => {
    const store = await makeStore();
    const all = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
    const put = await store.put("blobs/all-bytes.bin", all);
    assert.equal(put.key, "blobs/all-bytes.bin");
    assert.equal(put.size, 512);
    const got = await store.get("blobs/all-bytes.bin");
    assert.ok(got);
    assert.deepEqual(Buffer.from(got.body), Buffer.from(all));
    assert.equal(got.size, 512);
    assert.equal(got.etag, put.etag);

    const s = 'héllo ✓ 🚀 "quoted"\n';
    const sp = await store.put("blobs/text.txt", s, { contentType: "text/plain; charset=utf-8" });
    assert.equal(sp.size, Buffer.byteLength(s));
    assert.equal(text((await store.get("blobs/text.txt"))!.body), s);

    await store.put("blobs/empty", new Uint8Array());
    const empty = await store.get("blobs/empty");
    assert.ok(empty);
    assert.equal(empty.size, 0);
    assert.equal(empty.body.byteLength, 0);
  });

  test("missing keys: get, head and localPath answer undefined", async () => {
    const store = await makeStore();
    assert.equal(await store.get("nope/missing.json"), undefined);
    assert.equal(await store.head("nope/missing.json"), undefined);
    assert.equal(await store.localPath("nope/missing.json"), undefined);
  });

  test("head reports size and the same etag as put and get; etag changes on overwrite", async () => {
    const store = await makeStore();
    const a = await store.put("h/obj", "first version");
    const h1 = await store.head("h/obj");
    assert.deepEqual(h1, { key: "h/obj", size: 13, etag: a.etag });
    assert.ok(a.etag.length > 0);
    const b = await store.put("h/obj", "second, longer version");
    assert.notEqual(b.etag, a.etag);
    const h2 = await store.head("h/obj");
    assert.deepEqual(h2, { key: "h/obj", size: 22, etag: b.etag });
    assert.equal((await store.get("h/obj"))!.etag, b.etag);
  });

  test("create-only succeeds once, then fails with PreconditionFailedError and keeps the original", async () => {
    const store = await makeStore();
    const first = await store.put("c/once.json", '{"v":1}', { ifNoneMatch: "*" });
    await assert.rejects(store.put("c/once.json", '{"v":2}', { ifNoneMatch: "*" }), PreconditionFailedError);
    const got = await store.get("c/once.json");
    assert.equal(text(got!.body), '{"v":1}');
    assert.equal(got!.etag, first.etag);
  });

  test("concurrent create-only puts: exactly one wins and its bytes are stored", async () => {
    const store = await makeStore();
    const n = 12;
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => store.put("c/race.json", `writer-${i}`, { ifNoneMatch: "*" })),
    );
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(winners.length, 1, `exactly one winner, got ${winners.length}`);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof PreconditionFailedError, String(r.reason));
    }
    assert.equal(text((await store.get("c/race.json"))!.body), `writer-${winners[0]}`);
  });

  test("ifMatch: current etag replaces, stale or missing fails and leaves content intact", async () => {
    const store = await makeStore();
    const v1 = await store.put("m/live.json", '{"version":"v1"}');
    const v2 = await store.put("m/live.json", '{"version":"v2"}', { ifMatch: v1.etag });
    assert.notEqual(v2.etag, v1.etag);
    await assert.rejects(
      store.put("m/live.json", '{"version":"v3"}', { ifMatch: v1.etag }),
      PreconditionFailedError,
    );
    const got = await store.get("m/live.json");
    assert.equal(text(got!.body), '{"version":"v2"}');
    assert.equal(got!.etag, v2.etag);
    // The ETag exactly as head reports it (quotes and all) is accepted back.
    const h = await store.head("m/live.json");
    await store.put("m/live.json", '{"version":"v4"}', { ifMatch: h!.etag });
    assert.equal(text((await store.get("m/live.json"))!.body), '{"version":"v4"}');
    await assert.rejects(store.put("m/absent.json", "x", { ifMatch: v1.etag }), PreconditionFailedError);
    assert.equal(await store.head("m/absent.json"), undefined);
  });

  test("concurrent compare-and-swap from the same etag: exactly one wins", async () => {
    const store = await makeStore();
    const base = await store.put("m/cas.json", "base");
    const n = 8;
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => store.put("m/cas.json", `cas-${i}`, { ifMatch: base.etag })),
    );
    const winners = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
    assert.equal(winners.length, 1, `exactly one winner, got ${winners.length}`);
    for (const r of results) {
      if (r.status === "rejected") assert.ok(r.reason instanceof PreconditionFailedError, String(r.reason));
    }
    assert.equal(text((await store.get("m/cas.json"))!.body), `cas-${winners[0]}`);
  });

  test("list: sorted, prefix-exact (including mid-name prefixes), siblings excluded", async () => {
    const store = await makeStore();
    const keys = [
      "cache/b/d/shard-00001.rows.jsonl",
      "cache/b/d/_commit-00000.json",
      "cache/b/dx/shard-00000.npy",
      "cache/b/d/shard-00000.npy",
      "cache/b/d/shard-00000.rows.jsonl",
      "cache/b/shard-x",
      "cache/b-d/shard-00000.npy",
      "cache/a/d/shard-00000.npy",
      "jobs/j1.json",
    ];
    for (const k of keys) await store.put(k, k);
    const ls = async (p: string) => (await store.list(p)).map((o) => o.key);

    assert.deepEqual(await ls("cache/b/d/shard-"), [
      "cache/b/d/shard-00000.npy",
      "cache/b/d/shard-00000.rows.jsonl",
      "cache/b/d/shard-00001.rows.jsonl",
    ]);
    assert.deepEqual(await ls("cache/b/d/"), [
      "cache/b/d/_commit-00000.json",
      "cache/b/d/shard-00000.npy",
      "cache/b/d/shard-00000.rows.jsonl",
      "cache/b/d/shard-00001.rows.jsonl",
    ]);
    // A prefix is a plain string prefix, as in S3: `cache/b/d` also matches `cache/b/dx/…`.
    assert.deepEqual(await ls("cache/b/d"), [
      "cache/b/d/_commit-00000.json",
      "cache/b/d/shard-00000.npy",
      "cache/b/d/shard-00000.rows.jsonl",
      "cache/b/d/shard-00001.rows.jsonl",
      "cache/b/dx/shard-00000.npy",
    ]);
    assert.deepEqual(await ls("cache/b-"), ["cache/b-d/shard-00000.npy"]);
    assert.deepEqual(await ls("nothing/here/"), []);
    const sorted = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(await ls(""), sorted);

    const infos = await store.list("cache/b/d/shard-00000.n");
    assert.equal(infos.length, 1);
    const h = await store.head("cache/b/d/shard-00000.npy");
    const { modifiedMs, ...listed } = infos[0];
    assert.deepEqual(listed, h);
    // When it was written (gc's grace period reads it): within a minute of this test's clock.
    assert.ok(Math.abs((modifiedMs ?? 0) - Date.now()) < 60_000, String(modifiedMs));
  });

  test(`list returns all of ${opts.manyKeys} keys in order (pagination)`, async () => {
    const store = await makeStore();
    const keys = Array.from({ length: opts.manyKeys }, (_, i) => `many/k-${String(i).padStart(5, "0")}`);
    const queue = [...keys].reverse();
    await Promise.all(
      Array.from({ length: 24 }, async () => {
        for (let k = queue.pop(); k !== undefined; k = queue.pop()) await store.put(k, "x");
      }),
    );
    await store.put("many-sibling", "x");
    const listed = await store.list("many/");
    assert.equal(listed.length, opts.manyKeys);
    assert.deepEqual(
      listed.map((o) => o.key),
      keys,
    );
    assert.ok(listed.every((o) => o.size === 1 && o.etag.length > 0));
  });

  test("putFile stores a local file's bytes (streamed), replacing the object, with head's etag", async () => {
    const store = await makeStore();
    assert.ok(store.putFile, "both stores stream files");
    const dir = await fs.mkdtemp(join(tmpdir(), "headstart-putfile-"));
    try {
      const bytes = randomBytes(3 * 1024 * 1024 + 7);
      await fs.writeFile(join(dir, "f"), bytes);
      await store.put("pf/x", "old");
      const info = await store.putFile!("pf/x", join(dir, "f"), { contentType: "application/x-ndjson" });
      assert.equal(info.size, bytes.length);
      assert.equal(info.etag, (await store.head("pf/x"))!.etag);
      assert.deepEqual(Buffer.from((await store.get("pf/x"))!.body), bytes);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  test("delete removes the object and is idempotent", async () => {
    const store = await makeStore();
    await store.put("d/x", "x");
    await store.put("d/y", "y");
    await store.delete("d/x");
    assert.equal(await store.get("d/x"), undefined);
    assert.equal(await store.head("d/x"), undefined);
    await store.delete("d/x");
    await store.delete("d/never-existed");
    assert.deepEqual(
      (await store.list("d/")).map((o) => o.key),
      ["d/y"],
    );
    // A deleted key can be created again with create-only.
    await store.put("d/x", "again", { ifNoneMatch: "*" });
    assert.equal(text((await store.get("d/x"))!.body), "again");
  });

  test("localFile gives the file and the sha256 of its bytes, before and after a replacement", async () => {
    const store = await makeStore();
    assert.equal(await store.localFile("backbones/t/none.onnx"), undefined);
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    const big = randomBytes(2 * 1024 * 1024 + 5);
    await store.put("backbones/t/m.onnx", big);
    for (let i = 0; i < 2; i++) {
      const f = await store.localFile("backbones/t/m.onnx");
      assert.ok(f);
      assert.equal(f.sha256, sha(big));
      assert.ok((await fs.readFile(f.path)).equals(big));
    }
    const next = randomBytes(999);
    await store.put("backbones/t/m.onnx", next);
    const g = await store.localFile("backbones/t/m.onnx");
    assert.equal(g?.sha256, sha(next));
  });

  test("localPath gives a file with the object's bytes, reused while unchanged and refreshed after", async () => {
    const store = await makeStore();
    const big = randomBytes(3 * 1024 * 1024 + 17);
    await store.put("backbones/t/model.onnx", big);
    const p1 = await store.localPath("backbones/t/model.onnx");
    assert.ok(p1);
    assert.ok((await fs.readFile(p1)).equals(big));
    const p1again = await store.localPath("backbones/t/model.onnx");
    assert.equal(p1again, p1);

    const next = randomBytes(1024);
    await store.put("backbones/t/model.onnx", next);
    assert.ok((await readLocal(store, "backbones/t/model.onnx")).equals(next));
  });

  test("invalid keys are rejected with ValidationError", async () => {
    const store = await makeStore();
    const long = `datasets/d/files/${"x".repeat(1010)}`;
    for (const bad of [
      "",
      "/abs",
      "../escape",
      "a/../../b",
      "a//b",
      "a/./b",
      "trailing/",
      "a\u0000b",
      "a/\nb",
      long,
    ]) {
      await assert.rejects(store.put(bad, "x"), ValidationError, `put ${JSON.stringify(bad)}`);
      await assert.rejects(store.get(bad), ValidationError, `get ${JSON.stringify(bad)}`);
      await assert.rejects(store.head(bad), ValidationError, `head ${JSON.stringify(bad)}`);
      await assert.rejects(store.delete(bad), ValidationError, `delete ${JSON.stringify(bad)}`);
    }
  });
}

describe("FsStore contract", () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await fs.mkdtemp(join(tmpdir(), "headstart-fs-contract-"));
  });
  after(() => fs.rm(root, { recursive: true, force: true }));

  storeContract(async () => new FsStore(join(root, `s${n++}`)), { manyKeys: 1100 });

  test("put answers the ETag of its own write, whatever happens to the object right after", async () => {
    // Another process may replace or delete the object between the write and any later look
    // (a lease released by its next holder): the answer must not depend on a second read.
    class Racing extends FsStore {
      override async head(): Promise<undefined> {
        return undefined;
      }
    }
    const dir = join(root, "racing");
    const info = await new Racing(dir).put("leases/l.json", "{}", { ifNoneMatch: "*" });
    assert.equal(info.etag, (await new FsStore(dir).head("leases/l.json"))?.etag);
    const next = await new Racing(dir).put("leases/l.json", "{ }");
    assert.notEqual(next.etag, info.etag);
    assert.equal(next.etag, (await new FsStore(dir).head("leases/l.json"))?.etag);
  });

  test("url is a file:// URL of the root", () => {
    const store = new FsStore(join(root, "url"));
    assert.equal(store.url, `file://${join(root, "url")}`);
  });

  test("temp and lock files of in-flight or crashed writers never show in list", async () => {
    const dir = join(root, "tmpvis");
    const store = new FsStore(dir);
    await store.put("a/real.json", "{}");
    // What a writer that crashed mid-put leaves behind.
    await fs.writeFile(join(dir, "a", "real.json.~tmp-deadbeef0000"), "partial");
    await fs.writeFile(join(dir, "a", "other.json.~tmp-0123456789ab"), "partial");
    await fs.writeFile(join(dir, "a", "real.json.~lock"), "");
    assert.deepEqual(
      (await store.list("a/")).map((o) => o.key),
      ["a/real.json"],
    );

    // And while writers are busy, a lister only ever sees committed keys.
    let writing = true;
    const writers = (async () => {
      for (let i = 0; i < 60; i++) await store.put(`a/w-${i % 5}.json`, randomBytes(64 * 1024));
      writing = false;
    })();
    const seen = new Set<string>();
    while (writing) for (const o of await store.list("a/")) seen.add(o.key);
    await writers;
    for (const k of seen) assert.match(k, /^a\/(real|w-\d)\.json$/);
  });
});

describe("S3Store contract (radosgw)", { timeout: 300_000 }, () => {
  let s3: S3Server;
  let bucket: string;
  let scratch: string;
  let n = 0;
  before(
    async () => {
      s3 = await startS3Server();
      bucket = await s3.createBucket();
      scratch = await fs.mkdtemp(join(tmpdir(), "headstart-s3-scratch-"));
    },
    { timeout: 240_000 },
  );
  after(async () => {
    await s3?.stop();
    if (scratch) await fs.rm(scratch, { recursive: true, force: true });
  });

  const storeOn = (prefix: string, extra: { listPageSize?: number } = {}) =>
    new S3Store({
      bucket,
      prefix,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      scratchDir: scratch,
      ...extra,
    });

  // Each test gets its own prefix in one bucket, which also exercises prefix stripping everywhere.
  // A page size of 100 makes the big listing cross real continuation tokens without the ~12 s it
  // takes radosgw on two cores to take the 1000+ objects a default-sized page would need.
  storeContract(async () => storeOn(`t${n++}`, { listPageSize: 100 }), { manyKeys: 250 });

  test("a store without prefix on a fresh bucket: url, keys and listing", async () => {
    const store = await createS3TestStore(s3, { scratchDir: scratch });
    assert.match(store.url, /^s3:\/\/hs-test-[0-9a-f]+$/);
    await store.put("top.json", "{}");
    await store.put("dir/inner.json", "{}");
    assert.deepEqual(
      (await store.list("")).map((o) => o.key),
      ["dir/inner.json", "top.json"],
    );
    assert.equal(storeOn("p/q").url, `s3://${bucket}/p/q`);
  });

  test("keys are stored under the prefix and listing with a small page size paginates", async () => {
    const store = storeOn("paged", { listPageSize: 3 });
    const keys = Array.from({ length: 11 }, (_, i) => `p/${String(i).padStart(2, "0")}`);
    for (const k of keys) await store.put(k, k);
    assert.deepEqual(
      (await store.list("p/")).map((o) => o.key),
      keys,
    );
    const raw = storeOn("");
    assert.equal(text((await raw.get("paged/p/00"))!.body), "p/00");
  });

  test("localPath caches under scratchDir by ETag, reuses the file and evicts stale versions", async () => {
    const store = storeOn("lp");
    await store.put("m/model.onnx", randomBytes(4096));
    const p1 = (await store.localPath("m/model.onnx"))!;
    assert.ok(p1.startsWith(join(scratch, "headstart-s3-cache")), p1);
    const st1 = await fs.stat(p1);
    const p1b = (await store.localPath("m/model.onnx"))!;
    const st1b = await fs.stat(p1b);
    assert.equal(st1b.ino, st1.ino, "an unchanged object is not downloaded again");

    const next = randomBytes(2048);
    await store.put("m/model.onnx", next);
    const p2 = (await store.localPath("m/model.onnx"))!;
    assert.notEqual(p2, p1);
    assert.ok((await fs.readFile(p2)).equals(next));
    await assert.rejects(fs.stat(p1), { code: "ENOENT" });
    const leftovers = (await fs.readdir(join(scratch, "headstart-s3-cache"))).filter((f) =>
      f.includes(".~tmp-"),
    );
    assert.deepEqual(leftovers, []);
  });

  test("a missing bucket is an error, not a missing object", async () => {
    const store = new S3Store({
      bucket: "hs-no-such-bucket",
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await assert.rejects(store.get("x"), { name: "NoSuchBucket" });
  });
});
