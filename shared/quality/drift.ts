/**
 * Drift: does the current data still look like the reference? A two-sample test on the embeddings
 * (`learn/mmd.ts`: MMD with an RBF kernel on L2-normalized vectors, permutation p-value, each side
 * subsampled to 1,000 rows by default), drift when p < 0.05; with a head as the reference, also the
 * shift in the head's predicted-label mix (total variation distance of the two label shares).
 */
import { defaultBackboneFor } from "../backbone/defaults.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import type { Config } from "../config.ts";
import { readDatasetStatus } from "../datasets/ingest.ts";
import { partsOf } from "../embed/composite.ts";
import { HeadstartError, ValidationError } from "../errors.ts";
import { type LoadedHead, loadHead, predictVectors } from "../heads/predict.ts";
import { parseHeadRef, resolveHeadRef } from "../heads/version.ts";
import { labelShares, MMD_DEFAULTS, mmdTest, sampleIndices, totalVariation } from "../learn/mmd.ts";
import { mulberry32 } from "../learn/split.ts";
import type { ObjectStore } from "../store/types.ts";
import {
  captureSample,
  type DriftSample,
  type DriftSource,
  datasetSample,
  parseDriftSource,
} from "./drift-sources.ts";

export const DRIFT_METHOD = "mmd-rbf-permutation";

export interface DriftRequest {
  reference: string;
  current: string;
  /** For a dataset reference: the backbone (or `a+b`); a head always uses its own. */
  backbone?: string;
  /** Drift when the p-value is below this. */
  alpha?: number;
  permutations?: number;
  /** Rows drawn from each side at most (seeded). */
  maxItems?: number;
  seed?: number;
  /** For captured inputs: only those stored at or after this time (ms since the epoch). */
  capturedSinceMs?: number;
}

export interface LabelShift {
  reference: Record<string, number>;
  current: Record<string, number>;
  /** Total variation distance ½·Σ|p − q| of the two shares, in [0, 1]. */
  distance: number;
}

export interface DriftResult {
  drift: boolean;
  /** Unbiased MMD² of the two samples (≈ 0 without drift). */
  score: number;
  pValue: number;
  method: typeof DRIFT_METHOD;
  alpha: number;
  n: { reference: number; current: number };
  /** Rows the test used from each side after subsampling. */
  used: { reference: number; current: number };
  backbone: string;
  reference: { kind: DriftSource["kind"]; name: string; version?: string };
  current: { kind: DriftSource["kind"]; name: string; version?: string };
  bandwidth: number;
  permutations: number;
  seed: number;
  labelShift?: LabelShift;
  /** The head a reference or a capture names: whom a `drift.detected` event is about. */
  head?: { head: string; version: string };
}

/** Resolves a backbone reference (`a` or `a+b`) to its parts; Platform.backboneParts. */
export type ResolveParts = (ref: string, field: string) => Promise<BackboneSpec[]>;

