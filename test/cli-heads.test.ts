/**
 * The head suite through the real CLI: auto selection with its search table, the report page,
 * and predictions from ready embeddings (.npy and JSONL).
 */
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { decodeNpy, encodeNpy } from "../shared/cache/npy.ts";
import { cli, filmsStore } from "./helpers/cli.ts";
import { toJsonlText } from "./helpers/tiny-backbone.ts";

describe("head suite through the CLI", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    ({ dir, env } = await filmsStore({ rows: 120, seed: 4 }));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("train --type auto prints the search table; report writes a self-contained page", async () => {
    const train = await cli(
      ["train", "films", "--head", "films", "--type", "auto", "--candidates", "logreg,centroid", "--cv", "3"],
      env,
    );
    assert.equal(train.code, 0, train.stderr);
    assert.match(train.stdout, /model selection \(3-fold CV, macroF1\)/);
    assert.match(train.stdout, /^ {2}\* (logreg|centroid) /m);
    assert.match(train.stdout, /calibration: temperature/);

    const out = join(dir, "films.html");
    const report = await cli(["report", "films:live", "--out", out], env);
    assert.equal(report.code, 0, report.stderr);
    const html = await readFile(out, "utf8");
    assert.match(html, /^<!doctype html>/i);
    assert.match(html, /<svg/);
    assert.doesNotMatch(html, /<script|https?:/);
    const asJson = join(dir, "films.json");
    assert.equal((await cli(["report", "films", "--out", asJson, "--json-report"], env)).code, 0);
    assert.ok(JSON.parse(await readFile(asJson, "utf8")).search.candidates.length >= 2);
  });

  test("train --param and --class-weight reach the head type; a bad one exits 2 naming it", async () => {
    const ok = await cli(
      ["train", "films", "--head", "films-lr", "--param", "C=0.5", "--class-weight", "balanced", "--json"],
      env,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).params, { C: 0.5, classWeight: "balanced" });
    const bad = await cli(["train", "films", "--head", "films-lr", "--param", "C=-2"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /params\.C|C must be/);
  });

  test("predict --embeddings takes a .npy matrix or JSONL arrays", async () => {
    const embedded = await cli(["predict", "films-lr", "--text", "great wonderful fun", "--json"], env);
    assert.equal(embedded.code, 0, embedded.stderr);
    // Vectors of the head's backbone: export the cache and reuse two of its rows.
    const exportDir = join(dir, "export");
    assert.equal((await cli(["export", "films", "--out", exportDir], env)).code, 0);
    const rows = (await readFile(join(exportDir, "rows.jsonl"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const npy = await readFile(join(exportDir, "embeddings.npy"));
    const { data, cols } = decodeNpy(new Uint8Array(npy));
    const pick = [rows.findIndex((r) => r.label === "pos"), rows.findIndex((r) => r.label === "neg")];
    const two = new Float32Array(2 * cols);
    pick.forEach((r, i) => {
      two.set(data.subarray(r * cols, (r + 1) * cols), i * cols);
    });
    await writeFile(join(dir, "two.npy"), encodeNpy(two, 2, cols));
    await writeFile(
      join(dir, "two.jsonl"),
      toJsonlText([Array.from(two.subarray(0, cols)), Array.from(two.subarray(cols))]),
    );
    for (const file of ["two.npy", "two.jsonl"]) {
      const r = await cli(["predict", "films-lr", "--embeddings", join(dir, file), "--json"], env);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        JSON.parse(r.stdout).predictions.map((p: { label: string }) => p.label),
        ["pos", "neg"],
        file,
      );
    }
    await writeFile(join(dir, "bad.jsonl"), '[1, 2]\n{"no": 1}\n');
    const bad = await cli(["predict", "films-lr", "--embeddings", join(dir, "bad.jsonl")], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /line 2/);
  });
});
