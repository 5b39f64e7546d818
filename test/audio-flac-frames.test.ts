/**
 * FLAC frame splitting (shared/audio/flac-frames.ts) on streams built byte by byte: constant
 * subframes, so every field and both CRCs are chosen here. The case that matters: a last frame
 * whose CRC-16 ends in 0x00 — the CRC is then already 0 one byte early, followed by a zero byte
 * that looks like padding, and the frame must not be cut there (2 of 480 espeak-ng FLACs were).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeAudio } from "../shared/audio/decode.ts";
import { splitFlacFrames } from "../shared/audio/flac-frames.ts";

function crc8(bytes: readonly number[]): number {
  let c = 0;
  for (const v of bytes) {
    c ^= v;
    for (let k = 0; k < 8; k++) c = c & 0x80 ? ((c << 1) ^ 0x07) & 0xff : (c << 1) & 0xff;
  }
  return c;
}

function crc16(bytes: readonly number[]): number {
  let c = 0;
  for (const v of bytes) {
    c ^= v << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x8005) & 0xffff : (c << 1) & 0xffff;
  }
  return c;
}

/** One mono 16-bit frame of `block` samples all equal to `value` (frame numbers below 128). */
function constantFrame(index: number, block: number, value: number): number[] {
  const explicit = block !== 4096; // code 12 is 4096; others as code 7, a 16-bit block size − 1
  // Sample rate code 5 (16 kHz) in the header itself: the decoder is fed frames, not STREAMINFO.
  const header = [0xff, 0xf8, ((explicit ? 7 : 12) << 4) | 5, (0 << 4) | (4 << 1), index];
  if (explicit) header.push((block - 1) >> 8, (block - 1) & 0xff);
  header.push(crc8(header));
  const frame = [...header, 0x00, (value >> 8) & 0xff, value & 0xff];
  const crc = crc16(frame);
  return [...frame, crc >> 8, crc & 0xff];
}

function flacStream(frames: number[][], totalSamples: number, trailer: number[] = []): Uint8Array {
  const info = new Uint8Array(34);
  const view = new DataView(info.buffer);
  view.setUint16(0, 4096);
  view.setUint16(2, 4096);
  // sample rate 16000 (20 bits), channels − 1 = 0 (3 bits), bits − 1 = 15 (5 bits), total (36 bits)
  view.setUint32(10, (16000 << 12) | (0 << 9) | (15 << 4) | Math.floor(totalSamples / 2 ** 32));
  view.setUint32(14, totalSamples >>> 0);
  const head = [0x66, 0x4c, 0x61, 0x43, 0x80, 0, 0, 34, ...info];
  return Uint8Array.from([...head, ...frames.flat(), ...trailer]);
}

/** A last frame of `block` samples whose CRC-16 ends in 0x00 (found by trying values). */
function lastFrameEndingInZero(index: number, block: number): { frame: number[]; value: number } {
  for (let value = 1; value < 30000; value++) {
    const frame = constantFrame(index, block, value);
    if (frame.at(-1) === 0) return { frame, value };
  }
  throw new Error("no value found");
}

test("a last frame whose CRC ends in 0x00 is kept whole, and decodes to every sample", async () => {
  const { frame, value } = lastFrameEndingInZero(2, 1000);
  const frames = [constantFrame(0, 4096, 1000), constantFrame(1, 4096, -1000 & 0xffff), frame];
  const bytes = flacStream(frames, 4096 * 2 + 1000);
  const split = splitFlacFrames(bytes);
  assert.equal(split.damagedAt, undefined);
  assert.deepEqual(
    split.frames.map((f) => f.length),
    frames.map((f) => f.length),
  );
  const decoded = await decodeAudio(bytes, { sampleRate: 16000 });
  assert.equal(decoded.samples.length, 9192);
  assert.ok(Math.abs(decoded.samples[9191] - value / 32768) < 1e-6);
  assert.ok(Math.abs(decoded.samples[4096] + 1000 / 32768) < 1e-6);
});

test("a tag or zero padding after the last frame is left out; a cut frame is damage", () => {
  const frames = [constantFrame(0, 4096, 7), constantFrame(1, 500, 9)];
  const tagged = flacStream(frames, 4596, [...Buffer.from("TAG"), ...new Array(125).fill(0x20)]);
  assert.deepEqual(
    splitFlacFrames(tagged).frames.map((f) => f.length),
    frames.map((f) => f.length),
  );
  const padded = flacStream(frames, 4596, new Array(16).fill(0));
  assert.equal(splitFlacFrames(padded).frames.at(-1)?.length, frames[1].length);
  const cut = flacStream(frames, 4596).subarray(0, -3);
  assert.equal(splitFlacFrames(cut).frames.length, 1);
  assert.ok(splitFlacFrames(cut).damagedAt !== undefined);
});
