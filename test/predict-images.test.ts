/**
 * Predicting on images: a logreg head over the image default backbone trained on three generated picture
 * classes, then served through the HTTP API (base64 JSON, bucket keys, multipart uploads), with
 * its refusals (corrupt bytes, wrong modality, bad base64, oversize requests), and through
 * `headstart predict --image`.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import sharp from "sharp";
import { createApp } from "../shared/api/app.ts";
import { MAX_FILE_BASE64_CHARS } from "../shared/api/schemas.ts";
import { DEFAULT_BACKBONES, loadConfig } from "../shared/config.ts";
import { PayloadTooLargeError } from "../shared/errors.ts";
import { readPredictInputs } from "../shared/heads/predict.ts";
import { decodeImage, type ImageDecodeError, pixelsToTensor } from "../shared/images/decode.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./helpers/tiny-backbone.ts";

const BACKBONE = DEFAULT_BACKBONES.image;
const TRAIN_PER_CLASS = 12;
const HELD_OUT_PER_CLASS = 3;

type Rgb = [number, number, number];
type Painter = (x: number, y: number) => Rgb;

/** Three classes a pretrained network tells apart at a glance: two colours and a stripe pattern. */
const CLASSES: Record<string, Painter> = {
  red: () => [205, 40, 30],
  blue: () => [35, 80, 210],
  striped: (x) => (Math.floor(x / 6) % 2 ? [240, 240, 240] : [20, 20, 20]),
};

/** A 56×48 picture of `paint` with per-pixel noise and a brightness shift, both seeded by `seed`. */
function picture(paint: Painter, seed: number, format: "png" | "jpeg"): Promise<Buffer> {
  const w = 56;
  const h = 48;
  const px = Buffer.alloc(w * h * 3);
  let s = (seed + 1) * 2654435761;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
  const shift = (next() % 41) - 20;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const c = paint(x, y);
      for (let k = 0; k < 3; k++) {
        px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, c[k] + shift + (next() % 50) - 25));
      }
    }
  }
  const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  return format === "png" ? img.png().toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