export async function checkDrift(
  store: ObjectStore,
  config: Config,
  req: DriftRequest,
  resolveParts: ResolveParts,
): Promise<DriftResult> {
  const alpha = req.alpha ?? MMD_DEFAULTS.alpha;
  if (!(alpha > 0 && alpha < 1)) throw new ValidationError("alpha must be in (0, 1)", { field: "alpha" });
  const seed = req.seed ?? MMD_DEFAULTS.seed;
  const max = req.maxItems ?? MMD_DEFAULTS.maxPerSide;
  const refSource = await parseDriftSource(store, req.reference, "reference");
  const curSource = await parseDriftSource(store, req.current, "current");
  const head = refSource.kind === "head" ? await loadReferenceHead(store, refSource.ref) : undefined;
  const specs = head
    ? await headParts(head, req.backbone, resolveParts)
    : await datasetParts(store, config, refSource, req.backbone, resolveParts);
  const reference = head
    ? await datasetSample(store, refSource, head.doc.dataset.name, specs, head.doc.dataset.version)
    : await datasetSample(store, refSource, (refSource as { dataset: string }).dataset, specs);
  const current =
    curSource.kind === "capture"
      ? await captureSample(store, curSource.head, specs, config, { max, seed, sinceMs: req.capturedSinceMs })
      : await datasetSample(store, curSource, curSource.kind === "dataset" ? curSource.dataset : "", specs);
  const test = mmdTest(reference.vectors, reference.n, current.vectors, current.n, reference.dim, {
    maxPerSide: max,
    permutations: req.permutations,
    seed,
  });
  const shift = head ? await labelShift(head, reference, current, { max, seed }) : undefined;
  return {
    drift: test.pValue < alpha,
    score: test.mmd2,
    pValue: test.pValue,
    method: DRIFT_METHOD,
    alpha,
    n: test.n,
    used: test.used,
    backbone: specs.map((s) => s.id).join("+"),
    reference: describe(reference),
    current: describe(current),
    bandwidth: test.bandwidth,
    permutations: test.permutations,
    seed,
    ...(shift ? { labelShift: shift } : {}),
    ...(head ? { head: { head: head.doc.head, version: head.doc.version } } : {}),
  };
}

async function loadReferenceHead(store: ObjectStore, ref: string): Promise<LoadedHead> {
  const parsed = parseHeadRef(ref, "reference");
  return loadHead(store, parsed.head, await resolveHeadRef(store, parsed));
}

/** The head's own backbone parts, refused when one has been replaced since it was trained. */
async function headParts(head: LoadedHead, named: string | undefined, resolve: ResolveParts) {
  const record = head.doc.backbone;
  if (named !== undefined && named !== record.id) {
    throw new ValidationError(
      `head ${head.doc.head} was trained on ${record.id}; drift against it is measured there (leave out --backbone)`,
      { field: "backbone" },
    );
  }
  const specs = await resolve(record.id, "backbone");
  const expected = partsOf(record);
  if (specs.some((s, i) => s.sha256 !== expected[i]?.sha256)) {
    throw new HeadstartError(
      "conflict",
      `head ${head.doc.head}'s backbone ${record.id} has been replaced; retrain the head`,
      {
        field: "reference",
      },
    );
  }
  return specs;
}

async function datasetParts(
  store: ObjectStore,
  config: Config,
  source: DriftSource,
  named: string | undefined,
  resolve: ResolveParts,
) {
  if (named !== undefined) return resolve(named, "backbone");
  const dataset = (source as { dataset: string }).dataset;
  return resolve(defaultBackboneFor(await readDatasetStatus(store, dataset), config), "backbone");
}

/** Multiclass heads: the predicted-label shares of both sides and their distance. */
async function labelShift(
  head: LoadedHead,
  ref: DriftSample,
  cur: DriftSample,
  opts: { max: number; seed: number },
): Promise<LabelShift | undefined> {
  if (head.task !== "multiclass") return undefined;
  // Shares from a seeded sample of at most `max` rows a side: a large reference (a kNN head's
  // 25,000 training rows) is not scored in full.
  const rand = mulberry32(opts.seed ^ 0x1abe1);
  const predicted = async (s: DriftSample) => {
    const pick = sampleIndices(s.n, opts.max, rand);
    const rows = new Float32Array(pick.length * s.dim);
    pick.forEach((r, i) => {
      rows.set(s.vectors.subarray(r * s.dim, (r + 1) * s.dim), i * s.dim);
    });
    return labelShares((await predictVectors(head, rows, pick.length)).map((p) => p.label ?? ""));
  };
  const [reference, current] = await Promise.all([predicted(ref), predicted(cur)]);
  return { reference, current, distance: totalVariation(reference, current) };
}

function describe(s: DriftSample): DriftResult["reference"] {
  const src = s.source;
  const name = src.kind === "dataset" ? src.dataset : src.kind === "capture" ? src.head : src.ref;
  return { kind: src.kind, name, ...(s.version ? { version: s.version } : {}) };
}
