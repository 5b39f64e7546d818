/**
 * The whole `headstart train` command as a user runs it, for `npm run bench:heads`: a fresh CLI
 * process per run (start-up, loading the cached vectors, fit, calibration, evaluation, the
 * unknown-input scorer, the stored version), timed from spawn to exit, with the phases the command
 * itself reports (`timings` of `train --json`).
 *
 * Each dataset directory (embeddings.npy + rows.jsonl, the `headstart export` format) is imported
 * once with `import-embeddings` into a store of its own under `<root>/train-command/`.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { PACKAGE_ROOT } from "../shared/config.ts";
import type { TrainTimings } from "../shared/heads/train-timings.ts";

const run = promisify(execFile);
const CLI = join(PACKAGE_ROOT, "bin", "headstart.js");
const DATASET = "bench";
const BACKBONE = "bench-vectors";

export interface TrainCommandRun {
  /** Spawn to exit of the CLI process. */
  wallSeconds: number;
  /** What the command reports: its own time up to the stored version. */
  trainSeconds: number;
  timings: TrainTimings;
  accuracy: number;
  error?: string;
}

export class TrainCommand {
  private constructor(private readonly store: string) {}

  /** The dataset imported into its own store (once: a marker file records the import). */
  static async prepare(dir: string, root: string): Promise<TrainCommand> {
    const store = join(root, "train-command", basename(dir));
    const marker = join(store, "imported");
    if (!existsSync(marker)) {
      mkdirSync(store, { recursive: true });
      await cli(store, [
        "import-embeddings",
        DATASET,
        "--npy",
        join(dir, "embeddings.npy"),
        "--rows",
        join(dir, "rows.jsonl"),
        "--backbone",
        BACKBONE,
      ]);
      writeFileSync(marker, `${new Date().toISOString()}\n`);
    }
    return new TrainCommand(store);
  }

  /** `headstart train bench --type <type> --json` with default options, not promoted. */
  async run(type: string): Promise<TrainCommandRun> {
    const args = ["train", DATASET, "--head", `bench-${type}`, "--type", type, "--backbone", BACKBONE];
    const t0 = performance.now();
    try {
      const out = await cli(this.store, [...args, "--no-promote"]);
      const wallSeconds = (performance.now() - t0) / 1000;
      const r = JSON.parse(out) as {
        trainSeconds: number;
        timings: TrainTimings;
        metrics?: { accuracy: number };
      };
      return {
        wallSeconds,
        trainSeconds: r.trainSeconds,
        timings: r.timings,
        accuracy: r.metrics?.accuracy ?? Number.NaN,
      };
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      return {
        wallSeconds: Number.NaN,
        trainSeconds: Number.NaN,
        timings: {} as TrainTimings,
        accuracy: Number.NaN,
        error: (e.stderr || e.message).trim().slice(-300),
      };
    }
  }
}

async function cli(store: string, args: string[]): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    [CLI, "--store", store, "--log-level", "warn", "--json", ...args],
    {
      maxBuffer: 64 * 2 ** 20,
    },
  );
  return stdout;
}
