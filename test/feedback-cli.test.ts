/**
 * `headstart feedback` and `train --with-feedback` through the real CLI: a batch output's
 * prediction id and a plain text corrected, the retrained head's answers on them changed, the
 * report's before/after printed; a correction naming neither is refused with exit code 2.
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

describe("feedback through the CLI", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const unseen = tinySentimentRows(10, { seed: 21 }).map((r) => ({ ...r, id: `u${r.id}` }));
  before(async () => {
    ({ dir, env } = await filmsStore({
      rows: 60,
      seed: 4,
      files: { "unseen.jsonl": toJsonlText(unseen) },
      steps: [["train", "films", "--head", "films", "--type", "knn", "--param", "k=1"]],
    }));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("score a batch, correct it, retrain with feedback: the corrected answers change", async () => {
    const batch = await cli(["batch-predict", "films", join(dir, "unseen.jsonl"), "--wait", "--json"], env);
    assert.equal(batch.code, 0, batch.stderr);
    const out = JSON.parse(batch.stdout);
    const exported = join(dir, "out");
    assert.equal((await cli(["export-predictions", out.job, "--out", exported], env)).code, 0);
    const scored = lines(await readFile(join(exported, "predictions.jsonl"), "utf8"));
    const wrong = scored[0];
    const flip = wrong.label === "pos" ? "neg" : "pos";
    const byId = await cli(
      ["feedback", "films", "--prediction", wrong.predictionId, "--label", flip, "--json"],
      env,
    );
    assert.equal(byId.code, 0, byId.stderr);
    assert.equal(JSON.parse(byId.stdout).text, unseen[0].text);
    const text = "wonderful love great fun brilliant";
    const byText = await cli(["feedback", "films", "--text", text, "--label", "neg"], env);
    assert.equal(byText.code, 0, byText.stderr);
    assert.match(byText.stdout, /^feedback fb-\d{17}-[0-9a-f]{8}: /);
    const neither = await cli(["feedback", "films", "--label", "neg"], env);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /--prediction/);

    const trained = await cli(
      ["train", "films", "--head", "films", "--type", "knn", "--param", "k=1", "--with-feedback"],
      env,
    );
    assert.equal(trained.code, 0, trained.stderr);
    assert.match(trained.stdout, /feedback: accuracy on 2 feedback rows 0\.00% \(.+\) → 100\.00%/);
    await writeFile(join(dir, "again.jsonl"), toJsonlText([{ text: unseen[0].text }, { text }]));
    const again = await cli(["predict", "films", "--input", join(dir, "again.jsonl"), "--json"], env);
    assert.equal(again.code, 0, again.stderr);
    const labels = JSON.parse(again.stdout).predictions.map((p: { label: string }) => p.label);
    assert.deepEqual(labels, [flip, "neg"]);

    // The policy needs held-out rows: this dataset has no test split, so the new version stays unpromoted.
    const retrain = await cli(
      ["feedback", "films", "--text", "dull boring worst", "--label", "pos", "--retrain", "--json"],
      env,
    );
    assert.equal(retrain.code, 0, retrain.stderr);
    const outcome = JSON.parse(retrain.stdout).retrain;
    assert.equal(outcome.promoted, false);
    assert.match(outcome.reason, /no test rows to compare on/);

    const listed = await cli(["ls", "feedback", "films", "--json"], env);
    assert.equal(listed.code, 0, listed.stderr);
    const records = JSON.parse(listed.stdout);
    assert.deepEqual(
      records.map((f: { label: string }) => f.label),
      [flip, "neg", "pos"],
    );
    const removed = await cli(["rm", "feedback", `films/${records[2].id}`, "--json"], env);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(JSON.parse(removed.stdout).removed, [`heads/films/feedback/${records[2].id}.json`]);
    assert.equal(JSON.parse((await cli(["ls", "feedback", "films", "--json"], env)).stdout).length, 2);
    assert.equal((await cli(["rm", "feedback", `films/${records[2].id}`], env)).code, 2, "gone: not found");
    assert.equal((await cli(["ls", "feedback"], env)).code, 2, "names no head");
  });
});
