/**
 * Bring your own embeddings: an .npy + rows.jsonl (or JSON through the API) becomes a dataset
 * version and a cache under an external backbone; heads train on it and predict from
 * `embeddings`. Every rejected import leaves the store exactly as it was.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { createApp } from "../shared/api/app.ts";
import { encodeNpy } from "../shared/cache/npy.ts";
import { listCommits } from "../shared/cache/shards.ts";
import { readDatasetRows } from "../shared/datasets/ingest.ts";
import { loadEmbeddedDataset } from "../shared/embed/embedded-dataset.ts";
import { externalBackboneSpec, importEmbeddings } from "../shared/embed/import-embeddings.ts";
import { HeadstartError } from "../shared/errors.ts";
import { keys } from "../shared/layout.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import { makeLogger } from "../shared/log.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { cli as runCli } from "./helpers/cli.ts";
import { tinyPlatform } from "./helpers/platform.ts";

const run = promisify(execFile);
/** Response bodies are checked field by field, so they are read untyped. */
const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const DIM = 6;

/** Two classes on either side of axis 0, deterministic; every 5th row is a test row. */
function separable(n: number, seed = 1) {
  const rand = mulberry32(seed);
  const vectors = new Float32Array(n * DIM);
  const rows: Array<{ id: string; label: string; split: "train" | "test"; text: string }> = [];
  for (let i = 0; i < n; i++) {
    const label = i % 2 === 0 ? "pos" : "neg";
    for (let j = 0; j < DIM; j++) vectors[i * DIM + j] = (rand() - 0.5) * 0.5;
    vectors[i * DIM] += label === "pos" ? 2 : -2;
    rows.push({ id: `r${i}`, label, split: i % 5 === 0 ? "test" : "train", text: `item ${i}` });
  }
  return { vectors, rows };
}

