/**
 * Feedback on an image head, with real tiny images and the tiny image backbone (its vector is a
 * picture's mean colour) on FsStore: a green cluster partly mislabelled "blue" is corrected by
 * image feedback (inline base64 and bucket keys), stored once per image by its sha256, written as
 * the feedback dataset's files and manifest, and `train --with-feedback` learns the right colour.
 * Over HTTP: bad image input is a 400 naming the field with nothing stored, and an image
 * prediction's id alone is refused (images are never kept) with the way to send it.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { listFeedback } from "../shared/feedback/records.ts";
import { feedbackDatasetName } from "../shared/heads/train-feedback.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { cli } from "./helpers/cli.ts";
import { tinyCliPlatform } from "./helpers/platform.ts";
import { tinySquare, writeTinyImageBackbone } from "./helpers/tiny-backbone.ts";

type Rgb = [number, number, number];
const RED: Rgb = [210, 20, 20];
const GREEN: Rgb = [20, 200, 30];
const BLUE: Rgb = [20, 30, 210];
const WRONG = [0, 1, 2, 3, 4, 5]; // green-<i> rows labelled "blue"

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const send = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

describe("feedback on images", () => {
  let ctx: Awaited<ReturnType<typeof tinyCliPlatform>>;
  let app: ReturnType<typeof createApp>;
  const green: Buffer[] = [];

  before(async () => {
    ctx = await tinyCliPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
    await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
    const dir = join(ctx.dir, "squares");
    await mkdir(join(dir, "files"), { recursive: true });
    const rows: object[] = [];
    const add = async (id: string, rgb: Rgb, i: number, label: string) => {
      const bytes = await tinySquare(rgb, i);
      await writeFile(join(dir, "files", `${id}.png`), bytes);
      rows.push({ id, image: `${id}.png`, label });
      return bytes;
    };
    for (let i = 0; i < 10; i++) await add(`red-${i}`, RED, i, "red");
    for (let i = 0; i < 10; i++) await add(`blue-${i}`, BLUE, i, "blue");
    for (let i = 0; i < 10; i++)
      green.push(await add(`green-${i}`, GREEN, i, WRONG.includes(i) ? "blue" : "green"));
    await writeFile(join(dir, "manifest.jsonl"), rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    await ctx.platform.upload("squares", dir);
    await ctx.platform.embed("squares", { backbone: "tiny-image" });
    const params = { k: 3 };
    await ctx.platform.train({
      dataset: "squares",
      head: "colours",
      backbone: "tiny-image",
      type: "knn",
      params,
    });
  });
  after(() => ctx.cleanup());

  test("image feedback → train withFeedback → the mislabelled green cluster is green", async () => {
    const fresh = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => tinySquare(GREEN, 100 + i)));
    const inputs = fresh.map((b) => ({ image: b.toString("base64") }));
    const beforeFix = await ctx.platform.predict("colours", { inputs });
    assert.ok(
      beforeFix.predictions.some((p) => p.label === "blue"),
      "the mislabelled rows pull some green squares to blue",
    );
    // A wrong correction first, then the right one for the same image: the newest wins.
    await ctx.platform.addFeedback("colours", {
      input: { imageKey: "datasets/squares/files/green-0.png" },
      label: "red",
    });
    for (const i of WRONG) {
      const input =
        i % 2 === 0
          ? { imageKey: `datasets/squares/files/green-${i}.png` }
          : { image: green[i].toString("base64") };
      const stored = await ctx.platform.addFeedback("colours", { input, label: "green" });
      assert.match(stored.image ?? "", /^[0-9a-f]{64}\.png$/);
      assert.equal(stored.text, undefined);
    }
    const records = await listFeedback(ctx.platform.store, "colours");
    assert.equal(records.length, WRONG.length + 1);
    const files = new Set(records.map((r) => r.image));
    assert.equal(files.size, WRONG.length, "green-0 sent twice is stored once");
    const stored = await ctx.platform.store.list(
      keys.headFeedbackImage("colours", [...files][0]!).replace(/[^/]+$/, ""),
    );
    assert.equal(stored.length, WRONG.length);

    const trained = await ctx.platform.train({
      dataset: "squares",
      head: "colours",
      backbone: "tiny-image",
      type: "knn",
      params: { k: 3 },
      withFeedback: true,
    });
    const dataset = feedbackDatasetName("colours");
    for (const f of files) assert.ok(await ctx.platform.store.head(keys.datasetFile(dataset, f!)), f);
    const afterFix = await ctx.platform.predict("colours", { inputs, version: trained.version });
    assert.deepEqual(
      afterFix.predictions.map((p) => p.label),
      fresh.map(() => "green"),
    );
    assert.ok(trained.feedback, "the report scores the feedback rows");
  });

  test("HTTP: bad image input is a 400 naming the field, and nothing is stored", async () => {
    const count = async () => (await listFeedback(ctx.platform.store, "colours")).length;
    const images = async () =>
      (
        await ctx.platform.store.list(
          keys.headFeedbackImage("colours", `${"0".repeat(64)}.png`).replace(/[^/]+$/, ""),
        )
      ).length;
    const [n, m] = [await count(), await images()];
    const cases: Array<[unknown, string]> = [
      [{ image: "not base64!" }, "input.image"],
      [{ image: Buffer.from("hello, not an image").toString("base64") }, "input.image"],
      [{ imageKey: "datasets/squares/../../heads/colours/aliases/live.json" }, "input.imageKey"],
      [{ imageKey: "heads/colours/aliases/live.json" }, "input.imageKey"],
      [{ imageKey: "datasets/squares/files/nope.png" }, "input.imageKey"],
      [{ image: 3 }, "input"],
    ];
    for (const [input, field] of cases) {
      const res = await app.request("/v1/heads/colours/feedback", send({ input, label: "green" }));
      assert.ok(res.status === 400 || res.status === 404, `${JSON.stringify(input)}: ${res.status}`);
      const body = await read(res);
      assert.ok(String(body.error.field).startsWith(field), `${JSON.stringify(input)}: ${body.error.field}`);
    }
    const badLabel = await app.request(
      "/v1/heads/colours/feedback",
      send({ input: { image: (await tinySquare(GREEN, 300)).toString("base64") }, label: "purple" }),
    );
    assert.equal(badLabel.status, 400);
    assert.equal((await read(badLabel)).error.field, "label");
    assert.deepEqual([await count(), await images()], [n, m], "no record and no image stored");
  });

  test("HTTP: an image prediction's id needs its image; with it, the correction is stored", async () => {
    const bytes = await tinySquare(GREEN, 200);
    const image = bytes.toString("base64");
    const predicted = await read(
      await app.request("/v1/heads/colours/predict", send({ inputs: [{ image }] })),
    );
    const { predictionId } = predicted.predictions[0];
    const alone = await app.request("/v1/heads/colours/feedback", send({ predictionId, label: "green" }));
    assert.equal(alone.status, 400);
    const err = (await read(alone)).error;
    assert.equal(err.field, "predictionId");
    assert.match(err.message, /"image"/);
    const res = await app.request(
      "/v1/heads/colours/feedback",
      send({ predictionId, input: { image }, label: "green" }),
    );
    assert.equal(res.status, 201);
    const stored = await read(res);
    assert.equal(stored.predictionId, predictionId);
    assert.match(stored.image, /^[0-9a-f]{64}\.png$/);
    const listed = (await read(await app.request("/v1/heads/colours/feedback"))).feedback;
    assert.ok(
      listed.some((f: { id: string; image?: string }) => f.id === stored.id && f.image === stored.image),
    );
  });

  test("CLI: feedback --image stores the file's image; a missing file names --image", async () => {
    const file = join(ctx.dir, "green-cli.png");
    await writeFile(file, await tinySquare(GREEN, 400));
    const res = await cli(["--json", "feedback", "colours", "--image", file, "--label", "green"], ctx.env);
    assert.equal(res.code, 0, res.stderr);
    const stored = JSON.parse(res.stdout);
    assert.match(stored.image, /^[0-9a-f]{64}\.png$/);
    assert.ok(await ctx.platform.store.head(keys.headFeedbackImage("colours", stored.image)));
    const missing = await cli(
      ["feedback", "colours", "--image", join(ctx.dir, "nope.png"), "--label", "green"],
      ctx.env,
    );
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--image .*no such file/);
  });

  test("a batch prediction of an image row resolves to the row's file", async () => {
    const { job } = await ctx.platform.startBatchPrediction({
      head: "colours",
      dataset: "squares",
      partRows: 50,
    });
    assert.equal((await ctx.platform.runBatchPrediction(job.job)).status, "succeeded");
    const stored = await ctx.platform.addFeedback("colours", {
      predictionId: `${job.job}:red-3`,
      label: "red",
    });
    const file = await ctx.platform.store.get(keys.datasetFile("squares", "red-3.png"));
    assert.equal(stored.image, `${createHash("sha256").update(file!.body).digest("hex")}.png`);
    assert.equal(stored.predictionId, `${job.job}:red-3`);
  });
});
