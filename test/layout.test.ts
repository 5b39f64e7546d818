import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { assertName, isValidName, keys, parseKey } from "../shared/layout.ts";

const name = fc.stringMatching(/^[a-z0-9][a-z0-9\-_.]{0,62}$/);
const shard = fc.integer({ min: 0, max: 99_999 });
const filePath = fc
  .array(
    fc.stringMatching(/^[A-Za-z0-9 _+%-][A-Za-z0-9 _.+%-]{0,20}$/).filter((p) => p !== "." && p !== ".."),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  .map((parts) => parts.join("/"));

describe("layout", () => {
  test("every key builder round-trips through parseKey", () => {
    fc.assert(
      fc.property(name, name, name, shard, filePath, (a, b, c, s, path) => {
        assert.deepEqual(parseKey(keys.manifest(a, "jsonl")), {
          kind: "manifest",
          dataset: a,
          format: "jsonl",
        });
        assert.deepEqual(parseKey(keys.manifest(a, "csv")), { kind: "manifest", dataset: a, format: "csv" });
        assert.deepEqual(parseKey(keys.datasetFile(a, path)), { kind: "datasetFile", dataset: a, path });
        assert.deepEqual(parseKey(keys.datasetStatus(a)), { kind: "datasetStatus", dataset: a });
        for (const format of ["jsonl", "csv"] as const)
          assert.deepEqual(parseKey(keys.manifestEvents(a, format)), {
            kind: "manifestEvents",
            dataset: a,
            format,
          });
        const hash = "ab".repeat(32);
        assert.deepEqual(parseKey(keys.idempotencyRecord(a, hash)), {
          kind: "idempotencyRecord",
          scope: a,
          hash,
        });
        const version = "ab".repeat(32);
        assert.deepEqual(parseKey(keys.datasetRows(a, version)), {
          kind: "datasetRows",
          dataset: a,
          version,
        });
        assert.deepEqual(parseKey(keys.datasetImport(a)), { kind: "datasetImport", dataset: a });
        assert.deepEqual(parseKey(keys.backboneSpec(a)), { kind: "backboneSpec", backbone: a });
        assert.deepEqual(parseKey(keys.backboneAsset(a, "model.onnx")), {
          kind: "backboneAsset",
          backbone: a,
          file: "model.onnx",
        });
        for (const kind of ["shardVectors", "shardRows", "shardCommit", "shardPlan", "shardLease"] as const) {
          assert.deepEqual(parseKey(keys[kind](a, b, s)), { kind, backbone: a, dataset: b, shard: s });
        }
        for (const file of ["head.json", "report.json"] as const) {
          assert.deepEqual(parseKey(keys.headFile(a, c, file)), {
            kind: "headFile",
            head: a,
            version: c,
            file,
          });
        }
        assert.deepEqual(parseKey(keys.headAlias(a, c)), { kind: "headAlias", head: a, alias: c });
        assert.deepEqual(parseKey(keys.headDriftState(a)), { kind: "headDriftState", head: a });
        const image = `${"ab".repeat(32)}.png`;
        assert.deepEqual(parseKey(keys.headFeedbackImage(a, image)), {
          kind: "headFeedbackImage",
          head: a,
          file: image,
        });
        assert.throws(() => keys.headFeedbackImage(a, "../x.png"), /invalid feedback image/);
        assert.deepEqual(parseKey(keys.job(a)), { kind: "job", job: a });
        assert.deepEqual(parseKey(keys.jobPlanManifest(a)), { kind: "jobPlanManifest", job: a });
        for (const format of ["jsonl", "csv"] as const)
          for (const kind of ["batchUpload", "batchUploadStatus"] as const)
            assert.deepEqual(parseKey(keys[kind](a, c, format)), { kind, head: a, name: c, format });
      }),
      { numRuns: 300 },
    );
  });

  test("names that could escape their prefix are rejected", () => {
    for (const bad of [
      "",
      "..",
      ".hidden",
      "a/b",
      "A",
      "x".repeat(64),
      "a\0b",
      "-x",
      "_x",
      "ü",
      "a b",
      "a\\b",
    ]) {
      assert.equal(isValidName(bad), false, bad);
      assert.throws(() => keys.datasetStatus(bad), { name: "InvalidNameError" });
    }
    assert.equal(assertName("head", "a.b-c_d"), "a.b-c_d");
    for (const bad of ["../x", "a/../b", "/abs", "a//b", "", "a/./b"]) {
      assert.throws(() => keys.datasetFile("d", bad), { name: "ValidationError" }, bad);
    }
    assert.throws(() => keys.shardVectors("b", "d", 100_000), { name: "ValidationError" });
  });

  test("parseKey ignores keys the platform does not own", () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const parsed = parseKey(s);
        if (parsed === undefined) return;
        // Anything parsed must rebuild to the very same key.
        assert.ok(!s.includes("/../") && !s.startsWith("/"), s);
      }),
    );
    for (const k of [
      "datasets/x/manifest.txt",
      "datasets/X/manifest.csv",
      "cache/b/d/shard-1.npy",
      "heads/h/versions/v/other.json",
      "datasets/d/files/../../x",
      "datasets/d/_import.json",
    ]) {
      assert.equal(parseKey(k), undefined, k);
    }
  });

  test("shard names sort numerically", () => {
    const sorted = [0, 7, 10, 99, 100, 12_345].map((i) => keys.shardCommit("b", "d", i));
    assert.deepEqual([...sorted].sort(), sorted);
  });
});
