/**
 * Active learning: which of a dataset's unlabelled rows (rows without `label`) to label next. With
 * a head, its calibrated probabilities over the cached vectors say how unsure it is of each row
 * (margin, entropy); k-center greedy over the L2-normalized vectors spreads a batch away from the
 * labelled rows and from itself (coreset); the default `hybrid` does both: the HYBRID_POOL·k (5·k)
 * most uncertain rows (at most half of the unlabelled ones), grouped by k-means weighted by their
 * uncertainty into k groups, and the most typical row of each. For a single-label head with
 * COMMITTEE_MIN_ROWS to COMMITTEE_MAX_ROWS labelled rows, the hybrid's uncertainty is the margin of a
 * committee: COMMITTEE_SIZE heads of the default type, each fitted on a bootstrap resample of the
 * dataset's labelled rows, which measured ahead of the head's own margin on both of `npm run
 * bench:active`'s tasks (otherwise the head's own probabilities). Without a head (a cold start)
 * the batch is a diverse seed set: with nothing labelled, the hybrid's typical rows (the medoids
 * of k k-means groups of the unlabelled rows); once rows are labelled (or asked for), k-center
 * greedy away from them. The numerics are in learn/active.ts.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { loadBackboneSetDataset, partsOf } from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { ConflictError, ValidationError } from "../errors.ts";
import { type LoadedHead, loadHead, predictVectors } from "../heads/predict.ts";
import { DEFAULT_TYPE, inferTask, Problem } from "../heads/problem.ts";
import { parseHeadRef, resolveHeadRef } from "../heads/version.ts";
import {
  COMMITTEE_MIN_ROWS,
  COMMITTEE_SIZE,
  committeeProbabilities,
  entropyUncertainty,
  hybridPicks,
  kCenterGreedy,
  marginUncertainty,
  type Probabilities,
  topIndices,
  typicalPicks,
  unitRows,
} from "../learn/active.ts";
import type { Target } from "../learn/estimator.ts";
import { headKind } from "../learn/registry.ts";
import type { ObjectStore } from "../store/types.ts";

export const STRATEGIES = ["margin", "entropy", "coreset", "hybrid"] as const;
export type Strategy = (typeof STRATEGIES)[number];
export const DEFAULT_STRATEGY: Strategy = "hybrid";
export const DEFAULT_SUGGEST_K = 50;
export const MAX_SUGGEST_K = 1000;
/**
 * Above this many labelled rows the hybrid scores with the head's own probabilities: the committee
 * was measured at 20–400 labels, and each of its heads is a fit over every labelled row.
 */
export const COMMITTEE_MAX_ROWS = 2000;

export interface SuggestRequest {
  /** `head`, `head@version` or `head:alias`; absent: a cold start (diverse seed set). */
  head?: string;
  k?: number;
  strategy?: string;
  /** Without a head only: the backbone whose cache to read (default: the dataset's). */
  backbone?: string;
}

export interface SuggestItem {
  id: string;
  /** The row's text, for a text row: what a person reads to label it. */
  text?: string;
  /** The row's image, for an image row: its path below `datasets/<dataset>/files/`. */
  image?: string;
  /**
   * margin/entropy/hybrid: the uncertainty in [0, 1]; coreset: the distance in [0, 2]; a cold
   * start's hybrid: the share of the unlabelled rows its group holds, in (0, 1].
   */
  score: number;
  reason: string;
}

export interface Suggestions {
  dataset: string;
  /** The dataset version the rows come from. */
  datasetVersion: string;
  head?: string;
  version?: string;
  backbone: string;
  /**
   * The strategy that ran. A cold start (no head) runs `hybrid` as typical seeds (k-means medoids)
   * while nothing is labelled, and `coreset` once rows are labelled or when asked for.
   */
  strategy: Strategy;
  coldStart: boolean;
  labelled: number;
  unlabelled: number;
  items: SuggestItem[];
}

export interface SuggestDeps {
  store: ObjectStore;
  /** One backbone's spec by id. */
  backbone(id: string): Promise<BackboneSpec>;
  /** The specs of the named backbone, or of the dataset's default one. */
  datasetBackbones(dataset: string, ref?: string): Promise<BackboneSpec[]>;
}

export function parseStrategy(value: string | undefined): Strategy {
  if (value === undefined) return DEFAULT_STRATEGY;
  if ((STRATEGIES as readonly string[]).includes(value)) return value as Strategy;
  throw new ValidationError(
    `unknown strategy ${JSON.stringify(value)}: use one of ${STRATEGIES.join(", ")}`,
    { field: "strategy" },
  );
}

export function checkSuggestK(k: number | undefined): number {
  if (k === undefined) return DEFAULT_SUGGEST_K;
  if (!Number.isInteger(k) || k < 1 || k > MAX_SUGGEST_K) {
    throw new ValidationError(`k must be an integer in 1..${MAX_SUGGEST_K}`, { field: "k" });
  }
  return k;
}

