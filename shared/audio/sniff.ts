/**
 * Audio formats by their magic bytes, and what their headers say before anything is decoded:
 * the sample rate, the channel count and the declared length (so a too-long file is refused
 * without decoding it, and a truncated one is noticed after). Pure byte reading, no decoder.
 */

export const AUDIO_FORMATS = ["wav", "flac", "mp3", "ogg"] as const;
export type AudioFormat = (typeof AUDIO_FORMATS)[number];

export const FORMAT_LABEL: Record<AudioFormat, string> = {
  wav: "WAV",
  flac: "FLAC",
  mp3: "MP3",
  ogg: "Ogg Vorbis",
};

function startsWith(bytes: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (bytes.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[at + i] !== sig[i]) return false;
  return true;
}
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
const has = (bytes: Uint8Array, s: string, at = 0) => startsWith(bytes, ascii(s), at);

/** Where the audio starts: after an ID3v2 tag (MP3s carry one, some FLACs too), else 0. */
export function audioStart(bytes: Uint8Array): number {
  if (!has(bytes, "ID3") || bytes.length < 10) return 0;
  // Syncsafe size: 4 × 7 bits, not counting the 10-byte header (nor the footer, flag 0x10).
  const size =
    ((bytes[6] & 0x7f) << 21) | ((bytes[7] & 0x7f) << 14) | ((bytes[8] & 0x7f) << 7) | (bytes[9] & 0x7f);
  return Math.min(bytes.length, 10 + size + (bytes[5] & 0x10 ? 10 : 0));
}

/**
 * The format by magic bytes, before any decoder sees the input: each decoder is only ever
 * handed its own format. `refused` names a recognised format we do not decode ("" when the
 * bytes are no audio we know).
 */
export function sniffAudio(bytes: Uint8Array): AudioFormat | { refused: string } {
  if ((has(bytes, "RIFF") || has(bytes, "RIFX") || has(bytes, "RF64")) && has(bytes, "WAVE", 8)) return "wav";
  if (has(bytes, "fLaC")) return "flac";
  if (has(bytes, "OggS")) return oggCodec(bytes);
  const start = audioStart(bytes);
  if (start > 0) {
    // After an ID3 tag: FLAC or AAC sometimes, else MPEG audio (mpg123 finds the first frame).
    if (has(bytes, "fLaC", start)) return "flac";
    if (isAdts(bytes, start)) return { refused: "AAC" };
    return "mp3";
  }
  if (mpegFrame(bytes, 0) && sniffNextFrame(bytes)) return "mp3";
  return refusedFormat(bytes);
}

/** Formats named only for a better message. */
function refusedFormat(bytes: Uint8Array): { refused: string } {
  if (has(bytes, "FORM") && (has(bytes, "AIFF", 8) || has(bytes, "AIFC", 8))) return { refused: "AIFF" };
  if (has(bytes, "ftyp", 4)) return { refused: "M4A/MP4" };
  if (startsWith(bytes, [0x1a, 0x45, 0xdf, 0xa3])) return { refused: "WebM/Matroska" };
  if (has(bytes, "MThd")) return { refused: "MIDI" };
  if (isAdts(bytes, 0)) return { refused: "AAC" };
  if (has(bytes, "#!AMR")) return { refused: "AMR" };
  if (has(bytes, "caff")) return { refused: "CAF" };
  if (startsWith(bytes, [0x30, 0x26, 0xb2, 0x75])) return { refused: "WMA/ASF" };
  if (has(bytes, ".snd")) return { refused: "AU" };
  if (has(bytes, "RIFF") && has(bytes, "AVI ", 8)) return { refused: "AVI" };
  return { refused: "" };
}

/** Which codec an Ogg stream carries, from the first packet of its first page. */
function oggCodec(bytes: Uint8Array): "ogg" | { refused: string } {
  const at = oggPayload(bytes);
  if (at === undefined) return { refused: "Ogg (no complete first page)" };
  if (startsWith(bytes, [0x01, ...ascii("vorbis")], at)) return "ogg";
  if (has(bytes, "OpusHead", at)) return { refused: "Ogg Opus" };
  if (startsWith(bytes, [0x7f, ...ascii("FLAC")], at)) return { refused: "Ogg FLAC" };
  if (has(bytes, "Speex   ", at)) return { refused: "Ogg Speex" };
  if (startsWith(bytes, [0x80, ...ascii("theora")], at)) return { refused: "Ogg Theora (video)" };
  return { refused: "Ogg with an unknown codec" };
}

