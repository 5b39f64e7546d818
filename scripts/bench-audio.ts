/**
 * `npm run bench:audio` — the speech backbone (`speech-embedding-96`, mean over windows, and
 * `speech-embedding-96-meanmax`, mean ⊕ max) against a plain log-mel baseline:
 *   1. keywords: ten command words × 24 espeak-ng voices × 2 speeds (scripts/audio-tasks.ts), split
 *      BY VOICE (`--voice-folds` folds of voices; every clip is scored once, by heads that never
 *      heard its voice): logistic regression and nearest centroid on all training voices, and
 *      `--shots` per word (`--seeds` draws per fold, mean ± sd over draws);
 *   2. sonic-pi: Debian `sonic-pi-samples` tagged by group (file-name prefix), stratified
 *      `--folds`-fold cross-validation repeated with `--cv-repeats` fold seeds;
 *   3. throughput on the keyword WAVs (and the sonic-pi FLACs): `AudioEmbedder.embed` on the bytes
 *      (decode + embed), `embedSamples` on decoded samples, and raw `session.run` of the two models
 *      on the same clips and windows; decode time per clip by format (WAV, FLAC, MP3, Ogg Vorbis).
 * The baseline is the backbone's own mel frontend without the learned model: per clip the mean ⊕
 * std over time of the 32 log-mel bins (`melFrames`), standardized on the training rows.
 * Prints the machine, then markdown tables for docs/benchmarks.md. Not a test: nothing is asserted.
 *
 *   npm run bench:audio -- [--sections keywords,sonic,throughput] [--voice-folds 3] [--shots 5]
 *     [--seeds 5] [--folds 5] [--cv-repeats 3] [--reps 5] [--store .headstart-bench/audio]
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { AudioDecodeError, decodeAudio } from "../shared/audio/decode.ts";
import type { AudioEmbedder } from "../shared/backbone/audio-embedder.ts";
import { scaledClip, windowStarts, writeWindows } from "../shared/backbone/audio-windows.ts";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { SPEECH_ID, SPEECH_MEANMAX_ID } from "../shared/backbone/speech-embedding.ts";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { DEFAULT_BATCH_SIZE } from "../shared/embed/run.ts";
import { ValidationError } from "../shared/errors.ts";
import { argmaxRows } from "../shared/learn/metrics.ts";
import { headKind } from "../shared/learn/registry.ts";
import { foldIndices, gaussian, mulberry32, shuffleInPlace, stratifiedKFold } from "../shared/learn/split.ts";
import { standardizationStats } from "../shared/learn/standardize.ts";
import { getSession, Tensor } from "../shared/onnx/session.ts";
import {
  type AudioClip,
  convertedClips,
  KEYWORD_SPEEDS,
  KEYWORD_VOICES,
  KEYWORDS,
  keywordClips,
  sonicPiClips,
  sonicPiDir,
} from "./audio-tasks.ts";
import { machine } from "./bench-common.ts";

const { values: args } = parseArgs({
  options: {
    sections: { type: "string", default: "keywords,sonic,throughput" },
    "voice-folds": { type: "string", default: "3" },
    shots: { type: "string", default: "5" },
    seeds: { type: "string", default: "5" },
    folds: { type: "string", default: "5" },
    "cv-repeats": { type: "string", default: "3" },
    "pad-seconds": { type: "string", default: "1.5" },
    reps: { type: "string", default: "5" },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "audio") },
    "models-dir": { type: "string", default: join(PACKAGE_ROOT, ".models") },
    "sonic-pi": { type: "string" },
  },
});

function intOption(name: keyof typeof args, min: number): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) {
    throw new ValidationError(`--${name} must be an integer ≥ ${min}, got ${args[name]}`, { field: name });
  }
  return v;
}
const VOICE_FOLDS = intOption("voice-folds", 2);
const SHOTS = intOption("shots", 1);
const SEEDS = intOption("seeds", 1);
const FOLDS = intOption("folds", 2);
const CV_REPEATS = intOption("cv-repeats", 1);
const REPS = intOption("reps", 1);
const PAD_SECONDS = Number(args["pad-seconds"]);
if (!(PAD_SECONDS > 0))
  throw new ValidationError(`--pad-seconds must be > 0, got ${args["pad-seconds"]}`, {
    field: "pad-seconds",
  });
const SECTIONS = new Set(String(args.sections).split(","));
for (const s of SECTIONS) {
  if (!["keywords", "sonic", "throughput"].includes(s)) {
    throw new ValidationError(`--sections: unknown section ${s} (keywords, sonic, throughput)`, {
      field: "sections",
    });
  }
}
const STORE = String(args.store);
const RATE = 16_000;
/** The embedder's defaults: clips per micro-batch and windows per run of the embedding model. */
const MICRO_BATCH = 16;
const MAX_WINDOWS = 512;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const meanSd = (xs: number[]) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
};
const fmt = (x: number, d = 2) => x.toFixed(d);
const pct = (x: number) => fmt(100 * x, 1);
const pm = (xs: number[]) => {
  const { mean, sd } = meanSd(xs.map((x) => 100 * x));
  return `${fmt(mean, 1)} ± ${fmt(sd, 1)}`;
};
const secs = (t0: number) => (performance.now() - t0) / 1000;
const note = (msg: string) => process.stderr.write(`${msg}\n`);

