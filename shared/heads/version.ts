/**
 * Head versions are immutable (created with create-only writes); the `live` alias is the only
 * mutable pointer and moves by compare-and-swap.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { assertName, keys } from "../layout.ts";
import type { ReliabilityBin as ReliabilityBinOf } from "../learn/calibration.ts";
import { OOD_METHODS } from "../learn/ood.ts";
import { TASKS } from "../learn/task.ts";
import type {
  MultilabelMetrics as MultilabelMetricsOf,
  RegressionMetrics as RegressionMetricsOf,
} from "../learn/task-metrics.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

export const ClassMetrics = z.object({
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: z.number(),
});

export const Metrics = z.object({
  accuracy: z.number(),
  macroF1: z.number(),
  perClass: z.record(z.string(), ClassMetrics),
  confusion: z.array(z.array(z.number())),
  n: z.number(),
  logLoss: z.number().optional(),
});
export type Metrics = z.infer<typeof Metrics>;

export const MultilabelMetrics = z.object({
  /** Rows whose whole label set was predicted exactly. */
  subsetAccuracy: z.number(),
  microF1: z.number(),
  macroF1: z.number(),
  /** Fraction of (row, label) decisions that were wrong. */
  hammingLoss: z.number(),
  perLabel: z.record(z.string(), ClassMetrics.extend({ threshold: z.number() })),
  n: z.number(),
}) satisfies z.ZodType<MultilabelMetricsOf>;
export type MultilabelMetrics = z.infer<typeof MultilabelMetrics>;

export const RegressionMetrics = z.object({
  rmse: z.number(),
  mae: z.number(),
  r2: z.number(),
  n: z.number(),
}) satisfies z.ZodType<RegressionMetricsOf>;
export type RegressionMetrics = z.infer<typeof RegressionMetrics>;

/** A head type name; the registry (learn/registry.ts) decides which exist. */
export const HeadType = z.string().regex(/^[a-z][a-z0-9-]*$/);
export type HeadType = z.infer<typeof HeadType>;
/** The task enum's schema, from its one definition (`learn/task.ts`). */
export const HeadTask = z.enum(TASKS);
export type HeadTask = z.infer<typeof HeadTask>;

export const Calibration = z.object({
  method: z.literal("temperature"),
  /** Logits are divided by this before the softmax (> 1 softens, < 1 sharpens). */
  temperature: z.number().positive(),
});
export type Calibration = z.infer<typeof Calibration>;

/**
 * A multiclass version's unknown-input detector (absent on other tasks and on versions trained
 * before it existed: those answer no `unknownScore`). An input whose score is above `threshold` is
 * unknown; the threshold flagged `rate` of held-out in-distribution rows at training.
 */
export const UnknownDetector = z.object({
  method: z.enum(OOD_METHODS),
  threshold: z.number(),
  /** Share of held-out in-distribution rows the threshold flags (the request's `unknownRate`, default 0.05). */
  rate: z.number(),
  /** The scorer in `learn/ood.ts`'s JSON form (`{type: "ood", version: 1, method, …}`). */
  scorer: z.record(z.string(), z.unknown()),
});
export type UnknownDetector = z.infer<typeof UnknownDetector>;

/** How the unknown-input threshold was chosen (the report's `unknown`). */
export const UnknownReport = UnknownDetector.omit({ scorer: true }).extend({
  /** The held-out in-distribution rows the threshold was chosen on. */
  fittedOn: z.string(),
  heldOut: z.number().int(),
  /** Bytes of the stored scorer in head.json (its JSON text). */
  bytes: z.number().int(),
  /**
   * `unknownScorer: auto` (the default): why `method` was kept. Seen classes took turns standing in
   * for an unseen one (`standIns`); `auroc` is each scorer's mean AUROC over those turns.
   */
  selection: z
    .object({
      reason: z.string(),
      standIns: z.array(z.string()),
      auroc: z.record(z.enum(OOD_METHODS), z.number()).optional(),
    })
    .optional(),
});
export type UnknownReport = z.infer<typeof UnknownReport>;

export const BackbonePart = z.object({ id: z.string(), sha256: z.string(), dim: z.number().int() });

