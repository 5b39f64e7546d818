/**
 * SIGKILL at a random moment of ingest, embed, train and promote (the real CLI), then the same
 * command again: nothing lost, duplicated or corrupt, and doctor clean. `npm run
 * bench:reliability` runs the same trials ≥ 50 times (test/helpers/kill-trials.ts).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { runKillTrials } from "./helpers/kill-trials.ts";

test("killed at random points of ingest, embed, train and promote, the store stays whole", async (t) => {
  const r = await runKillTrials({ trials: 4, seed: 20261206, say: (m) => t.diagnostic(m) });
  t.diagnostic(JSON.stringify(r));
  assert.deepEqual(r.failures, []);
  assert.deepEqual(r.byOp, { ingest: 1, embed: 1, train: 1, promote: 1 });
  assert.equal(r.lost, 0);
  assert.equal(r.duplicated, 0);
  assert.equal(r.corrupt, 0);
  assert.equal(r.doctorClean, 4);
});
