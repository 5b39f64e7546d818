/**
 * The built-in speech backbone against a reference computed once, the plain way openWakeWord
 * documents it (scripts/audio-reference.ts): one window per run, straight from the two ONNX
 * files. Our pipeline batches the windows of several clips per run and pools them; every window
 * must agree to cosine ≥ 0.9999, and the pooled vectors must be the mean (⊕ max) of them.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { AudioEmbedder } from "../shared/backbone/audio-embedder.ts";
import { ensureSpeechBackbone, SPEECH_FILES, SPEECH_ID } from "../shared/backbone/speech-embedding.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { TEST_SIGNALS } from "./helpers/audio-signals.ts";

interface Reference {
  models: Record<string, string>;
  clips: { name: string; frames: number; windows: number[][] }[];
}

const MODELS = join(PACKAGE_ROOT, ".models");
const reference: Reference = JSON.parse(
  await readFile(join(PACKAGE_ROOT, "test", "fixtures", "audio", "speech-embedding-reference.json"), "utf8"),
);

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

async function embedder(pooling: "mean" | "mean-max", maxWindowsPerRun?: number) {
  const { dir, spec } = await ensureSpeechBackbone(MODELS, { pooling });
  const assets = { [SPEECH_FILES.mel.name]: join(dir, SPEECH_FILES.mel.name) };
  return AudioEmbedder.create(spec, join(dir, spec.model), assets, { maxWindowsPerRun });
}

const clips = TEST_SIGNALS.map((s) => s.samples(16_000));

test("the fixture was made from the very model files the backbone fetches", async () => {
  const { spec } = await ensureSpeechBackbone(MODELS);
  assert.equal(spec.id, SPEECH_ID);
  assert.equal(reference.models[SPEECH_FILES.embedding.name], spec.sha256);
  assert.equal(reference.models[SPEECH_FILES.mel.name], spec.assetSha256[SPEECH_FILES.mel.name]);
  assert.match(spec.license ?? "", /Apache-2\.0/);
  assert.match(spec.source ?? "", /react-native-wakeword@1\.1\.146/);
});

test("every window matches the reference (cosine ≥ 0.9999), batched across clips in uneven runs", async () => {
  // 7 windows a run: runs cut through clips, so batching cannot hide an offset between them.
  const e = await embedder("mean", 7);
  const { windows, counts } = await e.windowVectors(clips);
  assert.deepEqual(
    counts,
    reference.clips.map((c) => c.windows.length),
  );
  let row = 0;
  let worst = 1;
  for (const clip of reference.clips) {
    for (const expected of clip.windows) {
      worst = Math.min(worst, cosine(windows.subarray(row * 96, (row + 1) * 96), expected));
      row++;
    }
  }
  assert.ok(worst >= 0.9999, `worst window cosine ${worst}`);
});

test("pooled vectors are the mean, and mean ⊕ max, of the reference windows", async () => {
  const [mean, meanMax] = await Promise.all([embedder("mean"), embedder("mean-max")]);
  const a = await mean.embedSamples(clips);
  const b = await meanMax.embedSamples(clips);
  reference.clips.forEach((clip, c) => {
    const m = new Float64Array(96);
    const x = new Float64Array(96).fill(Number.NEGATIVE_INFINITY);
    for (const w of clip.windows) {
      w.forEach((v, j) => {
        m[j] += v / clip.windows.length;
        x[j] = Math.max(x[j], v);
      });
    }
    assert.ok(cosine(a.subarray(c * 96, (c + 1) * 96), m) >= 0.9999, `${clip.name}: mean`);
    assert.ok(cosine(b.subarray(c * 192, c * 192 + 96), m) >= 0.9999, `${clip.name}: mean half`);
    assert.ok(cosine(b.subarray(c * 192 + 96, (c + 1) * 192), x) >= 0.9999, `${clip.name}: max half`);
  });
});

test("a clip shorter than one window is padded with silence to exactly one window", async () => {
  const e = await embedder("mean");
  const short = clips[0].subarray(0, 4000); // 0.25 s
  const { counts, windows } = await e.windowVectors([short, new Float32Array(0)]);
  assert.deepEqual(counts, [1, 1]);
  // Silence and a chirp fragment must not embed alike.
  assert.ok(cosine(windows.subarray(0, 96), windows.subarray(96, 192)) < 0.99);
});