// ---------------------------------------------------------------- features

interface Features {
  name: string;
  X: Float32Array;
  d: number;
}

interface Loaded {
  bytes: Uint8Array[];
  samples: Float32Array[];
  seconds: number[];
}

async function loadClips(clips: readonly AudioClip[]): Promise<Loaded> {
  const bytes = await Promise.all(clips.map((c) => readFile(c.path).then((b) => new Uint8Array(b))));
  const decoded = [];
  for (const [i, b] of bytes.entries())
    decoded.push(await decodeAudio(b, { sampleRate: RATE, name: clips[i]!.path }));
  return { bytes, samples: decoded.map((d) => d.samples), seconds: decoded.map((d) => d.seconds) };
}

/** The embedder on the files' bytes (the predict path: decode, then embed), in stage-sized calls. */
async function embedBytes(embedder: AudioEmbedder, bytes: readonly Uint8Array[]): Promise<Features> {
  const d = embedder.spec.dim;
  const X = new Float32Array(bytes.length * d);
  for (let s = 0; s < bytes.length; s += DEFAULT_BATCH_SIZE) {
    const chunk = bytes.slice(s, s + DEFAULT_BATCH_SIZE).map((audio) => ({ audio }));
    X.set(await embedder.embed(chunk), s * d);
  }
  return { name: embedder.spec.id, X, d };
}

/** The baseline: per clip, mean ⊕ std over time of the backbone's 32 log-mel bins (64-d). */
async function logMelFeatures(embedder: AudioEmbedder, samples: readonly Float32Array[]): Promise<Features> {
  const bins = 32;
  const X = new Float32Array(samples.length * 2 * bins);
  for (const [i, clip] of samples.entries()) {
    const { mel, frames } = await embedder.melFrames(clip);
    for (let j = 0; j < bins; j++) {
      let sum = 0;
      let sq = 0;
      for (let t = 0; t < frames; t++) sum += mel[t * bins + j]!;
      const mean = sum / frames;
      for (let t = 0; t < frames; t++) sq += (mel[t * bins + j]! - mean) ** 2;
      X[i * 2 * bins + j] = mean;
      X[i * 2 * bins + bins + j] = Math.sqrt(sq / frames);
    }
  }
  return { name: "log-mel mean ⊕ std", X, d: 2 * bins };
}

async function featureSets(embedders: AudioEmbedder[], loaded: Loaded): Promise<Features[]> {
  const out = [await logMelFeatures(embedders[0]!, loaded.samples)];
  for (const e of embedders) {
    const t0 = performance.now();
    out.push(await embedBytes(e, loaded.bytes));
    note(`  ${e.spec.id}: ${loaded.bytes.length} clips embedded in ${fmt(secs(t0), 1)} s`);
  }
  return out;
}

// ---------------------------------------------------------------- heads

function rows(X: Float32Array, d: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) out.set(X.subarray(idx[i]! * d, (idx[i]! + 1) * d), i * d);
  return out;
}

/**
 * Predicted classes of `test` rows by a `type` head (default parameters) fit on `train` rows. The
 * log-mel features are standardized with the training rows' statistics first (the embeddings go
 * in as the platform stores them).
 */