/** Offset of the first page's payload, when its header and segment table are all there. */
function oggPayload(bytes: Uint8Array): number | undefined {
  if (bytes.length < 27) return undefined;
  const at = 27 + bytes[26];
  return at + 7 <= bytes.length ? at : undefined;
}

/** ADTS AAC: a 12-bit sync like MPEG audio's, but with layer bits 00. */
function isAdts(bytes: Uint8Array, at: number): boolean {
  return bytes.length >= at + 2 && bytes[at] === 0xff && (bytes[at + 1] & 0xf6) === 0xf0;
}

export interface MpegFrame {
  sampleRate: number;
  channels: 1 | 2;
  /** Bytes of this frame, header included. */
  length: number;
  samplesPerFrame: number;
  /** MPEG-1 (`true`) or MPEG-2/2.5. */
  mpeg1: boolean;
}

const MPEG_RATES = [44100, 48000, 32000];
// kbit/s by [MPEG-1?][layer 1, 2, 3][index]
const BITRATES: Record<"v1" | "v2", number[][]> = {
  v1: [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  ],
  v2: [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
  ],
};

/** The MPEG audio frame header at `at`, or undefined when the 4 bytes there are not one. */
export function mpegFrame(bytes: Uint8Array, at: number): MpegFrame | undefined {
  if (bytes.length < at + 4 || bytes[at] !== 0xff || (bytes[at + 1] & 0xe0) !== 0xe0) return undefined;
  const version = (bytes[at + 1] >> 3) & 3; // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
  const layerBits = (bytes[at + 1] >> 1) & 3; // 0: reserved, 1: III, 2: II, 3: I
  const bitrateIndex = bytes[at + 2] >> 4;
  const rateIndex = (bytes[at + 2] >> 2) & 3;
  // Free-format (index 0) frames have no computable length: too rare to be worth guessing.
  if (version === 1 || layerBits === 0 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) {
    return undefined;
  }
  const mpeg1 = version === 3;
  const layer = 4 - layerBits;
  const sampleRate = MPEG_RATES[rateIndex] / (mpeg1 ? 1 : version === 2 ? 2 : 4);
  const bitrate = BITRATES[mpeg1 ? "v1" : "v2"][layer - 1][bitrateIndex] * 1000;
  const padding = (bytes[at + 2] >> 1) & 1;
  const samplesPerFrame = layer === 1 ? 384 : layer === 3 && !mpeg1 ? 576 : 1152;
  const length =
    layer === 1
      ? (Math.floor((12 * bitrate) / sampleRate) + padding) * 4
      : Math.floor(((samplesPerFrame / 8) * bitrate) / sampleRate) + padding;
  return { sampleRate, channels: bytes[at + 3] >> 6 === 3 ? 1 : 2, length, samplesPerFrame, mpeg1 };
}

/** A lone 0xFFEx pair is 1 in 2000 random files: a second frame must follow where the first ends. */
function sniffNextFrame(bytes: Uint8Array): boolean {
  const first = mpegFrame(bytes, 0);
  if (!first) return false;
  if (bytes.length < first.length + 4) return true;
  return mpegFrame(bytes, first.length) !== undefined;
}

/** What a header says before decoding; a field is absent when the format does not say it. */
export interface AudioHeader {
  sampleRate?: number;
  channels?: number;
  /** The declared length in frames (samples per channel), when the header records it. */
  frames?: number;
  /** How many frames fewer than `frames` still count as complete (MP3's encoder delay). */
  slack: number;
  /** The bytes end inside a unit the header announced (an Ogg page): the file was cut short. */
  cutShort?: boolean;
}

