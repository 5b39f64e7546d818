/**
 * The pure steps of an `audio` backbone between its two models: padding a short clip, cutting mel
 * frames into overlapping windows, and pooling a clip's window vectors into one. No onnxruntime
 * here, so the steps are tested (and reused by the reference script) on plain arrays.
 */

/** `samples` × `scale`, padded with zeros on both sides to at least `minSamples`. */
export function scaledClip(samples: Float32Array, scale: number, minSamples: number): Float32Array {
  const n = Math.max(samples.length, minSamples);
  const out = new Float32Array(n);
  const before = Math.floor((n - samples.length) / 2);
  for (let i = 0; i < samples.length; i++) out[before + i] = samples[i] * scale;
  return out;
}

/** Start frames of every whole window: 0, stride, 2·stride, … while a window fits in `frames`. */
export function windowStarts(frames: number, window: number, stride: number): number[] {
  const starts: number[] = [];
  for (let s = 0; s + window <= frames; s += stride) starts.push(s);
  return starts;
}

/**
 * Copies windows of `mel` (`frames × bins`, row-major) into `out` at `outOffset` (in floats), each
 * `window × bins` values of `mel × scale + offset`; returns the number of windows written.
 */
export function writeWindows(
  mel: Float32Array,
  frames: number,
  bins: number,
  w: { window: number; stride: number; scale: number; offset: number },
  out: Float32Array,
  outOffset: number,
): number {
  const starts = windowStarts(frames, w.window, w.stride);
  const size = w.window * bins;
  starts.forEach((start, k) => {
    const from = start * bins;
    const to = outOffset + k * size;
    for (let j = 0; j < size; j++) out[to + j] = mel[from + j] * w.scale + w.offset;
  });
  return starts.length;
}

/**
 * One vector per clip from its windows' vectors (`windows`: `Σ counts × dim`, clip by clip):
 * `mean`, or `mean-max` (the mean, then the per-dimension max: `2·dim`). A clip with no window gets
 * zeros (the embedder pads clips so that does not happen).
 */
export function poolWindows(
  windows: Float32Array,
  counts: readonly number[],
  dim: number,
  pooling: "mean" | "mean-max",
): Float32Array {
  const width = pooling === "mean-max" ? 2 * dim : dim;
  const out = new Float32Array(counts.length * width);
  let row = 0;
  counts.forEach((count, c) => {
    const base = c * width;
    for (let j = 0; j < dim; j++) {
      let sum = 0;
      let max = Number.NEGATIVE_INFINITY;
      for (let r = 0; r < count; r++) {
        const v = windows[(row + r) * dim + j];
        sum += v;
        if (v > max) max = v;
      }
      out[base + j] = count > 0 ? sum / count : 0;
      if (width > dim) out[base + dim + j] = count > 0 ? max : 0;
    }
    row += count;
  });
  return out;
}
