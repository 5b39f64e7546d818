/**
 * Audio bytes → mono float samples at the model's sample rate.
 *
 * - `decodeAudio(bytes, { sampleRate, limits?, name? })` decodes WAV (8/16/24/32-bit integer,
 *   32/64-bit float, A-law, µ-law; WAVE_FORMAT_EXTENSIBLE; RIFF, RIFX, RF64), FLAC, MP3 (MPEG
 *   layer I–III, with or without an ID3 tag) and Ogg Vorbis, mixes the channels down to their
 *   mean and resamples to `sampleRate` with a sinc low-pass (resample.ts; not at all when the
 *   rates already match). Samples are float32, nominally in [-1, 1]: converted, never clipped.
 *   `seconds` is the source's duration; `originalSampleRate`/`originalChannels` the source's.
 * - The format is decided by magic bytes (`sniffAudio`) before any decoder runs, and each
 *   decoder only ever sees its own format; an Ogg stream must carry Vorbis.
 * - Every problem with the bytes is an `AudioDecodeError` (a `ValidationError`: HTTP 400, CLI
 *   exit 2) with a `reason`: `empty` (no bytes, or no samples), `too-large` (more bytes than
 *   `limits.maxBytes`), `too-long` (more than `limits.maxSeconds`: from the header before
 *   decoding where it says (WAV, FLAC, Ogg, MP3 with a Xing/Info tag), else as soon as decoding
 *   passes it), `unsupported-format` (AIFF, M4A, Opus… named in the message; a WAV codec other
 *   than PCM, float, A-law, µ-law; a source rate over 256× from `sampleRate`), `corrupt`
 *   (unreadable header, any decoder error, or fewer samples than the header declares, i.e. a
 *   truncated file: the audio is refused rather than embedded short; an MP3 without a length
 *   tag cannot tell, and decodes to what is there). Its `field` is
 *   `opts.name` (e.g. the row's file path) or `audio`. Bad options are plain `ValidationError`s.
 *
 * The decoders are WebAssembly (decoders.ts) and wavefile (wav.ts), imported on first use, so a
 * process that never sees audio never loads them. Decoding runs on the calling thread: the batch
 * stage spreads it over worker threads with decode-pool.ts.
 */
import { ValidationError } from "../errors.ts";
import { decodeStream, type StreamFormat } from "./decoders.ts";
import { resampleMono } from "./resample.ts";
import {
  type AudioFormat,
  type AudioHeader,
  audioStart,
  FORMAT_LABEL,
  flacHeader,
  mp3Header,
  oggHeader,
  sniffAudio,
} from "./sniff.ts";
import { readWav, type WavLayout, wavToMono } from "./wav.ts";

export { AUDIO_FORMATS, type AudioFormat, sniffAudio } from "./sniff.ts";

export type AudioDecodeReason = "empty" | "too-large" | "too-long" | "unsupported-format" | "corrupt";
export const AUDIO_DECODE_REASONS: readonly AudioDecodeReason[] = [
  "empty",
  "too-large",
  "too-long",
  "unsupported-format",
  "corrupt",
];

/** The bytes are not audio we can use. `reason` is stable; the message is for people. */
export class AudioDecodeError extends ValidationError {
  readonly reason: AudioDecodeReason;

  constructor(reason: AudioDecodeReason, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, { field: opts.field ?? "audio", details: { reason }, cause: opts.cause });
    this.reason = reason;
  }
}

export interface AudioLimits {
  /** Largest accepted input, in bytes. */
  maxBytes?: number;
  /** Longest accepted audio, in seconds (from the header where it says, else while decoding). */
  maxSeconds?: number;
}

/**
 * 50 MB holds 5 minutes of CD-quality stereo WAV, 27 minutes of 16 kHz 16-bit mono WAV and
 * hours of MP3; 10 minutes is far more than a clip to classify. These bound what one input may
 * cost to decode (10 minutes at 16 kHz is 38 MB of float32); how much of a clip a backbone
 * actually embeds is the backbone's own cap (its `maxSeconds`), decided there.
 */
export const DEFAULT_AUDIO_LIMITS: Required<AudioLimits> = {
  maxBytes: 50 * 1024 * 1024,
  maxSeconds: 600,
};

/** Highest target or source sample rate accepted (studio audio goes to 384 kHz). */
export const MAX_SAMPLE_RATE = 384_000;
/** libsamplerate converts by at most this factor either way (8 kHz ↔ 16 kHz is 2). */
const MAX_RATIO = 256;

