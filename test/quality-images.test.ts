/**
 * `suggest` and unknown inputs on an image dataset, through the platform, the CLI and the HTTP API:
 * the real image decode path and a real (tiny) ONNX image backbone whose vector is a picture's mean
 * colour. Red, green and blue squares are labelled; unlabelled are more red and blue ones and a few
 * purple ones, which sit between red and blue: the rows worth labelling next. White squares are
 * none of the head's classes.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { makeLogger } from "../shared/log.ts";
import { cli } from "./helpers/cli.ts";
import { tinyCliPlatform } from "./helpers/platform.ts";
import { tinySquare, writeTinyImageBackbone } from "./helpers/tiny-backbone.ts";

type Rgb = [number, number, number];
const LABELLED: Record<string, Rgb> = { red: [210, 20, 20], green: [20, 200, 30], blue: [20, 30, 210] };
const PURPLE: Rgb = [115, 25, 115];
const WHITE: Rgb = [225, 225, 225];
const PURPLE_IDS = ["purple-0", "purple-1", "purple-2", "purple-3"];

describe("data quality on images", () => {
  let ctx: Awaited<ReturnType<typeof tinyCliPlatform>>;
  const white: string[] = [];

  before(async () => {
    ctx = await tinyCliPlatform();
    await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
    await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
    const dir = join(ctx.dir, "squares");
    await mkdir(join(dir, "files"), { recursive: true });
    const rows: object[] = [];
    const add = async (id: string, rgb: Rgb, i: number, label?: string) => {
      await writeFile(join(dir, "files", `${id}.png`), await tinySquare(rgb, i));
      rows.push({ id, image: `${id}.png`, ...(label ? { label } : {}) });
    };
    for (const [label, rgb] of Object.entries(LABELLED))
      for (let i = 0; i < 20; i++) await add(`${label}-${i}`, rgb, i, label);
    for (let i = 0; i < 8; i++) await add(`more-red-${i}`, LABELLED.red, 40 + i);
    for (let i = 0; i < 8; i++) await add(`more-blue-${i}`, LABELLED.blue, 50 + i);
    for (const [i, id] of PURPLE_IDS.entries()) await add(id, PURPLE, 60 + i);
    await writeFile(join(dir, "manifest.jsonl"), rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    await ctx.platform.upload("squares", dir);
    await ctx.platform.embed("squares", { backbone: "tiny-image" });
    await ctx.platform.train({ dataset: "squares", head: "colours", backbone: "tiny-image", cv: 3 });
    for (let i = 0; i < 6; i++) {
      const file = join(ctx.dir, `white-${i}.png`);
      await writeFile(file, await tinySquare(WHITE, i));
      white.push(file);
    }
  });
  after(() => ctx.cleanup());

  test("suggest: the purple squares between red and blue come first, by margin and by the default", async () => {
    const margin = await ctx.platform.suggest("squares", { head: "colours", strategy: "margin", k: 4 });
    assert.deepEqual(margin.items.map((i) => i.id).sort(), PURPLE_IDS);
    for (const item of margin.items) assert.equal(item.image, `${item.id}.png`, "an image row's path");
    const res = await cli(["--json", "suggest", "squares", "--head", "colours", "--k", "2"], ctx.env);
    assert.equal(res.code, 0, res.stderr);
    const hybrid = JSON.parse(res.stdout);
    assert.equal(hybrid.strategy, "hybrid");
    // The default spreads its batch among the uncertain rows: purple ones still, two distinct.
    for (const item of hybrid.items) assert.ok(PURPLE_IDS.includes(item.id), item.id);
    assert.equal(new Set(hybrid.items.map((i: { id: string }) => i.id)).size, 2);
  });

  test("suggest without a head: the colour no labelled square covers comes first", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/datasets/squares/suggest", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ k: 3, backbone: "tiny-image" }),
    });
    assert.equal(res.status, 200);
    const r = (await res.json()) as { coldStart: boolean; items: Array<{ id: string }> };
    assert.equal(r.coldStart, true);
    // k-center greedy counts the labelled squares as centres already chosen: more red and blue
    // squares add nothing, the purple ones do.
    assert.equal(r.items.length, 3);
    assert.ok(PURPLE_IDS.includes(r.items[0].id), r.items[0].id);
    assert.equal(new Set(r.items.map((i) => i.id)).size, 3);
  });

  test("unknown inputs: white squares are flagged, and rejected as `unknown` through the API", async () => {
    const plain = await cli(["--json", "predict", "colours", "--image", ...white], ctx.env);
    assert.equal(plain.code, 0, plain.stderr);
    const ps = JSON.parse(plain.stdout).predictions as Array<{ label: string; unknown: boolean }>;
    assert.ok(
      ps.every((p) => p.unknown === true),
      JSON.stringify(ps),
    );
    const known = await ctx.platform.predict("colours", {
      inputs: [{ image: (await tinySquare(LABELLED.green, 99)).toString("base64") }],
    });
    assert.deepEqual([known.predictions[0].label, known.predictions[0].unknown], ["green", false]);

    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/heads/colours/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        inputs: [{ image: (await tinySquare(WHITE, 7)).toString("base64") }],
        rejectUnknown: true,
      }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { predictions: Array<{ label: string }> };
    assert.equal(body.predictions[0].label, "unknown");
  });
});
