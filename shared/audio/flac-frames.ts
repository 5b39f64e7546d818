/**
 * A native FLAC stream cut into its frames, for libFLAC (`FLACDecoder.decodeFrames`), which
 * decodes one frame per call. FLAC frames carry no length: a frame ends where its CRC-16 closes
 * and the next frame header (sync code, valid CRC-8) begins, which is how libFLAC itself checks
 * them. (The package's own parser, codec-parser 2.5, hands over the last frames of a stream as
 * one when they are small, e.g. trailing silence, and libFLAC then decodes only the first: the
 * file comes out short.)
 */

const CRC8 = new Uint8Array(256);
const CRC16 = new Uint16Array(256);
for (let i = 0; i < 256; i++) {
  let c8 = i;
  let c16 = i << 8;
  for (let b = 0; b < 8; b++) {
    c8 = c8 & 0x80 ? ((c8 << 1) ^ 0x07) & 0xff : (c8 << 1) & 0xff;
    c16 = c16 & 0x8000 ? ((c16 << 1) ^ 0x8005) & 0xffff : (c16 << 1) & 0xffff;
  }
  CRC8[i] = c8;
  CRC16[i] = c16;
}

/** Whether a frame header starts at `at`: the sync code, legal codes, and its CRC-8. */
export function isFlacFrameHeader(b: Uint8Array, at: number): boolean {
  if (at + 6 > b.length || b[at] !== 0xff || (b[at + 1] & 0xfe) !== 0xf8) return false;
  const blockCode = b[at + 2] >> 4;
  const rateCode = b[at + 2] & 0x0f;
  if (blockCode === 0 || rateCode === 15 || b[at + 3] >> 4 > 10 || (b[at + 3] & 1) !== 0) return false;
  // The frame or sample number, UTF-8 coded: 1 to 7 bytes.
  const lead = b[at + 4];
  let len = lead < 0x80 ? 1 : 0;
  for (let mask = 0x80; lead & mask && mask > 1; mask >>= 1) len++;
  if (len === 0 || len > 7) return false;
  let end = at + 4 + len;
  end += blockCode === 6 ? 1 : blockCode === 7 ? 2 : 0;
  end += rateCode === 12 ? 1 : rateCode === 13 || rateCode === 14 ? 2 : 0;
  if (end >= b.length) return false;
  let crc = 0;
  for (let i = at; i < end; i++) crc = CRC8[crc ^ b[i]];
  return crc === b[end];
}

/** Where the frames start: after `fLaC` and the metadata blocks (undefined if they run off the end). */
export function flacAudioOffset(b: Uint8Array): number | undefined {
  let p = 4;
  while (p + 4 <= b.length) {
    const last = b[p] & 0x80;
    p += 4 + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
    if (last) return p <= b.length ? p : undefined;
  }
  return undefined;
}

export interface FlacFrames {
  frames: Uint8Array[];
  /** Byte offset of a frame that does not check out (its CRC-16 never closes, or no header). */
  damagedAt?: number;
}

/** A tag that may follow the last frame (ID3v1, APEv2, ID3v2). */
function isTag(rest: Uint8Array): boolean {
  const text = String.fromCharCode(...rest.subarray(0, 8));
  return text.startsWith("TAG") || text.startsWith("APETAGEX") || text.startsWith("ID3");
}

/**
 * Where the last frame ends, among the places its CRC-16 closes: before a tag, else before zero
 * padding or the end of the file. A frame whose CRC ends in a 0x00 byte (1 in 256) also "closes"
 * one byte early (its CRC state is 0 there and stays 0 over that byte), leaving what looks like
 * one byte of padding: a single zero byte left is taken as the frame's. (With real zero padding
 * after such a frame the CRC cannot tell; that frame then loses its last byte.)
 */
function lastFrameEnd(b: Uint8Array, closes: readonly number[]): number | undefined {
  const tagged = closes.find((p) => isTag(b.subarray(p)));
  if (tagged !== undefined) return tagged;
  const zeros = closes.find((p) => b.subarray(p).every((v) => v === 0));
  // One zero byte left is the frame's own CRC byte, not padding.
  return zeros !== undefined && b.length - zeros <= 1 ? b.length : zeros;
}

/**
 * The frames of a FLAC stream (`b` starts at `fLaC`), as views into it. A tag after the last
 * frame is left out. Where a frame never closes (the file is cut short, or damaged: a frame's
 * CRC-16 fails) the split stops, with `damagedAt` set.
 */
export function splitFlacFrames(b: Uint8Array): FlacFrames {
  const frames: Uint8Array[] = [];
  const first = flacAudioOffset(b);
  if (first === undefined || first >= b.length) return { frames };
  if (!isFlacFrameHeader(b, first)) return { frames, damagedAt: first };
  let start = first;
  let crc = 0;
  // Where the CRC since `start` is 0: a frame could end there (or it is chance, 1 in 65536).
  let closes: number[] = [];
  for (let i = first; i < b.length; i++) {
    // A CRC of 0 over [start, i) is a frame that closes at i; 0 is also the CRC's initial
    // state, so the next frame's CRC runs on from here unchanged.
    if (crc === 0 && i > start + 6 && isFlacFrameHeader(b, i)) {
      frames.push(b.subarray(start, i));
      start = i;
      closes = [];
    }
    crc = CRC16[((crc >> 8) ^ b[i]) & 0xff] ^ ((crc << 8) & 0xffff);
    if (crc === 0) closes.push(i + 1);
  }
  // The last frame ends at the end, or before a tag; anything else after it is a frame cut short.
  const end = lastFrameEnd(
    b,
    closes.filter((p) => p > start + 6),
  );
  if (end === undefined) return { frames, damagedAt: start };
  frames.push(b.subarray(start, end));
  return { frames };
}