const jsonl = (rows: readonly unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join("");

/** A hand-built .npy with any descr/shape/order, for the dtypes encodeNpy will not write. */
function rawNpy(descr: string, shape: number[], payload: Uint8Array, fortran = false): Uint8Array {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? "True" : "False"}, 'shape': ${tuple}, }`;
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64);
  header += "\n";
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(10 + h.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, h.length, true);
  out.set(h, 10);
  out.set(payload, 10 + h.length);
  return out;
}

function float64Npy(v: Float32Array, rows: number, cols: number, fortran = false): Uint8Array {
  const f = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) f[fortran ? j * rows + i : i * cols + j] = v[i * cols + j];
  return rawNpy("<f8", [rows, cols], new Uint8Array(f.buffer), fortran);
}

/** Every key and etag: a rejected import must leave this unchanged. */
async function snapshot(store: ObjectStore): Promise<string> {
  return (await store.list(""))
    .map((o) => `${o.key} ${o.etag}`)
    .sort()
    .join("\n");
}

describe("import-embeddings", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const data = separable(60);
  const npyPath = () => join(ctx.dir, "emb.npy");
  const rowsPath = () => join(ctx.dir, "rows.jsonl");

  before(async () => {
    ctx = await tinyPlatform();
    await writeFile(npyPath(), encodeNpy(data.vectors, 60, DIM));
    await writeFile(rowsPath(), jsonl(data.rows));
  });
  after(() => ctx.cleanup());

  test("import → train → predict from embeddings; raw inputs get a clear error", async () => {
    const r = await ctx.platform.importEmbeddings("ext", {
      backbone: "ext-a",
      npyPath: npyPath(),
      rowsPath: rowsPath(),
    });
    assert.equal(r.rows, 60);
    assert.equal(r.dim, DIM);
    assert.equal(r.dtype, "float32");
    assert.deepEqual(r.vectors, { written: 60, reused: 0 });
    assert.equal(r.backbone.kind, "external");
    assert.equal(r.backbone.modality, "embedding");
    assert.deepEqual(r.backbone, externalBackboneSpec("ext-a", DIM));
    assert.equal(r.status.state, "ingested");
    assert.deepEqual(r.status.imported, { backbone: "ext-a", dim: DIM });
    assert.deepEqual(r.status.modalities, { embedding: 60 });
    assert.deepEqual(r.status.splits, { train: 48, test: 12, unspecified: 0 });
    assert.equal(r.status.manifest.key, keys.datasetImport("ext"));

    // The backbone resolves by name, and the cache joins the rows in their order, bit for bit.
    const spec = await ctx.platform.backbone("ext-a");
    const loaded = await loadEmbeddedDataset(ctx.store, "ext", spec);
    assert.deepEqual(
      loaded.rows.map((row) => [row.id, row.label, row.split, row.text]),
      data.rows.map((row) => [row.id, row.label, row.split, row.text]),
    );
    assert.deepEqual(loaded.vectors, data.vectors);

    const trained = await ctx.platform.train({ dataset: "ext", head: "ext-head", backbone: "ext-a" });
    assert.equal(trained.evaluation, "test-split");
    assert.equal(trained.counts.test, 12);
    const probe = [
      [3, 0.1, 0, 0, 0, 0],
      [-3, 0, 0.1, 0, 0, 0],
      [1.5, 0.2, -0.2, 0.1, 0, 0],
    ];
    const pred = await ctx.platform.predict("ext-head", { embeddings: probe, neighbors: 2 });
    assert.deepEqual(
      pred.predictions.map((p) => p.label),
      ["pos", "neg", "pos"],
    );
    assert.ok((pred.predictions[0].score ?? 0) > 0.9, String(pred.predictions[0].score));
    // Neighbors come from the imported rows of the head's dataset version.
    for (const n of pred.predictions[0].neighbors ?? []) assert.equal(n.label, "pos");
    assert.equal(pred.predictions[0].neighbors?.length, 2);

    await assert.rejects(ctx.platform.predict("ext-head", { inputs: ["great movie"] }), (err: Error) => {
      assert.ok(err instanceof HeadstartError && err.code === "invalid_input", err.message);
      assert.match(err.message, /trained on imported embeddings from ext-a/);
      assert.match(err.message, /needs `embeddings`/);
      assert.equal(err.field, "inputs");
      return true;
    });
    // Export reads the imported cache like any other.
    const exported = await ctx.platform.export("ext", join(ctx.dir, "export"), "ext-a");
    assert.deepEqual([exported.rows, exported.dim], [60, DIM]);
    // The batch stage refuses too: headstart has no model for these vectors.
    await assert.rejects(ctx.platform.embed("ext", { backbone: "ext-a" }), /holds imported embeddings/);
  });

  test("re-importing the same vectors (also as float64 or Fortran order) writes nothing new", async () => {
    const before = await ctx.platform.importEmbeddings("ext", {
      backbone: "ext-a",
      npyPath: npyPath(),
      rowsPath: rowsPath(),
    });
    const commits = (await listCommits(ctx.store, "ext-a", "ext")).length;
    for (const npy of [
      encodeNpy(data.vectors, 60, DIM),
      float64Npy(data.vectors, 60, DIM),
      float64Npy(data.vectors, 60, DIM, true),
    ]) {
      const again = await ctx.platform.importEmbeddings("ext", {
        backbone: "ext-a",
        npy,
        rows: jsonl(data.rows),
      });
      assert.deepEqual(again.vectors, { written: 0, reused: 60 });
      assert.equal(again.status.version, before.status.version);
    }
    assert.equal((await listCommits(ctx.store, "ext-a", "ext")).length, commits);
  });

  test("a partial import, then the full one: only the new vectors are written, across shards", async () => {
    const first = 25;
    await importEmbeddings(
      ctx.store,
      "part",
      {
        backbone: "ext-a",
        npy: encodeNpy(data.vectors.subarray(0, first * DIM), first, DIM),
        rows: jsonl(data.rows.slice(0, first)),
      },
      { shardSize: 7 },
    );
    assert.equal((await listCommits(ctx.store, "ext-a", "part")).length, 4);
    const full = await importEmbeddings(
      ctx.store,
      "part",
      { backbone: "ext-a", npy: encodeNpy(data.vectors, 60, DIM), rows: jsonl(data.rows) },
      { shardSize: 7 },
    );
    assert.deepEqual(full.vectors, { written: 35, reused: 25 });
    assert.equal(full.shards.length, 5);
    const loaded = await loadEmbeddedDataset(ctx.store, "part", await ctx.platform.backbone("ext-a"));
    assert.deepEqual(loaded.vectors, data.vectors);
    // Duplicate vectors under different ids share one cache item.
    const dup = await importEmbeddings(ctx.store, "dup", {
      backbone: "ext-b",
      npy: encodeNpy(new Float32Array([1, 2, 1, 2, 3, 4]), 3, 2),
      rows: jsonl([{ id: "a" }, { id: "b" }, { id: 7 }]),
    });
    assert.deepEqual(dup.vectors, { written: 2, reused: 1 });
    const rows = (await readDatasetRows(ctx.store, "dup"))!.rows;
    assert.deepEqual(
      rows.map((r) => r.id),
      ["a", "b", "7"],
    );
    assert.equal(rows[0].vector, rows[1].vector);
  });

  test("every invalid import is rejected with the problem named, changing nothing", async () => {
    const good = () => ({ npy: encodeNpy(data.vectors, 60, DIM), rows: jsonl(data.rows) });
    const withValue = (i: number, j: number, v: number) => {
      const copy = data.vectors.slice();
      copy[i * DIM + j] = v;
      return encodeNpy(copy, 60, DIM);
    };
    const overflow = new Float64Array(data.vectors);
    overflow[4 * DIM + 1] = 1e300;
    const replaced = data.rows.map((r, i) => (i === 2 ? { ...r, split: "dev" } : r));
    const badLine = `${jsonl(data.rows.slice(0, 2))}{"id": "r2", oops}\n${jsonl(data.rows.slice(3))}`;
    const cases: Array<[string, { backbone?: string; npy?: Uint8Array; rows?: string }, RegExp, string]> = [
      [
        "int64",
        { npy: rawNpy("<i8", [60, DIM], new Uint8Array(60 * DIM * 8)) },
        /dtype '<i8' \(int64\)/,
        "npy",
      ],
      ["bool", { npy: rawNpy("|b1", [60, DIM], new Uint8Array(60 * DIM)) }, /'\|b1' \(bool\)/, "npy"],
      [
        "complex",
        { npy: rawNpy("<c8", [60, DIM], new Uint8Array(60 * DIM * 8)) },
        /'<c8' \(complex64\)/,
        "npy",
      ],
      ["object", { npy: rawNpy("|O", [60, DIM], new Uint8Array(60 * DIM * 8)) }, /'\|O' \(object\)/, "npy"],
      [
        "float16",
        { npy: rawNpy("<f2", [60, DIM], new Uint8Array(60 * DIM * 2)) },
        /'<f2' \(float16\)/,
        "npy",
      ],
      ["1-d", { npy: rawNpy("<f4", [60], new Uint8Array(60 * 4)) }, /shape \(60,\): need a 2-d/, "npy"],
      ["3-d", { npy: rawNpy("<f4", [60, 2, 3], new Uint8Array(60 * DIM * 4)) }, /shape \(60, 2, 3\)/, "npy"],
      ["truncated", { npy: good().npy.subarray(0, 500) }, /truncated/, "npy"],
      ["not npy", { npy: new TextEncoder().encode("hello world, not numpy") }, /not an \.npy file/, "npy"],
      [
        "row count",
        { rows: jsonl(data.rows.slice(0, 59)) },
        /embeddings\.npy has 60 rows but rows\.jsonl has 59/,
        "rows",
      ],
      ["NaN", { npy: withValue(2, 3, Number.NaN) }, /row 2 \(id "r2"\), column 3 is NaN/, "npy[2][3]"],
      ["Inf", { npy: withValue(5, 0, -Infinity) }, /row 5 \(id "r5"\), column 0 is -Infinity/, "npy[5][0]"],
      [
        "float64 overflow",
        { npy: rawNpy("<f8", [60, DIM], new Uint8Array(overflow.buffer)) },
        /row 4 \(id "r4"\), column 1 is Infinity \(beyond float32/,
        "npy[4][1]",
      ],
      ["bad JSON", { rows: badLine }, /rows\.jsonl line 3: not valid JSON/, "line 3"],
      [
        "no id",
        { rows: jsonl(data.rows.map((r, i) => (i === 7 ? { label: r.label } : r))) },
        /line 8: id is required/,
        "line 8.id",
      ],
      ["bad split", { rows: jsonl(replaced) }, /line 3: split:/, "line 3.split"],
      [
        "unknown field",
        { rows: jsonl(data.rows.map((r, i) => (i === 0 ? { ...r, lable: "x" } : r))) },
        /line 1: unknown field 'lable'/,
        "line 1.lable",
      ],
      [
        "duplicate id",
        { rows: jsonl(data.rows.map((r, i) => (i === 9 ? { ...r, id: "r4" } : r))) },
        /line 10: duplicate id "r4" \(first seen at rows\.jsonl line 5\)/,
        "line 10.id",
      ],
      [
        "dim mismatch",
        { backbone: "ext-a", npy: encodeNpy(new Float32Array(60 * 4), 60, 4) },
        /backbone ext-a holds 6-d imported embeddings; embeddings\.npy has 4 columns/,
        "backbone",
      ],
      ["model backbone", { backbone: "tiny-text" }, /tiny-text is a model headstart runs/, "backbone"],
      ["built-in name", { backbone: "glove-100d" }, /glove-100d is a built-in model/, "backbone"],
    ];
    // An existing dataset (ext, imported above) and a fresh name must both stay as they were.
    for (const dataset of ["ext", "fresh"]) {
      const before = await snapshot(ctx.store);
      for (const [name, over, message, field] of cases) {
        await assert.rejects(
          ctx.platform.importEmbeddings(dataset, { backbone: "ext-c", ...good(), ...over } as never),
          (err: Error) => {
            assert.ok(
              err instanceof HeadstartError && err.code === "invalid_input",
              `${name}: ${err.message}`,
            );
            assert.match(err.message, message, name);
            assert.equal(err.field, field, name);
            return true;
          },
          name,
        );
        assert.equal(await snapshot(ctx.store), before, `${name} changed the store`);
      }
    }
    // Several bad rows: the first is named, the rest counted and listed.
    const many = jsonl(data.rows.map((r, i) => (i % 20 === 3 ? { ...r, split: "x" } : r)));
    await assert.rejects(
      ctx.platform.importEmbeddings("ext", { backbone: "ext-a", ...good(), rows: many }),
      (err: HeadstartError) => {
        assert.match(err.message, /line 4: split: .*\(and 2 more invalid rows\)/);
        assert.deepEqual(
          (err.details as { rejected: Array<{ line: number }> }).rejected.map((p) => p.line),
          [4, 24, 44],
        );
        return true;
      },
    );
    // `backbone add` cannot forge an external backbone either.
    const dir = join(ctx.dir, "forged");
    await run("mkdir", ["-p", dir]);
    await writeFile(join(dir, "backbone.json"), JSON.stringify(externalBackboneSpec("forged", 3)));
    await assert.rejects(
      ctx.platform.addBackbone(dir),
      /kind external is made by `headstart import-embeddings`/,
    );
  });

  test("training another external backbone on rows it does not hold says how to fix it", async () => {
    await ctx.platform.importEmbeddings("swap", {
      backbone: "ext-d",
      npy: encodeNpy(data.vectors, 60, DIM),
      rows: jsonl(data.rows),
    });
    await ctx.platform.importEmbeddings("swap", {
      backbone: "ext-e",
      npy: encodeNpy(
        data.vectors.map((v) => v * 2),
        60,
        DIM,
      ),
      rows: jsonl(data.rows),
    });
    await assert.rejects(
      ctx.platform.train({ dataset: "swap", head: "swap-head", backbone: "ext-d" }),
      /dataset swap has no embeddings from ext-d yet; import them with `headstart import-embeddings swap --backbone ext-d`/,
    );
    // Text backbones see no text rows in an imported dataset.
    const tiny = await ctx.platform.backbone("tiny-text");
    assert.equal((await loadEmbeddedDataset(ctx.store, "swap", tiny)).unsupported, 60);
  });

  test("API: POST /v1/datasets/{dataset}/embeddings", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const post = (dataset: string, body: unknown) =>
      app.request(`/v1/datasets/${dataset}/embeddings`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const embeddings = Array.from({ length: 60 }, (_, i) =>
      Array.from(data.vectors.subarray(i * DIM, (i + 1) * DIM)),
    );
    let res = await post("api-ds", { backbone: "ext-a", rows: data.rows, embeddings });
    assert.equal(res.status, 200);
    const body = await read(res);
    assert.equal(body.rows, 60);
    assert.equal(body.status.imported.backbone, "ext-a");
    // The same vectors as the CLI import: same addresses, so nothing new in this dataset's cache
    // beyond its own first import.
    assert.equal(body.vectors.written, 60);
    assert.equal(body.dtype, "float64");

    res = await post("api-ds", { backbone: "ext-a", rows: data.rows, embeddings });
    assert.deepEqual((await read(res)).vectors, { written: 0, reused: 60 });

    const ragged = embeddings.map((e, i) => (i === 1 ? e.slice(0, 5) : e));
    for (const [payload, status, field] of [
      [{ backbone: "ext-a", rows: data.rows, embeddings: ragged }, 400, "embeddings[1]"],
      [{ backbone: "ext-a", rows: data.rows.slice(1), embeddings }, 400, "rows"],
      [
        { backbone: "ext-a", rows: data.rows.map((r, i) => (i === 3 ? { ...r, id: "r0" } : r)), embeddings },
        400,
        "rows[3].id",
      ],
      [
        { backbone: "ext-a", rows: data.rows, embeddings: embeddings.map((e) => e.slice(0, 4)) },
        400,
        "backbone",
      ],
      [{ backbone: "Bad Name", rows: data.rows, embeddings }, 400, "backbone"],
      [{ backbone: "ext-a", rows: data.rows, embeddings, extra: 1 }, 400, "extra"],
    ] as const) {
      const before = await snapshot(ctx.store);
      res = await post("api-ds", payload);
      const err = (await read(res)).error;
      assert.equal(res.status, status, JSON.stringify(err));
      assert.equal(err.field, field, err.message);
      assert.equal(await snapshot(ctx.store), before);
    }

    await ctx.platform.train({ dataset: "api-ds", head: "api-head", backbone: "ext-a" });
    res = await app.request("/v1/heads/api-head/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["great"] }),
    });
    assert.equal(res.status, 400);
    assert.match((await read(res)).error.message, /trained on imported embeddings from ext-a/);
    res = await app.request("/v1/heads/api-head/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ embeddings: [[-3, 0, 0, 0, 0, 0]] }),
    });
    assert.equal(res.status, 200);
    assert.equal((await read(res)).predictions[0].label, "neg");
  });

  test("CLI: numpy-written files, float64 and Fortran order included", async () => {
    const cli = (args: string[]) => runCli(args, { HEADSTART_STORE: ctx.store.root });
    const py = `
