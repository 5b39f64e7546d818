/**
 * WAV → mono float samples. `wavefile` reads the container (RIFF, RIFX, RF64; the fmt and data
 * chunks wherever they are); the samples are converted here straight from the data chunk's bytes,
 * one pass into the mono mixdown, instead of through wavefile's generic unpacker (a Float64Array
 * per channel first: 8 bytes per sample, several times slower).
 */

/** wavefile (pure JS) is imported on the first WAV, like the WASM decoders. */
let wavefileModule: Promise<typeof import("wavefile")> | undefined;

export type WavProblem =
  | { kind: "unsupported"; message: string }
  | { kind: "corrupt"; message: string; cause?: unknown };

/** What the header says, checked: enough to refuse a file before converting any sample. */
export interface WavLayout {
  sampleRate: number;
  channels: number;
  /** Bytes per sample in the container (1–4 int, 4 or 8 float). */
  width: number;
  float: boolean;
  littleEndian: boolean;
  /** The data chunk's declared frames; undefined for the "unknown length" sentinels. */
  declaredFrames?: number;
  /** The data chunk's bytes actually present (possibly fewer than declared). */
  data: Uint8Array;
}

const PCM = 1;
const IEEE_FLOAT = 3;
const ALAW = 6;
const MULAW = 7;
const EXTENSIBLE = 0xfffe;

interface WavFmt {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  blockAlign: number;
  bitsPerSample: number;
  subformat?: number[];
}

/** Parses the container; a problem is returned rather than thrown so the caller names the input. */
export async function readWav(bytes: Uint8Array): Promise<WavLayout | WavProblem> {
  wavefileModule ??= import("wavefile");
  const { WaveFile } = await wavefileModule;
  const wav = new WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (cause) {
    return { kind: "corrupt", message: `cannot read the WAV header: ${(cause as Error).message}`, cause };
  }
  const fmt = wav.fmt as WavFmt;
  let codec = fmt.audioFormat === EXTENSIBLE ? (fmt.subformat?.[0] ?? 0) : fmt.audioFormat;
  if (codec === ALAW || codec === MULAW) {
    // G.711 telephony audio: wavefile expands it to 16-bit PCM.
    if (codec === ALAW) wav.fromALaw("16");
    else wav.fromMuLaw("16");
    codec = PCM;
  }
  const f = wav.fmt as WavFmt;
  const data = (wav.data as { samples: Uint8Array }).samples;
  const declared = (wav.data as { chunkSize: number }).chunkSize;
  return checkLayout(f, codec, data, declared, wav.container !== "RIFX");
}

function checkLayout(
  fmt: WavFmt,
  codec: number,
  data: Uint8Array,
  declared: number,
  littleEndian: boolean,
): WavLayout | WavProblem {
  if (codec !== PCM && codec !== IEEE_FLOAT) {
    const hex = `0x${codec.toString(16).padStart(4, "0")}`;
    return {
      kind: "unsupported",
      message: `WAV codec ${hex} is not supported (PCM, IEEE float, A-law and µ-law are)`,
    };
  }
  const channels = fmt.numChannels;
  if (
    !(channels >= 1) ||
    !(fmt.sampleRate >= 1) ||
    !(fmt.blockAlign >= 1) ||
    fmt.blockAlign % channels !== 0
  ) {
    return {
      kind: "corrupt",
      message: `WAV header declares ${channels} channels, ${fmt.sampleRate} Hz, ${fmt.blockAlign}-byte frames`,
    };
  }
  const width = fmt.blockAlign / channels;
  const float = codec === IEEE_FLOAT;
  if (float ? width !== 4 && width !== 8 : width > 4) {
    return {
      kind: "unsupported",
      message: `${width * 8}-bit ${float ? "float" : "integer"} WAV samples are not supported`,
    };
  }
  // 0 and 0xFFFFFFFF are what streaming writers (and RF64) leave when they cannot seek back.
  const known = declared !== 0 && declared !== 0xffffffff;
  return {
    sampleRate: fmt.sampleRate,
    channels,
    width,
    float,
    littleEndian,
    declaredFrames: known ? Math.floor(declared / fmt.blockAlign) : undefined,
    data,
  };
}

type Reader = (view: DataView, at: number) => number;

function sampleReader(width: number, float: boolean, le: boolean): Reader {
  if (float) return width === 4 ? (v, p) => v.getFloat32(p, le) : (v, p) => v.getFloat64(p, le);
  switch (width) {
    case 1:
      return (v, p) => (v.getUint8(p) - 128) / 128; // 8-bit WAV is unsigned, centred on 128
    case 2:
      return (v, p) => v.getInt16(p, le) / 32768;
    case 3:
      return le
        ? (v, p) => ((v.getInt8(p + 2) << 16) | (v.getUint8(p + 1) << 8) | v.getUint8(p)) / 8388608
        : (v, p) => ((v.getInt8(p) << 16) | (v.getUint8(p + 1) << 8) | v.getUint8(p + 2)) / 8388608;
    default:
      return (v, p) => v.getInt32(p, le) / 2147483648;
  }
}

/** The mean of the channels of every whole frame present, as float32 in [-1, 1]. */
export function wavToMono(layout: WavLayout): Float32Array {
  const { data, channels, width } = layout;
  const frameBytes = channels * width;
  const frames = Math.floor(data.length / frameBytes);
  const view = new DataView(data.buffer, data.byteOffset, frames * frameBytes);
  const read = sampleReader(width, layout.float, layout.littleEndian);
  const out = new Float32Array(frames);
  const inv = 1 / channels;
  let p = 0;
  for (let f = 0; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++, p += width) sum += read(view, p);
    out[f] = sum * inv;
  }
  return out;
}