export interface DecodeAudioOptions {
  /** The sample rate of `samples`, in Hz. */
  sampleRate: number;
  limits?: AudioLimits;
  /** What to call the input in errors (a row's file path): the error's `field`. */
  name?: string;
}

export interface DecodedAudio {
  /** Mono mixdown (the mean of the channels), nominally in [-1, 1], at `sampleRate`. */
  samples: Float32Array;
  sampleRate: number;
  format: AudioFormat;
  originalSampleRate: number;
  originalChannels: number;
  /** The source's duration in seconds. */
  seconds: number;
}

const ACCEPTED = "WAV, FLAC, MP3 or Ogg Vorbis";

type Fail = (reason: AudioDecodeReason, message: string, cause?: unknown) => AudioDecodeError;

/** Errors about the bytes name the input (`audio clips/1.wav: …`) and point at it. */
function failureFor(name: string | undefined): Fail {
  const field = name ?? "audio";
  const what = name === undefined ? "audio" : `audio ${name}`;
  return (reason, message, cause) => new AudioDecodeError(reason, `${what}: ${message}`, { field, cause });
}

/** Mono samples at the source's rate, before resampling. */
interface Pcm {
  mono: Float32Array;
  sampleRate: number;
  channels: number;
}

export async function decodeAudio(bytes: Uint8Array, opts: DecodeAudioOptions): Promise<DecodedAudio> {
  const limits = checkOptions(opts);
  const fail = failureFor(opts.name);
  const format = checkBytes(bytes, limits.maxBytes, fail);
  const pcm =
    format === "wav"
      ? await decodeWav(bytes, limits.maxSeconds, fail)
      : await decodeCompressed(format, bytes, limits.maxSeconds, fail);
  if (pcm.mono.length === 0) throw fail("empty", `the ${FORMAT_LABEL[format]} holds no audio samples`);
  if (!(pcm.sampleRate >= 1 && pcm.sampleRate <= MAX_SAMPLE_RATE)) {
    throw fail("corrupt", `sample rate ${pcm.sampleRate} Hz is outside 1–${MAX_SAMPLE_RATE}`);
  }
  if (pcm.sampleRate * MAX_RATIO < opts.sampleRate || pcm.sampleRate > opts.sampleRate * MAX_RATIO) {
    throw fail(
      "unsupported-format",
      `a sample rate of ${pcm.sampleRate} Hz is more than ${MAX_RATIO}× away from ${opts.sampleRate} Hz`,
    );
  }
  const samples = await resampleMono(pcm.mono, pcm.sampleRate, opts.sampleRate);
  if (samples.length === 0) throw fail("empty", `too short to resample to ${opts.sampleRate} Hz`);
  return {
    samples,
    sampleRate: opts.sampleRate,
    format,
    originalSampleRate: pcm.sampleRate,
    originalChannels: pcm.channels,
    seconds: pcm.mono.length / pcm.sampleRate,
  };
}

function checkOptions(opts: DecodeAudioOptions): Required<AudioLimits> {
  const { sampleRate } = opts;
  if (!Number.isInteger(sampleRate) || sampleRate < 1 || sampleRate > MAX_SAMPLE_RATE) {
    throw new ValidationError(
      `sampleRate must be an integer from 1 to ${MAX_SAMPLE_RATE}, got ${sampleRate}`,
      {
        field: "sampleRate",
      },
    );
  }
  const maxBytes = opts.limits?.maxBytes ?? DEFAULT_AUDIO_LIMITS.maxBytes;
  const maxSeconds = opts.limits?.maxSeconds ?? DEFAULT_AUDIO_LIMITS.maxSeconds;
  if (!Number.isInteger(maxBytes) || maxBytes < 1) {
    throw new ValidationError(`limits.maxBytes must be a positive integer, got ${maxBytes}`, {
      field: "limits.maxBytes",
    });
  }
  if (!(Number.isFinite(maxSeconds) && maxSeconds > 0)) {
    throw new ValidationError(`limits.maxSeconds must be a positive number, got ${maxSeconds}`, {
      field: "limits.maxSeconds",
    });
  }
  return { maxBytes, maxSeconds };
}

