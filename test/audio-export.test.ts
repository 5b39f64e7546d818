/**
 * An audio head exported fused runs without headstart: the ONNX model takes a clip's samples
 * (decoded, 16 kHz mono, × 32768, padded to minSamples) and answers what `platform.predict`
 * answers for the same file, for both poolings of the speech backbone.
 */
import assert from "node:assert/strict";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { InferenceSession, Tensor } from "onnxruntime-node";
import wavefile from "wavefile";
import { decodeAudio } from "../shared/audio/decode.ts";
import { scaledClip } from "../shared/backbone/audio-windows.ts";
import { SPEECH_ID, SPEECH_MEANMAX_ID, speechSpec } from "../shared/backbone/speech-embedding.ts";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { mulberry32 } from "../shared/learn/split.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tempDir } from "./helpers/platform.ts";

/** A seeded sweep (rising for `up`, falling for `down`) with some noise: two easy classes. */
function sweep(label: "up" | "down", i: number, rate = 16_000): Int16Array {
  const rand = mulberry32(i * 7 + (label === "up" ? 1 : 2));
  const seconds = 0.6 + rand() * 0.9;
  const [from, to] = label === "up" ? [300, 2500] : [2500, 300];
  const n = Math.round(seconds * rate);
  const out = new Int16Array(n);
  for (let k = 0; k < n; k++) {
    const t = k / rate;
    const phase = 2 * Math.PI * (from * t + ((to - from) * t * t) / (2 * seconds));
    out[k] = Math.round(32767 * (0.3 * Math.sin(phase) + 0.02 * (rand() * 2 - 1)));
  }
  return out;
}

function wav(samples: Int16Array, rate = 16_000): Uint8Array {
  const w = new wavefile.WaveFile();
  w.fromScratch(1, rate, "16", samples);
  return w.toBuffer();
}

describe("audio heads exported fused", () => {
  let dir: string;
  let platform: Platform;
  const probes = [wav(sweep("up", 100)), wav(sweep("down", 101)), wav(sweep("up", 102).subarray(0, 4000))];
  before(async () => {
    dir = await tempDir();
    const store = new FsStore(join(dir, "store"));
    const config = loadConfig({}, { store: store.root, modelsDir: join(PACKAGE_ROOT, ".models") });
    platform = new Platform(store, config);
    for (const label of ["up", "down"] as const) {
      await mkdir(join(dir, "sweeps", label), { recursive: true });
      for (let i = 0; i < 8; i++)
        await writeFile(join(dir, "sweeps", label, `${i}.wav`), wav(sweep(label, i)));
    }
    await platform.upload("sweeps", join(dir, "sweeps"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const backbone of [SPEECH_ID, SPEECH_MEANMAX_ID]) {
    test(`${backbone}: samples → probabilities reproduces predict on the files`, async () => {
      await platform.embed("sweeps", { backbone });
      const head = `sweeps-${backbone}`;
      await platform.train({ dataset: "sweeps", head, backbone });
      const predicted = await platform.predict(head, { inputs: probes.map((audio) => ({ audio })) });
      const { labels } = await platform.headVersion(head, predicted.version);
      assert.deepEqual(
        predicted.predictions.slice(0, 2).map((p) => p.label),
        ["up", "down"],
      );
      const fused = await InferenceSession.create((await platform.exportHead(head, { fused: true })).bytes);
      const pre = speechSpec(backbone === SPEECH_ID ? "mean" : "mean-max").preprocessing;
      if (pre.type !== "audio") throw new Error("not an audio backbone");
      for (const [i, bytes] of probes.entries()) {
        const { samples } = await decodeAudio(bytes, { sampleRate: 16_000 });
        const clip = scaledClip(samples, pre.sampleScale, pre.minSamples);
        const out = await fused.run({ samples: new Tensor("float32", clip, [1, clip.length]) });
        const probs = out[fused.outputNames[0]].data as Float32Array;
        const expected = labels.map((l) => predicted.predictions[i].scores?.[l] ?? Number.NaN);
        expected.forEach((p, j) => {
          assert.ok(
            Math.abs(probs[j] - p) < 1e-4,
            `probe ${i}, ${labels[j]}: fused ${probs[j]} vs predict ${p}`,
          );
        });
      }
    });
  }
});
