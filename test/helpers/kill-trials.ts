/**
 * SIGKILL trials: the real CLI in a child process, killed with SIGKILL at a random moment of
 * `ingest` (upload + ingest + embed), `embed`, `train` or `promote`, then run again to completion;
 * afterwards the store is checked — every accepted row of the dataset embedded (else `lost`),
 * `headstart doctor`'s duplicated and corrupt/missing counts, every alias on a loadable version —
 * and `doctor --repair` (grace 0: the killed writer is dead) must leave it clean.
 *
 *   const r = await runKillTrials({ trials: 50, seed: 7, say: console.error });
 *   r; // { trials, lost, duplicated, corrupt, doctorClean, killedMidWrite, byOp, … }
 *
 * Used by test/sigkill.test.ts (a few trials) and `npm run bench:reliability` (≥ 50).
 */
import { spawn } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadConfig } from "../../shared/config.ts";
import { runDoctor } from "../../shared/doctor/index.ts";
import { loadEmbeddedDataset } from "../../shared/embed/embedded-dataset.ts";
import { readAlias } from "../../shared/heads/version.ts";
import { mulberry32 } from "../../shared/learn/split.ts";
import { Platform } from "../../shared/platform.ts";
import { FsStore } from "../../shared/store/fs.ts";
import { CLI_BIN, cli } from "./cli.ts";
import { tempDir } from "./platform.ts";
import { NEGATIVE, NEUTRAL, POSITIVE, toJsonlText, writeTinyBackbone } from "./tiny-backbone.ts";

export const KILL_OPS = ["ingest", "embed", "train", "promote"] as const;
export type KillOp = (typeof KILL_OPS)[number];

export interface KillTrialsResult {
  trials: number;
  /** Accepted rows of the dataset without an embedding after the rerun. */
  lost: number;
  /** Items committed in more than one shard (doctor). */
  duplicated: number;
  /** Corrupt or missing objects (doctor), and aliases on a version that does not load. */
  corrupt: number;
  /** Trials after which `doctor --repair` left no problem. */
  doctorClean: number;
  /** Trials whose killed process had changed the store (the kill landed mid-work, not at start-up). */
  killedMidWrite: number;
  /** Leftovers of killed writes that doctor found and removed, over all trials. */
  strayTemporariesRepaired: number;
  byOp: Record<KillOp, number>;
  failures: string[];
}

/** `n` sentiment rows whose texts differ per `round`, so each upload has new items to embed. */
function rows(n: number, round: number, rand: () => number) {
  const pick = (w: string[]) => w[Math.floor(rand() * w.length)];
  return Array.from({ length: n }, (_, i) => {
    const pos = i % 2 === 0;
    const words = [
      pick(NEUTRAL),
      pick(pos ? POSITIVE : NEGATIVE),
      pick(NEUTRAL),
      pick(pos ? POSITIVE : NEGATIVE),
    ];
    return { id: `r${i}`, text: `${words.join(" ")} #${round}-${i}`, label: pos ? "pos" : "neg" };
  });
}

/** Runs the CLI and SIGKILLs it after `afterMs`; resolves when it is gone. */
function killedRun(args: string[], env: NodeJS.ProcessEnv, afterMs: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: "ignore",
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), afterMs);
    child.on("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function snapshot(store: FsStore): Promise<string> {
  const objects = await store.list("");
  return objects.map((o) => `${o.key}:${o.etag}`).join("\n");
}

interface Fixture {
  dir: string;
  store: FsStore;
  platform: Platform;
  env: NodeJS.ProcessEnv;
  manifest: string;
}

async function fixture(): Promise<Fixture> {
  const dir = await tempDir("headstart-kill-");
  const store = new FsStore(join(dir, "store"));
  const config = loadConfig(
    {},
    { store: store.root, defaultBackbone: "tiny-text", modelsDir: join(dir, "models") },
  );
  const platform = new Platform(store, config);
  await writeTinyBackbone(join(dir, "backbone"));
  await platform.addBackbone(join(dir, "backbone"));
  const env = {
    HEADSTART_STORE: store.root,
    HEADSTART_DEFAULT_BACKBONE: "tiny-text",
    HEADSTART_MODELS_DIR: join(dir, "models"),
  };
  return { dir, store, platform, env, manifest: join(dir, "kill.jsonl") };
}

const ROWS = 1200;
const SHARD = "40";

