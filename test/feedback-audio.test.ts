/**
 * Feedback on an audio head, with real spoken words (espeak-ng, in WAV, FLAC, MP3 and Ogg Vorbis)
 * and the real speech backbone on FsStore: "no" clips partly mislabelled "yes" are corrected by
 * audio feedback (inline base64 and bucket keys), stored once per file by its sha256 under
 * `heads/<head>/feedback-audio/`, written as the feedback dataset's files and manifest, matched to
 * their dataset rows by embedding, and `train --with-feedback` learns the right word. Over HTTP:
 * bad audio input, and an input of another kind than the head's (audio for a text or image head,
 * an image for a text head, a text for an audio head), is a 400 naming the field with nothing
 * stored; an audio prediction's id alone is refused. The retrain policy leaves a test clip that a
 * correction names out of its held-out rows. A batch prediction of an audio row resolves to
 * its file; the CLI sends `--audio`; deleting the head removes the stored audio.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { listFeedback } from "../shared/feedback/records.ts";
import { feedbackDatasetName } from "../shared/heads/train-feedback.ts";
import { keys, parseKey } from "../shared/layout.ts";
import { deleteHead } from "../shared/lifecycle/delete.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";
import { speak } from "./helpers/speak.ts";
import {
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyBackbone,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";

const VOICES = ["en+m1", "en+m3", "en+f1", "en+f3"];
const SPEEDS = [130, 175];
const FORMATS = ["wav", "flac", "mp3", "ogg"];
const AUDIO_BACKBONE = loadConfig({}).defaultAudioBackbone;
/** "no" clips labelled "yes" in the dataset: the ones the feedback corrects. */
const WRONG = ["no-0", "no-1", "no-2", "no-3", "no-4"];

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const send = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("feedback on audio", () => {
  let dir: string;
  let platform: Platform;
  let app: ReturnType<typeof createApp>;
  let env: NodeJS.ProcessEnv;
  /** Each row's id → its file (in files/) and bytes. */
  const clips = new Map<string, { file: string; bytes: Buffer }>();
  const audioDir = () => keys.headFeedbackAudio("words", `${"0".repeat(64)}.wav`).replace(/[^/]+$/, "");

  before(async () => {
    dir = await tempDir("headstart-feedback-audio-");
    const store = new FsStore(join(dir, "store"));
    platform = new Platform(store, loadConfig({}, { store: store.root }));
    app = createApp(platform, makeLogger("test", "silent"));
    env = { HEADSTART_STORE: store.root };
    const data = join(dir, "words");
    await mkdir(join(data, "files"), { recursive: true });
    const rows: object[] = [];
    for (const word of ["yes", "no"]) {
      let i = 0;
      for (const voice of VOICES) {
        for (const speed of SPEEDS) {
          const id = `${word}-${i}`;
          const file = `${id}.${FORMATS[i % FORMATS.length]}`;
          await speak(word, voice, speed, join(data, "files", file));
          clips.set(id, { file, bytes: await readFile(join(data, "files", file)) });
          const split = i >= 6 ? "test" : "train"; // the last voice is the test split
          rows.push({ id, audio: file, label: WRONG.includes(id) ? "yes" : word, split });
          i++;
        }
      }
    }
    await writeFile(join(data, "manifest.jsonl"), rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
    await platform.upload("words", data);
    await platform.embed("words", { backbone: AUDIO_BACKBONE });
    // k = 1: a training clip predicts its own row's label, so a relabelled row shows at once.
    await platform.train({
      dataset: "words",
      head: "words",
      backbone: AUDIO_BACKBONE,
      type: "knn",
      params: { k: 1 },
    });

    await writeTinyBackbone(join(dir, "text-backbone"));
    await platform.addBackbone(join(dir, "text-backbone"));
    await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(30, { seed: 3 })));
    await platform.embed("films", { backbone: "tiny-text" });
    await platform.train({ head: "films", dataset: "films", backbone: "tiny-text", type: "logreg" });
    await writeTinyImageBackbone(join(dir, "image-backbone"));
    await platform.addBackbone(join(dir, "image-backbone"));
    const squares = join(dir, "squares");
    await mkdir(join(squares, "files"), { recursive: true });
    const squareRows: object[] = [];
    for (let i = 0; i < 6; i++) {
      const label = i % 2 ? "red" : "blue";
      await writeFile(
        join(squares, "files", `${i}.png`),
        await tinySquare(i % 2 ? [210, 20, 20] : [20, 30, 210], i),
      );
      squareRows.push({ id: `s${i}`, image: `${i}.png`, label });
    }
    await writeFile(
      join(squares, "manifest.jsonl"),
      squareRows.map((r) => `${JSON.stringify(r)}\n`).join(""),
    );
    await platform.upload("squares", squares);
    await platform.embed("squares", { backbone: "tiny-image" });
    await platform.train({
      head: "colours",
      dataset: "squares",
      backbone: "tiny-image",
      type: "knn",
      params: { k: 1 },
    });
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("audio feedback → train withFeedback → the mislabelled clips are 'no'", async () => {
    const inputs = WRONG.map((id) => ({ audio: clips.get(id)!.bytes.toString("base64") }));
    const beforeFix = await platform.predict("words", { inputs });
    assert.deepEqual(
      beforeFix.predictions.map((p) => p.label),
      WRONG.map(() => "yes"),
      "each mislabelled clip is its own nearest row",
    );
    // A wrong correction first, then the right one for the same clip: the newest wins.
    await platform.addFeedback("words", {
      input: { audioKey: "datasets/words/files/no-0.wav" },
      label: "yes",
    });
    for (const [j, id] of WRONG.entries()) {
      const { file, bytes } = clips.get(id)!;
      const input =
        j % 2 === 0 ? { audioKey: `datasets/words/files/${file}` } : { audio: bytes.toString("base64") };
      const stored = await platform.addFeedback("words", { input, label: "no" });
      assert.equal(stored.audio, `${sha256(bytes)}.${file.split(".")[1]}`, "named by its bytes and format");
      assert.equal(stored.text, undefined);
      assert.equal(stored.image, undefined);
    }
    const records = await listFeedback(platform.store, "words");
    assert.equal(records.length, WRONG.length + 1);
    const files = new Set(records.map((r) => r.audio!));
    assert.equal(files.size, WRONG.length, "no-0 sent twice is stored once");
    const stored = await platform.store.list(audioDir());
    assert.deepEqual(
      stored.map((o) => o.key).sort(),
      [...files].map((f) => keys.headFeedbackAudio("words", f)).sort(),
    );
    for (const o of stored) assert.equal(parseKey(o.key)?.kind, "headFeedbackAudio");

    const trained = await platform.train({
      dataset: "words",
      head: "words",
      backbone: AUDIO_BACKBONE,
      type: "knn",
      params: { k: 1 },
      withFeedback: true,
    });
    const dataset = feedbackDatasetName("words");
    for (const f of files) assert.ok(await platform.store.head(keys.datasetFile(dataset, f)), f);
    const afterFix = await platform.predict("words", { inputs, version: trained.version });
    assert.deepEqual(
      afterFix.predictions.map((p) => p.label),
      WRONG.map(() => "no"),
    );
    assert.equal(
      trained.feedback?.rows,
      WRONG.length,
      "one feedback row per clip, matched to its dataset row",
    );
    assert.equal(trained.feedback?.before?.value, 0, "the live version had every corrected clip wrong");
    assert.equal(trained.feedback?.after.value, 1);
  });

  test("retrain: the held-out rows leave out a test clip a correction names (by its embedding)", async () => {
    // no-6 is a test row; its correction (to the label it has) takes it out of the comparison.
    await platform.addFeedback("words", {
      input: { audioKey: `datasets/words/files/${clips.get("no-6")!.file}` },
      label: "no",
    });
    const outcome = await platform.retrainWithFeedback("words");
    assert.equal(outcome.heldOut?.rows, 3, "yes-6, yes-7, no-7: the 4 test clips less no-6");
    assert.equal(outcome.feedback?.rows, WRONG.length + 1);
    assert.equal(outcome.promoted, true, outcome.reason);
    const again = await platform.predict("words", {
      inputs: WRONG.map((id) => ({ audio: clips.get(id)!.bytes.toString("base64") })),
    });
    assert.deepEqual(
      again.predictions.map((p) => p.label),
      WRONG.map(() => "no"),
      "the live version after the retrain",
    );
  });

  test("HTTP: bad audio input is a 400 (or 404) naming the field, and nothing is stored", async () => {
    const count = async () => (await listFeedback(platform.store, "words")).length;
    const audio = async () => (await platform.store.list(audioDir())).length;
    const [n, m] = [await count(), await audio()];
    const opus = Buffer.concat([
      Buffer.from("OggS\0\x02"),
      Buffer.alloc(20),
      Buffer.from([1, 19]),
      Buffer.from("OpusHead"),
      Buffer.alloc(11),
    ]);
    const cases: Array<[unknown, string, RegExp]> = [
      [{ audio: "not base64!" }, "input.audio", /not valid base64/],
      [
        { audio: Buffer.from("hello, not a sound at all").toString("base64") },
        "input.audio",
        /is not audio; send a WAV, FLAC, MP3 or Ogg Vorbis/,
      ],
      [{ audio: opus.toString("base64") }, "input.audio", /Ogg Opus, a format not decoded/],
      [
        { audioKey: "datasets/words/../../heads/words/aliases/live.json" },
        "input.audioKey",
        /not a plain key/,
      ],
      [{ audioKey: "heads/words/aliases/live.json" }, "input.audioKey", /not under datasets\//],
      [{ audioKey: "datasets/words/files/nope.wav" }, "input.audioKey", /no object/],
      [{ audioKey: "datasets/words/manifest.jsonl" }, "input.audioKey", /is not audio/],
      [
        { image: (await tinySquare([20, 200, 30], 1)).toString("base64") },
        "input.image",
        /is an image, but head words .* takes audio inputs/,
      ],
      ["a text for a sound head", "input", /^input is a text, but head words/],
    ];
    for (const [input, field, message] of cases) {
      const res = await app.request("/v1/heads/words/feedback", send({ input, label: "no" }));
      assert.ok(
        res.status === 400 || res.status === 404,
        `${JSON.stringify(input).slice(0, 60)}: ${res.status}`,
      );
      const err = (await read(res)).error;
      assert.equal(err.field, field, JSON.stringify(input).slice(0, 60));
      assert.match(err.message, message);
    }
    const badLabel = await app.request(
      "/v1/heads/words/feedback",
      send({ input: { audio: clips.get("yes-0")!.bytes.toString("base64") }, label: "maybe" }),
    );
    assert.equal(badLabel.status, 400);
    assert.equal((await read(badLabel)).error.field, "label");
    assert.deepEqual([await count(), await audio()], [n, m], "no record and no audio stored");
  });

  test("HTTP: audio for a text or image head, an image for a text head: a 400 naming the field", async () => {
    const clip = clips.get("yes-0")!.bytes.toString("base64");
    const square = (await tinySquare([20, 200, 30], 2)).toString("base64");
    const cases: Array<[string, unknown, string, string]> = [
      [
        "films",
        { audio: clip },
        "input.audio",
        "input.audio is audio, but head films (backbone tiny-text) takes text inputs",
      ],
      [
        "films",
        { audioKey: "datasets/words/files/yes-0.wav" },
        "input.audioKey",
        "input.audioKey is audio, but head films",
      ],
      [
        "films",
        { image: square },
        "input.image",
        "input.image is an image, but head films (backbone tiny-text) takes text inputs",
      ],
      [
        "colours",
        { audio: clip },
        "input.audio",
        "input.audio is audio, but head colours (backbone tiny-image) takes image inputs",
      ],
    ];
    for (const [head, input, field, message] of cases) {
      const label = head === "films" ? "pos" : "red";
      const res = await app.request(`/v1/heads/${head}/feedback`, send({ input, label }));
      assert.equal(res.status, 400, `${head} ${field}`);
      const err = (await read(res)).error;
      assert.equal(err.field, field);
      assert.ok(err.message.startsWith(message), err.message);
      assert.equal((await listFeedback(platform.store, head)).length, 0, `${head}: nothing stored`);
    }
    const files = await platform.store.list("heads/films/");
    assert.ok(
      !files.some((o) => /feedback-(audio|images)\//.test(o.key)),
      "no file stored for the text head",
    );
  });

  test("HTTP: an audio prediction's id needs its audio; with it, the correction is stored", async () => {
    const audio = clips.get("no-7")!.bytes.toString("base64");
    const predicted = await read(await app.request("/v1/heads/words/predict", send({ inputs: [{ audio }] })));
    const { predictionId } = predicted.predictions[0];
    const alone = await app.request("/v1/heads/words/feedback", send({ predictionId, label: "no" }));
    assert.equal(alone.status, 400);
    const err = (await read(alone)).error;
    assert.equal(err.field, "predictionId");
    assert.match(err.message, /"audio"/);
    const res = await app.request(
      "/v1/heads/words/feedback",
      send({ predictionId, input: { audio }, label: "no" }),
    );
    assert.equal(res.status, 201);
    const stored = await read(res);
    assert.equal(stored.predictionId, predictionId);
    assert.match(stored.audio, /^[0-9a-f]{64}\.ogg$/, "no-7 is an Ogg Vorbis clip");
    const listed = (await read(await app.request("/v1/heads/words/feedback"))).feedback;
    assert.ok(
      listed.some((f: { id: string; audio?: string }) => f.id === stored.id && f.audio === stored.audio),
    );
  });

  test("a batch prediction of an audio row resolves to the row's file", async () => {
    const { job } = await platform.startBatchPrediction({ head: "words", dataset: "words", partRows: 50 });
    assert.equal((await platform.runBatchPrediction(job.job)).status, "succeeded");
    const stored = await platform.addFeedback("words", { predictionId: `${job.job}:yes-5`, label: "yes" });
    const { file, bytes } = clips.get("yes-5")!;
    assert.equal(stored.audio, `${sha256(bytes)}.${file.split(".")[1]}`);
    assert.ok(await platform.store.head(keys.headFeedbackAudio("words", stored.audio!)));
  });

  test("CLI: feedback --audio stores the file; a missing file names --audio; two inputs are refused", async () => {
    const file = join(dir, "cli-no.flac");
    await speak("no", "en+m7", 150, file);
    const res = await cli(["--json", "feedback", "words", "--audio", file, "--label", "no"], env);
    assert.equal(res.code, 0, res.stderr);
    const stored = JSON.parse(res.stdout);
    assert.equal(stored.audio, `${sha256(await readFile(file))}.flac`);
    assert.ok(await platform.store.head(keys.headFeedbackAudio("words", stored.audio)));
    const text = await cli(["feedback", "words", "--audio", file, "--label", "no"], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /: audio [0-9a-f]{64}\.flac → "no"/);
    const missing = await cli(["feedback", "words", "--audio", join(dir, "nope.wav"), "--label", "no"], env);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--audio .*no such file/);
    const both = await cli(["feedback", "words", "--text", "no", "--audio", file, "--label", "no"], env);
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /at most one of --text, --image, --audio/);
    const listed = await cli(["ls", "feedback", "words"], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /audio [0-9a-f]{12}…/);
  });

  test("deleting the head removes its stored audio and its feedback dataset", async () => {
    assert.ok((await platform.store.list(audioDir())).length > 0);
    await deleteHead(platform.store, "words", { force: true });
    assert.deepEqual(await platform.store.list(audioDir()), []);
    assert.deepEqual(await platform.store.list(`datasets/${feedbackDatasetName("words")}/`), []);
    assert.ok((await platform.store.list("datasets/words/files/")).length > 0, "the base dataset stays");
  });
});
