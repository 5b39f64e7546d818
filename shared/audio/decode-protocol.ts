/** The messages between decode-pool.ts and its workers (decode-worker.ts). */
import type { DecodeAudioOptions, DecodedAudio } from "./decode.ts";

export interface DecodeRequest {
  id: number;
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
  opts: DecodeAudioOptions;
}

/** A thrown error as a message: `code` is `HeadstartError`'s (`invalid_input` for a ValidationError). */
export interface WorkerError {
  code?: string;
  message: string;
  reason?: string;
  field?: string;
}

export type DecodeResponse =
  | { id: number; ok: true; decoded: DecodedAudio }
  | { id: number; ok: false; error: WorkerError };

/**
 * The buffer to transfer with a view, when the view is all of it: transferring a buffer others
 * share (Node's pooled small Buffers, a slice of a larger read, WASM memory) would empty theirs
 * too, so such a view is copied instead (see `ownBuffer`).
 */
export function transferList(view: ArrayBufferView): ArrayBuffer[] {
  const buf = view.buffer;
  return buf instanceof ArrayBuffer && view.byteOffset === 0 && view.byteLength === buf.byteLength
    ? [buf]
    : [];
}

/** `bytes` itself when its buffer can be handed over whole, else a copy that can. */
export function ownBuffer(bytes: Uint8Array): Uint8Array {
  return transferList(bytes).length ? bytes : bytes.slice();
}