import sys, numpy as np
rng = np.random.default_rng(0)
x = rng.normal(size=(40, 5)).astype(np.float32)
x[:, 0] += np.where(np.arange(40) % 2 == 0, 3, -3)
d = sys.argv[1]
np.save(d + "/f4.npy", x)
np.save(d + "/f8f.npy", np.asfortranarray(x.astype(np.float64)))
np.save(d + "/i8.npy", x.astype(np.int64))
`;
    await run("/usr/bin/python3", ["-c", py, ctx.dir]);
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: `n${i}`, label: i % 2 === 0 ? "up" : "down" }));
    await writeFile(join(ctx.dir, "np-rows.jsonl"), jsonl(rows));
    const args = (npy: string) => [
      "import-embeddings",
      "np",
      "--npy",
      join(ctx.dir, npy),
      "--rows",
      join(ctx.dir, "np-rows.jsonl"),
      "--backbone",
      "numpy-5",
      "--json",
    ];
    const first = await cli(args("f4.npy"));
    assert.equal(first.code, 0, first.stderr);
    const r = JSON.parse(first.stdout);
    assert.equal(r.dim, 5);
    assert.deepEqual(r.vectors, { written: 40, reused: 0 });

    // Human output this time; the float64 Fortran copy lands on the same addresses and version.
    const again = await cli(args("f8f.npy").slice(0, -1));
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /40 rows imported as 5-d embeddings of numpy-5 \(float64; 0 vectors written, 40 already cached\).*--backbone numpy-5/,
    );
    const status = await readDatasetRows(ctx.store, "np");
    assert.equal(status?.version, r.status.version);

    const bad = await cli(args("i8.npy"));
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /i8\.npy has dtype '<i8' \(int64\): need float32/);
    assert.equal(JSON.parse(bad.stdout).error.field, "npy");
  });
});
