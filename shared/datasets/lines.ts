/**
 * Physical lines of a byte stream, decoded one at a time: the manifest reader's input. A line
 * that is not valid UTF-8 is decoded leniently and flagged, so one bad byte costs one row. Holds
 * one line (and one chunk) at a time, whatever the stream's size.
 */
import type { promises as fs } from "node:fs";

export interface PhysicalLine {
  /** 1-based. */
  no: number;
  text: string;
  /** The line's bytes are not valid UTF-8 (`text` holds them with U+FFFD). */
  badUtf8: boolean;
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");
const BOM = [0xef, 0xbb, 0xbf];

function decodeLine(bytes: Uint8Array): { text: string; badUtf8: boolean } {
  // CRLF and a lone trailing CR end a line the same way as LF.
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 0x0d ? bytes.length - 1 : bytes.length;
  const chunk = bytes.subarray(0, end);
  try {
    return { text: fatalUtf8.decode(chunk), badUtf8: false };
  } catch {
    return { text: lenientUtf8.decode(chunk), badUtf8: true };
  }
}

/**
 * Splits at LF (a CR before it is dropped), skips a leading UTF-8 BOM, and leaves out the empty
 * segment after a final line end: `a\nb\n` is two lines, `a\n\n` is `a` and an empty line.
 */
export async function* physicalLines(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<PhysicalLine> {
  let no = 0;
  let pending: Uint8Array[] = [];
  let head: Uint8Array | undefined = new Uint8Array(0); // the first bytes, until the BOM is decided
  const lines = function* (chunk: Uint8Array): Generator<PhysicalLine> {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl);
      const bytes = pending.length ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      yield { no: ++no, ...decodeLine(bytes) };
      start = nl + 1;
    }
    // A copy: the rest of a line must not pin the whole chunk.
    if (start < chunk.length) pending.push(Uint8Array.prototype.slice.call(chunk, start));
  };
  for await (const chunk of chunks) {
    if (head !== undefined) {
      head = Buffer.concat([head, chunk]);
      if (head.length < BOM.length) continue;
      const rest: Uint8Array = BOM.every((b, i) => head![i] === b) ? head.subarray(BOM.length) : head;
      head = undefined;
      yield* lines(rest);
    } else yield* lines(chunk);
  }
  if (head !== undefined) {
    const rest = BOM.every((b, i) => head![i] === b) ? head.subarray(BOM.length) : head;
    yield* lines(rest);
  }
  const last = Buffer.concat(pending);
  if (last.length > 0 && !(last.length === 1 && last[0] === 0x0d)) yield { no: ++no, ...decodeLine(last) };
}

/** A local file's bytes, a chunk at a time, through an open handle (so a renamed-over file stays readable). */
export async function* fileChunks(handle: fs.FileHandle, chunkSize = 1 << 16): AsyncGenerator<Uint8Array> {
  for (let position = 0; ; ) {
    const buffer = Buffer.allocUnsafe(chunkSize);
    const { bytesRead } = await handle.read(buffer, 0, chunkSize, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}
