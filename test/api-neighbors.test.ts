/**
 * `neighbors` on predict names each neighbour's training item: a text row's text (cut to
 * NEIGHBOR_TEXT_CHARS, an ellipsis marking the cut), through the real HTTP app on a filesystem
 * store with the tiny text backbone. (Image rows' paths: test/predict-images.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { NEIGHBOR_TEXT_CHARS } from "../shared/heads/neighbors.ts";
import { makeLogger } from "../shared/log.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
let app: ReturnType<typeof createApp>;
const rows = tinySentimentRows(20);
// One long row: its neighbour text is cut.
const long = `${rows[0].text} ${"and more words ".repeat(30)}`.trim();
rows[0] = { ...rows[0], text: long };

before(async () => {
  ctx = await tinyPlatform();
  app = createApp(ctx.platform, makeLogger("test", "silent"));
  await ctx.platform.putManifest("notes", "jsonl", toJsonlText(rows));
  await ctx.platform.embed("notes");
  await ctx.platform.train({ dataset: "notes", head: "mood" });
});
after(() => ctx.cleanup());

test("each neighbour carries its training row's text, long ones cut", async () => {
  const res = await app.request("/v1/heads/mood/predict", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ inputs: [long, "a dull boring film"], neighbors: 20 }),
  });
  assert.equal(res.status, 200);
  const { predictions } = (await res.json()) as {
    predictions: Array<{ neighbors: Array<{ id: string; text?: string; image?: string; label: string }> }>;
  };
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const p of predictions) {
    assert.ok(p.neighbors.length > 0);
    for (const n of p.neighbors) {
      const row = byId.get(n.id);
      assert.ok(row, `a training row: ${n.id}`);
      assert.equal(n.image, undefined);
      assert.equal(n.label, row.label);
      if (row.text.length <= NEIGHBOR_TEXT_CHARS) assert.equal(n.text, row.text);
    }
  }
  const cut = predictions[0].neighbors.find((n) => n.id === rows[0].id);
  assert.ok(cut, "the long row is among its own neighbours");
  assert.equal(cut.text?.length, NEIGHBOR_TEXT_CHARS);
  assert.ok(cut.text?.endsWith("…"));
  assert.equal(cut.text?.slice(0, -1), long.slice(0, NEIGHBOR_TEXT_CHARS - 1));
});
