/**
 * `npm run bench:serve` — the local server's predict path under load, next to the FastAPI anchor:
 * requests/s and latency percentiles from wrk (Debian's) on loopback, for a short review through
 * `glove-100d` + the IMDB logistic head (`text`) and for its ready embedding (`embeddings`), at each
 * `--connections` count. The anchor (scripts/serve_anchor.py: FastAPI + NumPy + scikit-learn, one
 * uvicorn worker, the same vectors and weights) runs the same cases in the same run, one server at a
 * time, server and wrk sharing the machine alike; both must first answer the same probabilities, and
 * each run is preceded by 2 s of unmeasured warm-up load.
 * A benchmark, not a test: nothing is asserted about speed. Figures: docs/benchmarks.md.
 *
 *   npm run bench:serve -- [--json] [--duration 10] [--connections 1,8] [--rounds 2] [--no-anchor]
 *     [--ceiling] [--store .headstart-bench]
 *
 * The store is `npm run bench`'s (IMDB embedded with glove-100d and the demo head, built the first
 * time as `headstart demo` does). `--rounds` alternates the two servers that many times per case and
 * reports the median round; `--json` prints one JSON document (the machine, then per server, case and
 * connection count `{reqPerSec, p50Ms, p99Ms}` and the ratios). `--ceiling` adds a third server,
 * scripts/serve-ceiling.ts: the same predict call, validation, request ids and log line on a bare
 * `node:http` server, which says what a predict path beside the framework could reach here.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs, promisify } from "node:util";
import { builtInEmbedder } from "../shared/backbone/registry.ts";
import { loadConfig, PACKAGE_ROOT } from "../shared/config.ts";
import { DEMO_HEAD } from "../shared/demo.ts";
import { readHeadVersion } from "../shared/heads/version.ts";
import { FsStore } from "../shared/store/fs.ts";
import { machine } from "./bench-common.ts";
import { freePort } from "./reliability/load.ts";
import { anchorFiles } from "./serve-anchor-files.ts";

const run = promisify(execFile);
const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    duration: { type: "string", default: "10" },
    connections: { type: "string", default: "1,8" },
    rounds: { type: "string", default: "2" },
    "no-anchor": { type: "boolean", default: false },
    ceiling: { type: "boolean", default: false },
    store: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench") },
  },
});
const PYTHON = "/usr/bin/python3";
const WARM_UP_SECONDS = 2;
const TEXT = "A gripping story with wonderful acting, though the ending drags on a little too long.";
const say = (line: string) => (args.json ? process.stderr : process.stdout).write(`${line}\n`);

interface Figures {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

async function main() {
  const duration = positive("duration");
  const rounds = positive("rounds");
  const connections = String(args.connections).split(",").map(Number);
  if (connections.some((c) => !Number.isInteger(c) || c < 1))
    throw new Error(`--connections: positive integers, got ${args.connections}`);
  const config = loadConfig(process.env, { store: args.store, logLevel: "warn" });
  await ensureDemoStore(config);
  const store = new FsStore(config.store);
  const { head } = await readHeadVersion(store, DEMO_HEAD);
  const embedder = await builtInEmbedder("glove-100d", config.modelsDir);
  const vector = Array.from(await embedder.embed([{ text: TEXT }]));
  const cases = {
    text: JSON.stringify({ inputs: [TEXT] }),
    embeddings: JSON.stringify({ embeddings: [vector] }),
  };
  const path = `/v1/heads/${DEMO_HEAD}/predict`;
  const servers: Array<{ name: string; start: () => Promise<Server> }> = [
    { name: "headstart", start: () => startHeadstart(config.store) },
  ];
  if (args.ceiling) servers.push({ name: "ceiling", start: () => startCeiling(config.store) });
  if (!args["no-anchor"]) {
    const dir = await anchorFiles(head, config.modelsDir, join(args.store, "serve-anchor"));
    servers.push({ name: "fastapi", start: () => startAnchor(dir) });
  }
  await checkSameAnswers(servers, path, cases);
  const results = await measure(servers, path, cases, { connections, duration, rounds });
  report(await machine(), { duration, rounds, connections }, results);
}

type Results = Record<string, Record<string, Record<string, Figures>>>;

/** Per server, case and connection count: the median of `rounds` runs, the servers alternating. */
async function measure(
  servers: Array<{ name: string; start: () => Promise<Server> }>,
  path: string,
  cases: Record<string, string>,
  opts: { connections: number[]; duration: number; rounds: number },
): Promise<Results> {
  const results: Results = {};
  for (const [name, body] of Object.entries(cases)) {
    for (const c of opts.connections) {
      const perServer = new Map<string, Figures[]>();
      for (let r = 0; r < opts.rounds; r++) {
        for (const s of servers) {
          const server = await s.start();
          try {
            // Warm-up, not measured: the first request loads the head and the backbone, and both
            // runtimes compile their hot paths in the first thousands.
            await wrk(server.url + path, body, c, WARM_UP_SECONDS);
            const f = await wrk(server.url + path, body, c, opts.duration);
            perServer.set(s.name, [...(perServer.get(s.name) ?? []), f]);
            say(`${s.name} ${name} c=${c} round ${r + 1}: ${describe(f)}`);
          } finally {
            server.stop();
          }
        }
      }
      for (const [server, runs] of perServer) {
        const median = runs.sort((a, b) => a.reqPerSec - b.reqPerSec)[Math.floor((runs.length - 1) / 2)];
        results[server] = results[server] ?? {};
        results[server][name] = { ...results[server][name], [`c${c}`]: median };
      }
    }
  }
  return results;
}

