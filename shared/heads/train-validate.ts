/**
 * Everything about a training request that can be checked without its data, so a request handed
 * to the train Lambda fails now (400) rather than later in the background.
 */
import { PART_SEPARATOR, parseBackboneRef } from "../embed/composite.ts";
import { ValidationError } from "../errors.ts";
import { assertName } from "../layout.ts";
import { findHeadKind, HEAD_KINDS, headKind } from "../learn/registry.ts";
import { TASKS } from "../learn/task.ts";
import { DEFAULT_TYPE } from "./problem.ts";
import {
  MAX_BACKBONE_CANDIDATES,
  MAX_BUDGET_SECONDS,
  type TrainOptions,
  UNKNOWN_SCORERS,
} from "./train-request.ts";
import { isZeroShotRequest, validateZeroShot } from "./zero-shot-labels.ts";

export function validateTrainOptions(opts: TrainOptions): void {
  assertName("head", opts.head, "head");
  assertName("dataset", opts.dataset, "dataset");
  const folds = opts.cv ?? 5;
  if (!Number.isInteger(folds) || folds < 2 || folds > 50) {
    throw new ValidationError(`cv must be an integer in 2..50, got ${opts.cv}`, { field: "cv" });
  }
  if (opts.task !== undefined && !TASKS.includes(opts.task)) {
    throw new ValidationError(`task must be one of ${TASKS.join(", ")}, got ${JSON.stringify(opts.task)}`, {
      field: "task",
    });
  }
  const auto = opts.type === "auto";
  if (auto && opts.params && Object.keys(opts.params).length > 0) {
    throw new ValidationError("params cannot be combined with type auto, which searches them", {
      field: "params",
    });
  }
  if (!auto && opts.candidates !== undefined) {
    throw new ValidationError("candidates only apply to type auto", { field: "candidates" });
  }
  validateBudget(opts, auto);
  if (opts.backbone !== undefined) parseBackboneRef(opts.backbone, "backbone");
  if (opts.backbones !== undefined) validateBackbones(opts, auto);
  validateCandidates(opts);
  if (isZeroShotRequest(opts)) validateZeroShot(opts);
  else if (!auto) validateTypeAndParams(opts);
  validateUnknown(opts);
}

/** The unknown-input options as the CLI passes them unchecked (the API's schema checks the same). */
function validateUnknown(opts: TrainOptions): void {
  const rate = opts.unknownRate;
  if (rate !== undefined && !(typeof rate === "number" && rate > 0 && rate <= 0.5)) {
    throw new ValidationError(`unknownRate must be a number in (0, 0.5], got ${rate}`, {
      field: "unknownRate",
    });
  }
  const scorer = opts.unknownScorer;
  if (scorer !== undefined && !UNKNOWN_SCORERS.includes(scorer)) {
    throw new ValidationError(
      `unknownScorer must be one of ${UNKNOWN_SCORERS.join(", ")}, got ${JSON.stringify(scorer)}`,
      {
        field: "unknownScorer",
      },
    );
  }
}

/** `budgetSeconds`: auto's search budget, so only with auto (the CLI passes it unchecked). */
function validateBudget(opts: TrainOptions, auto: boolean): void {
  const b = opts.budgetSeconds;
  if (b === undefined) return;
  if (!auto) throw new ValidationError("budgetSeconds only applies to type auto", { field: "budgetSeconds" });
  if (!(typeof b === "number" && Number.isFinite(b) && b > 0 && b <= MAX_BUDGET_SECONDS)) {
    throw new ValidationError(`budgetSeconds must be a number in (0, ${MAX_BUDGET_SECONDS}], got ${b}`, {
      field: "budgetSeconds",
    });
  }
}

function validateBackbones(opts: TrainOptions, auto: boolean): void {
  if (!auto) throw new ValidationError("backbones only apply to type auto", { field: "backbones" });
  if (opts.backbone !== undefined) {
    throw new ValidationError("send backbone or backbones (auto's candidates), not both", {
      field: "backbones",
    });
  }
  if (
    !Array.isArray(opts.backbones) ||
    opts.backbones.length < 1 ||
    opts.backbones.length > MAX_BACKBONE_CANDIDATES
  ) {
    throw new ValidationError(`backbones must list 1..${MAX_BACKBONE_CANDIDATES} backbone references`, {
      field: "backbones",
    });
  }
  const seen = new Set<string>();
  for (const ref of opts.backbones) {
    // `a+b` and `b+a` are different inputs (the order is the layout), so only exact repeats clash.
    const key = parseBackboneRef(ref, "backbones").join(PART_SEPARATOR);
    if (seen.has(key)) {
      throw new ValidationError(`backbones lists ${key} twice`, { field: "backbones" });
    }
    seen.add(key);
  }
}

function validateCandidates(opts: TrainOptions): void {
  for (const t of opts.candidates ?? []) {
    const kind = findHeadKind(t);
    if (!kind) {
      throw new ValidationError(
        `unknown candidate ${JSON.stringify(t)}; available: ${Object.keys(HEAD_KINDS).join(", ")}`,
        { field: "candidates" },
      );
    }
    if (opts.task !== undefined && kind.task !== opts.task) {
      throw new ValidationError(`candidate ${t} learns ${kind.task} targets, not ${opts.task}`, {
        field: "candidates",
      });
    }
  }
}

/** A named type must learn the task asked for; params must suit the type that will train. */
function validateTypeAndParams(opts: TrainOptions): void {
  if (opts.type !== undefined) {
    const kind = headKind(opts.type);
    if (opts.task !== undefined && kind.task !== opts.task) {
      throw new ValidationError(`head type ${opts.type} learns ${kind.task} targets, not ${opts.task}`, {
        field: "type",
      });
    }
    // Parameter names, types and ranges; limits that depend on the data are applied at training.
    kind.resolveParams(opts.params ?? {}, Number.MAX_SAFE_INTEGER, 1);
  } else if (opts.task !== undefined) {
    headKind(DEFAULT_TYPE[opts.task]).resolveParams(opts.params ?? {}, Number.MAX_SAFE_INTEGER, 1);
  }
  // Params with neither type nor task go to the default type of the task the labels imply.
}
