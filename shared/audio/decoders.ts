/**
 * The WASM decoders (FLAC: libFLAC, MP3: mpg123, Ogg Vorbis: libvorbis, all by
 * wasm-audio-decoders), one instance per format per thread, created on the first file of that
 * format: a process that never sees audio never loads them. An instance decodes one stream at a
 * time (its state is the stream's), so calls queue per format, and each stream ends with the
 * decoder reset for the next one (Ogg's `flush()` resets it; FLAC and MP3 are reset explicitly),
 * also when decoding failed or stopped early.
 *
 * MP3 and Ogg are fed in chunks, FLAC in batches of whole frames (flac-frames.ts), and mixed down
 * to mono as they come, so a file is never held as
 * decoded multi-channel float, and decoding stops as soon as it passes the duration limit (a
 * 50 MB MP3 at a low bitrate is hours of audio).
 */

import { splitFlacFrames } from "./flac-frames.ts";

export type StreamFormat = "flac" | "mp3" | "ogg";

interface Decoded {
  channelData: Float32Array[];
  samplesDecoded: number;
  sampleRate: number;
  errors: { message: string }[];
}

interface StreamDecoder {
  decode(chunk: Uint8Array): Decoded | Promise<Decoded>;
  /** Whole frames, one libFLAC call each (FLAC). */
  decodeFrames?(frames: Uint8Array[]): Decoded | Promise<Decoded>;
  /** The rest of the stream, then a reset (FLAC, Ogg). */
  flush?(): Promise<Decoded>;
  reset(): Promise<void>;
}

export interface StreamResult {
  mono: Float32Array;
  /** 0 when nothing decoded. */
  sampleRate: number;
  channels: number;
  /** The decoders' error messages (they decode on through damage, leaving gaps). */
  errors: string[];
  /** Decoding stopped because the audio ran past `maxSeconds`. */
  overLimit: boolean;
  /** FLAC: the byte from which no whole frame follows (the file is cut short or damaged there). */
  brokenAt?: number;
}

const CHUNK = 256 * 1024;

async function createDecoder(format: StreamFormat): Promise<StreamDecoder> {
  let decoder: StreamDecoder & { ready: Promise<void> };
  if (format === "flac") {
    const { FLACDecoder } = await import("@wasm-audio-decoders/flac");
    decoder = new FLACDecoder();
  } else if (format === "mp3") {
    const { MPEGDecoder } = await import("mpg123-decoder");
    // Gapless: the encoder's delay and padding (from the LAME tag) are trimmed.
    decoder = new MPEGDecoder({ enableGapless: true });
  } else {
    const { OggVorbisDecoder } = await import("@wasm-audio-decoders/ogg-vorbis");
    decoder = new OggVorbisDecoder();
  }
  await decoder.ready;
  return decoder;
}

interface Slot {
  decoder: Promise<StreamDecoder>;
  queue: Promise<unknown>;
}
const slots = new Map<StreamFormat, Slot>();

/** Runs `fn` with this thread's decoder for `format`, after the calls queued before it. */
function withDecoder<T>(format: StreamFormat, fn: (d: StreamDecoder) => Promise<T>): Promise<T> {
  let slot = slots.get(format);
  if (!slot) {
    const decoder = createDecoder(format);
    // A failed WASM start is not cached: the next file tries again.
    decoder.catch(() => slots.delete(format));
    slot = { decoder, queue: Promise.resolve() };
    slots.set(format, slot);
  }
  const current = slot;
  const run = current.queue.then(async () => fn(await current.decoder));
  current.queue = run.catch(() => {
    // A decoder that threw (a WASM trap, a parser error) may be in any state: the next file of
    // this format gets a new one. Ordinary bad data does not throw: it comes back as errors.
    if (slots.get(format) === current) slots.delete(format);
  });
  return run;
}

/**
 * libFLAC and mpg123 print every decode error with console.error as well as returning it; the
 * errors are reported once, by the caller. Their decode runs synchronously inside the call (the
 * returned promise is already settled work), so console.error is only swapped for that span.
 */
function quietly<T>(fn: () => T): T {
  const original = console.error;
  console.error = () => undefined;
  try {
    return fn();
  } finally {
    console.error = original;
  }
}

class MonoSink {
  readonly parts: Float32Array[] = [];
  frames = 0;
  sampleRate = 0;
  channels = 0;
  readonly errors: string[] = [];

  add(d: Decoded): void {
    for (const e of d.errors) this.errors.push(e.message);
    const n = d.samplesDecoded;
    if (!n || !d.channelData.length) return;
    if (!this.sampleRate) this.sampleRate = d.sampleRate;
    this.channels = Math.max(this.channels, d.channelData.length);
    const mono = new Float32Array(n);
    const chans = d.channelData;
    const inv = 1 / chans.length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < chans.length; c++) s += chans[c][i];
      mono[i] = s * inv;
    }
    this.parts.push(mono);
    this.frames += n;
  }

  concat(): Float32Array {
    const out = new Float32Array(this.frames);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

/** Decodes a whole FLAC, MP3 or Ogg Vorbis stream to mono, stopping past `maxSeconds`. */
export function decodeStream(
  format: StreamFormat,
  bytes: Uint8Array,
  maxSeconds: number,
): Promise<StreamResult> {
  return withDecoder(format, async (decoder) => {
    const sink = new MonoSink();
    const limit = () => sink.sampleRate > 0 && sink.frames > maxSeconds * sink.sampleRate;
    let flushed = false;
    let brokenAt: number | undefined;
    try {
      if (format === "flac") brokenAt = await feedFlacFrames(decoder, bytes, sink, limit);
      else flushed = await feedChunks(decoder, bytes, sink, limit);
    } finally {
      if (!flushed) await decoder.reset();
    }
    const { sampleRate, channels, errors } = sink;
    return { mono: sink.concat(), sampleRate, channels, errors, overLimit: limit(), brokenAt };
  });
}

/** MP3, Ogg: the bytes in chunks, then the decoder's flush (which resets it). True if flushed. */
async function feedChunks(decoder: StreamDecoder, bytes: Uint8Array, sink: MonoSink, limit: () => boolean) {
  for (let at = 0; at < bytes.length && !limit(); at += CHUNK) {
    const chunk = bytes.subarray(at, at + CHUNK);
    sink.add(await quietly(() => decoder.decode(chunk)));
  }
  if (limit() || !decoder.flush) return false;
  const rest = await quietly(() => decoder.flush!());
  sink.add(rest);
  return true;
}

/** FLAC: whole frames (flac-frames.ts), a batch of about CHUNK bytes at a time; where they stop. */
async function feedFlacFrames(
  decoder: StreamDecoder,
  bytes: Uint8Array,
  sink: MonoSink,
  limit: () => boolean,
) {
  const { frames, damagedAt } = splitFlacFrames(bytes);
  for (let i = 0; i < frames.length && !limit(); ) {
    const batch: Uint8Array[] = [];
    for (let size = 0; i < frames.length && size < CHUNK; i++) {
      batch.push(frames[i]);
      size += frames[i].length;
    }
    sink.add(await quietly(() => decoder.decodeFrames!(batch)));
  }
  return damagedAt;
}