function positive(name: "duration" | "rounds"): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name}: a positive integer, got ${args[name]}`);
  return v;
}

const describe = (f: Figures) =>
  `${f.reqPerSec.toFixed(0)} req/s, p50 ${f.p50Ms.toFixed(3)} ms, p99 ${f.p99Ms.toFixed(3)} ms`;

function report(
  m: Awaited<ReturnType<typeof machine>>,
  settings: { duration: number; rounds: number; connections: number[] },
  results: Results,
) {
  const anchor = results.fastapi;
  // Per server but the anchor, case and connection count: its req/s over the anchor's.
  const ratios: Record<string, Record<string, Record<string, number>>> = {};
  for (const [server, byCase] of Object.entries(results)) {
    if (!anchor || server === "fastapi") continue;
    for (const [name, byC] of Object.entries(byCase)) {
      for (const [c, f] of Object.entries(byC)) {
        const a = anchor[name]?.[c];
        if (!a) continue;
        ratios[server] ??= {};
        ratios[server][name] = { ...ratios[server][name], [c]: f.reqPerSec / a.reqPerSec };
      }
    }
  }
  if (args.json) {
    console.log(
      JSON.stringify(
        // reqPerSecRatio: headstart's over the anchor's, as before --ceiling; every server's below.
        { machine: m, settings, text: TEXT, results, reqPerSecRatio: ratios.headstart ?? {}, ratios },
        null,
        2,
      ),
    );
    return;
  }
  say(`\nmachine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}`);
  say(
    `wrk ${settings.duration} s per run, median of ${settings.rounds} alternating rounds; text: ${JSON.stringify(TEXT)}`,
  );
  say("| server | case | connections | req/s | p50 ms | p99 ms | / fastapi req/s |");
  say("|---|---|---|---|---|---|---|");
  for (const [s, byCase] of Object.entries(results)) {
    for (const [name, byC] of Object.entries(byCase)) {
      for (const [c, f] of Object.entries(byC)) {
        const ratio = ratios[s]?.[name]?.[c]?.toFixed(2) ?? "";
        say(
          `| ${s} | ${name} | ${c.slice(1)} | ${f.reqPerSec.toFixed(0)} | ${f.p50Ms.toFixed(3)} | ${f.p99Ms.toFixed(3)} | ${ratio} |`,
        );
      }
    }
  }
}

/** IMDB embedded with glove-100d and the demo head, as `headstart demo` builds them (once). */
async function ensureDemoStore(config: ReturnType<typeof loadConfig>) {
  if (existsSync(join(config.store, "heads", DEMO_HEAD))) return;
  say(`no ${DEMO_HEAD} head in ${config.store}: running the demo there (minutes, once)…`);
  const [{ runDemo }, { makeLogger }, { Platform }] = await Promise.all([
    import("../shared/demo.ts"),
    import("../shared/log.ts"),
    import("../shared/platform.ts"),
  ]);
  await runDemo(new Platform(new FsStore(config.store), config), { log: makeLogger("bench", "warn") });
}

interface Server {
  url: string;
  stop: () => void;
}

async function startHeadstart(store: string): Promise<Server> {
  const port = await freePort();
  const cli = join(PACKAGE_ROOT, "bin", "headstart.js");
  const child = spawn(
    process.execPath,
    [cli, "serve", "--store", store, "--port", String(port), "--log-level", "warn"],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  return ready(child, `http://127.0.0.1:${port}`, "/health");
}