/** FLAC's STREAMINFO, the first metadata block, right after `fLaC`. */
export function flacHeader(bytes: Uint8Array, start: number): AudioHeader {
  const b = start + 18; // 'fLaC', block header (4), min/max block size (4), min/max frame size (6)
  if (bytes.length < b + 8 || (bytes[start + 4] & 0x7f) !== 0) return { slack: 0 };
  const sampleRate = (bytes[b] << 12) | (bytes[b + 1] << 4) | (bytes[b + 2] >> 4);
  const channels = ((bytes[b + 2] >> 1) & 7) + 1;
  const total =
    (bytes[b + 3] & 0x0f) * 2 ** 32 + new DataView(bytes.buffer, bytes.byteOffset + b + 4, 4).getUint32(0);
  // A total of 0 means "unknown" (a stream written without seeking back).
  return { sampleRate: sampleRate || undefined, channels, frames: total || undefined, slack: 0 };
}

/**
 * The first MPEG frame's rate and channels, and the length from its Xing/Info tag (LAME and
 * most encoders write one); without the tag the length is unknown until decoded.
 */
export function mp3Header(bytes: Uint8Array, start: number): AudioHeader {
  let at = start;
  // Skip junk before the first frame (a few KB at most), as mpg123 does.
  const end = Math.min(bytes.length, start + 64 * 1024);
  while (at < end && !mpegFrame(bytes, at)) at++;
  const frame = mpegFrame(bytes, at);
  if (!frame) return { slack: 0 };
  const sideInfo = frame.mpeg1 ? (frame.channels === 1 ? 17 : 32) : frame.channels === 1 ? 9 : 17;
  const tag = at + 4 + sideInfo;
  const head = { sampleRate: frame.sampleRate, channels: frame.channels, slack: 0 };
  if (!(startsWith(bytes, ascii("Xing"), tag) || startsWith(bytes, ascii("Info"), tag))) return head;
  if (bytes.length < tag + 12) return head;
  const view = new DataView(bytes.buffer, bytes.byteOffset + tag + 4, 8);
  if (!(view.getUint32(0) & 1)) return head;
  // The tag counts whole frames; decoders drop the encoder delay and padding (< 2 frames).
  const frames = view.getUint32(4) * frame.samplesPerFrame;
  return { ...head, frames: frames || undefined, slack: 2 * frame.samplesPerFrame };
}

/**
 * Ogg Vorbis: rate and channels from the identification header; the length from the granule
 * position of the last page in the file (a truncated file's last page is cut short, but its
 * header still says how far the stream was meant to go).
 */
export function oggHeader(bytes: Uint8Array): AudioHeader {
  const at = oggPayload(bytes);
  if (at === undefined || bytes.length < at + 16) return { slack: 0 };
  const id = new DataView(bytes.buffer, bytes.byteOffset + at, 16);
  const channels = id.getUint8(11);
  const sampleRate = id.getUint32(12, true);
  const head: AudioHeader = {
    sampleRate: sampleRate || undefined,
    channels: channels || undefined,
    slack: 0,
  };
  return { ...head, ...oggLastPage(bytes) };
}

/** The last page of the file: its granule position (the stream's length) and whether it is whole. */
function oggLastPage(bytes: Uint8Array): Pick<AudioHeader, "frames" | "cutShort"> {
  const serial = new DataView(bytes.buffer, bytes.byteOffset + 14, 4).getUint32(0, true);
  for (let p = bytes.length - 27; p >= Math.max(0, bytes.length - 256 * 1024); p--) {
    if (bytes[p] !== 0x4f || !has(bytes, "OggS", p)) continue;
    const page = new DataView(bytes.buffer, bytes.byteOffset + p, 27);
    if (page.getUint32(14, true) !== serial) continue;
    const segments = bytes[p + 26];
    let end = p + 27 + segments;
    for (let i = 0; i < segments && p + 27 + i < bytes.length; i++) end += bytes[p + 27 + i];
    const granule = page.getBigInt64(6, true);
    const frames = granule > 0n && granule < BigInt(Number.MAX_SAFE_INTEGER) ? Number(granule) : undefined;
    return { frames, cutShort: end > bytes.length };
  }
  return {};
}