/** The command a trial kills, after setting up what it needs; `prepare` runs uninterrupted. */
async function commandFor(op: KillOp, fx: Fixture, round: number, rand: () => number): Promise<string[]> {
  const upload = async () => writeFile(fx.manifest, toJsonlText(rows(ROWS, round, rand)));
  const must = async (args: string[]) => {
    const r = await cli(args, fx.env);
    if (r.code !== 0) throw new Error(`headstart ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  switch (op) {
    case "ingest":
      await upload();
      return ["ingest", fx.manifest, "--dataset", "kill", "--shard-size", SHARD];
    case "embed":
      await upload();
      await must(["ingest", fx.manifest, "--dataset", "kill", "--no-embed"]);
      return ["embed", "kill", "--shard-size", SHARD];
    case "train":
      return ["train", "kill", "--head", "kill", "--cv", "5", "--seed", String(round)];
    case "promote": {
      const versions = (await fx.platform.headInfo("kill")).versions;
      return ["promote", "kill", versions[Math.floor(rand() * versions.length)]];
    }
  }
}

/**
 * Runs the command uninterrupted, watching the store: when it first changed it and when the
 * command ended (ms from spawn). Kills drawn between the two land on real work, not on start-up.
 */
async function writeWindow(args: string[], fx: Fixture): Promise<{ firstWrite: number; end: number }> {
  const before = await snapshot(fx.store);
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI_BIN, ...args], {
    env: { ...process.env, ...fx.env },
    stdio: "ignore",
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
  let firstWrite: number | undefined;
  let done = false;
  void exited.then(() => {
    done = true;
  });
  while (!done && firstWrite === undefined) {
    if ((await snapshot(fx.store)) !== before) firstWrite = performance.now() - t0;
    else await new Promise((r) => setTimeout(r, 10));
  }
  const code = await exited;
  const end = performance.now() - t0;
  if (code !== 0) throw new Error(`headstart ${args.join(" ")} exited ${code}`);
  return { firstWrite: firstWrite ?? end, end };
}

export async function runKillTrials(opts: {
  trials: number;
  seed: number;
  say?: (m: string) => void;
}): Promise<KillTrialsResult> {
  const rand = mulberry32(opts.seed);
  const fx = await fixture();
  const result: KillTrialsResult = {
    trials: 0,
    lost: 0,
    duplicated: 0,
    corrupt: 0,
    doctorClean: 0,
    killedMidWrite: 0,
    strayTemporariesRepaired: 0,
    byOp: { ingest: 0, embed: 0, train: 0, promote: 0 },
    failures: [],
  };
  try {
    // One uninterrupted round sets up the dataset and a head, and finds when each step writes.
    const windows = {} as Record<KillOp, { firstWrite: number; end: number }>;
    for (const op of KILL_OPS) windows[op] = await writeWindow(await commandFor(op, fx, 0, rand), fx);
    for (let t = 0; t < opts.trials; t++) {
      const op = KILL_OPS[t % KILL_OPS.length];
      const args = await commandFor(op, fx, t + 1, rand);
      // From a little before the first write to the end: a kill before any write proves little.
      const from = windows[op].firstWrite * 0.9;
      const delay = from + rand() * Math.max(windows[op].end - from, 20);
      const before = await snapshot(fx.store);
      await killedRun(args, fx.env, delay);
      if ((await snapshot(fx.store)) !== before) result.killedMidWrite++;
      const rerun = await cli(args, fx.env);
      if (rerun.code !== 0) result.failures.push(`trial ${t} (${op}) rerun: ${rerun.stderr.trim()}`);
      await check(fx, result);
      result.trials++;
      result.byOp[op]++;
      opts.say?.(`trial ${t + 1}/${opts.trials}: ${op} killed after ${Math.round(delay)} ms`);
    }
    return result;
  } finally {
    await rm(fx.dir, { recursive: true, force: true });
  }
}

async function check(fx: Fixture, result: KillTrialsResult): Promise<void> {
  const spec = await fx.platform.backbone("tiny-text");
  try {
    const embedded = await loadEmbeddedDataset(fx.store, "kill", spec);
    const status = await fx.platform.datasetInfo("kill");
    result.lost += status.status.rows.accepted - embedded.rows.length - embedded.failed.length;
  } catch (err) {
    const m = /^(\d+) of \d+ rows/.exec((err as Error).message);
    result.lost += m ? Number(m[1]) : ROWS;
    result.failures.push(`embedding check: ${(err as Error).message}`);
  }
  const alias = await readAlias(fx.store, "kill");
  if (alias) {
    await fx.platform.headVersion("kill", alias.value.version).catch((err: Error) => {
      result.corrupt++;
      result.failures.push(`live alias on ${alias.value.version}: ${err.message}`);
    });
  }
  const first = await runDoctor(fx.store, { repair: true, graceMs: 0 });
  result.duplicated += first.summary.duplicated;
  result.corrupt += first.summary.corrupt + first.summary.missing;
  result.strayTemporariesRepaired += first.summary.repaired;
  const after = await runDoctor(fx.store, { graceMs: 0 });
  if (after.ok) result.doctorClean++;
  else result.failures.push(`doctor after repair: ${JSON.stringify(after.summary)}`);
}
