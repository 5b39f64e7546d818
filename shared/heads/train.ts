/**
 * Training a head on cached embeddings: never runs the backbone. Evaluates on the `test` split
 * when the dataset has one, else by stratified k-fold cross-validation, then stores an
 * immutable version and (by default) moves the `live` alias to it.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { loadEmbeddedDataset } from "../embed/embedded-dataset.ts";
import { UnsupportedError, ValidationError } from "../errors.ts";
import { assertName } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";
import { fitLogReg, type LogRegModel, logRegToJson, predictProbaLogReg } from "./logreg.ts";
import { argmaxRows, classificationMetrics, logLoss } from "./metrics.ts";
import { stratifiedKFold } from "./split.ts";
import {
  type HeadDocument,
  type HeadType,
  newVersionId,
  type Report,
  readAlias,
  setAlias,
  writeHeadVersion,
} from "./version.ts";

export const HEAD_TYPES: readonly HeadType[] = ["logreg"];

export interface TrainOptions {
  head: string;
  dataset: string;
  type?: string;
  /** Folds for cross-validation when the dataset has no test split. */
  cv?: number;
  seed?: number;
  /** L2 strength on standardized weights; default 1/n (scikit-learn's C = 1). */
  l2?: number;
  /** Move the `live` alias to the new version (default true). */
  promote?: boolean;
}

export interface TrainResult {
  head: string;
  version: string;
  type: HeadType;
  metrics: Report["metrics"];
  evaluation: Report["evaluation"];
  trainSeconds: number;
  counts: Report["counts"];
  promoted: boolean;
}

function subset(vectors: Float32Array, dim: number, idx: readonly number[]): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, i) => {
    out.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim);
  });
  return out;
}

export async function trainHead(
  store: ObjectStore,
  backbone: BackboneSpec,
  opts: TrainOptions,
): Promise<TrainResult> {
  assertName("head", opts.head, "head");
  assertName("dataset", opts.dataset, "dataset");
  const type = (opts.type ?? "logreg") as HeadType;
  if (!HEAD_TYPES.includes(type)) {
    throw new UnsupportedError(
      `unknown head type ${JSON.stringify(opts.type)}; available: ${HEAD_TYPES.join(", ")}`,
      {
        field: "type",
      },
    );
  }
  const folds = opts.cv ?? 5;
  if (!Number.isInteger(folds) || folds < 2 || folds > 50) {
    throw new ValidationError(`cv must be an integer in 2..50, got ${opts.cv}`, { field: "cv" });
  }
  if (opts.l2 !== undefined && !(opts.l2 >= 0 && Number.isFinite(opts.l2))) {
    throw new ValidationError(`l2 must be a finite number >= 0, got ${opts.l2}`, { field: "l2" });
  }
  const seed = opts.seed ?? 0;
  const started = performance.now();
  const data = await loadEmbeddedDataset(store, opts.dataset, backbone);
  const dim = data.dim;

  // Labelled rows only; a multi-label row needs a multi-label head.
  const labelled: number[] = [];
  let unlabeled = 0;
  data.rows.forEach((row, i) => {
    if (row.label === undefined) unlabeled++;
    else if (Array.isArray(row.label)) {
      throw new UnsupportedError(
        `row ${row.id} (line ${row.line}) has a multi-label list; ${type} heads take one label per row`,
        {
          field: `line ${row.line}`,
        },
      );
    } else labelled.push(i);
  });
  const labels = [...new Set(labelled.map((i) => String(data.rows[i].label)))].sort();
  if (labels.length < 2) {
    throw new ValidationError(
      `dataset ${opts.dataset} needs at least 2 distinct labels to train a classifier, found ${labels.length}`,
      {
        field: "label",
      },
    );
  }
  const classOf = new Map(labels.map((l, i) => [l, i]));
  const k = labels.length;
  const yOf = (idx: readonly number[]) =>
    Int32Array.from(idx, (i) => classOf.get(String(data.rows[i].label))!);
  const fit = (idx: readonly number[]): LogRegModel =>
    fitLogReg(subset(data.vectors, dim, idx), idx.length, dim, yOf(idx), k, {
      ...(opts.l2 === undefined ? {} : { l2: opts.l2 }),
    });

  const testIdx = labelled.filter((i) => data.rows[i].split === "test");
  const trainIdx = labelled.filter((i) => data.rows[i].split !== "test");
  let evaluation: Report["evaluation"];
  let model: LogRegModel;
  let yTrue: Int32Array;
  let proba: Float64Array;
  if (testIdx.length > 0) {
    if (new Set(yOf(trainIdx)).size < 2) {
      throw new ValidationError("the training split needs at least 2 distinct labels", { field: "split" });
    }
    evaluation = "test-split";
    model = fit(trainIdx);
    yTrue = yOf(testIdx);
    proba = predictProbaLogReg(model, subset(data.vectors, dim, testIdx), testIdx.length);
  } else {
    evaluation = "cv";
    const y = yOf(labelled);
    let foldOf: Int32Array;
    try {
      foldOf = stratifiedKFold(y, k, folds, seed);
    } catch (err) {
      // Name the option the caller set, not the helper's parameter.
      if (err instanceof ValidationError)
        throw new ValidationError(`cv=${folds}: ${err.message}`, { field: "cv" });
      throw err;
    }
    proba = new Float64Array(labelled.length * k);
    for (let f = 0; f < folds; f++) {
      const inFold: number[] = [];
      const outFold: number[] = [];
      for (let j = 0; j < labelled.length; j++) (foldOf[j] === f ? outFold : inFold).push(j);
      const m = fit(inFold.map((j) => labelled[j]));
      const p = predictProbaLogReg(
        m,
        subset(
          data.vectors,
          dim,
          outFold.map((j) => labelled[j]),
        ),
        outFold.length,
      );
      for (let t = 0; t < outFold.length; t++) proba.set(p.subarray(t * k, (t + 1) * k), outFold[t] * k);
    }
    yTrue = y;
    model = fit(labelled);
  }
  const yPred = argmaxRows(proba, yTrue.length, k);
  const metrics = { ...classificationMetrics(yTrue, yPred, labels), logLoss: logLoss(yTrue, proba, k) };
  const trainSeconds = (performance.now() - started) / 1000;

  const version = newVersionId();
  const createdAt = new Date().toISOString();
  const counts = {
    train: evaluation === "cv" ? labelled.length : trainIdx.length,
    test: testIdx.length,
    unlabeled,
    unsupported: data.unsupported,
  };
  const head: HeadDocument = {
    head: opts.head,
    version,
    type,
    labels,
    backbone: { id: backbone.id, sha256: backbone.sha256, dim },
    dataset: { name: opts.dataset, version: data.version },
    params: { l2: model.l2, cv: evaluation === "cv" ? folds : undefined, seed },
    model: logRegToJson(model) as unknown as Record<string, unknown>,
    createdAt,
  };
  const report: Report = {
    head: opts.head,
    version,
    type,
    evaluation,
    ...(evaluation === "cv" ? { folds } : {}),
    metrics,
    counts,
    trainSeconds,
    iterations: model.iterations,
    converged: model.converged,
    createdAt,
  };
  const previous = (await readAlias(store, opts.head))?.value.version ?? null;
  await writeHeadVersion(store, head, report);
  const promote = opts.promote ?? true;
  if (promote) await setAlias(store, opts.head, version, { expectedVersion: previous });
  return { head: opts.head, version, type, metrics, evaluation, trainSeconds, counts, promoted: promote };
}
