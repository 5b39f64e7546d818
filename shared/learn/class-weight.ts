/**
 * Class weighting as per-row sample weights, so every multiclass head supports it the same way.
 * `balanced` follows scikit-learn: w_c = n / (k · n_c), so each class carries equal total weight.
 */
export const CLASS_WEIGHT_MODES = ["none", "balanced"] as const;
export type ClassWeightMode = (typeof CLASS_WEIGHT_MODES)[number];

/** Per-row weights for `mode`, or undefined when every row weighs 1. */
export function classSampleWeights(
  y: Int32Array,
  k: number,
  mode: ClassWeightMode,
  base?: Float64Array,
): Float64Array | undefined {
  if (mode === "none") return base;
  const counts = new Float64Array(k);
  for (let i = 0; i < y.length; i++) counts[y[i]] += base ? base[i] : 1;
  let total = 0;
  let present = 0;
  for (let c = 0; c < k; c++) {
    total += counts[c];
    if (counts[c] > 0) present++;
  }
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) {
    // Only classes present in this fit share the weight, so a fold missing a class stays balanced.
    out[i] = (base ? base[i] : 1) * (total / (present * counts[y[i]]));
  }
  return out;
}