async function predictRows(
  type: "logreg" | "centroid",
  f: Features,
  y: Int32Array,
  k: number,
  train: ArrayLike<number>,
  test: ArrayLike<number>,
): Promise<Int32Array> {
  let Xtr = rows(f.X, f.d, train);
  let Xte = rows(f.X, f.d, test);
  if (f.name.startsWith("log-mel")) {
    const { mean, scale } = standardizationStats(Xtr, train.length, f.d);
    const z = (X: Float32Array) => X.map((v, i) => (v - mean[i % f.d]!) / scale[i % f.d]!);
    Xtr = z(Xtr);
    Xte = z(Xte);
  }
  const kind = headKind(type);
  const ytr = Int32Array.from(train, (i) => y[i]!);
  const params = kind.resolveParams({}, train.length, f.d);
  const model = await kind.fit(Xtr, train.length, f.d, { task: "multiclass", y: ytr, k }, params, {
    seed: 0,
  });
  return argmaxRows(await kind.predict(model, Xte, test.length), test.length, k);
}

/** `per` random rows of each class among `pool`, drawn with `seed`. */
function fewShot(pool: ArrayLike<number>, y: Int32Array, k: number, per: number, seed: number): number[] {
  const rand = mulberry32(seed);
  const byClass: number[][] = Array.from({ length: k }, () => []);
  for (const i of Array.from(pool)) byClass[y[i]!]!.push(i);
  return byClass.flatMap((idx, c) => {
    if (idx.length < per)
      throw new ValidationError(`${per}-shot: class ${c} has ${idx.length} training rows`);
    shuffleInPlace(idx, rand);
    return idx.slice(0, per);
  });
}

interface Score {
  correct: number;
  total: number;
  /** Correct and total per class, for balanced accuracy. */
  perClass: Array<[number, number]>;
}

function tally(score: Score, pred: Int32Array, y: Int32Array, test: ArrayLike<number>) {
  for (let i = 0; i < test.length; i++) {
    const c = y[test[i]!]!;
    const right = pred[i] === c ? 1 : 0;
    score.correct += right;
    score.total++;
    score.perClass[c]![0] += right;
    score.perClass[c]![1]++;
  }
}

const newScore = (k: number): Score => ({
  correct: 0,
  total: 0,
  perClass: Array.from({ length: k }, () => [0, 0] as [number, number]),
});
const accuracy = (s: Score) => s.correct / s.total;
const balanced = (s: Score) => meanSd(s.perClass.filter(([, n]) => n > 0).map(([r, n]) => r / n)).mean;

// ---------------------------------------------------------------- 1. keywords, split by voice

/** Voice → fold: voices shuffled (seed 0) and dealt round-robin, so accents and pitches mix. */
function voiceFolds(voices: number, folds: number): Int32Array {
  const order = Array.from({ length: voices }, (_, i) => i);
  shuffleInPlace(order, mulberry32(0));
  const out = new Int32Array(voices);
  order.forEach((v, j) => {
    out[v] = j % folds;
  });
  return out;
}

interface KeywordResult {
  features: string;
  dim: number;
  logreg: number;
  centroid: number;
  shotLogreg: number[];
  shotCentroid: number[];
}

/**
 * Each word placed at a random offset (seed 0) in `seconds` of quiet white noise (sd 0.003, about
 * −50 dBFS), as a word sits in a fixed-length recording: most windows then hold no speech.
 */
function padInNoise(samples: readonly Float32Array[], seconds: number): Float32Array[] {
  const rand = mulberry32(0);
  return samples.map((clip) => {
    const out = new Float32Array(Math.max(clip.length, Math.round(seconds * RATE)));
    for (let i = 0; i < out.length; i++) out[i] = 0.003 * gaussian(rand);
    const at = Math.floor(rand() * (out.length - clip.length + 1));
    for (let i = 0; i < clip.length; i++) out[at + i] += clip[i]!;
    return out;
  });
}

/** The embedder on decoded samples, a micro-batch at a time. */
async function embedDecoded(embedder: AudioEmbedder, samples: readonly Float32Array[]): Promise<Features> {
  const d = embedder.spec.dim;
  const X = new Float32Array(samples.length * d);
  for (let s = 0; s < samples.length; s += MICRO_BATCH) {
    X.set(await embedder.embedSamples(samples.slice(s, s + MICRO_BATCH)), s * d);
  }
  return { name: embedder.spec.id, X, d };
}