async function startCeiling(store: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(PACKAGE_ROOT, "scripts", "serve-ceiling.ts"),
      "--store",
      store,
      "--port",
      String(port),
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  return ready(child, `http://127.0.0.1:${port}`, "/health");
}

async function startAnchor(dir: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(
    PYTHON,
    [join(PACKAGE_ROOT, "scripts", "serve_anchor.py"), dir, "--port", String(port)],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  return ready(child, `http://127.0.0.1:${port}`, "/docs");
}

/** Polls `probe` until the server answers (60 s at most). */
async function ready(child: ChildProcess, url: string, probe: string): Promise<Server> {
  const stop = () => child.kill("SIGTERM");
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: the server exited with ${child.exitCode}`);
    const ok = await fetch(url + probe).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, stop };
    await new Promise((r) => setTimeout(r, 200));
  }
  stop();
  throw new Error(`${url}: no answer within 60 s`);
}

/** Every server answers every case with the same probabilities (to 1e-4), or the comparison is off. */
async function checkSameAnswers(
  servers: Array<{ name: string; start: () => Promise<Server> }>,
  path: string,
  cases: Record<string, string>,
) {
  const answers = new Map<string, Record<string, number>>();
  for (const s of servers) {
    const server = await s.start();
    try {
      for (const [name, body] of Object.entries(cases)) {
        const r = await fetch(server.url + path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        });
        if (!r.ok) throw new Error(`${s.name} ${name}: HTTP ${r.status} ${await r.text()}`);
        const scores = ((await r.json()) as { predictions: Array<{ scores: Record<string, number> }> })
          .predictions[0].scores;
        const seen = answers.get(name);
        if (!seen) answers.set(name, scores);
        else {
          for (const [label, p] of Object.entries(seen)) {
            if (!(Math.abs(p - scores[label]) < 1e-4))
              throw new Error(`${s.name} ${name}: p(${label}) = ${scores[label]}, headstart ${p}`);
          }
        }
      }
    } finally {
      server.stop();
    }
  }
  say(`same answers: ${JSON.stringify(Object.fromEntries(answers))}`);
}

/** wrk with a POST script; its threads are at most the connections and the cores. */
async function wrk(url: string, body: string, connections: number, seconds: number): Promise<Figures> {
  const dir = join(tmpdir(), "headstart-bench-serve");
  mkdirSync(dir, { recursive: true });
  const script = join(dir, `post-${process.pid}.lua`);
  writeFileSync(
    script,
    `wrk.method = "POST"\nwrk.body = ${JSON.stringify(body)}\nwrk.headers["Content-Type"] = "application/json"\n`,
  );
  const threads = Math.max(1, Math.min(connections, 2));
  const { stdout } = await run(
    "wrk",
    ["-t", String(threads), "-c", String(connections), "-d", `${seconds}s`, "--latency", "-s", script, url],
    { maxBuffer: 2 ** 20 },
  );
  return parseWrk(stdout);
}

export function parseWrk(out: string): Figures {
  const rps = /Requests\/sec:\s*([\d.]+)/.exec(out);
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m").exec(out);
    if (!m) throw new Error(`wrk printed no ${p}% latency:\n${out}`);
    return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as "us" | "ms" | "s"];
  };
  if (!rps) throw new Error(`wrk printed no Requests/sec:\n${out}`);
  const errors = /Non-2xx or 3xx responses:\s*(\d+)/.exec(out);
  if (errors) throw new Error(`wrk: ${errors[1]} requests failed:\n${out}`);
  return { reqPerSec: Number(rps[1]), p50Ms: pct("50"), p99Ms: pct("99") };
}

try {
  await main();
} catch (err) {
  console.error(`bench:serve: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(2);
}
