/**
 * Audio decoding on worker threads, for the batch stage: decoding is synchronous WASM and JS on
 * whichever thread calls it, so on the embedding thread it would stall onnxruntime's feeding.
 *
 * - `createDecodePool({ threads?, workerUrl? })` → an `AudioDecoder`: `decode(bytes, opts)`
 *   resolves like `decodeAudio` and rejects with the same error classes (an `AudioDecodeError`
 *   with its `reason` and `field`, a `ValidationError` for bad options), rebuilt from the
 *   worker's message. Default threads: available parallelism − 1, at least 1. Each call goes to
 *   the worker with the fewest calls in flight; workers start on first use.
 * - Bytes travel without copies: when `bytes` spans its whole ArrayBuffer, that buffer is
 *   transferred to the worker and is empty (detached) for the caller afterwards; a view into a
 *   larger or shared buffer is copied first. The samples come back transferred.
 * - Workers are unref'd while idle, so a pool never keeps a process alive (and ref'd while a call
 *   is in flight, so a process awaiting one does not exit under it). `close()` ends them; calls
 *   in flight then reject. A worker that dies fails its calls; the next call starts another.
 * - The worker is `decode-worker.ts` beside this file under tsx (the tests, the CLI), started by a
 *   bootstrap that registers tsx inside it (`tsxBootstrap`); in the embed-batch bundle it is the `audio-decode-worker.mjs` entry
 *   beside the bundle (infra/bundles.ts). Where neither exists (the API Lambda's bundle), the
 *   pool is `inThreadDecoder`: the same interface, decoding on the calling thread.
 */
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { ValidationError } from "../errors.ts";
import {
  AUDIO_DECODE_REASONS,
  AudioDecodeError,
  type AudioDecodeReason,
  type DecodeAudioOptions,
  type DecodedAudio,
  decodeAudio,
} from "./decode.ts";
import {
  type DecodeRequest,
  type DecodeResponse,
  ownBuffer,
  transferList,
  type WorkerError,
} from "./decode-protocol.ts";

/** What an embedder needs: `decodeAudio`, here or elsewhere. `decode` may take over `bytes`. */
export interface AudioDecoder {
  decode(bytes: Uint8Array, opts: DecodeAudioOptions): Promise<DecodedAudio>;
  close(): Promise<void>;
}

/** Decodes on the calling thread. */
export const inThreadDecoder: AudioDecoder = {
  decode: (bytes, opts) => decodeAudio(bytes, opts),
  close: async () => undefined,
};

/** The worker's file name in a bundle (an extra entry point of embed-batch's build). */
export const DECODE_WORKER_BUNDLE_NAME = "audio-decode-worker";

export interface DecodePoolOptions {
  /** Worker threads; default available parallelism − 1, at least 1. */
  threads?: number;
  /** The worker script; default: found beside this module (see above). */
  workerUrl?: URL;
}

/**
 * Where the worker script is: the .ts source beside this file when running from source, else
 * the bundle's entry, beside this module or one folder up (esbuild may put this code in
 * `chunks/`). Undefined when there is none.
 */
export function findDecodeWorker(moduleUrl: string = import.meta.url): URL | undefined {
  const candidates = moduleUrl.endsWith(".ts")
    ? [new URL("./decode-worker.ts", moduleUrl)]
    : [`./${DECODE_WORKER_BUNDLE_NAME}.mjs`, `../${DECODE_WORKER_BUNDLE_NAME}.mjs`].map(
        (p) => new URL(p, moduleUrl),
      );
  return candidates.find((u) => existsSync(fileURLToPath(u)));
}

export function createDecodePool(opts: DecodePoolOptions = {}): AudioDecoder {
  const url = opts.workerUrl ?? findDecodeWorker();
  if (!url) return inThreadDecoder;
  const threads = opts.threads ?? Math.max(1, availableParallelism() - 1);
  if (!Number.isInteger(threads) || threads < 1) {
    throw new ValidationError(`threads must be a positive integer, got ${threads}`, { field: "threads" });
  }
  return new DecodePool(url, threads);
}

interface Pending {
  resolve: (d: DecodedAudio) => void;
  reject: (e: Error) => void;
}

/**
 * Under tsx the worker is TypeScript, and Node 20 does not carry tsx's loader into workers (not
 * through an inherited `--import tsx`, nor from bin/headstart.js's `register()`): a small script
 * registers it in the worker, then imports the worker's module.
 */
function tsxBootstrap(url: URL): string {
  const api = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  return `import(${api}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
}

/** One worker and the calls it has in flight. */
class PoolWorker {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();

  constructor(url: URL, onExit: (w: PoolWorker) => void) {
    this.worker = url.pathname.endsWith(".ts")
      ? new Worker(tsxBootstrap(url), { eval: true, execArgv: [] })
      : new Worker(url);
    this.worker.unref();
    this.worker.on("message", (res: DecodeResponse) => this.settle(res));
    this.worker.on("error", (err) => this.failAll(err));
    this.worker.on("exit", (code) => {
      this.failAll(new Error(`audio decode worker exited with code ${code}`));
      onExit(this);
    });
  }

  run(id: number, req: DecodeRequest, transfer: ArrayBuffer[]): Promise<DecodedAudio> {
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) this.worker.ref();
      try {
        this.worker.postMessage(req, transfer);
      } catch (err) {
        this.forget(id);
        reject(err as Error);
      }
    });
  }

  private settle(res: DecodeResponse): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.forget(res.id);
    if (res.ok) p.resolve(res.decoded);
    else p.reject(rebuildError(res.error));
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  failAll(err: Error): void {
    for (const [id, p] of [...this.pending]) {
      this.forget(id);
      p.reject(err);
    }
  }
}

const REASONS = new Set<string>(AUDIO_DECODE_REASONS);

/** The worker's error as the class `decodeAudio` would have thrown here. */
export function rebuildError(e: WorkerError): Error {
  if (e.reason && REASONS.has(e.reason)) {
    return new AudioDecodeError(e.reason as AudioDecodeReason, e.message, { field: e.field });
  }
  if (e.code === "invalid_input") return new ValidationError(e.message, { field: e.field });
  return new Error(e.message);
}

class DecodePool implements AudioDecoder {
  private readonly workers: PoolWorker[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly url: URL,
    private readonly threads: number,
  ) {}

  decode(bytes: Uint8Array, opts: DecodeAudioOptions): Promise<DecodedAudio> {
    if (this.closed) return Promise.reject(new Error("the audio decode pool is closed"));
    const own = ownBuffer(bytes);
    const id = this.nextId++;
    const req: DecodeRequest = {
      id,
      buffer: own.buffer as ArrayBuffer,
      byteOffset: own.byteOffset,
      byteLength: own.byteLength,
      opts: { sampleRate: opts.sampleRate, limits: opts.limits, name: opts.name },
    };
    return this.pick().run(id, req, transferList(own));
  }

  /** The worker with the fewest calls in flight, starting one while there are fewer than `threads`. */
  private pick(): PoolWorker {
    const idle = this.workers.find((w) => w.pending.size === 0);
    if (idle) return idle;
    if (this.workers.length < this.threads) {
      const w = new PoolWorker(this.url, (dead) => {
        const at = this.workers.indexOf(dead);
        if (at >= 0) this.workers.splice(at, 1);
      });
      this.workers.push(w);
      return w;
    }
    return this.workers.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.workers.splice(0);
    for (const w of all) w.failAll(new Error("the audio decode pool was closed"));
    await Promise.all(all.map((w) => w.worker.terminate()));
  }
}
