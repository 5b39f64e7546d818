/**
 * An `auto` search over backbones, read as a table: one row per backbone set, one column per head
 * type, each cell the best score of that pair (every parameter set tried) — what the CLI prints and
 * the report shows above the full list of candidates.
 */
import type { Search } from "./version.ts";

export interface SearchMatrix {
  backbones: string[];
  types: string[];
  /** `cells[b][t]`: the best score of `types[t]` on `backbones[b]`, or undefined when none was scored. */
  cells: Array<Array<number | undefined>>;
  /** Where the chosen candidate sits. */
  chosen?: { backbone: number; type: number };
}

/** The matrix of a search whose candidates name their backbone, else undefined. */
export function searchMatrix(search: Search): SearchMatrix | undefined {
  const named = search.candidates.filter((c) => c.backbone !== undefined);
  if (named.length === 0) return undefined;
  // Sets and types the budget left untried get their row and column too, empty.
  const untried = (search.skipped ?? []).filter((s) => s.backbone !== undefined);
  const backbones = [...new Set([...named, ...untried].map((c) => c.backbone!))];
  const types = [...new Set([...named, ...untried].map((c) => c.type))];
  const better = (a: number, b: number | undefined) =>
    b === undefined || (search.metric === "rmse" ? a < b : a > b);
  const cells = backbones.map(() => types.map((): number | undefined => undefined));
  let chosen: SearchMatrix["chosen"];
  for (const c of named) {
    const b = backbones.indexOf(c.backbone!);
    const t = types.indexOf(c.type);
    if (better(c.score, cells[b][t])) cells[b][t] = c.score;
    if (c.chosen) chosen = { backbone: b, type: t };
  }
  return { backbones, types, cells, ...(chosen ? { chosen } : {}) };
}
