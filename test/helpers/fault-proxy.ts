/**
 * A fault-injecting HTTP proxy for S3 tests and benchmarks: it listens on loopback, forwards
 * each request to a real S3 endpoint (radosgw from `s3-server.ts`) and, for a chosen fraction of
 * them, misbehaves the ways real object stores and networks do:
 *
 * - `500`: InternalError; half of them after the request reached the server (so it may have
 *   been applied: the ambiguous case retries must survive);
 * - `503`: SlowDown, before forwarding (S3's throttling answer: nothing was applied);
 * - `reset`: the client's connection is destroyed, half before forwarding, half after the
 *   server answered;
 * - `truncate`: the server's answer with its real `Content-Length`, but only half the body, then
 *   the connection closes (answers without a body get a reset instead);
 * - `stall`: the answer is held for `stallMs` (longer than the client's socket timeout), then
 *   the connection is dropped; half before forwarding, half after.
 *
 * Deterministic for a seed: the n-th request gets the same decision on every run (with one
 * client issuing requests in the same order). `stats()` counts requests and faults per kind.
 * Usage (see test/s3-faults.test.ts and the reliability benchmark):
 *
 *   const proxy = await startFaultProxy(s3.endpoint, { rate: 0.05, seed: 1, stallMs: 1500 });
 *   const store = new S3Store({ ..., endpoint: proxy.endpoint, socketTimeoutMs: 500 });
 *   …; proxy.stats(); proxy.setRate(0); await proxy.close();
 *
 * SigV4 signs the Host header, which is forwarded unchanged, so radosgw accepts the requests.
 */
import { createServer, type IncomingMessage, request, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { mulberry32 } from "../../shared/learn/split.ts";

export const FAULT_KINDS = ["500", "503", "reset", "truncate", "stall"] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultProxyOptions {
  /** Fraction of requests that get a fault, 0..1. */
  rate: number;
  /** Which faults to draw from (uniformly); all by default. */
  kinds?: readonly FaultKind[];
  seed?: number;
  /** How long a stalled answer is held before the connection is dropped (default 2 s). */
  stallMs?: number;
}

export interface FaultProxyStats {
  requests: number;
  faults: Record<FaultKind, number>;
  /** Faults injected after the server had the request (it may have been applied). */
  afterForwarding: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: use as the S3 endpoint. */
  endpoint: string;
  stats(): FaultProxyStats;
  /** Changes the fault rate from the next request on (0: a transparent proxy). */
  setRate(rate: number): void;
  /** The next requests get exactly these faults, in order (whatever the rate), then the draw resumes. */
  injectNext(...faults: Array<{ kind: FaultKind; after?: boolean }>): void;
  close(): Promise<void>;
}

interface Upstream {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

function s3Error(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export async function startFaultProxy(target: string, opts: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(target);
  const kinds = opts.kinds?.length ? opts.kinds : FAULT_KINDS;
  const stallMs = opts.stallMs ?? 2_000;
  const random = mulberry32(opts.seed ?? 1);
  let rate = opts.rate;
  const counters: FaultProxyStats = {
    requests: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    afterForwarding: 0,
  };
  const queued: Array<{ kind: FaultKind; after?: boolean }> = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const hold = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const forward = (req: IncomingMessage, body: Buffer): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      const out = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on("error", reject);
        },
      );
      out.on("error", reject);
      out.end(body);
    });

  const reply = (res: ServerResponse, up: Upstream) => {
    res.writeHead(up.status, up.headers);
    res.end(up.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    counters.requests++;
    // Three draws per request whatever happens, so one decision never shifts the next ones.
    const [hit, pick, phase] = [random(), random(), random()];
    const next = queued.shift();
    const fault = next
      ? next.kind
      : hit < rate
        ? kinds[Math.min(kinds.length - 1, Math.floor(pick * kinds.length))]
        : undefined;
    const after = next ? Boolean(next.after) : phase < 0.5;
    if (fault) counters.faults[fault]++;
    if (fault && after && fault !== "503") counters.afterForwarding++;

    if (fault === "503") return s3Error(res, 503, "SlowDown", "Please reduce your request rate.");
    if (fault === "500" && !after)
      return s3Error(res, 500, "InternalError", "We encountered an internal error.");
    if (fault === "reset" && !after) return req.socket.destroy();
    if (fault === "stall" && !after) {
      await hold(stallMs);
      return req.socket.destroy();
    }
    const up = await forward(req, body);
    switch (fault) {
      case "500":
        return s3Error(res, 500, "InternalError", "We encountered an internal error.");
      case "reset":
        return req.socket.destroy();
      case "stall":
        await hold(stallMs);
        return req.socket.destroy();
      case "truncate":
        if (up.body.length < 2) return req.socket.destroy();
        {
          const { "transfer-encoding": _chunked, ...headers } = up.headers;
          res.writeHead(up.status, { ...headers, "content-length": String(up.body.length) });
        }
        res.write(up.body.subarray(0, Math.floor(up.body.length / 2)));
        // Let the half body leave before the connection goes.
        return setTimeout(() => req.socket.destroy(), 20);
      default:
        return reply(res, up);
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      // The upstream failed or the client went away: drop the connection, as a proxy would.
      req.socket.destroy();
    });
  });
  server.on("connection", (s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats: () => ({ ...counters, faults: { ...counters.faults } }),
    setRate(r: number) {
      rate = r;
    },
    injectNext(...faults) {
      queued.push(...faults);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
