/** Every head type, by name: the one list train, auto-selection, predict and export consult. */
import { ValidationError } from "../errors.ts";
import { centroidKind } from "./centroid.ts";
import type { HeadKind } from "./estimator.ts";
import { knnKind } from "./knn.ts";
import { logRegKind } from "./logreg-kind.ts";
import { mlpKind } from "./mlp.ts";
import { multilabelKind } from "./multilabel.ts";
import { ridgeKind } from "./ridge.ts";

// biome-ignore lint/suspicious/noExplicitAny: kinds differ in model and parameter types.
type AnyKind = HeadKind<any, any>;

export const HEAD_KINDS: Readonly<Record<string, AnyKind>> = {
  logreg: logRegKind,
  mlp: mlpKind,
  knn: knnKind,
  centroid: centroidKind,
  multilabel: multilabelKind,
  ridge: ridgeKind,
};

/** The kind of a type name, or undefined; own keys only, so "constructor" is no head type. */
export function findHeadKind(type: string): AnyKind | undefined {
  return Object.hasOwn(HEAD_KINDS, type) ? HEAD_KINDS[type] : undefined;
}

export function headKind(type: string): AnyKind {
  const kind = findHeadKind(type);
  if (!kind) {
    throw new ValidationError(
      `unknown head type ${JSON.stringify(type)}; available: ${Object.keys(HEAD_KINDS).join(", ")}, auto`,
      { field: "type" },
    );
  }
  return kind;
}