/** Every feature set scored with voices held out: all training voices, and `SHOTS` per word. */
async function voiceHeldOut(sets: Features[], y: Int32Array, foldOf: Int32Array): Promise<KeywordResult[]> {
  const k = KEYWORDS.length;
  const results: KeywordResult[] = [];
  for (const f of sets) {
    const full = { logreg: newScore(k), centroid: newScore(k) };
    const shots = { logreg: [] as number[], centroid: [] as number[] };
    for (let seed = 0; seed < SEEDS; seed++) {
      const s = { logreg: newScore(k), centroid: newScore(k) };
      for (let fold = 0; fold < VOICE_FOLDS; fold++) {
        const { train, test } = foldIndices(foldOf, fold);
        const pick = fewShot(train, y, k, SHOTS, 1000 * fold + seed);
        for (const type of ["logreg", "centroid"] as const) {
          if (seed === 0) tally(full[type], await predictRows(type, f, y, k, train, test), y, test);
          tally(s[type], await predictRows(type, f, y, k, pick, test), y, test);
        }
      }
      shots.logreg.push(accuracy(s.logreg));
      shots.centroid.push(accuracy(s.centroid));
    }
    const r = {
      features: f.name,
      dim: f.d,
      logreg: accuracy(full.logreg),
      centroid: accuracy(full.centroid),
      shotLogreg: shots.logreg,
      shotCentroid: shots.centroid,
    };
    note(
      `  ${f.name}: logreg ${pct(r.logreg)}%, centroid ${pct(r.centroid)}%, ${SHOTS}-shot ${pm(r.shotLogreg)} / ${pm(r.shotCentroid)}`,
    );
    results.push(r);
  }
  return results;
}

async function keywordBench(embedders: AudioEmbedder[]) {
  const clips = await keywordClips(STORE, note);
  const loaded = await loadClips(clips);
  note(`keywords: ${clips.length} clips, ${fmt(median(loaded.seconds), 2)} s median`);
  const y = Int32Array.from(clips, (c) => c.label);
  const foldOfVoice = voiceFolds(KEYWORD_VOICES.length, VOICE_FOLDS);
  const foldOf = Int32Array.from(clips, (c) => foldOfVoice[c.group]!);
  const plain = await voiceHeldOut(await featureSets(embedders, loaded), y, foldOf);
  note(`keywords padded to ${PAD_SECONDS} s in noise:`);
  const padded = padInNoise(loaded.samples, PAD_SECONDS);
  const sets = [await logMelFeatures(embedders[0]!, padded)];
  for (const e of embedders) sets.push(await embedDecoded(e, padded));
  const inNoise = await voiceHeldOut(sets, y, foldOf);
  return { clips: clips.length, medianSeconds: median(loaded.seconds), results: plain, padded: inNoise };
}

// ---------------------------------------------------------------- 2. sonic-pi groups, cross-validated

async function sonicBench(embedders: AudioEmbedder[]) {
  const dir = await sonicPiDir(args["sonic-pi"]);
  const { groups, clips } = await sonicPiClips(dir);
  const loaded = await loadClips(clips);
  const maxSeconds =
    embedders[0]!.spec.preprocessing.type === "audio" ? embedders[0]!.spec.preprocessing.maxSeconds : 0;
  const refused = loaded.seconds.filter((s) => s > (maxSeconds ?? Infinity)).length;
  const y = Int32Array.from(clips, (c) => c.label);
  const k = groups.length;
  const sizes = groups.map((_, c) => y.filter((v) => v === c).length);
  note(
    `sonic-pi: ${clips.length} clips in ${k} groups, ${fmt(median(loaded.seconds), 2)} s median, ${fmt(Math.max(...loaded.seconds), 1)} s max`,
  );
  const sets = await featureSets(embedders, loaded);
  const results = [];
  for (const f of sets) {
    const acc = { logreg: [] as number[], centroid: [] as number[] };
    const bal = { logreg: [] as number[], centroid: [] as number[] };
    for (let rep = 0; rep < CV_REPEATS; rep++) {
      const foldOf = stratifiedKFold(y, k, FOLDS, rep);
      const s = { logreg: newScore(k), centroid: newScore(k) };
      for (let fold = 0; fold < FOLDS; fold++) {
        const { train, test } = foldIndices(foldOf, fold);
        for (const type of ["logreg", "centroid"] as const) {
          tally(s[type], await predictRows(type, f, y, k, train, test), y, test);
        }
      }
      for (const type of ["logreg", "centroid"] as const) {
        acc[type].push(accuracy(s[type]));
        bal[type].push(balanced(s[type]));
      }
    }
    note(`  ${f.name}: logreg ${pm(acc.logreg)}%, centroid ${pm(acc.centroid)}%`);
    results.push({ features: f.name, dim: f.d, accuracy: acc, balanced: bal });
  }
  return {
    dir,
    clips: clips.length,
    groups: groups.map((g, c) => ({ group: g, clips: sizes[c]! })),
    medianSeconds: median(loaded.seconds),
    maxSeconds: Math.max(...loaded.seconds),
    refused,
    results,
  };
}

