/**
 * Predicting on audio, the request side: `{audio}` (base64), `{audioKey}` and multipart `audio`
 * parts are read and checked as images are (base64, bucket keys, byte limits per file and per
 * request, the head's modality), through the real HTTP app and the real CLI. No audio backbone is
 * needed: every request here is read, then refused before one would run (a text head refuses
 * audio by its index). test/audio-e2e.test.ts predicts with the real speech backbone.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { MAX_FILE_BASE64_CHARS } from "../shared/api/schemas.ts";
import type { AudioDecodeError } from "../shared/audio/decode.ts";
import { PayloadTooLargeError } from "../shared/errors.ts";
import { readPredictInputs } from "../shared/heads/predict.ts";
import { makeLogger } from "../shared/log.ts";
import { cli } from "./helpers/cli.ts";
import { tinyCliPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

/** A 16-bit PCM mono WAV of a `hz` tone: a real file, though nothing here decodes it. */
function wav(hz: number, seconds = 0.25, rate = 16_000): Buffer {
  const n = Math.round(seconds * rate);
  const out = Buffer.alloc(44 + n * 2);
  out.write("RIFF", 0);
  out.writeUInt32LE(36 + n * 2, 4);
  out.write("WAVEfmt ", 8);
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(rate, 24);
  out.writeUInt32LE(rate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write("data", 36);
  out.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++)
    out.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + 2 * i);
  return out;
}

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const KEY = "datasets/commands/files/yes/1.wav";

