import assert from "node:assert/strict";
import { test } from "node:test";
import { poolWindows, scaledClip, windowStarts, writeWindows } from "../shared/backbone/audio-windows.ts";

test("a short clip is scaled and centred in silence; a long one only scaled", () => {
  assert.deepEqual([...scaledClip(Float32Array.of(0.5, -0.25), 4, 6)], [0, 0, 2, -1, 0, 0]);
  assert.deepEqual([...scaledClip(Float32Array.of(0.5, -0.25, 1), 2, 2)], [1, -0.5, 2]);
});

test("windows start every stride frames while a whole window fits", () => {
  assert.deepEqual(windowStarts(97, 76, 8), [0, 8, 16]);
  assert.deepEqual(windowStarts(76, 76, 8), [0]);
  assert.deepEqual(windowStarts(75, 76, 8), []);
});

test("writeWindows copies overlapping windows, scaled and offset, at the given position", () => {
  // 4 frames × 2 bins: frame f holds [f, 10 + f].
  const mel = Float32Array.of(0, 10, 1, 11, 2, 12, 3, 13);
  const out = new Float32Array(1 + 3 * 4).fill(-1);
  const n = writeWindows(mel, 4, 2, { window: 2, stride: 1, scale: 2, offset: 1 }, out, 1);
  assert.equal(n, 3);
  assert.deepEqual([...out], [-1, 1, 21, 3, 23, 3, 23, 5, 25, 5, 25, 7, 27]);
});

test("pooling: mean, or mean then max, per clip in order; a clip without windows is zeros", () => {
  // Clip 0: windows [1, 4], [3, 2]; clip 1: none; clip 2: [5, -1].
  const windows = Float32Array.of(1, 4, 3, 2, 5, -1);
  assert.deepEqual([...poolWindows(windows, [2, 0, 1], 2, "mean")], [2, 3, 0, 0, 5, -1]);
  assert.deepEqual(
    [...poolWindows(windows, [2, 0, 1], 2, "mean-max")],
    [2, 3, 3, 4, 0, 0, 0, 0, 5, -1, 5, -1],
  );
});
