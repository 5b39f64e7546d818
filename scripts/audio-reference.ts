/**
 * Writes test/fixtures/audio/speech-embedding-reference.json: the 96-d vector of every window of
 * the test signals (test/helpers/audio-signals.ts), computed the plain way openWakeWord documents
 * it, one window per run, straight from the two ONNX files — no headstart embedder code. The test
 * (test/audio-equivalence.test.ts) holds the embedder's batched pipeline to it.
 *
 *   node --import tsx scripts/audio-reference.ts [--models .models]
 *
 * openWakeWord's steps: 16 kHz samples at int16 scale → melspectrogram.onnx `[1, n]` → `[1, 1, T,
 * 32]` → x / 10 + 2 → windows of 76 frames every 8 → embedding_model.onnx `[1, 76, 32, 1]` → 96.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { ensureSpeechSource, SPEECH_FILES } from "../shared/backbone/speech-embedding.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { TEST_SIGNALS } from "../test/helpers/audio-signals.ts";

export const REFERENCE_FIXTURE = join(
  PACKAGE_ROOT,
  "test",
  "fixtures",
  "audio",
  "speech-embedding-reference.json",
);

const { values } = parseArgs({
  options: { models: { type: "string", default: join(PACKAGE_ROOT, ".models") } },
});
const source = await ensureSpeechSource(String(values.models));
const mel = await ort.InferenceSession.create(join(source, SPEECH_FILES.mel.name));
const emb = await ort.InferenceSession.create(join(source, SPEECH_FILES.embedding.name));

const clips = [];
for (const signal of TEST_SIGNALS) {
  const samples = signal.samples(16_000).map((x) => x * 32_768);
  const m = (await mel.run({ input: new ort.Tensor("float32", samples, [1, samples.length]) })).output;
  const frames = m.dims[2];
  const data = m.data as Float32Array;
  const windows: number[][] = [];
  for (let start = 0; start + 76 <= frames; start += 8) {
    const win = new Float32Array(76 * 32);
    for (let j = 0; j < win.length; j++) win[j] = data[start * 32 + j] / 10 + 2;
    const y = (await emb.run({ input_1: new ort.Tensor("float32", win, [1, 76, 32, 1]) })).conv2d_19;
    windows.push(Array.from(y.data as Float32Array, (v) => Number(v.toPrecision(8))));
  }
  clips.push({ name: signal.name, seconds: signal.seconds, frames, windows });
}
const fixture = {
  generatedBy: "scripts/audio-reference.ts",
  models: {
    [SPEECH_FILES.mel.name]: SPEECH_FILES.mel.sha256,
    [SPEECH_FILES.embedding.name]: SPEECH_FILES.embedding.sha256,
  },
  clips,
};
await writeFile(REFERENCE_FIXTURE, `${JSON.stringify(fixture)}\n`);
console.log(
  `wrote ${REFERENCE_FIXTURE}: ${clips.map((c) => `${c.name} ${c.windows.length} windows`).join(", ")}`,
);
