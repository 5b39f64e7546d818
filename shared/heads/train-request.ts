/**
 * The train request as the platform receives it, below the API: the HTTP body
 * (`shared/api/schemas.ts` adds the OpenAPI descriptions on top) and the train Lambda's event
 * (`train-dispatch.ts`) are both built from this one schema.
 */
import { z } from "zod";
import { BACKBONE_REF_PATTERN, BACKBONE_REF_RULE } from "../embed/composite.ts";
import { NAME_PATTERN, NAME_RULE } from "../layout.ts";
import { OOD_METHODS } from "../learn/ood.ts";
import { HeadTask } from "./version.ts";

/** A backbone id, or several joined by `+` (parts and repeats are checked by the platform). */
const BackboneRef = z.string().max(255).regex(BACKBONE_REF_PATTERN, BACKBONE_REF_RULE);

/** `unknownScorer` values: a scorer of `learn/ood.ts`, or `auto` (the default) to pick one per head. */
export const UNKNOWN_SCORERS = ["auto", ...OOD_METHODS] as const;
export type UnknownScorerChoice = (typeof UNKNOWN_SCORERS)[number];

/** Most backbone candidates one `auto` search evaluates. */
export const MAX_BACKBONE_CANDIDATES = 8;

/** The longest search budget a request may set (a day: a training's own budget is far below it). */
export const MAX_BUDGET_SECONDS = 86_400;

export const TrainRequestBody = z.strictObject({
  dataset: z.string().regex(NAME_PATTERN, NAME_RULE),
  /** A head type from the registry, or `auto`; default: the task's default type (logreg, multilabel, ridge). */
  type: z.string().max(64).optional(),
  /** Hyper-parameters of `type` (each type documents its own; unknown names are rejected). */
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).optional(),
  /** What is learned; inferred from the labels when absent (see `inferTask`). */
  task: HeadTask.optional(),
  /** Candidate types for `auto` (default: every type of the task). */
  candidates: z.array(z.string().max(64)).min(1).max(20).optional(),
  /** A backbone id, or `a+b[+c…]` to train on the parts' normalized vectors side by side. */
  backbone: BackboneRef.optional(),
  /**
   * Backbones `auto` may choose from (ids or `a+b` sets); each is evaluated with the same folds on
   * the rows every candidate can embed, and the chosen head is trained on those rows. `auto` with
   * neither this nor `backbone` searches every backbone cached for the dataset and their sets.
   */
  backbones: z.array(BackboneRef).min(1).max(MAX_BACKBONE_CANDIDATES).optional(),
  /**
   * `auto`: seconds the search may spend before it stops starting candidates and fits the best it
   * scored (at most half the training's own budget, whatever is asked).
   */
  budgetSeconds: z.number().gt(0).max(MAX_BUDGET_SECONDS).optional(),
  /** Folds for cross-validation (evaluation without a test split, model selection, calibration). */
  cv: z.number().int().min(2).max(50).optional(),
  seed: z.number().int().min(0).optional(),
  /** Fit a temperature on out-of-fold probabilities (multiclass heads; default true). */
  calibrate: z.boolean().optional(),
  /**
   * Also train on the head's feedback (corrections sent to `/feedback`): its rows are embedded with
   * the head's backbone, a dataset row with the same text takes the feedback's label, the others
   * join the training rows; the report scores the previous and the new version on them.
   */
  withFeedback: z.boolean().optional(),
  /** Which online predictions' inputs the new version keeps (default none: privacy first). */
  capture: z.enum(["none", "uncertain", "all"]).optional(),
  /**
   * Multiclass heads: the share of held-out in-distribution rows the unknown-input threshold flags
   * as unknown (default 0.05, i.e. it keeps 95%).
   */
  unknownRate: z.number().gt(0).max(0.5).optional(),
  /**
   * Multiclass heads: the unknown-input scorer, or `auto` (the default) to pick one per head at
   * training (heads/train-unknown.ts).
   */
  unknownScorer: z.enum(UNKNOWN_SCORERS).optional(),
  /**
   * `type: "zero-shot"`: the classes, each `name: description` (the description defaults to the
   * name; a name given twice has two descriptions, averaged). Required by that type, refused by others.
   */
  labels: z.array(z.string().max(1300)).min(2).max(1000).optional(),
  /** Move the `live` alias to the new version (default true). */
  promote: z.boolean().default(true),
});
export type TrainRequestBody = z.infer<typeof TrainRequestBody>;

/**
 * A training request as the platform takes it (the CLI, the API, the train Lambda): the schema's
 * fields as a caller may leave them out, plus the head. `params` take any value here because the
 * CLI's parsed flags arrive unchecked; each type's `resolveParams` checks them (at validation, and
 * again when training resolves them against the data), so a JSON body and a flag fail alike.
 */
export type TrainOptions = Omit<z.input<typeof TrainRequestBody>, "params"> & {
  head: string;
  /** Hyper-parameters of `type` (each type documents its own; unknown names are rejected). */
  params?: Record<string, unknown>;
};