export const HeadDocument = z.object({
  head: z.string(),
  version: z.string(),
  type: HeadType,
  /** Absent on heads written before multi-task support: multiclass. */
  task: HeadTask.optional(),
  /** Class names (multiclass), label names (multilabel) or `[target]` (regression). */
  labels: z.array(z.string()),
  /**
   * The input the head was trained on. Several backbones (`a+b`): `id` is the reference, `sha256` a
   * hash of the parts' sha256s, `dim` the total, and `parts` lists them in concatenation order
   * (absent on single-backbone heads and on heads written before composites).
   */
  backbone: z.object({
    id: z.string(),
    sha256: z.string(),
    dim: z.number().int(),
    parts: z.array(BackbonePart).min(2).optional(),
  }),
  dataset: z.object({ name: z.string(), version: z.string() }),
  params: z.record(z.string(), z.unknown()),
  /** The fitted model in its type's JSON form (each type's module documents it). */
  model: z.record(z.string(), z.unknown()),
  calibration: Calibration.optional(),
  unknown: UnknownDetector.optional(),
  /**
   * Which inputs of online predictions this version keeps for feedback and data-quality work
   * (`heads/<h>/captures/`): `none` (absent: the default, privacy first), `uncertain`, `all`.
   */
  capture: z.enum(["none", "uncertain", "all"]).optional(),
  createdAt: z.string(),
});
export type HeadDocument = z.infer<typeof HeadDocument>;

/** One bin of a reliability diagram (top-label confidence). */
export const ReliabilityBin = z.object({
  lower: z.number(),
  upper: z.number(),
  count: z.number().int(),
  /** Mean top-label probability of the rows in the bin (0 when empty). */
  confidence: z.number(),
  /** Fraction of those rows predicted correctly (0 when empty). */
  accuracy: z.number(),
}) satisfies z.ZodType<ReliabilityBinOf>;
export type ReliabilityBin = z.infer<typeof ReliabilityBin>;

export const CalibrationReport = Calibration.extend({
  /** Expected calibration error of the out-of-sample probabilities before and after scaling. */
  eceBefore: z.number(),
  eceAfter: z.number(),
  /** Where the temperature was fitted: out-of-fold predictions on the training rows. */
  fittedOn: z.string(),
  reliabilityBefore: z.array(ReliabilityBin),
  reliabilityAfter: z.array(ReliabilityBin),
});
export type CalibrationReport = z.infer<typeof CalibrationReport>;

export const SearchCandidate = z.object({
  /** The backbone (or `a+b` set) the candidate was evaluated on, when `auto` searched backbones. */
  backbone: z.string().optional(),
  type: z.string(),
  params: z.record(z.string(), z.unknown()),
  /** Mean cross-validated score (macro-F1, or RMSE for regression) and its spread over folds. */
  score: z.number(),
  std: z.number(),
  seconds: z.number(),
  chosen: z.boolean(),
});
/** Configurations a search did not score, and why: its time budget, or a screen that ruled the input out. */
export const SearchSkipped = z.object({
  backbone: z.string().optional(),
  type: z.string(),
  reason: z.string(),
});
export const Search = z.object({
  metric: z.enum(["macroF1", "rmse"]),
  folds: z.number().int(),
  candidates: z.array(SearchCandidate),
  skipped: z.array(SearchSkipped).optional(),
  /** The search's time budget (`budgetSeconds`), and the seconds it took. */
  budgetSeconds: z.number().optional(),
  seconds: z.number().optional(),
  /** Why the choice is not the best score: a cheaper backbone set that scores within the noise. */
  chosenBy: z.string().optional(),
});
export type Search = z.infer<typeof Search>;

/**
 * A version trained `withFeedback`: its feedback rows, and how the version live before it
 * (`before`) and this one (`after`) score on them — accuracy (multiclass: the label; multilabel:
 * the exact label set) or, for regression, RMSE.
 */
export const FeedbackReport = z.object({
  dataset: z.string(),
  datasetVersion: z.string(),
  rows: z.number().int(),
  metric: z.enum(["accuracy", "rmse"]),
  before: z.object({ version: z.string(), value: z.number() }).optional(),
  /** Why there is no `before` (no earlier version, another backbone or other classes). */
  beforeSkipped: z.string().optional(),
  after: z.object({ version: z.string(), value: z.number() }),
});
export type FeedbackReport = z.infer<typeof FeedbackReport>;