/** The checks that need no decoder: not empty, not too large, one of the accepted formats. */
function checkBytes(bytes: Uint8Array, maxBytes: number, fail: Fail): AudioFormat {
  if (bytes.length === 0) throw fail("empty", "file is empty");
  if (bytes.length > maxBytes) {
    throw fail("too-large", `${bytes.length} bytes is more than the limit of ${maxBytes}`);
  }
  const format = sniffAudio(bytes);
  if (typeof format !== "string") {
    throw fail(
      "unsupported-format",
      format.refused
        ? `${format.refused} is not supported (use ${ACCEPTED})`
        : `not a recognised audio file (use ${ACCEPTED})`,
    );
  }
  return format;
}

const secondsText = (s: number) => `${Math.round(s * 100) / 100} s`;

function checkDeclaredLength(
  frames: number | undefined,
  rate: number | undefined,
  maxSeconds: number,
  fail: Fail,
) {
  if (frames === undefined || !rate) return;
  const seconds = frames / rate;
  if (seconds > maxSeconds) {
    throw fail("too-long", `${secondsText(seconds)} of audio is more than the limit of ${maxSeconds} s`);
  }
}

/** Fewer frames than the header declares: the file was cut short (or damaged past resync). */
function checkComplete(decoded: number, header: AudioHeader, format: AudioFormat, fail: Fail) {
  if (header.cutShort)
    throw fail("corrupt", `truncated: the ${FORMAT_LABEL[format]} data ends inside a page`);
  if (header.frames === undefined || decoded + header.slack >= header.frames) return;
  const rate = header.sampleRate ?? 1;
  throw fail(
    "corrupt",
    `truncated: the ${FORMAT_LABEL[format]} header declares ${secondsText(header.frames / rate)}, only ${secondsText(decoded / rate)} decode`,
  );
}

async function decodeWav(bytes: Uint8Array, maxSeconds: number, fail: Fail): Promise<Pcm> {
  const layout: WavLayout | { kind: string; message: string; cause?: unknown } = await readWav(bytes);
  if ("kind" in layout) {
    throw fail(
      layout.kind === "unsupported" ? "unsupported-format" : "corrupt",
      layout.message,
      layout.cause,
    );
  }
  const present = Math.floor(layout.data.length / (layout.channels * layout.width));
  checkDeclaredLength(layout.declaredFrames ?? present, layout.sampleRate, maxSeconds, fail);
  const header = { frames: layout.declaredFrames, sampleRate: layout.sampleRate, slack: 0 };
  checkComplete(present, header, "wav", fail);
  return { mono: wavToMono(layout), sampleRate: layout.sampleRate, channels: layout.channels };
}

function headerOf(format: StreamFormat, bytes: Uint8Array, start: number): AudioHeader {
  if (format === "flac") return flacHeader(bytes, start);
  if (format === "mp3") return mp3Header(bytes, start);
  return oggHeader(bytes);
}

async function decodeCompressed(
  format: StreamFormat,
  bytes: Uint8Array,
  maxSeconds: number,
  fail: Fail,
): Promise<Pcm> {
  const start = audioStart(bytes);
  const header = headerOf(format, bytes, start);
  checkDeclaredLength(header.frames, header.sampleRate, maxSeconds, fail);
  const label = FORMAT_LABEL[format];
  let out: Awaited<ReturnType<typeof decodeStream>>;
  try {
    // mpg123 reads ID3 tags itself; libFLAC wants the stream from `fLaC` on.
    out = await decodeStream(format, format === "flac" ? bytes.subarray(start) : bytes, maxSeconds);
  } catch (cause) {
    throw fail("corrupt", `cannot decode the ${label} data: ${messageOf(cause)}`, cause);
  }
  if (out.overLimit) throw fail("too-long", `more than the limit of ${maxSeconds} s of audio`);
  if (out.errors.length) {
    const more = out.errors.length > 1 ? ` (and ${out.errors.length - 1} more)` : "";
    throw fail("corrupt", `cannot decode the ${label} data: ${out.errors[0]}${more}`);
  }
  if (out.brokenAt !== undefined) {
    const at = start + out.brokenAt;
    throw fail("corrupt", `truncated or damaged: no whole ${label} frame from byte ${at} on`);
  }
  checkComplete(
    out.mono.length,
    { ...header, sampleRate: out.sampleRate || header.sampleRate },
    format,
    fail,
  );
  return { mono: out.mono, sampleRate: out.sampleRate, channels: header.channels ?? out.channels };
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}