// ---------------------------------------------------------------- 3. throughput

/** What raw runs feed the two models: per micro-batch, the scaled clips and the window batches. */
async function rawInputs(embedder: AudioEmbedder, samples: readonly Float32Array[]) {
  const pre = embedder.spec.preprocessing;
  if (pre.type !== "audio") throw new Error(`${embedder.spec.id} is not an audio backbone`);
  const size = pre.window * pre.melBins;
  const batches = [];
  for (let s = 0; s < samples.length; s += MICRO_BATCH) {
    const chunk = samples.slice(s, s + MICRO_BATCH);
    const clips = chunk.map((c) => scaledClip(c, pre.sampleScale, pre.minSamples));
    const mels = [];
    for (const c of chunk) mels.push(await embedder.melFrames(c));
    const w = { window: pre.window, stride: pre.stride, scale: pre.melScale, offset: pre.melOffset };
    const counts = mels.map((m) => windowStarts(m.frames, pre.window, pre.stride).length);
    const total = counts.reduce((a, b) => a + b, 0);
    const windows = new Float32Array(total * size);
    let at = 0;
    for (const m of mels) at += writeWindows(m.mel, m.frames, pre.melBins, w, windows, at * size);
    batches.push({ clips, windows, total, counts });
  }
  return { pre, batches };
}

async function sessions(embedder: AudioEmbedder, modelsDir: string) {
  const spec = embedder.spec;
  const pre = spec.preprocessing;
  if (pre.type !== "audio") throw new Error(`${spec.id} is not an audio backbone`);
  // The keys the embedder opened them under: these are its very sessions.
  const dir = join(modelsDir, spec.id);
  const melKey = spec.assetSha256[pre.melModel] ?? `${spec.sha256}:${pre.melModel}`;
  return {
    mel: await getSession(join(dir, pre.melModel), melKey),
    embedding: await getSession(join(dir, spec.model), spec.sha256),
  };
}

async function rawRun(
  s: Awaited<ReturnType<typeof sessions>>,
  input: Awaited<ReturnType<typeof rawInputs>>,
): Promise<number> {
  const { pre, batches } = input;
  const size = pre.window * pre.melBins;
  const t0 = performance.now();
  for (const b of batches) {
    for (const clip of b.clips) {
      const out = await s.mel.run({ [pre.melInput]: new Tensor("float32", clip, [1, clip.length]) });
      for (const t of Object.values(out)) t.dispose?.();
    }
    for (let at = 0; at < b.total; at += MAX_WINDOWS) {
      const n = Math.min(MAX_WINDOWS, b.total - at);
      const x = new Tensor("float32", b.windows.subarray(at * size, (at + n) * size), [
        n,
        pre.window,
        pre.melBins,
        1,
      ]);
      const out = await s.embedding.run({ [pre.input]: x });
      for (const t of Object.values(out)) t.dispose?.();
    }
  }
  return secs(t0);
}

interface ThroughputSet {
  name: string;
  loaded: Loaded;
}

async function throughputOf(embedder: AudioEmbedder, set: ThroughputSet) {
  const { bytes, samples, seconds } = set.loaded;
  const raw = await rawInputs(embedder, samples);
  const s = await sessions(embedder, String(args["models-dir"]));
  const windows = raw.batches.reduce((a, b) => a + b.total, 0);
  const times = { embed: [] as number[], samples: [] as number[], raw: [] as number[] };
  await rawRun(s, raw); // warm-up
  for (let r = 0; r < REPS; r++) {
    let t0 = performance.now();
    await embedBytes(embedder, bytes);
    times.embed.push(secs(t0));
    t0 = performance.now();
    for (let i = 0; i < samples.length; i += MICRO_BATCH)
      await embedder.embedSamples(samples.slice(i, i + MICRO_BATCH));
    times.samples.push(secs(t0));
    times.raw.push(await rawRun(s, raw));
    note(
      `  ${set.name} rep ${r + 1}: embed ${fmt(times.embed[r]!)} s, embedSamples ${fmt(times.samples[r]!)} s, raw ${fmt(times.raw[r]!)} s`,
    );
  }
  const n = bytes.length;
  return {
    set: set.name,
    clips: n,
    windows,
    audioSeconds: seconds.reduce((a, b) => a + b, 0),
    clipsPerSec: {
      embed: n / median(times.embed),
      samples: n / median(times.samples),
      raw: n / median(times.raw),
    },
    seconds: times,
  };
}