describe("predict on images", () => {
  let dir: string;
  let platform: Platform;
  let app: ReturnType<typeof createApp>;
  /** Held-out pictures (not in the dataset), with their class. */
  const heldOut: { label: string; bytes: Buffer; path: string }[] = [];

  before(async () => {
    dir = await tempDir("headstart-predict-images-");
    const data = join(dir, "pets");
    const rows: object[] = [];
    for (const [label, paint] of Object.entries(CLASSES)) {
      await mkdir(join(data, "files", label), { recursive: true });
      await mkdir(join(dir, "held-out"), { recursive: true });
      for (let i = 0; i < TRAIN_PER_CLASS + HELD_OUT_PER_CLASS; i++) {
        const format = i % 2 ? "png" : "jpeg";
        const name = `${i}.${format === "png" ? "png" : "jpg"}`;
        const bytes = await picture(paint, i * 31 + label.length, format);
        if (i < TRAIN_PER_CLASS) {
          await writeFile(join(data, "files", label, name), bytes);
          rows.push({ image: `${label}/${name}`, label });
        } else {
          const path = join(dir, "held-out", `${label}-${name}`);
          await writeFile(path, bytes);
          heldOut.push({ label, bytes, path });
        }
      }
    }
    await writeFile(join(data, "manifest.jsonl"), toJsonlText(rows));

    const store = new FsStore(join(dir, "store"));
    // The shared models folder: mobilenet is converted once per checkout, not once per test run.
    const config = loadConfig({}, { store: store.root, defaultBackbone: "tiny-text" });
    platform = new Platform(store, config);
    app = createApp(platform, makeLogger("test", "silent"));

    const status = await platform.upload("pets", data);
    assert.equal(status.rows.accepted, rows.length);
    const embedded = await platform.embed("pets", { backbone: BACKBONE });
    assert.equal(embedded.result.itemsFailed, 0);
    await platform.train({ head: "pets", dataset: "pets", backbone: BACKBONE, type: "logreg" });

    await writeTinyBackbone(join(dir, "tiny"));
    await platform.addBackbone(join(dir, "tiny"));
    await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(60, { seed: 3 })));
    await platform.embed("films");
    await platform.train({ head: "films", dataset: "films", type: "logreg" });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("GET /v1/datasets/{d}?backbone= reports that backbone's cache", async () => {
    const res = await app.request(`/v1/datasets/pets?backbone=${BACKBONE}`);
    assert.equal(res.status, 200);
    const info = await read(res);
    assert.equal(info.embedding.backbone, BACKBONE);
    assert.ok(info.embedding.cachedItems > 0);
    assert.equal(info.embedding.failedItems, 0);
    const fallback = await read(await app.request("/v1/datasets/pets"));
    assert.equal(fallback.embedding.backbone, BACKBONE, "without the query: the image default, for images");
    assert.equal(fallback.embedding.cachedItems, info.embedding.cachedItems);
    const other = await read(await app.request("/v1/datasets/pets?backbone=tiny-text"));
    assert.equal(other.embedding.backbone, "tiny-text");
    assert.equal(other.embedding.cachedItems, 0);
  });

  test("the head exported fused with the default image backbone takes pixels and answers what predict answers", async () => {
    const spec = await platform.backbone(BACKBONE);
    const pre = spec.preprocessing;
    assert.equal(pre.type, "image");
    if (pre.type !== "image") return;
    const fused = await InferenceSession.create((await platform.exportHead("pets", { fused: true })).bytes);
    for (const { bytes } of heldOut.slice(0, 3)) {
      const img = await decodeImage(bytes, { width: pre.width, height: pre.height, resize: pre.resize });
      const pixels = pixelsToTensor(img, { scale: pre.scale, offset: pre.offset });
      const out = await fused.run({
        [pre.input]: new Tensor("float32", pixels, [1, pre.height, pre.width, 3]),
      });
      const probs = out[fused.outputNames[0] as string]?.data as Float32Array;
      const [want] = (await platform.predict("pets", { inputs: [{ image: bytes }] })).predictions;
      const scores: Record<string, number> = want?.scores ?? {};
      const labels = Object.keys(scores).sort();
      assert.equal(probs.length, labels.length);
      labels.forEach((label, j) => {
        assert.ok(
          Math.abs((probs[j] as number) - (scores[label] as number)) < 1e-4,
          `${label}: ${probs[j]} vs ${scores[label]}`,
        );
      });
    }
    await fused.release();
  });

  test("JSON base64 images get the right labels", async () => {
    const res = await app.request(
      "/v1/heads/pets/predict",
      json({ inputs: heldOut.map((h) => ({ image: b64(h.bytes) })) }),
    );
    assert.equal(res.status, 200);
    const out = await read(res);
    assert.equal(out.predictions.length, heldOut.length);
    assert.deepEqual(
      out.predictions.map((p: { label: string }) => p.label),
      heldOut.map((h) => h.label),
    );
    for (const p of out.predictions) {
      assert.ok(p.score > 0.5, `confident on a clearly drawn class: ${JSON.stringify(p.scores)}`);
      const total = Object.values(p.scores as Record<string, number>).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(total - 1) < 1e-6, `scores sum to 1: ${total}`);
    }
  });

  test("imageKey reads the bucket; a missing key is a 404 naming it; `..` is refused", async () => {
    let res = await app.request(
      "/v1/heads/pets/predict",
      json({
        inputs: [
          { imageKey: "datasets/pets/files/blue/3.png" },
          { imageKey: "datasets/pets/files/red/0.jpg" },
        ],
      }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(
      (await read(res)).predictions.map((p: { label: string }) => p.label),
      ["blue", "red"],
    );

    res = await app.request(
      "/v1/heads/pets/predict",
      json({
        inputs: [{ imageKey: "datasets/pets/files/red/0.jpg" }, { imageKey: "datasets/pets/files/nope.jpg" }],
      }),
    );
    assert.equal(res.status, 404);
    let err = (await read(res)).error;
    assert.equal(err.field, "inputs[1].imageKey");
    assert.match(err.message, /datasets\/pets\/files\/nope\.jpg/);
    assert.ok(!err.message.includes(platform.store.url), "no internal URL in a response");

    for (const key of [
      "datasets/pets/../pets/files/red/0.jpg",
      "/etc/passwd",
      "datasets/pets/files/red/0.jpg\u0000.png",
      "datasets\\pets",
      // Internal objects cannot be probed for existence or size.
      "heads/pets/aliases/live.json",
      `backbones/${BACKBONE}/model.onnx`,
    ]) {
      res = await app.request("/v1/heads/pets/predict", json({ inputs: [{ imageKey: key }] }));
      assert.equal(res.status, 400, key);
      err = (await read(res)).error;
      assert.equal(err.field, "inputs[0].imageKey");
    }
  });

  test("readPredictInputs: per-image and per-request byte limits are checked before reading", async () => {
    const keys = [
      { imageKey: "datasets/pets/files/red/0.jpg" },
      { imageKey: "datasets/pets/files/red/1.png" },
    ];
    const sizes = await Promise.all(keys.map(async (k) => (await platform.store.head(k.imageKey))!.size));
    await assert.rejects(
      readPredictInputs(platform.store, keys, { maxKeyBytes: sizes[0] + sizes[1] - 1 }),
      (err: PayloadTooLargeError) => err instanceof PayloadTooLargeError && err.field === "inputs",
    );
    const read = await readPredictInputs(platform.store, keys, { maxKeyBytes: sizes[0] + sizes[1] });
    assert.deepEqual(
      read.map((r) => (r as { image: Uint8Array }).image.length),
      sizes,
    );
    await assert.rejects(
      readPredictInputs(platform.store, ["a text", keys[1]], { maxBytes: sizes[1] - 1 }),
      (err: ImageDecodeError) => err.reason === "too-large" && err.field === "inputs[1].imageKey",
    );
    const image = b64(heldOut[0].bytes);
    await assert.rejects(
      readPredictInputs(platform.store, [{ image }], { maxBytes: heldOut[0].bytes.length - 1 }),
      (err: ImageDecodeError) => err.reason === "too-large" && err.field === "inputs[0].image",
    );
    const ok = await readPredictInputs(platform.store, [{ image }], { maxBytes: heldOut[0].bytes.length });
    assert.deepEqual(Buffer.from((ok[0] as { image: Uint8Array }).image), heldOut[0].bytes);
  });

  test("multipart upload through a real FormData", async () => {
    const form = new FormData();
    const picks = [heldOut[0], heldOut[HELD_OUT_PER_CLASS], heldOut[2 * HELD_OUT_PER_CLASS]];
    for (const h of picks) form.append("image", new Blob([h.bytes]), `${h.label}.img`);
    form.append("neighbors", "2");
    const res = await app.request("/v1/heads/pets/predict", { method: "POST", body: form });
    assert.equal(res.status, 200);
    const out = await read(res);
    assert.deepEqual(
      out.predictions.map((p: { label: string }) => p.label),
      picks.map((h) => h.label),
    );
    assert.equal(out.predictions[0].neighbors.length, 2);
    assert.equal(out.predictions[0].neighbors[0].label, picks[0].label);
    // A neighbour names its training image (a path in the dataset), never a text.
    const near = out.predictions[0].neighbors[0];
    assert.match(near.image, new RegExp(`^${picks[0].label}/\\d+\\.(png|jpg)$`));
    assert.equal(near.text, undefined);

    const one = new FormData();
    one.append("image", new Blob([heldOut[1].bytes]), "only.png");
    const single = await app.request("/v1/heads/pets/predict", { method: "POST", body: one });
    assert.equal(single.status, 200);
    assert.equal((await read(single)).predictions[0].label, heldOut[1].label);

    // rejectUnknown as a form field: the label is `unknown` exactly where the detector flags it.
    const plain = (await read(await app.request("/v1/heads/pets/predict", { method: "POST", body: form })))
      .predictions as Array<{ label: string; unknown: boolean }>;
    form.append("rejectUnknown", "true");
    const rejected = await read(await app.request("/v1/heads/pets/predict", { method: "POST", body: form }));
    assert.deepEqual(
      rejected.predictions.map((p: { label: string }) => p.label),
      plain.map((p) => (p.unknown ? "unknown" : p.label)),
    );
    assert.ok(plain.every((p) => typeof p.unknown === "boolean"));
    one.append("rejectUnknown", "yes");
    const bad = await app.request("/v1/heads/pets/predict", { method: "POST", body: one });
    assert.equal(bad.status, 400);
  });

  test("a corrupt image is a 400 naming its input and the reason", async () => {
    const good = heldOut[0].bytes;
    const cut = good.subarray(0, Math.floor(good.length / 2));
    let res = await app.request(
      "/v1/heads/pets/predict",
      json({ inputs: [{ image: b64(good) }, { image: b64(cut) }] }),
    );
    assert.equal(res.status, 400);
    let err = (await read(res)).error;
    assert.equal(err.field, "inputs[1]");
    assert.equal(err.details.reason, "corrupt");

    const form = new FormData();
    form.append("image", new Blob([good]), "fine.jpg");
    form.append("image", new Blob([Buffer.from("hello, not a picture")]), "notes.txt");
    res = await app.request("/v1/heads/pets/predict", { method: "POST", body: form });
    assert.equal(res.status, 400);
    err = (await read(res)).error;
    assert.equal(err.field, "image[1]");
    assert.equal(err.details.reason, "unsupported-format");
    assert.match(err.message, /^image\[1\] \(notes\.txt\): not a recognised image/);
  });

  test("bad base64 is refused before decoding, naming inputs[i].image", async () => {
    for (const bad of ["not base64!", "abc", "QUJD\nRA=="]) {
      const res = await app.request(
        "/v1/heads/pets/predict",
        json({ inputs: [{ image: b64(heldOut[0].bytes) }, { image: bad }] }),
      );
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal((await read(res)).error.field, "inputs[1].image");
    }
  });

  test("modality mismatches are 400s: an image to a text head, a text to an image head", async () => {
    let res = await app.request(
      "/v1/heads/films/predict",
      json({ inputs: ["great fun", { image: b64(heldOut[0].bytes) }] }),
    );
    assert.equal(res.status, 400);
    let err = (await read(res)).error;
    assert.equal(err.field, "inputs[1]");
    assert.match(err.message, /image.*text/);

    res = await app.request("/v1/heads/pets/predict", json({ inputs: [{ text: "a red square" }] }));
    assert.equal(res.status, 400);
    err = (await read(res)).error;
    assert.equal(err.field, "inputs[0]");

    const form = new FormData();
    form.append("image", new Blob([heldOut[0].bytes]), "a.jpg");
    res = await app.request("/v1/heads/films/predict", { method: "POST", body: form });
    assert.equal(res.status, 400);
    err = (await read(res)).error;
    assert.equal(err.field, "image[0]");
    assert.match(err.message, /^image\[0\] \(a\.jpg\) is an image, but head films .* takes text inputs/);

    // Text heads still take both text shapes.
    res = await app.request("/v1/heads/films/predict", json({ inputs: ["great fun", { text: "dull" }] }));
    assert.equal(res.status, 200);
    assert.equal((await read(res)).predictions.length, 2);
  });

  test("oversize requests are refused with 413 naming the field", async () => {
    // Valid base64 of zeros: the per-request limit is checked before any image is read.
    const half = "A".repeat(Math.ceil(MAX_FILE_BASE64_CHARS / 2 / 4) * 4 + 4);
    let res = await app.request(
      "/v1/heads/pets/predict",
      json({ inputs: [{ image: half }, { image: half }] }),
    );
    assert.equal(res.status, 413);
    let err = (await read(res)).error;
    assert.equal(err.code, "payload_too_large");
    assert.equal(err.field, "inputs");

    const form = new FormData();
    form.append("image", new Blob([new Uint8Array(3_000_000)]), "a.jpg");
    form.append("image", new Blob([new Uint8Array(3_000_000)]), "b.jpg");
    res = await app.request("/v1/heads/pets/predict", { method: "POST", body: form });
    assert.equal(res.status, 413);
    err = (await read(res)).error;
    assert.equal(err.field, "image");
  });

  test("other content types are 415; the OpenAPI document lists both bodies", async () => {
    const res = await app.request("/v1/heads/pets/predict", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "hello",
    });
    assert.equal(res.status, 415);
    const doc = await read(await app.request("/openapi.json"));
    const content = doc.paths["/v1/heads/{head}/predict"].post.requestBody.content;
    assert.deepEqual(Object.keys(content).sort(), ["application/json", "multipart/form-data"]);
  });

  test("CLI predict --image prints the right labels", async () => {
    const picks = [heldOut[1], heldOut[HELD_OUT_PER_CLASS + 1], heldOut[2 * HELD_OUT_PER_CLASS + 1]];
    const env = { HEADSTART_STORE: join(dir, "store") };
    const r = await cli(["predict", "pets", ...picks.flatMap((h) => ["--image", h.path])], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, picks.length, r.stdout);
    lines.forEach((line, i) => {
      const [label, score, path] = line.split("\t");
      assert.equal(label, picks[i].label, line);
      assert.ok(Number(score) > 0.5, line);
      assert.equal(path, picks[i].path.slice(0, 80));
    });

    const asJson = await cli(["predict", "pets", "--image", picks[0].path, "--json"], env);
    assert.equal(asJson.code, 0, asJson.stderr);
    assert.equal(JSON.parse(asJson.stdout).predictions[0].label, picks[0].label);

    const missing = await cli(["predict", "pets", "--image", join(dir, "nope.png")], env);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /nope\.png/);
  });
});
