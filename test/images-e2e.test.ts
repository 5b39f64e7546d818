/**
 * Images end to end through the real CLI: a labelled folder (with a test/ split, a corrupt JPEG, a
 * zero-byte PNG and stray files) → `headstart ingest` (the image default) → per-file
 * failures listed, the rest embedded → `status` lists the failures → `train` on the good images.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import sharp from "sharp";
import { DEFAULT_BACKBONES } from "../shared/config.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";

/** A 48×40 picture: a noisy field of `base` colour, a band of `accent` whose place varies with `i`. */
async function picture(
  base: [number, number, number],
  accent: [number, number, number],
  i: number,
  format: "png" | "jpeg",
) {
  const w = 48;
  const h = 40;
  const px = Buffer.alloc(w * h * 3);
  let s = (i + 1) * 2654435761;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const noise = (s >>> 24) % 40;
      const band = Math.abs(y - ((i * 7) % h)) < 4;
      const c = band ? accent : base;
      for (let k = 0; k < 3; k++) px[(y * w + x) * 3 + k] = Math.min(255, (c[k] as number) + noise);
    }
  }
  const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  return format === "png" ? img.png().toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

const CLASSES = {
  tomato: { base: [200, 30, 20], accent: [250, 200, 40] },
  sky: { base: [30, 90, 210], accent: [240, 240, 250] },
} as const;

describe("images end to end (CLI)", () => {
  let dir: string;
  let folder: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await tempDir();
    folder = join(dir, "pictures");
    env = { HEADSTART_STORE: join(dir, "store") };
    for (const [label, c] of Object.entries(CLASSES)) {
      await mkdir(join(folder, label), { recursive: true });
      await mkdir(join(folder, "test", label), { recursive: true });
      for (let i = 0; i < 10; i++) {
        const fmt = i % 2 ? "png" : "jpeg";
        const bytes = await picture(c.base as never, c.accent as never, i, fmt);
        await writeFile(join(folder, label, `${i}.${fmt === "png" ? "png" : "jpg"}`), bytes);
      }
      for (let i = 0; i < 4; i++) {
        await writeFile(
          join(folder, "test", label, `t${i}.png`),
          await picture(c.base as never, c.accent as never, 100 + i, "png"),
        );
      }
    }
    const good = await picture([200, 30, 20], [250, 200, 40], 55, "jpeg");
    await writeFile(join(folder, "tomato", "broken.jpg"), good.subarray(0, Math.floor(good.length * 0.6)));
    await writeFile(join(folder, "sky", "empty.png"), Buffer.alloc(0));
    await writeFile(join(folder, "notes.txt"), "not a picture");
    await writeFile(join(folder, "sky", "readme.md"), "# sky");
  });

  test("ingest a labelled folder: stray files skipped, bad images listed, the rest embedded", async () => {
    const r = await cli(["ingest", folder, "--dataset", "pictures", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status.rows.accepted, 30, "20 train + 8 test + 2 unreadable images are rows");
    assert.deepEqual(
      out.status.skipped.map((s: { path: string }) => s.path),
      ["notes.txt", "sky/readme.md"],
    );
    assert.equal(out.embedding.result.itemsEmbedded, 30);
    assert.equal(out.embedding.result.itemsFailed, 2);
    const failures = Object.fromEntries(
      out.embedding.result.failures.map((f: { id: string; reason: string }) => [f.id, f.reason]),
    );
    assert.deepEqual(failures, { "sky/empty.png": "empty", "tomato/broken.jpg": "corrupt" });

    // No --backbone anywhere: a folder of pictures gets the image default, not the text one.
    const again = await cli(["embed", "pictures", "--json"], env);
    assert.equal(again.code, 0, again.stderr);
    const rerun = JSON.parse(again.stdout);
    assert.equal(rerun.job.backbone, DEFAULT_BACKBONES.image);
    assert.equal(rerun.result.itemsEmbedded, 0, "a second run re-embeds nothing, failed files included");

    const status = await cli(["status", "pictures"], env);
    assert.equal(status.code, 0, status.stderr);
    const info = JSON.parse(status.stdout);
    assert.equal(info.embedding.backbone, DEFAULT_BACKBONES.image);
    assert.equal(info.embedding.failedItems, 2);
    assert.deepEqual(info.embedding.failures.map((f: { id: string }) => f.id).sort(), [
      "sky/empty.png",
      "tomato/broken.jpg",
    ]);
  });

  test("train on the images that embedded; the bad ones are counted, not fatal", async () => {
    const r = await cli(["train", "pictures", "--head", "pictures", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout);
    assert.equal(t.evaluation, "test-split");
    assert.equal(t.counts.failed, 2);
    assert.equal(t.counts.train, 20);
    assert.equal(t.counts.test, 8);
    assert.ok(t.metrics.accuracy >= 0.99, `two colours apart: ${JSON.stringify(t.metrics)}`);
  });

  test("a text backbone is refused for the pictures, naming both and the fix", async () => {
    const r = await cli(["train", "pictures", "--head", "wrong", "--backbone", "glove-100d"], env);
    assert.equal(r.code, 2);
    // The fix it names is the image default (the env of this test does not change it).
    assert.ok(
      r.stderr.includes(
        `glove-100d embeds text, but dataset pictures holds 30 image rows: use --backbone ${DEFAULT_BACKBONES.image} [backbone]`,
      ),
      r.stderr,
    );
  });
});
