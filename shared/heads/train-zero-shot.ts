/**
 * A zero-shot head: one from label names or short descriptions alone. Each description is embedded
 * with the head's own (text) backbone and becomes its class's centroid in a nearest-centroid head
 * (learn/centroid.ts); inputs and descriptions are first centered on the mean unit vector of the
 * dataset's rows — labelled or not, no label is read for it — which the benchmark showed is what
 * keeps glove's mean-pooled vectors from sending every input to one class (docs/benchmarks.md, "Data
 * quality: zero-shot heads"). Nothing is fitted on labelled rows, so every labelled row of the
 * dataset is a test row of the report; the temperature is the centroid head's `scale` (default 10),
 * not calibrated, and the version has no unknown-input detector.
 */
import { loadEmbedder } from "../backbone/registry.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import { normalizeText } from "../cache/address.ts";
import type { Config } from "../config.ts";
import { backboneRecord, normalizeConcat } from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { HeadstartError, ValidationError } from "../errors.ts";
import { checkTrainingBudget, type TrainLimits, withTrainingBudget } from "../learn/budget.ts";
import type { HeadParams } from "../learn/estimator.ts";
import { argmaxRows, classificationMetrics, logLoss } from "../learn/metrics.ts";
import { headKind } from "../learn/registry.ts";
import type { ObjectStore } from "../store/types.ts";
import { promoteNew, type TrainResult } from "./train.ts";
import { loadTrainingInputs } from "./train-inputs.ts";
import type { TrainOptions } from "./train-request.ts";
import { PhaseClock } from "./train-timings.ts";
import { type HeadDocument, newVersionId, type Report, readAlias, writeHeadVersion } from "./version.ts";
import {
  checkZeroShotBackbones,
  parseZeroShotLabels,
  ZERO_SHOT,
  ZERO_SHOT_KIND,
  type ZeroShotLabels,
} from "./zero-shot-labels.ts";

export async function trainZeroShot(
  store: ObjectStore,
  specs: readonly BackboneSpec[],
  opts: TrainOptions,
  config: Pick<Config, "modelsDir">,
  limits?: TrainLimits,
): Promise<TrainResult> {
  const run = () => zeroShot(store, specs, opts, config);
  return limits ? withTrainingBudget(limits, run) : run();
}

async function zeroShot(
  store: ObjectStore,
  specs: readonly BackboneSpec[],
  opts: TrainOptions,
  config: Pick<Config, "modelsDir">,
): Promise<TrainResult> {
  const started = performance.now();
  const clock = new PhaseClock();
  checkZeroShotBackbones(specs);
  const labels = parseZeroShotLabels(opts.labels ?? []);
  const previous = (await readAlias(store, opts.head))?.value.version ?? null;
  const [{ data }] = await loadTrainingInputs(store, opts, specs, undefined);
  const test = labelledRows(data, labels.classes);
  clock.lap("load");
  const descriptions = await embedDescriptions(store, specs, labels, config);
  const kind = headKind(ZERO_SHOT_KIND);
  const params: HeadParams = kind.resolveParams(opts.params ?? {}, labels.entries.length, data.dim);
  const center = meanUnitRow(data.vectors, data.rows.length, data.dim);
  const target = {
    task: "multiclass" as const,
    y: Int32Array.from(labels.entries, (e) => labels.classes.indexOf(e.label)),
    k: labels.classes.length,
  };
  const seed = opts.seed ?? 0;
  const model = await kind.fit(descriptions, labels.entries.length, data.dim, target, params, {
    seed,
    center,
  });
  clock.lap("fit");
  const metrics = test.n > 0 ? await evaluate(kind, model, data, test, labels.classes) : undefined;
  clock.lap("evaluate");
  const { head, report } = documents(opts, specs, data, {
    labels,
    params: { ...params, seed },
    model: kind.toJson(model),
  });
  report.trainSeconds = (performance.now() - started) / 1000;
  if (metrics) report.metrics = metrics;
  report.counts = { ...report.counts, test: test.n, unlabeled: data.rows.length - test.n };
  report.zeroShot = {
    labels: labels.entries,
    centeredOn: center ? data.rows.length : 0,
    evaluatedOn: test.n,
  };
  clock.lap("report");
  checkTrainingBudget();
  await writeHeadVersion(store, head, report);
  const notPromoted =
    (opts.promote ?? true) ? await promoteNew(store, opts.head, report.version, previous) : undefined;
  clock.lap("write");
  return {
    head: opts.head,
    version: report.version,
    type: ZERO_SHOT_KIND,
    task: "multiclass",
    params: head.params as HeadParams,
    metrics,
    evaluation: "test-split",
    trainSeconds: report.trainSeconds,
    timings: clock.timings,
    counts: report.counts,
    zeroShot: report.zeroShot,
    promoted: (opts.promote ?? true) && !notPromoted,
    ...(notPromoted ? { notPromoted } : {}),
  };
}