/**
 * Multiclass: how many training rows confident learning flags as probably mislabelled, judged by this
 * head's own out-of-fold probabilities (present when they were computed: calibration or CV).
 */
export const LabelIssuesReport = z.object({
  count: z.number().int(),
  rows: z.number().int(),
  estimatedNoiseRate: z.number(),
});

/** A zero-shot version (`train --type zero-shot`): what it was built from instead of training rows. */
export const ZeroShotReport = z.object({
  /** The descriptions as given; a class named twice had two, whose unit vectors were averaged. */
  labels: z.array(z.object({ label: z.string(), description: z.string() })),
  /** Dataset rows whose mean unit vector centers inputs and descriptions (0: not centered). */
  centeredOn: z.number().int(),
  /** Labelled rows the metrics are on: every one a test row, as nothing was trained on them. */
  evaluatedOn: z.number().int(),
});

export const Report = z.object({
  head: z.string(),
  version: z.string(),
  type: HeadType,
  task: HeadTask.optional(),
  dataset: z.object({ name: z.string(), version: z.string() }).optional(),
  backbone: z.string().optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  evaluation: z.enum(["test-split", "cv"]),
  folds: z.number().int().optional(),
  /** Multiclass metrics (after calibration, which never changes the arg-max). */
  metrics: Metrics.optional(),
  multilabel: MultilabelMetrics.optional(),
  regression: RegressionMetrics.optional(),
  calibration: CalibrationReport.optional(),
  search: Search.optional(),
  counts: z.object({
    train: z.number(),
    test: z.number(),
    unlabeled: z.number(),
    unsupported: z.number(),
    /** Rows whose file could not be embedded (absent before images). */
    failed: z.number().optional(),
  }),
  trainSeconds: z.number(),
  iterations: z.number().optional(),
  epochs: z.number().optional(),
  converged: z.boolean().optional(),
  feedback: FeedbackReport.optional(),
  unknown: UnknownReport.optional(),
  labelIssues: LabelIssuesReport.optional(),
  zeroShot: ZeroShotReport.optional(),
  createdAt: z.string(),
});
export type Report = z.infer<typeof Report>;

/** One move of an alias, kept in the alias document itself (so it is written by the same CAS). */
export const AliasMove = z.object({
  version: z.string(),
  /** Where it pointed before this move (absent for the first). */
  from: z.string().optional(),
  at: z.string(),
  /** `promote` (or a training's promotion) or `rollback`. */
  by: z.enum(["promote", "rollback"]),
});
export type AliasMove = z.infer<typeof AliasMove>;

/** Moves an alias document keeps: the most recent, oldest first. */
export const MAX_ALIAS_HISTORY = 100;

export const Alias = z.object({
  head: z.string(),
  alias: z.string(),
  version: z.string(),
  /** Where the alias pointed before its last move: what `rollback` returns to. */
  previous: z.string().optional(),
  updatedAt: z.string(),
  /** Its last MAX_ALIAS_HISTORY moves, oldest first (absent on aliases written before history). */
  history: z.array(AliasMove).optional(),
});

/** `head`, `head@version` or `head:alias`: which version of a head a caller means. */
export interface HeadRef {
  head: string;
  version?: string;
  alias?: string;
}

export function parseHeadRef(ref: string, field = "head"): HeadRef {
  const m = /^([^@:]+)(?:@([^@:]+)|:([^@:]+))?$/.exec(ref);
  if (!m)
    throw new ValidationError(
      `invalid head reference ${JSON.stringify(ref)}: use head, head@version or head:alias`,
      { field },
    );
  const out: HeadRef = { head: assertName("head", m[1], field) };
  if (m[2] !== undefined) out.version = assertName("version", m[2], field);
  if (m[3] !== undefined) out.alias = assertName("alias", m[3], field);
  return out;
}

/** The version a reference names: itself, its alias's target, or the `live` alias's. */
export async function resolveHeadRef(store: ObjectStore, ref: HeadRef): Promise<string> {
  if (ref.version) return ref.version;
  const alias = ref.alias ?? "live";
  const found = await readAlias(store, ref.head, alias);
  if (!found) {
    throw new NotFoundError(alias === "live" ? `head ${ref.head}` : `alias ${alias} of head ${ref.head}`, {
      field: "head",
    });
  }
  return found.value.version;
}