/** Milliseconds per clip to decode each file set (median over reps of the whole set's time / n). */
async function decodeTimes(sets: Array<{ format: string; paths: string[] }>) {
  const loaded = await Promise.all(
    sets.map(async (s) => ({ ...s, bytes: await Promise.all(s.paths.map((p) => readFile(p))) })),
  );
  const times = new Map<string, number[]>(sets.map((s) => [s.format, []]));
  // A file the decoder refuses is timed all the same (it was decoded to find out) and counted.
  const refused = new Map<string, Map<string, number>>(sets.map((s) => [s.format, new Map()]));
  for (let r = 0; r < REPS; r++) {
    for (const s of loaded) {
      const t0 = performance.now();
      for (const b of s.bytes) {
        await decodeAudio(b, { sampleRate: RATE }).catch((err) => {
          if (!(err instanceof AudioDecodeError)) throw err;
          const why = refused.get(s.format)!;
          const key = err.message.replace(/[\d.]+ s/g, "… s");
          if (r === 0) why.set(key, (why.get(key) ?? 0) + 1);
        });
      }
      times.get(s.format)!.push((performance.now() - t0) / s.bytes.length);
    }
  }
  return loaded.map((s) => ({
    format: s.format,
    clips: s.bytes.length,
    refused: [...refused.get(s.format)!.values()].reduce((a, b) => a + b, 0),
    refusedWhy: [...refused.get(s.format)!.keys()],
    kiB: s.bytes.reduce((a, b) => a + b.length, 0) / s.bytes.length / 1024,
    msPerClip: median(times.get(s.format)!),
    msPerClipBest: Math.min(...times.get(s.format)!),
    ms: times.get(s.format)!,
  }));
}

async function throughputBench(embedder: AudioEmbedder) {
  const clips = await keywordClips(STORE, note);
  const sonic = await sonicPiClips(await sonicPiDir(args["sonic-pi"]));
  const formats = [{ format: "WAV (keywords, 22.05 kHz 16-bit mono)", paths: clips.map((c) => c.path) }];
  for (const f of ["flac", "mp3", "ogg"] as const) {
    formats.push({
      format: `${f === "ogg" ? "Ogg Vorbis" : f.toUpperCase()} (keywords, sox defaults)`,
      paths: await convertedClips(STORE, clips, f),
    });
  }
  formats.push({ format: "FLAC (sonic-pi, 44.1 kHz)", paths: sonic.clips.map((c) => c.path) });
  note("decode times …");
  const decode = await decodeTimes(formats);
  const sets = [
    { name: "keywords (WAV)", loaded: await loadClips(clips) },
    { name: "sonic-pi (FLAC)", loaded: await loadClips(sonic.clips) },
  ];
  const runs = [];
  for (const set of sets) runs.push(await throughputOf(embedder, set));
  return { backbone: embedder.spec.id, decode, runs };
}

// ---------------------------------------------------------------- report

function printKeywords(k: Awaited<ReturnType<typeof keywordBench>>) {
  const perFold = KEYWORD_VOICES.length / VOICE_FOLDS;
  console.log(
    `\nKeywords: ${KEYWORDS.length} words × ${KEYWORD_VOICES.length} espeak-ng voices × ${KEYWORD_SPEEDS.length} speeds = ${k.clips} clips (median ${fmt(k.medianSeconds)} s); ${VOICE_FOLDS} folds of ${perFold} voices, every clip scored by heads that never heard its voice.\n`,
  );
  console.log(
    `| features | dim | clips | logreg, all training voices | centroid, all training voices | logreg, ${SHOTS} per word | centroid, ${SHOTS} per word |`,
  );
  console.log("|---|---:|---|---:|---:|---:|---:|");
  const row = (r: KeywordResult, how: string) =>
    console.log(
      `| ${r.features} | ${r.dim} | ${how} | ${pct(r.logreg)} | ${pct(r.centroid)} | ${pm(r.shotLogreg)} | ${pm(r.shotCentroid)} |`,
    );
  for (const r of k.results) row(r, "as synthesized");
  for (const r of k.padded) row(r, `in ${PAD_SECONDS} s of noise`);
  console.log(
    `\n(accuracy %, ${KEYWORDS.length} classes, chance 10%; ${SHOTS}-shot: mean ± sd over ${SEEDS} draws per fold)`,
  );
}

