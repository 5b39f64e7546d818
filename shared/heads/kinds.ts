/** Every head type, by name: the one list train, auto-selection, predict and export consult. */
import { UnsupportedError } from "../errors.ts";
import { centroidKind } from "./centroid.ts";
import type { HeadKind } from "./kind.ts";
import { knnKind } from "./knn.ts";
import { logRegKind } from "./logreg-kind.ts";

// biome-ignore lint/suspicious/noExplicitAny: kinds differ in model and parameter types.
type AnyKind = HeadKind<any, any>;

export const HEAD_KINDS: Readonly<Record<string, AnyKind>> = {
  logreg: logRegKind,
  knn: knnKind,
  centroid: centroidKind,
};

export function headKind(type: string): AnyKind {
  const kind = HEAD_KINDS[type];
  if (!kind) {
    throw new UnsupportedError(
      `unknown head type ${JSON.stringify(type)}; available: ${Object.keys(HEAD_KINDS).join(", ")}, auto`,
      { field: "type" },
    );
  }
  return kind;
}
