/**
 * Audio end to end, issue 18's "done when": a labelled folder of spoken words synthesized here
 * (espeak-ng: "yes", "no", "stop" in several voices and speeds, WAV, some converted by sox to FLAC,
 * MP3 and Ogg Vorbis, a test/ split in unseen voices) plus a truncated WAV, an empty FLAC, random bytes named
 * .wav and an Ogg Opus file → `headstart ingest` (the audio default backbone, no --backbone) → the
 * bad files are per-item failures with their reasons → `train` → `predict --audio` on clips in
 * voices the head never heard, the same through the HTTP API (JSON base64, `audioKey`, multipart),
 * and a labelled folder of those clips (with a corrupt one) through `batch-predict`.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { cli } from "./helpers/cli.ts";
import { tempDir } from "./helpers/platform.ts";
import { speak } from "./helpers/speak.ts";

const WORDS = ["yes", "no", "stop"];
const TRAIN_VOICES = ["en+m1", "en+m3", "en+m5", "en+f1", "en+f3", "en+f5"];
const SPEEDS = [130, 175];
/** Voices of the dataset's test split, and of the clips predicted: none is a training voice. */
const TEST_VOICES = ["en+m7", "en+f2"];
const UNSEEN_VOICES = ["en+m4", "en+f4"];
const AUDIO_BACKBONE = loadConfig({}).defaultAudioBackbone;

/** The first page of an Ogg Opus stream: a real container whose codec the decoders refuse. */
function oggOpusHead(): Buffer {
  const head = Buffer.alloc(19);
  head.write("OpusHead", 0);
  head[8] = 1; // version
  head[9] = 1; // channels
  head.writeUInt16LE(312, 10); // pre-skip
  head.writeUInt32LE(48_000, 12);
  const page = Buffer.alloc(28);
  page.write("OggS", 0);
  page[5] = 2; // beginning of stream
  page.writeUInt32LE(1, 14); // serial
  page[26] = 1; // one segment
  page[27] = head.length;
  return Buffer.concat([page, head]);
}

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();
const labelsOf = (body: { predictions: Array<{ label: string }> }) => body.predictions.map((p) => p.label);