function printSonic(s: Awaited<ReturnType<typeof sonicBench>>) {
  console.log(
    `\nsonic-pi: ${s.clips} FLAC in ${s.groups.length} groups (${s.groups.map((g) => `${g.group} ${g.clips}`).join(", ")}); median ${fmt(s.medianSeconds)} s, longest ${fmt(s.maxSeconds, 1)} s, ${s.refused} over the backbone's cap; stratified ${FOLDS}-fold CV × ${CV_REPEATS} fold seeds.\n`,
  );
  console.log(
    "| features | dim | logreg accuracy | logreg balanced | centroid accuracy | centroid balanced |",
  );
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of s.results) {
    console.log(
      `| ${r.features} | ${r.dim} | ${pm(r.accuracy.logreg)} | ${pm(r.balanced.logreg)} | ${pm(r.accuracy.centroid)} | ${pm(r.balanced.centroid)} |`,
    );
  }
  console.log(
    `\n(%, mean ± sd over the ${CV_REPEATS} fold seeds; chance ${pct(1 / s.groups.length)}% balanced)`,
  );
}

function printThroughput(t: Awaited<ReturnType<typeof throughputBench>>) {
  console.log(
    `\nThroughput (${t.backbone}, one thread of calls; clips/s: median of ${REPS} reps (best rep)):\n`,
  );
  console.log(
    "| clips | windows | audio s | embed (bytes) clips/s | embedSamples clips/s | raw session.run clips/s | embed / raw (medians) |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|");
  for (const r of t.runs) {
    const c = r.clipsPerSec;
    // The best rep next to the median: on a shared machine the median carries other people's load.
    const cell = (k: keyof typeof r.seconds) =>
      `${fmt(c[k], 1)} (${fmt(r.clips / Math.min(...r.seconds[k]), 1)})`;
    console.log(
      `| ${r.set}, ${r.clips} | ${r.windows} | ${fmt(r.audioSeconds, 0)} | ${cell("embed")} | ${cell("samples")} | ${cell("raw")} | ${fmt(c.embed / c.raw)} |`,
    );
  }
  console.log(
    "\n| format | clips | KiB per clip | decode ms per clip, median (best), to 16 kHz mono | refused |",
  );
  console.log("|---|---:|---:|---:|---:|");
  for (const d of t.decode) {
    console.log(
      `| ${d.format} | ${d.clips} | ${fmt(d.kiB, 1)} | ${fmt(d.msPerClip)} (${fmt(d.msPerClipBest)}) | ${d.refused} |`,
    );
  }
  for (const d of t.decode) {
    if (d.refused > 0) console.log(`\n${d.format}, refused: ${d.refusedWhy.join("; ")}`);
  }
}

const command = [
  "npm run bench:audio",
  ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : []),
].join(" ");
const m = await machine();
const machineLine = `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, onnxruntime ${m.onnxruntime}`;
console.log(`machine: ${machineLine}`);
console.log(`command: ${command}`);
const modelsDir = String(args["models-dir"]);
const embedders = [
  (await builtInEmbedder(SPEECH_ID, modelsDir)) as AudioEmbedder,
  (await builtInEmbedder(SPEECH_MEANMAX_ID, modelsDir)) as AudioEmbedder,
];
const out: Record<string, unknown> = { machine: m, command };
if (SECTIONS.has("keywords")) {
  out.keywords = await keywordBench(embedders);
  printKeywords(out.keywords as Awaited<ReturnType<typeof keywordBench>>);
}
if (SECTIONS.has("sonic")) {
  out.sonic = await sonicBench(embedders);
  printSonic(out.sonic as Awaited<ReturnType<typeof sonicBench>>);
}
if (SECTIONS.has("throughput")) {
  out.throughput = await throughputBench(embedders[1]!);
  printThroughput(out.throughput as Awaited<ReturnType<typeof throughputBench>>);
}
console.log(`\n${JSON.stringify(out)}`);
