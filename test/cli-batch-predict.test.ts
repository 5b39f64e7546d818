/**
 * `headstart batch-predict` and `export-predictions` through the real CLI: the `--json` contract,
 * accuracy from the exported file equal to online predict's on the same rows, a rerun that is the
 * same job, and a run in the background without --wait.
 */
import assert from "node:assert/strict";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cli, filmsStore } from "./helpers/cli.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const lines = (text: string) =>
  text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));

describe("batch-predict through the CLI", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const unseen = tinySentimentRows(40, { seed: 21 }).map((r) => ({ ...r, id: `u${r.id}` }));
  before(async () => {
    ({ dir, env } = await filmsStore({
      rows: 100,
      seed: 4,
      files: {
        "unseen.jsonl": toJsonlText(unseen),
        "texts.jsonl": toJsonlText(unseen.map((r) => ({ text: r.text }))),
      },
      steps: [
        ["train", "films", "--head", "films"],
        ["ingest", "{dir}/unseen.jsonl", "--dataset", "unseen", "--no-embed"],
      ],
    }));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("--wait --json prints the contract; the export's accuracy equals online predict's", async () => {
    const r = await cli(["batch-predict", "films", "--dataset", "unseen", "--wait", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(out).sort(), ["counts", "errors", "job", "outputs", "status"]);
    assert.equal(out.status, "succeeded");
    assert.deepEqual(out.counts, { total: 40, succeeded: 40, failed: 0 });
    assert.deepEqual(out.outputs, [`predictions/${out.job}/part-00000.jsonl`]);
    assert.deepEqual(out.errors, [`predictions/${out.job}/errors-00000.jsonl`]);

    const exported = join(dir, "out");
    const e = await cli(["export-predictions", out.job, "--out", exported], env);
    assert.equal(e.code, 0, e.stderr);
    const predicted = lines(await readFile(join(exported, "predictions.jsonl"), "utf8"));
    assert.equal((await readFile(join(exported, "errors.jsonl"), "utf8")).length, 0);
    const truth = new Map(unseen.map((u) => [u.id, u.label]));
    const batchAccuracy = predicted.filter((p) => truth.get(p.id) === p.label).length / unseen.length;

    const online = await cli(["predict", "films", "--input", join(dir, "texts.jsonl"), "--json"], env);
    assert.equal(online.code, 0, online.stderr);
    const onlinePredictions = JSON.parse(online.stdout).predictions as { label: string }[];
    const onlineAccuracy =
      onlinePredictions.filter((p, i) => p.label === unseen[i].label).length / unseen.length;
    assert.equal(batchAccuracy, onlineAccuracy);
    assert.ok(batchAccuracy > 0.8, `accuracy ${batchAccuracy}`);
    assert.deepEqual(
      predicted.map((p) => p.label),
      onlinePredictions.map((p) => p.label),
    );

    const again = await cli(["batch-predict", "films", "--dataset", "unseen", "--wait", "--json"], env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), out, "the same job, unchanged");
  });

  test("without --wait the job runs in the background; export refuses an unfinished job", async () => {
    const r = await cli(["batch-predict", "films:live", "--dataset", "films", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, "queued");
    assert.deepEqual(out.outputs, []);
    let status = out;
    for (let i = 0; i < 100 && status.status !== "succeeded"; i++) {
      await new Promise((res) => setTimeout(res, 200));
      const w = await cli(["batch-predict", "films", "--dataset", "films", "--json"], env);
      status = JSON.parse(w.stdout);
    }
    assert.equal(status.status, "succeeded");
    assert.equal(status.job, out.job);
    assert.deepEqual(status.counts, { total: 100, succeeded: 100, failed: 0 });
    const none = await cli(["export-predictions", "bp-none", "--out", join(dir, "x")], env);
    assert.equal(none.code, 2);
  });

  test("a manifest as the input: rejected lines are error rows; the same file again is the same job", async () => {
    const manifest = join(dir, "new.jsonl");
    await writeFile(
      manifest,
      toJsonlText([
        { id: "a", text: "great fun wonderful" },
        { id: "b", text: "   " },
        { text: "awful boring worst" },
      ]),
    );
    const r = await cli(["batch-predict", "films", manifest, "--wait", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, "succeeded-with-errors");
    assert.deepEqual(out.counts, { total: 3, succeeded: 2, failed: 1 });
    const exported = join(dir, "new-out");
    assert.equal((await cli(["export-predictions", out.job, "--out", exported], env)).code, 0);
    const predicted = lines(await readFile(join(exported, "predictions.jsonl"), "utf8"));
    assert.deepEqual(
      predicted.map((p) => [p.id, p.label]),
      [
        ["a", "pos"],
        ["line-3", "neg"],
      ],
    );
    const errors = lines(await readFile(join(exported, "errors.jsonl"), "utf8"));
    assert.deepEqual(
      errors.map((e) => [e.id, e.line]),
      [["b", 2]],
    );
    assert.match(errors[0].reason, /text: text must not be blank/);
    const again = await cli(["batch-predict", "films", manifest, "--json"], env);
    assert.deepEqual(JSON.parse(again.stdout), out);
  });

  test("bad input exits 2 naming it", async () => {
    const r = await cli(["batch-predict", "films"], env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--dataset/);
    const twice = await cli(
      ["batch-predict", "films", join(dir, "unseen.jsonl"), "--dataset", "unseen"],
      env,
    );
    assert.equal(twice.code, 2);
    const both = await cli(["batch-predict", "films@v1", "--dataset", "unseen", "--alias", "live"], env);
    assert.equal(both.code, 2);
  });
});
