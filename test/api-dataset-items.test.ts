/**
 * The routes the console's upload and dataset map use: `PUT`/`GET /v1/datasets/{dataset}/files`
 * (files first, then the manifest commits them) and `GET /v1/datasets/{dataset}/map` (PCA of the
 * cached vectors, stored once per version and backbone). Bad input names its field and stores
 * nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { MAP_MAX_POINTS, sampleIndices } from "../shared/embed/dataset-map.ts";
import { keys } from "../shared/layout.ts";
import { collectGarbage } from "../shared/lifecycle/gc.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tempDir } from "./helpers/platform.ts";
import {
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyBackbone,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

describe("dataset files and map over HTTP", () => {
  let dir: string;
  let platform: Platform;
  let store: FsStore;
  let app: ReturnType<typeof createApp>;
  before(async () => {
    dir = await tempDir();
    store = new FsStore(join(dir, "store"));
    const config = loadConfig(
      {},
      {
        store: store.root,
        defaultBackbone: "tiny-text",
        defaultImageBackbone: "tiny-image",
        modelsDir: join(dir, "models"),
      },
    );
    platform = new Platform(store, config);
    await writeTinyBackbone(join(dir, "text"));
    await platform.addBackbone(join(dir, "text"));
    await writeTinyImageBackbone(join(dir, "image"));
    await platform.addBackbone(join(dir, "image"));
    app = createApp(platform, makeLogger("test", "silent"));
  });
  after(async () => {
    const { rm } = await import("node:fs/promises");
    await rm(dir, { recursive: true, force: true });
  });

  const putFile = (dataset: string, path: string, body: Uint8Array | string) =>
    app.request(`/v1/datasets/${dataset}/files?path=${encodeURIComponent(path)}`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body,
    });

  test("bad paths, names and bodies are refused by field, and nothing is stored", async () => {
    for (const [path, field] of [
      ["../etc/passwd", "path"],
      ["red/../../x.png", "path"],
      ["red//x.png", "path"],
      ["/abs.png", "path"],
      ["red\\x.png", "path"],
      ["red/x.~tmp", "path"],
    ] as const) {
      const res = await putFile("shapes", path, "x");
      assert.equal(res.status, 400, path);
      assert.equal((await read(res)).error.field, field, path);
    }
    let res = await putFile("shapes", "red/empty.png", new Uint8Array());
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "body");
    res = await app.request("/v1/datasets/shapes/files", { method: "PUT", body: "x" });
    assert.equal(res.status, 400, "no path");
    assert.equal((await read(res)).error.field, "path");
    res = await putFile("bp-input-x", "red/a.png", "x");
    assert.equal(res.status, 400, "the platform's own dataset names");
    assert.deepEqual(await store.list("datasets/"), [], "nothing stored");
    res = await app.request(`/v1/datasets/shapes/files?path=${encodeURIComponent("../../_status.json")}`);
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "path");
  });

  test("an image folder: files, then the manifest; read back with its type; mapped with both labels", async () => {
    const rows: string[] = [];
    for (const [label, rgb] of [
      ["red", [220, 20, 20]],
      ["blue", [20, 20, 220]],
    ] as const) {
      for (let i = 0; i < 6; i++) {
        const path = `${label}/${i}.png`;
        const res = await putFile("shapes", path, await tinySquare([...rgb], i));
        assert.equal(res.status, 200);
        assert.deepEqual(Object.keys(await read(res)), ["dataset", "path", "bytes"]);
        rows.push(JSON.stringify({ id: path, image: path, label }));
      }
    }
    rows.push(JSON.stringify({ id: "gone", image: "red/missing.png", label: "red" }));
    let res = await app.request("/v1/datasets/shapes/manifest", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: `${rows.join("\n")}\n`,
    });
    assert.equal(res.status, 200);
    const ingest = await read(res);
    assert.equal(ingest.status.rows.accepted, 12);
    assert.equal(ingest.status.rejected[0].line, 13);
    assert.match(ingest.status.rejected[0].reason, /file not found/);
    await platform.local.idle();

    res = await app.request("/v1/datasets/shapes/files?path=red%2F0.png");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "image/png");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.deepEqual(
      new Uint8Array(await res.arrayBuffer()),
      new Uint8Array(await tinySquare([220, 20, 20], 0)),
    );
    res = await app.request("/v1/datasets/shapes/files?path=red%2Fnone.png");
    assert.equal(res.status, 404);
    assert.equal((await read(res)).error.field, "path");

    res = await app.request("/v1/datasets/shapes/map");
    assert.equal(res.status, 200);
    const map = await read(res);
    assert.equal(map.method, "pca");
    assert.equal(map.backbone, "tiny-image");
    assert.equal(map.total, 12);
    const byLabel = (l: string) => map.points.filter((p: { label: string }) => p.label === l);
    assert.equal(byLabel("red").length, 6);
    assert.equal(byLabel("blue").length, 6);
    assert.equal(map.points[0].image, "red/0.png", "in manifest order, with the image path");
    // Red and blue squares differ most in colour: the first axis separates them.
    const xs = (l: string) => byLabel(l).map((p: { x: number }) => p.x);
    assert.ok(
      Math.max(...xs("red")) < Math.min(...xs("blue")) || Math.max(...xs("blue")) < Math.min(...xs("red")),
    );
    assert.ok(map.explained[0] > 0.9, `explained ${map.explained}`);

    // Stored under the layout's key for this version and backbone; answered from there next time.
    const status = (await read(await app.request("/v1/datasets/shapes"))).status;
    const key = keys.datasetMap("shapes", "tiny-image", status.version);
    const stored = await store.head(key);
    assert.ok(stored);
    res = await app.request("/v1/datasets/shapes/map");
    assert.equal((await read(res)).createdAt, map.createdAt);
    assert.equal((await store.head(key))?.etag, stored.etag, "not rewritten");
  });

  test("a text dataset's map carries texts; before embedding it is refused naming the dataset", async () => {
    const res0 = await app.request("/v1/datasets/notes/manifest?embed=false", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: toJsonlText(tinySentimentRows(20)),
    });
    assert.equal(res0.status, 200);
    let res = await app.request("/v1/datasets/notes/map");
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "dataset");
    assert.deepEqual(await store.list("datasets/notes/_map/"), [], "no map stored");
    await platform.embed("notes");
    res = await app.request("/v1/datasets/notes/map");
    assert.equal(res.status, 200);
    const map = await read(res);
    assert.equal(map.points.length, 20);
    assert.ok(map.points.every((p: { text?: string }) => typeof p.text === "string" && p.text.length > 0));
    res = await app.request("/v1/datasets/nothing/map");
    assert.equal(res.status, 404);
    res = await app.request("/v1/datasets/notes/map?backbone=no-such");
    assert.equal(res.status, 404);
    assert.equal((await read(res)).error.field, "backbone");

    // A new upload is a new version with its own map; gc removes the old version's with its rows.
    const before = await store.list("datasets/notes/_map/");
    await platform.putManifest("notes", "jsonl", toJsonlText(tinySentimentRows(12)));
    await platform.embed("notes");
    assert.equal((await app.request("/v1/datasets/notes/map")).status, 200);
    await collectGarbage(store, { minAgeMs: 0 });
    const after = (await store.list("datasets/notes/_map/")).map((o) => o.key);
    assert.equal(after.length, 1);
    assert.ok(!after.includes(before[0].key), "the old version's map is gone");
  });

  test("big datasets are sampled: the same seeded rows, in order, at most MAP_MAX_POINTS", () => {
    const a = sampleIndices(10_000, MAP_MAX_POINTS);
    assert.equal(a.length, MAP_MAX_POINTS);
    assert.deepEqual(a, sampleIndices(10_000, MAP_MAX_POINTS));
    assert.ok(a.every((v, i) => i === 0 || v > a[i - 1]));
    assert.deepEqual(sampleIndices(3, MAP_MAX_POINTS), [0, 1, 2]);
  });
  // Last: once a key exists, every request needs one.
  test("scopes: ingest uploads files; train and ingest read files and maps; predict reaches neither", async () => {
    const made = async (body: object, key?: string) => {
      const res = await app.request("/v1/keys", {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201);
      return ((await read(res)) as { key: string }).key;
    };
    const admin = await made({ id: "root", scopes: ["admin"] });
    const key: Record<string, string> = { admin };
    for (const scope of ["ingest", "train", "predict"])
      key[scope] = await made({ id: scope, scopes: [scope] }, admin);
    const as = (who: string, method: string, path: string, body?: string) =>
      app.request(path, { method, headers: { "x-api-key": key[who] }, body });
    const put = (who: string) => as(who, "PUT", "/v1/datasets/shapes/files?path=green%2F0.png", "png");
    assert.equal((await put("train")).status, 403);
    assert.equal((await put("predict")).status, 403);
    assert.equal(await store.head("datasets/shapes/files/green/0.png"), undefined, "refused: nothing stored");
    assert.equal((await put("ingest")).status, 200);
    for (const path of ["/v1/datasets/shapes/files?path=red%2F0.png", "/v1/datasets/shapes/map"]) {
      assert.equal((await as("predict", "GET", path)).status, 403, path);
      assert.equal((await as("train", "GET", path)).status, 200, path);
      assert.equal((await as("ingest", "GET", path)).status, 200, path);
    }
  });
});