export async function suggest(deps: SuggestDeps, dataset: string, req: SuggestRequest): Promise<Suggestions> {
  const strategy = parseStrategy(req.strategy);
  const k = checkSuggestK(req.k);
  if (req.head !== undefined && req.backbone !== undefined) {
    throw new ValidationError("name a head or a backbone, not both: a head reads its own backbone's cache", {
      field: "backbone",
    });
  }
  const head = req.head === undefined ? undefined : await loadHeadRef(deps.store, req.head);
  if (!head && (strategy === "margin" || strategy === "entropy")) {
    throw new ValidationError(
      `strategy ${strategy} needs a head (its probabilities); without one use coreset or hybrid, which give a diverse seed set`,
      { field: "head" },
    );
  }
  if (head?.task === "regression" && strategy !== "coreset") {
    throw new ValidationError(
      `head ${head.doc.head} is a regression head, which has no class probabilities: use strategy coreset`,
      { field: "strategy" },
    );
  }
  const specs = head ? await headBackbones(deps, head) : await deps.datasetBackbones(dataset, req.backbone);
  const data = await loadBackboneSetDataset(deps.store, dataset, specs);
  const pools = splitByLabel(data);
  const base = {
    dataset,
    datasetVersion: data.version,
    ...(head ? { head: head.doc.head, version: head.doc.version } : {}),
    backbone: specs.map((s) => s.id).join("+"),
    labelled: pools.labelled.length / data.dim,
    unlabelled: pools.ids.length,
  };
  if (!head) {
    // Nothing labelled yet: typical rows of every region; labelled rows to keep away from: k-center.
    const typical = strategy === "hybrid" && pools.labelledRows.length === 0;
    const items = typical ? typicalItems(pools, data.dim, k) : coresetItems(pools, data.dim, k);
    return {
      ...base,
      strategy: typical ? "hybrid" : "coreset",
      coldStart: true,
      items: withTexts(items, data),
    };
  }
  const items = await headItems(head, strategy, pools, data, k);
  return { ...base, strategy, coldStart: false, items: withTexts(items, data) };
}

/** Each item with its row's text (text rows) or image path (image rows): what the console shows. */
function withTexts(items: SuggestItem[], data: EmbeddedDataset): SuggestItem[] {
  const rows = new Map(data.rows.map((r) => [r.id, r]));
  return items.map((item) => {
    const row = rows.get(item.id);
    if (row?.text !== undefined)
      return { id: item.id, text: row.text, score: item.score, reason: item.reason };
    if (row?.image !== undefined)
      return { id: item.id, image: row.image, score: item.score, reason: item.reason };
    return item;
  });
}

async function loadHeadRef(store: ObjectStore, ref: string): Promise<LoadedHead> {
  const parsed = parseHeadRef(ref);
  const version = await resolveHeadRef(store, parsed);
  return loadHead(store, parsed.head, version);
}

/** The head's backbone parts in order, refusing one replaced since the head was trained. */
async function headBackbones(deps: SuggestDeps, head: LoadedHead): Promise<BackboneSpec[]> {
  const specs = await Promise.all(partsOf(head.doc.backbone).map((p) => deps.backbone(p.id)));
  const parts = partsOf(head.doc.backbone);
  if (specs.some((s, i) => s.sha256 !== parts[i].sha256)) {
    throw new ConflictError(
      `head ${head.doc.head}'s backbone ${head.doc.backbone.id} has been replaced; retrain the head`,
      {
        field: "head",
      },
    );
  }
  return specs;
}

/** The unlabelled rows (ids, vectors) and the labelled rows (indices into the rows, unit vectors). */
interface Pools {
  ids: string[];
  unlabelled: Float32Array;
  labelled: Float32Array;
  labelledRows: number[];
}

function splitByLabel(data: EmbeddedDataset): Pools {
  const dim = data.dim;
  const open: number[] = [];
  const done: number[] = [];
  data.rows.forEach((r, i) => {
    (r.label === undefined ? open : done).push(i);
  });
  const gather = (rows: number[]) => {
    const out = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => {
      out.set(data.vectors.subarray(r * dim, (r + 1) * dim), i * dim);
    });
    return out;
  };
  return {
    ids: open.map((i) => data.rows[i].id),
    unlabelled: gather(open),
    labelled: unitRows(gather(done), done.length, dim),
    labelledRows: done,
  };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;
const fmt = (x: number) => x.toFixed(3);

function coresetItems(pools: Pools, dim: number, k: number): SuggestItem[] {
  const candidates = unitRows(pools.unlabelled, pools.ids.length, dim);
  return kCenterGreedy({ candidates, covered: pools.labelled, dim, k }).map((p, j) => ({
    id: pools.ids[p.index],
    score: round(p.distance),
    reason:
      pools.labelled.length === 0 && j === 0
        ? "seed: the unlabelled row nearest the mean of all of them"
        : `${fmt(p.distance)} from the nearest labelled or chosen row (coreset)`,
  }));
}

const similarRows = (n: number) => `${n} similar row${n === 1 ? "" : "s"}`;