describe("predict on audio: reading and refusing inputs", () => {
  let ctx: Awaited<ReturnType<typeof tinyCliPlatform>>;
  let app: ReturnType<typeof createApp>;
  const clip = wav(440);

  before(async () => {
    ctx = await tinyCliPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(40, { seed: 5 })));
    await ctx.platform.embed("films");
    await ctx.platform.train({ head: "films", dataset: "films", type: "logreg" });
    await ctx.store.put(KEY, clip);
  });
  after(() => ctx.cleanup());

  test("{audio} to a text head is a 400 naming its index, after the base64 was read", async () => {
    const res = await app.request(
      "/v1/heads/films/predict",
      json({ inputs: ["great fun", { audio: b64(clip) }] }),
    );
    assert.equal(res.status, 400);
    const err = (await read(res)).error;
    assert.equal(err.field, "inputs[1]");
    assert.match(
      err.message,
      /^inputs\[1\] is audio, but head films \(backbone tiny-text\) takes text inputs/,
    );
    assert.deepEqual(err.details, { expected: "text", got: "audio" });
  });

  test("{audioKey} reads the bucket; a missing key is a 404, a key outside datasets/ a 400", async () => {
    let res = await app.request("/v1/heads/films/predict", json({ inputs: [{ audioKey: KEY }] }));
    assert.equal(res.status, 400, "read, then refused by the text head");
    assert.match((await read(res)).error.message, /^inputs\[0\] is audio/);

    res = await app.request(
      "/v1/heads/films/predict",
      json({ inputs: [{ audioKey: KEY }, { audioKey: "datasets/commands/files/nope.wav" }] }),
    );
    assert.equal(res.status, 404);
    let err = (await read(res)).error;
    assert.equal(err.field, "inputs[1].audioKey");
    assert.match(err.message, /datasets\/commands\/files\/nope\.wav/);
    assert.ok(!err.message.includes(ctx.store.root), "no internal path in a response");

    for (const key of [
      "datasets/commands/../commands/files/yes/1.wav",
      "/etc/passwd",
      "datasets\\commands",
      "heads/films/aliases/live.json",
      "backbones/tiny-text/backbone.json",
    ]) {
      res = await app.request("/v1/heads/films/predict", json({ inputs: ["fine", { audioKey: key }] }));
      assert.equal(res.status, 400, key);
      err = (await read(res)).error;
      assert.equal(err.field, "inputs[1].audioKey", key);
    }
  });

  test("bad base64 is refused before decoding, naming inputs[i].audio", async () => {
    for (const bad of ["not base64!", "abc", "QUJD\nRA=="]) {
      const res = await app.request(
        "/v1/heads/films/predict",
        json({ inputs: [{ audio: b64(clip) }, { audio: bad }] }),
      );
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal((await read(res)).error.field, "inputs[1].audio");
    }
    const res = await app.request("/v1/heads/films/predict", json({ inputs: [{ audio: "" }] }));
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "inputs[0].audio");
  });

  test("readPredictInputs: audio has its own per-file limit, checked before reading", async () => {
    const size = clip.length;
    const audio = b64(clip);
    const got = await readPredictInputs(ctx.store, [{ audio }, { audioKey: KEY }], { maxAudioBytes: size });
    assert.deepEqual(
      got.map((g) => Buffer.from((g as { audio: Uint8Array }).audio)),
      [clip, clip],
    );
    // The image limit is the image decoder's; it does not apply to audio, nor the other way round.
    await readPredictInputs(ctx.store, [{ audio }], { maxBytes: 1 });
    for (const input of [{ audio }, { audioKey: KEY }]) {
      const field = `inputs[1].${Object.keys(input)[0]}`;
      await assert.rejects(
        readPredictInputs(ctx.store, ["a text", input], { maxAudioBytes: size - 1 }),
        (err: AudioDecodeError) =>
          err.reason === "too-large" &&
          err.field === field &&
          (err.details as { reason?: string }).reason === "too-large",
      );
    }
    await assert.rejects(
      readPredictInputs(ctx.store, [{ audio: "" }]),
      (err: AudioDecodeError) => err.reason === "empty" && err.field === "inputs[0].audio",
    );
    await assert.rejects(
      readPredictInputs(ctx.store, [{ audioKey: KEY }, { audioKey: KEY }], { maxKeyBytes: 2 * size - 1 }),
      (err: PayloadTooLargeError) => err instanceof PayloadTooLargeError && err.field === "inputs",
    );
  });

  test("images and audio share the per-request base64 limit (413 naming inputs)", async () => {
    const half = "A".repeat(Math.ceil(MAX_FILE_BASE64_CHARS / 2 / 4) * 4 + 4);
    for (const inputs of [
      [{ audio: half }, { audio: half }],
      [{ image: half }, { audio: half }],
    ]) {
      const res = await app.request("/v1/heads/films/predict", json({ inputs }));
      assert.equal(res.status, 413);
      const err = (await read(res)).error;
      assert.equal(err.code, "payload_too_large");
      assert.equal(err.field, "inputs");
      assert.match(err.message, /audioKey/);
    }
  });

  test("multipart: audio parts are inputs named audio[i]; image and audio parts together are refused", async () => {
    const form = new FormData();
    form.append("audio", new Blob([clip]), "yes.wav");
    let res = await app.request("/v1/heads/films/predict", { method: "POST", body: form });
    assert.equal(res.status, 400);
    let err = (await read(res)).error;
    assert.equal(err.field, "audio[0]");
    assert.match(err.message, /^audio\[0\] \(yes\.wav\) is audio, but head films .* takes text inputs/);

    form.append("image", new Blob([Buffer.from("x")]), "a.jpg");
    res = await app.request("/v1/heads/films/predict", { method: "POST", body: form });
    assert.equal(res.status, 400);
    err = (await read(res)).error;
    assert.equal(err.field, "image");
    assert.match(err.message, /named image, or named audio \(not both\)/);

    const none = new FormData();
    none.append("neighbors", "2");
    res = await app.request("/v1/heads/films/predict", { method: "POST", body: none });
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "image");

    const big = new FormData();
    big.append("audio", new Blob([new Uint8Array(3_000_000)]), "a.wav");
    big.append("audio", new Blob([new Uint8Array(3_000_000)]), "b.wav");
    res = await app.request("/v1/heads/films/predict", { method: "POST", body: big });
    assert.equal(res.status, 413);
    assert.equal((await read(res)).error.field, "audio");
  });

  test("the OpenAPI document lists the audio inputs and parts", async () => {
    const doc = await read(await app.request("/openapi.json"));
    const shapes = JSON.stringify(doc.components.schemas.PredictInput);
    assert.match(shapes, /"audio"/);
    assert.match(shapes, /"audioKey"/);
    assert.ok(doc.components.schemas.PredictUpload.properties.audio, "multipart audio parts");
    const neighbor = doc.components.schemas.PredictResponse.properties.predictions.items.properties.neighbors;
    assert.ok(neighbor.items.properties.audio, "a neighbour names its audio file");
  });

  test("CLI predict --audio reads the files; a text head refuses them; a missing file is named", async () => {
    const file = join(ctx.dir, "yes.wav");
    await writeFile(file, clip);
    let r = await cli(["predict", "films", "--audio", file], ctx.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /inputs\[0\] is audio, but head films/);

    r = await cli(["predict", "films", "--audio", join(ctx.dir, "nope.wav")], ctx.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--audio .*nope\.wav/);

    r = await cli(["predict", "films", "--audio", file, "--text", "fine"], ctx.env);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /give exactly one of --text, --image, --audio, --input, --embeddings/);
  });
});
