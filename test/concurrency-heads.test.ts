/**
 * Trainings and promotions racing on one head through the HTTP API: every version is kept, the
 * live alias ends on one of them and its history records every promotion. The bench
 * (`npm run bench:reliability`) runs 16 of each; this runs 8.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setAlias } from "../shared/heads/version.ts";
import { headConcurrency } from "./helpers/concurrency.ts";
import { type FuzzFixture, fuzzFixture } from "./helpers/fuzz-fixture.ts";

describe("concurrent trainings and promotions on one head", () => {
  let fx: FuzzFixture;
  before(async () => {
    fx = await fuzzFixture();
  });
  after(() => fx.cleanup());

  test("8 trainings, then 8 promotions at once: every version kept, alias on one of them, history complete", async () => {
    const r = await headConcurrency(fx.send, {
      head: "racing",
      dataset: "films",
      trainings: 8,
      dim: fx.names.dim,
    });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(
      {
        trained: r.trained,
        versionsKept: r.versionsKept,
        promotions: r.promotions,
        inHistory: r.promotionsInHistory,
      },
      { trained: 8, versionsKept: 8, promotions: 8, inHistory: 8 },
    );
    assert.ok(r.aliasEndsOnOne);
  });

  test("a promotion that expects a version still loses a race with a 409, and changes nothing", async () => {
    const { versions } = JSON.parse(
      (await fx.send({ operationId: "x", method: "GET", path: "/v1/heads/racing", headers: {} })).text,
    );
    const [a, b] = versions as string[];
    await setAlias(fx.platform.store, "racing", a!);
    const answers = await Promise.all(
      [a, b, a, b].map((version) =>
        fx.send({
          operationId: "x",
          method: "PUT",
          path: "/v1/heads/racing/aliases/live",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ version: version === a ? b : a, expectedVersion: a }),
        }),
      ),
    );
    // Only moves from `a` may succeed; once one has, the others expected `a` and must be refused.
    const ok = answers.filter((r) => r.status === 200).length;
    assert.ok(ok >= 1, answers.map((r) => r.text).join("\n"));
    for (const r of answers.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 409, r.text);
      assert.equal(JSON.parse(r.text).error.field, "alias");
    }
    const alias = JSON.parse(
      (await fx.send({ operationId: "x", method: "GET", path: "/v1/heads/racing/aliases/live", headers: {} }))
        .text,
    );
    assert.equal(alias.history.length, 8 + 1 + ok);
  });
});