function typicalItems(pools: Pools, dim: number, k: number): SuggestItem[] {
  const candidates = unitRows(pools.unlabelled, pools.ids.length, dim);
  return typicalPicks({ candidates, dim, k }).map((p) => ({
    id: pools.ids[p.index],
    score: round(p.groupSize / p.grouped),
    reason: `seed: the most typical of ${similarRows(p.groupSize)} (k-means of ${p.grouped} unlabelled rows into ${Math.min(k, p.grouped)} groups)`,
  }));
}

async function headItems(
  head: LoadedHead,
  strategy: Strategy,
  pools: Pools,
  data: EmbeddedDataset,
  k: number,
): Promise<SuggestItem[]> {
  const dim = data.dim;
  if (strategy === "coreset") return coresetItems(pools, dim, k);
  const n = pools.ids.length;
  if (n === 0) return [];
  const probs = await probabilities(head, pools.unlabelled, n);
  const uncertainty = strategy === "entropy" ? entropyUncertainty(probs) : marginUncertainty(probs);
  const labels = head.doc.labels;
  const why = (i: number) =>
    `${strategy === "entropy" ? "entropy" : "margin"}: ${describe(labels, probs, i)}`;
  if (strategy !== "hybrid") {
    return topIndices(uncertainty, k).map((i) => ({
      id: pools.ids[i],
      score: round(uncertainty[i]),
      reason: why(i),
    }));
  }
  const committee = head.task === "multiclass" ? await committeeOf(data, pools) : undefined;
  const scores = committee ? marginUncertainty(committee.probs) : uncertainty;
  const because = (i: number) =>
    committee
      ? `margin of ${COMMITTEE_SIZE} bootstrap heads: ${describe(committee.labels, committee.probs, i)}`
      : why(i);
  const candidates = unitRows(pools.unlabelled, n, dim);
  return hybridPicks(scores, { candidates, dim, k }).map((p) => ({
    id: pools.ids[p.index],
    score: round(p.uncertainty),
    reason: `${because(p.index)}; the most typical of ${similarRows(p.groupSize)} among the ${p.pool} most uncertain`,
  }));
}

/**
 * The committee's mean probabilities over the unlabelled rows: COMMITTEE_SIZE heads of the default
 * single-label type with its default parameters (what `headstart train` fits), each on a bootstrap
 * resample of the labelled rows. None when the labelled rows are not single labels of two or more
 * classes, or are fewer than COMMITTEE_MIN_ROWS or more than COMMITTEE_MAX_ROWS.
 */
async function committeeOf(
  data: EmbeddedDataset,
  pools: Pools,
): Promise<{ probs: Probs; labels: string[] } | undefined> {
  const rows = pools.labelledRows;
  if (rows.length < COMMITTEE_MIN_ROWS || rows.length > COMMITTEE_MAX_ROWS) return undefined;
  if (inferTask(rows.map((i) => data.rows[i].label!)) !== "multiclass") return undefined;
  const problem = new Problem("multiclass", data, rows);
  if (problem.labels.length < 2) return undefined;
  const { y, k } = problem.target(rows.map((_, p) => p)) as Extract<Target, { task: "multiclass" }>;
  const kind = headKind(DEFAULT_TYPE.multiclass);
  const n = pools.ids.length;
  const mean = await committeeProbabilities(y, async (resample) => {
    const params = kind.resolveParams({}, resample.length, data.dim);
    const target = problem.target(resample);
    const model = await kind.fit(problem.X(resample), resample.length, data.dim, target, params, { seed: 0 });
    return kind.predict(model, pools.unlabelled, n);
  });
  return { probs: { probs: mean, n, k, exclusive: true }, labels: problem.labels };
}

type Probs = Probabilities & { probs: Float64Array };

/** The head's calibrated probabilities (multiclass) or per-label ones (multilabel), row-major. */
async function probabilities(head: LoadedHead, vectors: Float32Array, n: number): Promise<Probs> {
  const labels = head.doc.labels;
  const k = labels.length;
  const predictions = await predictVectors(head, vectors, n);
  const probs = new Float64Array(n * k);
  predictions.forEach((p, i) => {
    for (let c = 0; c < k; c++) probs[i * k + c] = p.scores?.[labels[c]] ?? 0;
  });
  return { probs, n, k, exclusive: head.task !== "multilabel" };
}

/** Why a row is uncertain: its two most probable classes, or its least decided label. */
function describe(labels: readonly string[], { probs, k, exclusive }: Probs, i: number): string {
  const order = topIndices(probs.subarray(i * k, (i + 1) * k), k);
  if (!exclusive) {
    const least = order.reduce((a, c) =>
      Math.abs(probs[i * k + c] - 0.5) < Math.abs(probs[i * k + a] - 0.5) ? c : a,
    );
    return `label ${labels[least]} at ${fmt(probs[i * k + least])}`;
  }
  if (k < 2) return `${labels[order[0]]} ${fmt(probs[i * k + order[0]])}`;
  return `${labels[order[0]]} ${fmt(probs[i * k + order[0]])} vs ${labels[order[1]]} ${fmt(probs[i * k + order[1]])}`;
}