/**
 * How long predict trusts an alias it has read. A serving process answers thousands of predictions
 * a second and an alias moves a few times a day, so predict re-reads it at most this often (a file
 * read, or an S3 GET, per request otherwise). A move made in this process (setAlias, rollback, a
 * deleted head) is seen at once; one made by another process within this many milliseconds.
 */
export const ALIAS_CACHE_MS = 1_000;
const aliasCache = new Map<string, { at: number; version: string | null }>();
const aliasCacheKey = (store: ObjectStore, head: string, alias: string) => `${store.url}\0${head}\0${alias}`;

/** `resolveHeadRef` for the predict path: an alias read within ALIAS_CACHE_MS is not read again. */
export async function resolveHeadRefCached(store: ObjectStore, ref: HeadRef): Promise<string> {
  if (ref.version) return ref.version;
  const alias = ref.alias ?? "live";
  const key = aliasCacheKey(store, ref.head, alias);
  const hit = aliasCache.get(key);
  if (hit && Date.now() - hit.at < ALIAS_CACHE_MS && hit.version !== null) return hit.version;
  const at = Date.now();
  try {
    const version = await resolveHeadRef(store, { ...ref, alias });
    aliasCache.set(key, { at, version });
    return version;
  } catch (err) {
    aliasCache.delete(key);
    throw err;
  }
}

/** Forgets what predict read of the head's aliases (all of them, or one), after a move or a delete. */
export function forgetAliases(store: ObjectStore, head: string, alias?: string): void {
  if (alias !== undefined) {
    aliasCache.delete(aliasCacheKey(store, head, alias));
    return;
  }
  const prefix = aliasCacheKey(store, head, "");
  for (const key of aliasCache.keys()) if (key.startsWith(prefix)) aliasCache.delete(key);
}

/** Sortable by creation time, unique without coordination. */
export function newVersionId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `v${stamp}-${randomBytes(3).toString("hex")}`;
}

export async function writeHeadVersion(
  store: ObjectStore,
  head: HeadDocument,
  report: Report,
): Promise<void> {
  // Report first: head.json is what makes a version exist, so it is written last.
  await putJson(store, keys.headFile(head.head, head.version, "report.json"), report, { ifNoneMatch: "*" });
  await putJson(store, keys.headFile(head.head, head.version, "head.json"), head, { ifNoneMatch: "*" });
}

export async function readAlias(store: ObjectStore, head: string, alias = "live") {
  return getJson(store, keys.headAlias(head, alias), Alias);
}

/** Compare-and-swap attempts of a move that expects nothing in particular (see setAlias). */
const UNCONDITIONAL_ATTEMPTS = 50;

/**
 * Points `alias` at `version`; `expectedVersion` guards against overwriting someone else's move
 * (a lost race is then a 409). Without it the caller wants the alias here whatever it pointed
 * to, so a lost compare-and-swap is retried on the new state rather than refused: concurrent
 * promotions all land, one after another, each recorded in the alias's history.
 */
export async function setAlias(
  store: ObjectStore,
  head: string,
  version: string,
  opts: { alias?: string; expectedVersion?: string | null; by?: AliasMove["by"] } = {},
): Promise<void> {
  assertName("version", version, "version");
  if (!(await store.head(keys.headFile(head, version, "head.json")))) {
    throw new NotFoundError(`head ${head} version ${version}`, { field: "version" });
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await moveAlias(store, head, version, opts);
    } catch (err) {
      const retry = opts.expectedVersion === undefined && attempt < UNCONDITIONAL_ATTEMPTS;
      if (!(err instanceof AliasRaceLost && retry)) throw err;
      // Jittered, growing pause so racing movers spread out instead of colliding again.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(100, 2 * attempt)));
    }
  }
}

/** The alias changed between our read and our write: a 409 unless the move is retried. */
class AliasRaceLost extends ConflictError {}

