/**
 * `s3Faults`: the whole loop on radosgw behind the fault proxy at 5% and 20% of requests
 * (test/helpers/s3-fault-loop.ts), a few seeds per rate, then doctor through a clean client.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runFaultLoop } from "../../test/helpers/s3-fault-loop.ts";
import { startS3Server } from "../../test/helpers/s3-server.ts";
import type { Section } from "./section.ts";

const RATES = [0.05, 0.2] as const;

interface RateFigures {
  runs: number;
  requests: number;
  faults: number;
  retries: number;
  lost: number;
  corrupt: number;
  duplicated: number;
  /** Steps that completed, and steps that failed after the user's retries with a clean error. */
  stepsOk: number;
  stepsFailedCleanly: number;
  unclean: number;
}

export type S3FaultsResult = Record<string, RateFigures>;

export const s3FaultsSection: Section<S3FaultsResult> = {
  key: "s3Faults",
  title: "S3 faults (500, 503 SlowDown, resets, truncated bodies, stalls) injected in front of radosgw",
  async run(opts) {
    opts.say("s3Faults: starting radosgw");
    const s3 = await startS3Server();
    const dir = await mkdtemp(join(tmpdir(), "headstart-s3faults-"));
    const out: S3FaultsResult = {};
    try {
      for (const rate of RATES) {
        const f: RateFigures = {
          runs: 0,
          requests: 0,
          faults: 0,
          retries: 0,
          lost: 0,
          corrupt: 0,
          duplicated: 0,
          stepsOk: 0,
          stepsFailedCleanly: 0,
          unclean: 0,
        };
        for (let run = 0; run < opts.faultRuns; run++) {
          const seed = opts.seed + run * 7919 + Math.round(rate * 1000);
          opts.say(`s3Faults: ${rate * 100}% run ${run + 1}/${opts.faultRuns} (seed ${seed})`);
          const r = await runFaultLoop(s3, { rate, seed, dir: join(dir, `${rate}-${run}`) });
          f.runs++;
          f.requests += r.requests;
          f.faults += Object.values(r.faults).reduce((a, b) => a + b, 0);
          f.retries += r.retries;
          f.lost += r.lost;
          f.corrupt += r.corrupt;
          f.duplicated += r.duplicated;
          f.stepsOk += r.outcomes.filter((o) => o.ok).length;
          f.stepsFailedCleanly += r.outcomes.filter((o) => !o.ok).length;
          f.unclean += r.unclean.length;
        }
        out[`${rate * 100}%`] = f;
      }
      return out;
    } finally {
      await s3.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
  table: (r) =>
    Object.entries(r).map(
      ([rate, f]) =>
        `${rate}: ${f.runs} runs, ${f.requests} requests, ${f.faults} faults, ${f.retries} retries; ` +
        `lost ${f.lost}, corrupt ${f.corrupt}, duplicated ${f.duplicated}; steps ok ${f.stepsOk}, ` +
        `failed cleanly ${f.stepsFailedCleanly}, unclean ${f.unclean}`,
    ),
  ok: (r) =>
    Object.values(r).every(
      (f) => f.runs > 0 && f.lost === 0 && f.corrupt === 0 && f.duplicated === 0 && f.unclean === 0,
    ),
};
