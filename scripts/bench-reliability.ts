/**
 * `npm run bench:reliability [-- --json] [--quick] [--duration 60] [--seed N] [--fuzz-requests N]
 * [--only fuzz,load,…]`: the figures of issue 13, one section each (scripts/reliability/):
 *  - fuzz: ≥ 10,000 generated requests across every route: 5xx 0, every 4xx names its field;
 *  - load: 60 s at 8 and 64 connections on predict (embedding input and text input);
 *  - concurrency: 16 trainings and 16 promotions at once on one head;
 *  - sigkill: `--kill-trials` (50) SIGKILLs at random points of ingest/embed/train/promote;
 *  - s3Faults: `--fault-runs` (3) runs of the whole loop on radosgw behind the fault proxy at 5%
 *    and 20% of requests;
 * `--quick`: 2,000 fuzz requests, 5 s per load case, 8 kill trials, 1 fault run per rate.
 * `--server-node-options` is the load test server's NODE_OPTIONS (default
 * `--max-old-space-size=128`, as a deployment sizes a server's heap; `""` for V8's default).
 * Exits 1 when a section misses its bar.
 */
import { parseArgs } from "node:util";
import { machine } from "./bench-common.ts";
import { concurrencySection } from "./reliability/concurrency.ts";
import { fuzzSection } from "./reliability/fuzz.ts";
import { loadSection } from "./reliability/load.ts";
import { s3FaultsSection } from "./reliability/s3-faults.ts";
import type { BenchOptions, Section } from "./reliability/section.ts";
import { sigkillSection } from "./reliability/sigkill.ts";

/** The sections this bench runs, in order. Adding one is an import and a line here. */
const SECTIONS: Section<never>[] = [
  sigkillSection,
  s3FaultsSection,
  fuzzSection,
  loadSection,
  concurrencySection,
] as Section<never>[];

/** Keys the issue asks for whose sections are not written yet. */
const EXPECTED = ["sigkill", "s3Faults", "fuzz", "load", "concurrency"];

async function main() {
  const { values } = parseArgs({
    options: {
      json: { type: "boolean", default: false },
      quick: { type: "boolean", default: false },
      duration: { type: "string" },
      warmup: { type: "string" },
      seed: { type: "string" },
      "fuzz-requests": { type: "string" },
      concurrency: { type: "string", default: "16" },
      "kill-trials": { type: "string" },
      "fault-runs": { type: "string" },
      only: { type: "string" },
      // A server's heap is sized for its machine in production; without a cap V8 grows it lazily
      // (RSS +15–40% a minute under this load, live heap ~23 MB) and RSS growth says nothing.
      "server-node-options": { type: "string", default: "--max-old-space-size=128" },
    },
  });
  const int = (name: string, v: string | undefined, fallback: number, min: number) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`);
    return n;
  };
  const opts: BenchOptions = {
    fuzzRequests: int("fuzz-requests", values["fuzz-requests"], values.quick ? 2_000 : 10_000, 1),
    seed: int("seed", values.seed, Math.floor(Math.random() * 2 ** 31), 0),
    durationS: int("duration", values.duration, values.quick ? 5 : 60, 1),
    warmupS: int("warmup", values.warmup, values.quick ? 2 : 20, 0),
    concurrency: int("concurrency", values.concurrency, 16, 1),
    serverNodeOptions: values["server-node-options"] ?? "",
    killTrials: int("kill-trials", values["kill-trials"], values.quick ? 8 : 50, 1),
    faultRuns: int("fault-runs", values["fault-runs"], values.quick ? 1 : 3, 1),
    say: (m) => process.stderr.write(`bench:reliability: ${m}\n`),
  };
  const only = values.only?.split(",");
  const chosen = SECTIONS.filter((s) => !only || only.includes(s.key));
  const results: Record<string, unknown> = {};
  const verdicts: Record<string, boolean> = {};
  for (const section of chosen) {
    const r = await section.run(opts);
    results[section.key] = r;
    verdicts[section.key] = section.ok(r as never);
  }
  const missing = EXPECTED.filter((k) => !SECTIONS.some((s) => s.key === k));
  const output = {
    ...Object.fromEntries(EXPECTED.map((k) => [k, results[k] ?? null])),
    ...Object.fromEntries(Object.entries(results).filter(([k]) => !EXPECTED.includes(k))),
    missing: Object.fromEntries(missing.map((k) => [k, "not measured by this bench yet"])),
    ok: verdicts,
    options: {
      fuzzRequests: opts.fuzzRequests,
      seed: opts.seed,
      durationS: opts.durationS,
      concurrency: opts.concurrency,
      serverNodeOptions: opts.serverNodeOptions,
    },
    machine: await machine(),
  };
  if (values.json) process.stdout.write(`${JSON.stringify(output, null, 2)}\n`);
  else {
    const lines: string[] = [];
    for (const section of chosen) {
      lines.push(`${section.title}: ${verdicts[section.key] ? "met" : "NOT met"}`);
      for (const l of section.table(results[section.key] as never)) lines.push(`  ${l}`);
      lines.push("");
    }
    for (const k of missing) lines.push(`${k}: missing (not measured by this bench yet)`);
    lines.push("", `machine: ${JSON.stringify(output.machine)}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  if (Object.values(verdicts).some((v) => !v)) process.exitCode = 1;
}

main().catch((err) => {
  process.stderr.write(`bench:reliability: ${(err as Error).stack}\n`);
  process.exit(1);
});