/** One compare-and-swap of the alias document. */
async function moveAlias(
  store: ObjectStore,
  head: string,
  version: string,
  opts: { alias?: string; expectedVersion?: string | null; by?: AliasMove["by"] },
): Promise<void> {
  const alias = opts.alias ?? "live";
  const current = await readAlias(store, head, alias);
  if (opts.expectedVersion !== undefined && (current?.value.version ?? null) !== opts.expectedVersion) {
    throw new ConflictError(
      `alias ${alias} of head ${head} points to ${current?.value.version ?? "nothing"}, not ${opts.expectedVersion}`,
      {
        field: "alias",
      },
    );
  }
  const at = new Date().toISOString();
  const move: AliasMove = {
    version,
    ...(current ? { from: current.value.version } : {}),
    at,
    by: opts.by ?? "promote",
  };
  const body = {
    head,
    alias,
    version,
    ...(current && current.value.version !== version ? { previous: current.value.version } : {}),
    updatedAt: at,
    history: [...(current?.value.history ?? []), move].slice(-MAX_ALIAS_HISTORY),
  };
  try {
    await putJson(
      store,
      keys.headAlias(head, alias),
      body,
      current ? { ifMatch: current.etag } : { ifNoneMatch: "*" },
    );
    forgetAliases(store, head, alias);
  } catch (err) {
    if (err instanceof PreconditionFailedError) {
      throw new AliasRaceLost(`alias ${alias} of head ${head} was moved concurrently; retry`, {
        field: "alias",
      });
    }
    throw err;
  }
}

/** Moves `alias` back to where it pointed before its last move. */
export async function rollbackAlias(
  store: ObjectStore,
  head: string,
  alias = "live",
): Promise<{ from: string; to: string }> {
  const current = await readAlias(store, head, alias);
  if (!current) throw new NotFoundError(`alias ${alias} of head ${head}`, { field: "alias" });
  const to = current.value.previous;
  if (!to)
    throw new ConflictError(`alias ${alias} of head ${head} has no previous version to roll back to`, {
      field: "alias",
    });
  await setAlias(store, head, to, { alias, expectedVersion: current.value.version, by: "rollback" });
  return { from: current.value.version, to };
}

export async function listVersions(store: ObjectStore, head: string): Promise<string[]> {
  const versions: string[] = [];
  for (const obj of await store.list(keys.headVersionPrefix(head))) {
    const m = /\/versions\/([^/]+)\/head\.json$/.exec(obj.key);
    if (m) versions.push(m[1]);
  }
  return versions.sort();
}

export async function readHeadVersion(store: ObjectStore, head: string, version?: string) {
  assertName("head", head, "head");
  let v = version;
  if (v === undefined) {
    const alias = await readAlias(store, head);
    if (!alias) throw new NotFoundError(`head ${head}`, { field: "head" });
    v = alias.value.version;
  }
  const doc = await getJson(store, keys.headFile(head, v, "head.json"), HeadDocument);
  if (!doc)
    throw new NotFoundError(`head ${head} version ${v}`, {
      field: version === undefined ? "head" : "version",
    });
  const report = await getJson(store, keys.headFile(head, v, "report.json"), Report);
  return { head: doc.value, report: report?.value };
}

/** Every alias of a head with its document (`headstart ls`, and what a delete must respect). */
export async function listAliases(store: ObjectStore, head: string): Promise<Array<z.infer<typeof Alias>>> {
  const out: Array<z.infer<typeof Alias>> = [];
  for (const obj of await store.list(keys.headAliasPrefix(head))) {
    const m = /\/aliases\/([^/]+)\.json$/.exec(obj.key);
    const found = m ? await readAlias(store, head, m[1]) : undefined;
    if (found) out.push(found.value);
  }
  return out;
}

/**
 * Forgets `alias`'s rollback target when it is `version` (about to be deleted), by
 * compare-and-swap: `rollback` then refuses instead of naming a version that is gone.
 */
export async function dropRollbackTarget(
  store: ObjectStore,
  head: string,
  alias: string,
  version: string,
): Promise<void> {
  for (let attempt = 0; attempt < UNCONDITIONAL_ATTEMPTS; attempt++) {
    const current = await readAlias(store, head, alias);
    if (!current || current.value.previous !== version) return;
    const { previous: _dropped, ...rest } = current.value;
    try {
      await putJson(store, keys.headAlias(head, alias), rest, { ifMatch: current.etag });
      return;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
  throw new AliasRaceLost(`alias ${alias} of head ${head} kept moving; retry`, { field: "alias" });
}

/** A version's report, or undefined when it has none (a training that stopped midway). */
export async function readReport(store: ObjectStore, head: string, version: string) {
  return (await getJson(store, keys.headFile(head, version, "report.json"), Report))?.value;
}