/** The dataset's labelled rows (all of them test rows); each label must be one of the classes. */
function labelledRows(data: EmbeddedDataset, classes: string[]): { pos: number[]; y: Int32Array; n: number } {
  const pos: number[] = [];
  const y: number[] = [];
  data.rows.forEach((row, i) => {
    if (row.label === undefined) return;
    const c = typeof row.label === "string" ? classes.indexOf(row.label) : -1;
    if (c < 0) {
      throw new ValidationError(
        `row ${row.id} of dataset ${data.dataset} is labelled ${JSON.stringify(row.label)}, which labels ` +
          `does not name (${classes.join(", ")}): a ${ZERO_SHOT} head is evaluated on every labelled row, ` +
          "so name each class the dataset uses",
        { field: "labels" },
      );
    }
    pos.push(i);
    y.push(c);
  });
  return { pos, y: Int32Array.from(y), n: pos.length };
}

/** Each description embedded as a cached text item would be; parts of `a+b` side by side. */
async function embedDescriptions(
  store: ObjectStore,
  specs: readonly BackboneSpec[],
  labels: ZeroShotLabels,
  config: Pick<Config, "modelsDir">,
): Promise<Float32Array> {
  const items = labels.entries.map((e) => ({ text: normalizeText(e.description) }));
  const parts: Array<{ vectors: Float32Array; dim: number }> = [];
  for (const spec of specs) {
    const embedder = await loadEmbedder(store, spec.id, config);
    if (embedder.spec.sha256 !== spec.sha256) {
      throw new HeadstartError("conflict", `backbone ${spec.id} changed while the head trained; retry`, {
        field: "backbone",
      });
    }
    parts.push({ vectors: await embedder.embed(items), dim: spec.dim });
  }
  return parts.length === 1 ? parts[0].vectors : normalizeConcat(parts, items.length);
}

/** The mean of the rows' unit vectors, or undefined for no rows. */
function meanUnitRow(X: Float32Array, n: number, d: number): Float32Array | undefined {
  if (n === 0) return undefined;
  const sum = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += X[i * d + j] * X[i * d + j];
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let j = 0; j < d; j++) sum[j] += X[i * d + j] * inv;
  }
  return Float32Array.from(sum, (s) => s / n);
}

async function evaluate(
  kind: ReturnType<typeof headKind>,
  model: unknown,
  data: EmbeddedDataset,
  test: { pos: number[]; y: Int32Array; n: number },
  classes: string[],
): Promise<Report["metrics"]> {
  const X = new Float32Array(test.n * data.dim);
  test.pos.forEach((p, i) => {
    X.set(data.vectors.subarray(p * data.dim, (p + 1) * data.dim), i * data.dim);
  });
  const proba = await kind.predict(model, X, test.n);
  const m = classificationMetrics(test.y, argmaxRows(proba, test.n, classes.length), classes);
  return { ...m, logLoss: logLoss(test.y, proba, classes.length) };
}

/** The version's head.json and report before the figures are filled in. */
function documents(
  opts: TrainOptions,
  specs: readonly BackboneSpec[],
  data: EmbeddedDataset,
  fitted: { labels: ZeroShotLabels; params: HeadParams; model: Record<string, unknown> },
): { head: HeadDocument; report: Report } {
  const record = backboneRecord(specs);
  const version = newVersionId();
  const createdAt = new Date().toISOString();
  const head: HeadDocument = {
    head: opts.head,
    version,
    type: ZERO_SHOT_KIND,
    task: "multiclass",
    labels: fitted.labels.classes,
    backbone: record,
    dataset: { name: opts.dataset, version: data.version },
    params: fitted.params,
    model: fitted.model,
    ...(opts.capture && opts.capture !== "none" ? { capture: opts.capture } : {}),
    createdAt,
  };
  const report: Report = {
    head: opts.head,
    version,
    type: ZERO_SHOT_KIND,
    task: "multiclass",
    dataset: head.dataset,
    backbone: record.id,
    params: fitted.params,
    evaluation: "test-split",
    counts: { train: 0, test: 0, unlabeled: 0, unsupported: data.unsupported, failed: data.failed.length },
    trainSeconds: 0,
    createdAt,
  };
  return { head, report };
}
