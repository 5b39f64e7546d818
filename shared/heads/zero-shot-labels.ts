/**
 * The request side of zero-shot heads (`train --type zero-shot --labels "pos: a positive review" …`):
 * parsing the `labels` entries and the checks a zero-shot request must pass before any data is read.
 * Training is `train-zero-shot.ts`.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { LabelName } from "../datasets/manifest.ts";
import { ValidationError } from "../errors.ts";
import { headKind } from "../learn/registry.ts";
import type { TrainOptions } from "./train-request.ts";

export const ZERO_SHOT = "zero-shot";
/** A zero-shot head is a nearest-centroid head whose centroids are the descriptions' vectors. */
export const ZERO_SHOT_KIND = "centroid";
export const MAX_DESCRIPTION_CHARS = 1000;

export interface ZeroShotLabels {
  /** Class names in the order of their first entry: the head's labels. */
  classes: string[];
  /** Every entry; a class named twice has two descriptions, whose vectors are averaged. */
  entries: Array<{ label: string; description: string }>;
}

/** `name: description` (the description defaults to the name) for each entry of `labels`. */
export function parseZeroShotLabels(labels: readonly unknown[]): ZeroShotLabels {
  const entries = labels.map((raw, i) => {
    const field = `labels[${i}]`;
    if (typeof raw !== "string") throw new ValidationError(`${field} must be a string`, { field });
    const colon = raw.indexOf(":");
    const label = (colon < 0 ? raw : raw.slice(0, colon)).trim();
    const description = colon < 0 ? "" : raw.slice(colon + 1).trim();
    const name = LabelName.safeParse(label);
    if (!name.success) {
      throw new ValidationError(
        `${field}: the class name before ":" is invalid (${name.error.issues[0].message}) in ${JSON.stringify(raw)}`,
        { field },
      );
    }
    if (description.length > MAX_DESCRIPTION_CHARS) {
      throw new ValidationError(`${field}: the description is over ${MAX_DESCRIPTION_CHARS} characters`, {
        field,
      });
    }
    return { label, description: description || label };
  });
  const classes = [...new Set(entries.map((e) => e.label))];
  if (classes.length < 2) {
    throw new ValidationError(
      `labels must name at least two classes as "name: description" (got ${classes.length})`,
      { field: "labels" },
    );
  }
  return { classes, entries };
}

/** True when the request asks for (or looks like) a zero-shot head: `validateZeroShot` decides. */
export function isZeroShotRequest(opts: TrainOptions): boolean {
  return opts.type === ZERO_SHOT || opts.labels !== undefined;
}

/** What a zero-shot request may carry; everything about fitting on labelled rows is refused by name. */
export function validateZeroShot(opts: TrainOptions): void {
  if (opts.type !== ZERO_SHOT) {
    throw new ValidationError(`labels only apply to type ${ZERO_SHOT}`, { field: "labels" });
  }
  if (!Array.isArray(opts.labels)) {
    throw new ValidationError(
      `type ${ZERO_SHOT} needs labels: one "name: description" per class, e.g. "pos: a positive review"`,
      { field: "labels" },
    );
  }
  parseZeroShotLabels(opts.labels);
  if (opts.task !== undefined && opts.task !== "multiclass") {
    throw new ValidationError(`type ${ZERO_SHOT} heads are multiclass, not ${opts.task}`, { field: "task" });
  }
  const refused: Array<[keyof TrainOptions, string]> = [
    ["withFeedback", "it trains on no rows"],
    ["unknownRate", "it has no unknown-input detector (no labelled rows to fit one on)"],
    ["unknownScorer", "it has no unknown-input detector (no labelled rows to fit one on)"],
  ];
  for (const [field, why] of refused) {
    if (opts[field] !== undefined && opts[field] !== false) {
      throw new ValidationError(`${field} does not apply to type ${ZERO_SHOT}: ${why}`, { field });
    }
  }
  // The centroid head's own parameters (its `scale`), checked as that type checks them.
  headKind(ZERO_SHOT_KIND).resolveParams(opts.params ?? {}, Number.MAX_SAFE_INTEGER, 1);
}

/** Image backbones have no text tower here (no CLIP-like model): a description cannot be embedded. */
export function checkZeroShotBackbones(specs: readonly BackboneSpec[]): void {
  const other = specs.find((s) => s.modality !== "text");
  if (other) {
    throw new ValidationError(
      `type ${ZERO_SHOT} embeds the label descriptions with the head's backbone, and ${other.id} is an ` +
        `${other.modality} backbone: no built-in backbone puts text and ${other.modality} inputs in one ` +
        "space (no CLIP-like text tower), so zero-shot heads are text only; label a few rows instead",
      { field: "backbone" },
    );
  }
}
