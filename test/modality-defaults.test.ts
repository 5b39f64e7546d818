/**
 * A dataset's modality picks its backbone wherever one is optional, and a backbone that cannot
 * embed what a dataset holds is refused up front naming both — instead of "embedding" a folder
 * of photos with the text default into 0 items and failing later with "found 0 labels".
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { readJob } from "../shared/embed/job.ts";
import { ValidationError } from "../shared/errors.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import type { FsStore } from "../shared/store/fs.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import {
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

async function imageFolder(dir: string): Promise<string> {
  const folder = join(dir, "photos");
  const colours: Record<string, [number, number, number]> = { red: [210, 20, 20], blue: [20, 30, 210] };
  for (const [label, rgb] of Object.entries(colours)) {
    await mkdir(join(folder, label), { recursive: true });
    for (let i = 0; i < 8; i++) await writeFile(join(folder, label, `${i}.png`), await tinySquare(rgb, i));
  }
  return folder;
}

function refusal(pattern: RegExp, field = "backbone") {
  return (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${err}`);
    assert.equal(err.field, field);
    assert.match(err.message, pattern);
    return true;
  };
}

describe("the dataset's modality picks the default backbone", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let platform: Platform;
  let store: FsStore;
  before(async () => {
    ctx = await tinyPlatform();
    store = ctx.store;
    // Same store, with a text and an image default as a deployment would have.
    platform = new Platform(store, loadConfig({}, { ...ctx.config, defaultImageBackbone: "tiny-image" }));
    await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
    await platform.addBackbone(join(ctx.dir, "image-backbone"));
    await platform.upload("photos", await imageFolder(ctx.dir));
    await writeFile(join(ctx.dir, "reviews.jsonl"), toJsonlText(tinySentimentRows(40)));
    await platform.upload("reviews", join(ctx.dir, "reviews.jsonl"));
  });
  after(() => ctx?.cleanup());

  test("a folder of photos embeds and trains with the image default when no backbone is named", async () => {
    const { job, result } = await platform.embed("photos");
    assert.equal(job.backbone, "tiny-image");
    assert.equal(result.itemsEmbedded, 16);
    const trained = await platform.train({ dataset: "photos", head: "colours", cv: 2 });
    const stored = await platform.headVersion("colours", trained.version);
    assert.equal(stored.backbone.id, "tiny-image");
    assert.deepEqual([...(stored.labels ?? [])].sort(), ["blue", "red"]);
  });

  test("a text backbone is refused for a folder of photos before anything is planned", async () => {
    const before = (await store.list("jobs/")).length;
    await assert.rejects(
      platform.embed("photos", { backbone: "tiny-text" }),
      refusal(/tiny-text embeds text.*photos.*16 image rows.*--backbone tiny-image/),
    );
    assert.equal((await store.list("jobs/")).length, before, "no job was stored");
  });

  test("an image backbone is refused for a text dataset", async () => {
    await assert.rejects(
      platform.embed("reviews", { backbone: "tiny-image" }),
      refusal(/tiny-image embeds image.*reviews.*40 text rows.*--backbone tiny-text/),
    );
  });

  test("training with a backbone of another modality names both instead of 'found 0 labels'", async () => {
    await assert.rejects(
      platform.train({ dataset: "photos", head: "wrong", backbone: "tiny-text" }),
      refusal(/tiny-text embeds text.*photos.*image rows/),
    );
  });

  test("training on a dataset not embedded with the backbone says so and how to fix it", async () => {
    await assert.rejects(
      platform.train({ dataset: "reviews", head: "early" }),
      refusal(
        /reviews has no embeddings from tiny-text yet.*headstart embed reviews --backbone tiny-text/,
        "dataset",
      ),
    );
  });

  test("re-uploading a text dataset as images through the API with the image backbone is not judged by the old rows", async () => {
    await writeFile(join(ctx.dir, "swap.jsonl"), toJsonlText(tinySentimentRows(6)));
    await platform.upload("swap", join(ctx.dir, "swap.jsonl"));
    for (let i = 0; i < 4; i++)
      await store.put(`datasets/swap/files/${i}.png`, await tinySquare(i % 2 ? [200, 0, 0] : [0, 0, 200], i));
    const rows = [0, 1, 2, 3].map((i) => ({ id: `p${i}`, image: `${i}.png`, label: i % 2 ? "red" : "blue" }));
    const app = createApp(platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/datasets/swap/manifest?backbone=tiny-image", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: toJsonlText(rows),
    });
    const body = (await res.json()) as {
      job: { job: string; backbone: string };
      status: { modalities: object };
    };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.job.backbone, "tiny-image");
    assert.deepEqual(body.status.modalities, { image: 4 });
    // The upload started the job in the background: let it finish before the store is removed.
    for (let i = 0; i < 200; i++) {
      const state = (await readJob(store, body.job.job))?.value.state;
      if (state === "succeeded" || state === "failed") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await readJob(store, body.job.job))?.value.state, "succeeded");
  });

  test("a dataset of text and images has no single default: the error names both defaults", async () => {
    const rows = [...tinySentimentRows(4), { id: "img", image: "a.png", label: "pos" }];
    const dir = join(ctx.dir, "mixed");
    await mkdir(join(dir, "files"), { recursive: true });
    await writeFile(join(dir, "files", "a.png"), await tinySquare([1, 2, 3], 0));
    await writeFile(join(dir, "manifest.jsonl"), toJsonlText(rows));
    const status = await platform.upload("mixed", dir);
    assert.deepEqual(status.modalities, { text: 4, image: 1 });
    await assert.rejects(
      platform.embed("mixed"),
      refusal(/mixed holds 4 text rows and 1 image row.*--backbone.*tiny-text.*tiny-image/),
    );
  });
});
