/**
 * `load`: the real local server (`headstart serve`, a child process so its RSS can be read from
 * /proc) under autocannon, on predict with a glove-100d head: ready embeddings, and texts the
 * server embeds itself. Each case warms up (`warmupS`), then runs `durationS` at 8 and at 64
 * connections while the server's RSS is sampled every 250 ms. V8 grows its heap lazily and
 * shrinks it at major collections, so one reading is a point on a sawtooth: `rssStartMb` and
 * `rssEndMb` are the medians of the first and last 10% of the samples (at least 5 s each),
 * which a leak moves and the sawtooth does not; `rssMaxMb` is the highest sample.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import autocannon from "autocannon";
import { loadConfig, PACKAGE_ROOT } from "../../shared/config.ts";
import { Platform } from "../../shared/platform.ts";
import { loadImdb } from "../../shared/samples/imdb.ts";
import { FsStore } from "../../shared/store/fs.ts";
import type { Section } from "./section.ts";

export interface LoadCase {
  requests: number;
  /** Non-2xx answers plus socket errors and timeouts. */
  errors: number;
  p50Ms: number;
  p99Ms: number;
  rssStartMb: number;
  rssEndMb: number;
  rssMaxMb: number;
  connections: number;
  durationS: number;
  requestsPerS: number;
}
export type LoadResult = Record<string, LoadCase>;

const HEAD = "load-text";
const BACKBONE = "glove-100d";
const CONNECTIONS = [8, 64];

export const loadSection: Section<LoadResult> = {
  key: "load",
  title: "load (headstart serve, predict, autocannon)",
  async run(opts) {
    const work = await mkdtemp(join(tmpdir(), "headstart-load-"));
    let server: ChildProcess | undefined;
    try {
      opts.say(`load: preparing a ${BACKBONE} head on 200 IMDB reviews`);
      const store = join(work, "store");
      const { sentence, dim } = await prepareStore(store);
      const port = await freePort();
      server = await startServer(store, port, opts.serverNodeOptions);
      const url = `http://127.0.0.1:${port}/v1/heads/${HEAD}/predict`;
      const vector = Array.from({ length: dim }, (_, i) => Math.sin(i));
      const bodies = {
        embedding: JSON.stringify({ embeddings: [vector] }),
        text: JSON.stringify({ inputs: [sentence] }),
      };
      const out: LoadResult = {};
      for (const [input, body] of Object.entries(bodies)) {
        for (const connections of CONNECTIONS) {
          const name = `${input}-c${connections}`;
          opts.say(`load: ${name}, ${opts.warmupS} s warm-up then ${opts.durationS} s`);
          await cannon(url, body, connections, opts.warmupS);
          const rss = sampleRss(server.pid!);
          const r = await cannon(url, body, connections, opts.durationS);
          const rssFigures = rss.stop();
          out[name] = {
            requests: r.requests.total,
            errors: r.non2xx + r.errors + r.timeouts,
            p50Ms: r.latency.p50,
            p99Ms: r.latency.p99,
            ...rssFigures,
            connections,
            durationS: opts.durationS,
            requestsPerS: Math.round(r.requests.average),
          };
        }
      }
      return out;
    } finally {
      server?.kill("SIGTERM");
      await rm(work, { recursive: true, force: true });
    }
  },
  table: (r) => [
    "case           conns  requests   req/s  errors  p50 ms  p99 ms  RSS start→end (max) MB",
    ...Object.entries(r).map(
      ([name, c]) =>
        `${name.padEnd(14)} ${String(c.connections).padStart(5)}  ${String(c.requests).padStart(8)}  ${String(c.requestsPerS).padStart(6)}  ${String(c.errors).padStart(6)}  ${String(c.p50Ms).padStart(6)}  ${String(c.p99Ms).padStart(6)}  ${c.rssStartMb} → ${c.rssEndMb} (${growth(c)}, max ${c.rssMaxMb})`,
    ),
  ],
  ok: (r) => Object.values(r).every((c) => c.errors === 0 && c.rssEndMb <= c.rssStartMb * 1.1),
};

const growth = (c: LoadCase) =>
  `${c.rssEndMb >= c.rssStartMb ? "+" : ""}${(((c.rssEndMb - c.rssStartMb) / c.rssStartMb) * 100).toFixed(1)}%`;

/** A store with IMDB reviews embedded by glove-100d and a head on them; one review sentence. */
export async function prepareStore(dir: string) {
  const config = loadConfig({}, { store: dir, logLevel: "silent" });
  const platform = new Platform(new FsStore(dir), config);
  const reviews = await loadImdb(50);
  const manifest = reviews.map((r) => JSON.stringify({ text: r.text, label: r.label })).join("\n");
  await platform.putManifest("load", "jsonl", manifest);
  await platform.embed("load", { backbone: BACKBONE });
  await platform.train({ dataset: "load", head: HEAD, backbone: BACKBONE });
  const sentence = reviews[0]!.text
    .replace(/<br\s*\/?>/g, " ")
    .split(/(?<=[.!?])\s+/)[0]!
    .slice(0, 300);
  return { sentence, dim: (await platform.backbone(BACKBONE)).dim };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `headstart serve` on `store`, once /health answers. */
export async function startServer(store: string, port: number, nodeOptions = ""): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [join(PACKAGE_ROOT, "bin/headstart.js"), "serve", "--port", String(port)],
    {
      env: { ...process.env, HEADSTART_STORE: store, HEADSTART_LOG_LEVEL: "warn", NODE_OPTIONS: nodeOptions },
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`headstart serve exited (${child.exitCode}): ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`headstart serve did not answer /health in 30 s: ${stderr}`);
}

export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return Math.round(kb / 102.4) / 10;
}

/** Samples a process's RSS every 250 ms until `stop()`, which answers the start/end medians and max. */
function sampleRss(pid: number) {
  const samples: number[] = [];
  let pending = Promise.resolve();
  const timer = setInterval(() => {
    pending = pending.then(async () => {
      samples.push(await rssMb(pid).catch(() => Number.NaN));
    });
  }, 250);
  const median = (xs: number[]) => {
    const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
    return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
  };
  return {
    stop() {
      clearInterval(timer);
      const edge = Math.max(20, Math.ceil(samples.length / 10));
      return {
        rssStartMb: median(samples.slice(0, edge)),
        rssEndMb: median(samples.slice(-edge)),
        rssMaxMb: Math.max(...samples.filter(Number.isFinite)),
      };
    },
  };
}

export function cannon(url: string, body: string, connections: number, duration: number) {
  return autocannon({
    url,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections,
    duration,
  });
}
