/**
 * A decode-pool.ts worker thread: runs `decodeAudio` on the bytes it is sent and posts back the
 * samples (their buffer transferred) or the error's code, reason, message and field, from which
 * the pool rebuilds the same error class. Built as its own entry of the embed-batch bundle
 * (infra/bundles.ts), and run from source under tsx.
 */
import { parentPort } from "node:worker_threads";
import { decodeAudio } from "./decode.ts";
import { type DecodeRequest, type DecodeResponse, transferList } from "./decode-protocol.ts";

async function handle(req: DecodeRequest): Promise<void> {
  const bytes = new Uint8Array(req.buffer, req.byteOffset, req.byteLength);
  let res: DecodeResponse;
  try {
    const decoded = await decodeAudio(bytes, req.opts);
    res = { id: req.id, ok: true, decoded };
  } catch (err) {
    // The code, not the class name: a bundle's minifier renames classes.
    const e = err as Error & { code?: string; reason?: string; field?: string };
    res = {
      id: req.id,
      ok: false,
      error: { code: e.code, message: e.message, reason: e.reason, field: e.field },
    };
  }
  parentPort?.postMessage(res, res.ok ? transferList(res.decoded.samples) : []);
}

parentPort?.on("message", (req: DecodeRequest) => {
  void handle(req);
});
