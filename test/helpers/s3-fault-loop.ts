/**
 * The whole loop (publish a backbone, ingest, embed, train twice, promote, predict) through a
 * Platform whose S3Store talks to radosgw through the fault proxy at `rate`, each step retried
 * by the "user" a few times; then `doctor` through a client without the proxy, and the figures:
 * items lost (accepted rows without an embedding, trained versions that do not load), corrupt,
 * duplicated, the store's retries. Every failure must be clean (a HeadstartError that names no
 * endpoint, never `internal`, never a hang): the others are listed in `unclean`.
 *
 *   const r = await runFaultLoop(s3, { rate: 0.05, seed: 5, dir });
 *
 * Used by test/s3-faults.test.ts and `npm run bench:reliability` (section `s3Faults`).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { S3Store } from "../../shared/aws/s3-store.ts";
import { loadConfig } from "../../shared/config.ts";
import { runDoctor } from "../../shared/doctor/index.ts";
import { loadEmbeddedDataset } from "../../shared/embed/embedded-dataset.ts";
import { HeadstartError } from "../../shared/errors.ts";
import { Platform } from "../../shared/platform.ts";
import { type FaultProxyStats, startFaultProxy } from "./fault-proxy.ts";
import type { S3Server } from "./s3-server.ts";
import { tinySentimentRows, toJsonlText, writeTinyBackbone } from "./tiny-backbone.ts";

const BACKBONE = "tiny-text";
export const SOCKET_TIMEOUT_MS = 1_000;
export const STALL_MS = 2_000;
/** A step that takes longer than this hangs, which is the one thing it must never do. */
const STEP_DEADLINE_MS = 60_000;
const USER_TRIES = 4;
const INPUTS = ["wonderful brilliant fun", "awful dull boring"];

export interface StepOutcome {
  step: string;
  tries: number;
  ok: boolean;
  errors: string[];
}

export interface FaultLoopResult {
  rate: number;
  seconds: number;
  outcomes: StepOutcome[];
  /** Failures that were not clean errors (should be none). */
  unclean: string[];
  requests: number;
  faults: FaultProxyStats["faults"];
  retries: number;
  lost: number;
  corrupt: number;
  duplicated: number;
  /** Labels predicted during the faults, and by a client without them (same version). */
  predicted?: { version: string; labels: string[] };
  served?: { version: string; labels: string[] };
  versions: { first?: string; second?: string; promoted: boolean };
}

/** A user's view: run the step, retry a failure a few times; record whether each failure is clean. */
async function asUser<T>(
  step: string,
  fn: () => Promise<T>,
  outcomes: StepOutcome[],
  unclean: string[],
): Promise<T | undefined> {
  const outcome: StepOutcome = { step, tries: 0, ok: false, errors: [] };
  outcomes.push(outcome);
  for (let i = 0; i < USER_TRIES; i++) {
    outcome.tries++;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${step} hung for ${STEP_DEADLINE_MS} ms`)),
        STEP_DEADLINE_MS,
      );
    });
    try {
      const value = await Promise.race([fn(), deadline]);
      outcome.ok = true;
      return value;
    } catch (err) {
      const clean =
        err instanceof HeadstartError &&
        err.code !== "internal" &&
        !/127\.0\.0\.1|http:\/\//.test(err.message);
      if (!clean) unclean.push(`${step}: ${(err as Error).stack}`);
      outcome.errors.push(err instanceof HeadstartError ? `${err.code}: ${err.message}` : String(err));
    } finally {
      clearTimeout(timer);
    }
  }
  return undefined;
}

export async function runFaultLoop(
  s3: S3Server,
  opts: { rate: number; seed: number; dir: string },
): Promise<FaultLoopResult> {
  const { rate, seed, dir } = opts;
  await writeTinyBackbone(join(dir, "backbone"));
  await writeFile(join(dir, "films.jsonl"), toJsonlText(tinySentimentRows(120, { withSplit: true })));
  const bucket = await s3.createBucket();
  const proxy = await startFaultProxy(s3.endpoint, { rate, seed, stallMs: STALL_MS });
  try {
    const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
    const scratchDir = join(dir, `scratch-${seed}`);
    const faulty = new S3Store({
      bucket,
      prefix: "acme",
      endpoint: proxy.endpoint,
      region: s3.region,
      credentials,
      scratchDir,
      socketTimeoutMs: SOCKET_TIMEOUT_MS,
      connectTimeoutMs: SOCKET_TIMEOUT_MS,
    });
    const clean = new S3Store({
      bucket,
      prefix: "acme",
      endpoint: s3.endpoint,
      region: s3.region,
      credentials,
    });
    const config = loadConfig(
      {},
      {
        store: faulty.url,
        s3Endpoint: proxy.endpoint,
        region: s3.region,
        defaultBackbone: BACKBONE,
        modelsDir: join(dir, "models"),
        scratchDir,
        logLevel: "silent",
      },
    );
    const platform = new Platform(faulty, config);
    const outcomes: StepOutcome[] = [];
    const unclean: string[] = [];
    const started = Date.now();
    const step = <T>(name: string, fn: () => Promise<T>) => asUser(name, fn, outcomes, unclean);

    await step("backbone", () => platform.addBackbone(join(dir, "backbone")));
    await step("ingest", () => platform.upload("films", join(dir, "films.jsonl")));
    const embedded = await step("embed", () => platform.embed("films", { shardSize: 20 }));
    const first = await step("train", () => platform.train({ dataset: "films", head: "films" }));
    const second = await step("train again", () =>
      platform.train({ dataset: "films", head: "films", promote: false }),
    );
    const promoted = second
      ? await step("promote", async () => {
          await platform.promote("films", second.version);
          return true;
        })
      : undefined;
    const predicted = await step("predict", () => platform.predict("films", { inputs: INPUTS }));
    const seconds = (Date.now() - started) / 1000;

    // Figures through a client that sees no faults.
    const reader = new Platform(clean, { ...config, store: clean.url, s3Endpoint: s3.endpoint });
    let lost = 0;
    if (embedded) {
      const spec = await reader.backbone(BACKBONE);
      const rows = await loadEmbeddedDataset(clean, "films", spec).catch(() => undefined);
      const accepted = (await reader.datasetInfo("films")).status.rows.accepted;
      lost += accepted - (rows?.rows.length ?? 0);
    }
    for (const v of [first?.version, second?.version]) {
      if (v) await reader.headVersion("films", v).catch(() => lost++);
    }
    const report = await runDoctor(clean);
    const served = predicted ? await reader.predict("films", { inputs: INPUTS }) : undefined;
    const labels = (r: { predictions: Array<{ label?: unknown }> }) =>
      r.predictions.map((p) => String(p.label));
    return {
      rate,
      seconds,
      outcomes,
      unclean,
      requests: proxy.stats().requests,
      faults: proxy.stats().faults,
      retries: faulty.stats().retries,
      lost,
      corrupt: report.summary.corrupt + report.summary.missing,
      duplicated: report.summary.duplicated,
      predicted: predicted && { version: predicted.version, labels: labels(predicted) },
      served: served && { version: served.version, labels: labels(served) },
      versions: { first: first?.version, second: second?.version, promoted: promoted === true },
    };
  } finally {
    await proxy.close();
  }
}
