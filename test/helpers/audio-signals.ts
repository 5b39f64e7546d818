/**
 * Deterministic test sounds (mono float samples in [-1, 1]): the same arrays on every machine, so a
 * fixture computed once from them (scripts/audio-reference.ts) checks the embedder anywhere.
 */
import { mulberry32 } from "../../shared/learn/split.ts";

export interface TestSignal {
  name: string;
  seconds: number;
  /** Samples at `rate` Hz. */
  samples: (rate: number) => Float32Array;
}

/** A rising chirp, a vowel-like buzz with seeded noise, and two syllable-like bursts. */
export const TEST_SIGNALS: readonly TestSignal[] = [
  { name: "chirp", seconds: 1, samples: (rate) => chirp(rate, 1, 200, 3000) },
  { name: "buzz", seconds: 1.6, samples: (rate) => buzz(rate, 1.6, 140, 7) },
  { name: "bursts", seconds: 2.25, samples: (rate) => bursts(rate, 2.25) },
];

function chirp(rate: number, seconds: number, from: number, to: number): Float32Array {
  const n = Math.round(rate * seconds);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const phase = 2 * Math.PI * (from * t + ((to - from) * t * t) / (2 * seconds));
    out[i] = 0.3 * Math.sin(phase);
  }
  return out;
}

/** Harmonics of `f0` shaped by two formant-like peaks, plus seeded white noise. */
function buzz(rate: number, seconds: number, f0: number, seed: number): Float32Array {
  const n = Math.round(rate * seconds);
  const out = new Float32Array(n);
  const rand = mulberry32(seed);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    let v = 0;
    for (let h = 1; h * f0 < rate / 2 && h <= 30; h++) {
      const f = h * f0;
      const gain = Math.exp(-(((f - 700) / 250) ** 2)) + 0.6 * Math.exp(-(((f - 1200) / 300) ** 2));
      v += gain * Math.sin(2 * Math.PI * f * t);
    }
    const envelope = Math.min(1, t / 0.05, (seconds - t) / 0.05);
    out[i] = 0.15 * envelope * v + 0.01 * (rand() * 2 - 1);
  }
  return out;
}

function bursts(rate: number, seconds: number): Float32Array {
  const n = Math.round(rate * seconds);
  const out = new Float32Array(n);
  const rand = mulberry32(11);
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const a = Math.exp(-(((t - 0.6) / 0.15) ** 2));
    const b = Math.exp(-(((t - 1.5) / 0.2) ** 2));
    out[i] =
      0.25 * a * Math.sin(2 * Math.PI * 320 * t) + 0.2 * b * (rand() * 2 - 1) + 0.002 * (rand() * 2 - 1);
  }
  return out;
}