describe("audio end to end (CLI and API)", () => {
  let dir: string;
  let folder: string;
  let env: NodeJS.ProcessEnv;
  /** Clips in unseen voices, outside the dataset, in a labelled folder of their own. */
  const unseen: Array<{ label: string; path: string }> = [];
  let unseenFolder: string;
  let rows = 0;

  before(async () => {
    dir = await tempDir("headstart-audio-e2e-");
    folder = join(dir, "commands");
    env = { HEADSTART_STORE: join(dir, "store") };
    unseenFolder = join(dir, "unseen");
    for (const word of WORDS) {
      await mkdir(join(unseenFolder, word), { recursive: true });
      await mkdir(join(folder, word), { recursive: true });
      await mkdir(join(folder, "test", word), { recursive: true });
      let i = 0;
      for (const voice of TRAIN_VOICES) {
        for (const speed of SPEEDS) {
          // Every format the folder rule takes, the extension's case varied too.
          const ext = i === 5 ? "FLAC" : ["wav", "flac", "mp3", "ogg"][i % 4];
          await speak(word, voice, speed, join(folder, word, `${voice}-${speed}.${ext}`));
          i++;
          rows++;
        }
      }
      for (const voice of TEST_VOICES) {
        await speak(word, voice, 160, join(folder, "test", word, `${voice}.wav`));
        rows++;
      }
      for (const [k, voice] of UNSEEN_VOICES.entries()) {
        const path = join(unseenFolder, word, `${voice}.${k ? "flac" : "wav"}`);
        await speak(word, voice, 150, path);
        unseen.push({ label: word, path });
      }
    }
    const good = await readFile(join(folder, "yes", `${TRAIN_VOICES[0]}-130.wav`));
    await writeFile(join(folder, "yes", "truncated.wav"), good.subarray(0, Math.floor(good.length / 2)));
    await writeFile(join(folder, "no", "empty.flac"), Buffer.alloc(0));
    await writeFile(
      join(folder, "stop", "noise.wav"),
      Buffer.from("this is no audio file at all, just text"),
    );
    await writeFile(join(folder, "stop", "opus.ogg"), oggOpusHead());
    await writeFile(join(folder, "stop", "notes.txt"), "not a sound");
    rows += 4;
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("ingest: every audio file is a row; the bad ones fail to embed with their reasons", async () => {
    const r = await cli(["ingest", folder, "--dataset", "commands", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status.rows.accepted, rows);
    assert.deepEqual(out.status.modalities, { audio: rows });
    assert.deepEqual(
      out.status.skipped.map((s: { path: string }) => s.path),
      ["stop/notes.txt"],
    );
    assert.equal(out.embedding.job.backbone, AUDIO_BACKBONE, "a folder of audio gets the audio default");
    assert.equal(out.embedding.result.itemsFailed, 4);
    assert.equal(out.embedding.result.itemsEmbedded, rows);
    const failures = Object.fromEntries(
      out.embedding.result.failures.map((f: { id: string; reason: string }) => [f.id, f.reason]),
    );
    assert.deepEqual(failures, {
      "no/empty.flac": "empty",
      "stop/noise.wav": "unsupported-format",
      "stop/opus.ogg": "unsupported-format",
      "yes/truncated.wav": "corrupt",
    });

    const status = await cli(["status", "commands"], env);
    assert.equal(status.code, 0, status.stderr);
    const info = JSON.parse(status.stdout);
    assert.equal(info.embedding.backbone, AUDIO_BACKBONE);
    assert.equal(info.embedding.failedItems, 4);
    const messages = Object.fromEntries(
      info.embedding.failures.map((f: { id: string; message: string }) => [f.id, f.message]),
    );
    assert.match(messages["stop/opus.ogg"], /Opus/);
  });

  test("train on the clips that embedded, evaluated on the unseen voices of test/", async () => {
    const r = await cli(["train", "commands", "--head", "commands", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const t = JSON.parse(r.stdout);
    assert.equal(t.evaluation, "test-split");
    assert.equal(t.counts.failed, 4);
    assert.equal(t.counts.train, WORDS.length * TRAIN_VOICES.length * SPEEDS.length);
    assert.equal(t.counts.test, WORDS.length * TEST_VOICES.length);
    assert.ok(t.metrics.accuracy >= 0.8, `three words in unseen voices: ${JSON.stringify(t.metrics)}`);
  });

  test("CLI predict --audio: WAV and FLAC clips in voices the head never heard", async () => {
    const r = await cli(["predict", "commands", ...unseen.flatMap((u) => ["--audio", u.path])], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, unseen.length, r.stdout);
    const got = lines.map((line) => line.split("\t"));
    // label, score, maybe "(unknown input)", then the file's path in place of a text.
    for (const [i, cells] of got.entries()) assert.equal(cells.at(-1), unseen[i].path.slice(0, 80));
    const right = got.filter(([label], i) => label === unseen[i].label).length;
    assert.ok(right >= unseen.length - 1, `unseen voices: ${r.stdout}`);

    const bad = await cli(["predict", "commands", "--audio", join(folder, "stop", "noise.wav")], env);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /inputs\[0\]/);
  });

  test("the API: JSON base64, audioKey and multipart answer as the CLI does", async () => {
    const store = new FsStore(join(dir, "store"));
    const platform = new Platform(store, loadConfig({}, { store: store.root }));
    const app = createApp(platform, makeLogger("test", "silent"));
    const bytes = await Promise.all(unseen.map((u) => readFile(u.path)));
    const cliLabels = (
      JSON.parse(
        (await cli(["predict", "commands", "--json", ...unseen.flatMap((u) => ["--audio", u.path])], env))
          .stdout,
      ) as { predictions: Array<{ label: string }> }
    ).predictions.map((p) => p.label);

    let res = await app.request("/v1/heads/commands/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: bytes.map((b) => ({ audio: b.toString("base64") })), neighbors: 2 }),
    });
    assert.equal(res.status, 200);
    const viaJson = await read(res);
    assert.deepEqual(labelsOf(viaJson), cliLabels);
    const near = viaJson.predictions[0].neighbors[0];
    assert.match(
      near.audio,
      /^(yes|no|stop)\/en\+[mf]\d-\d+\.(wav|flac|FLAC)$/,
      "a neighbour names its clip",
    );

    res = await app.request("/v1/heads/commands/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        inputs: WORDS.map((w) => ({ audioKey: `datasets/commands/files/${w}/${TRAIN_VOICES[0]}-130.wav` })),
      }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(labelsOf(await read(res)), WORDS, "training clips get their own labels");

    const form = new FormData();
    for (const [i, u] of unseen.entries())
      form.append("audio", new Blob([bytes[i]]), u.path.split("/").pop());
    res = await app.request("/v1/heads/commands/predict", { method: "POST", body: form });
    assert.equal(res.status, 200);
    assert.deepEqual(labelsOf(await read(res)), cliLabels);

    const broken = new FormData();
    broken.append("audio", new Blob([bytes[0]]), "fine.wav");
    broken.append("audio", new Blob([await readFile(join(folder, "yes", "truncated.wav"))]), "cut.wav");
    res = await app.request("/v1/heads/commands/predict", { method: "POST", body: broken });
    assert.equal(res.status, 400);
    const err = (await read(res)).error;
    assert.equal(err.field, "audio[1]");
    assert.equal(err.details.reason, "corrupt");
    assert.match(err.message, /^audio\[1\] \(cut\.wav\)/);

    res = await app.request("/v1/heads/commands/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ inputs: ["yes"] }),
    });
    assert.equal(res.status, 400, "a text to an audio head");
    assert.match(
      (await read(res)).error.message,
      /^inputs\[0\] is text, but head commands .* takes audio inputs/,
    );
  });

  test("batch-predict a labelled folder of clips: a corrupt one is an error row with its reason", async () => {
    const good = await readFile(unseen[0].path);
    await writeFile(join(unseenFolder, "yes", "cut.wav"), good.subarray(0, Math.floor(good.length / 2)));
    const r = await cli(["batch-predict", "commands", unseenFolder, "--wait", "--json"], env);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, "succeeded-with-errors");
    assert.deepEqual(out.counts, { total: unseen.length + 1, succeeded: unseen.length, failed: 1 });
    const store = new FsStore(join(dir, "store"));
    const lines = async (key: string) =>
      new TextDecoder()
        .decode((await store.get(key))!.body)
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
    const errors = (await Promise.all(out.errors.map(lines))).flat();
    assert.deepEqual(
      errors.map((e: { id: string }) => e.id),
      ["yes/cut.wav"],
    );
    assert.match(String(errors[0].reason), /corrupt/);
    const scored = (await Promise.all(out.outputs.map(lines))).flat();
    const right = scored.filter((l: { id: string; label: string }) => l.label === l.id.split("/")[0]).length;
    assert.ok(right >= unseen.length - 1, JSON.stringify(scored));
  });
});
