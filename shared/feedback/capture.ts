/**
 * Keeping the inputs of online predictions (a version trained with `capture`), so a correction
 * can name just the prediction, and the data-quality tools can read what the head was unsure of.
 * `heads/<head>/captures/<predictionId>.json`, create-only. Text inputs only: images are not kept.
 * Best effort: written after the answer, never slowing or failing a prediction (see Platform.predict).
 */
import { z } from "zod";
import type { Prediction } from "../heads/predict.ts";
import type { HeadDocument } from "../heads/version.ts";
import { keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

/** Multiclass: the top two scores closer than this; multi-label: a score this close to 0.5. */
export const UNCERTAIN_MARGIN = 0.2;

export const Capture = z.object({
  predictionId: z.string(),
  head: z.string(),
  version: z.string(),
  text: z.string(),
  label: z.union([z.string(), z.array(z.string()), z.number()]).optional(),
  createdAt: z.string(),
});
export type Capture = z.infer<typeof Capture>;

/** Whether the head was unsure: regression heads have no score, so never. */
export function isUncertain(p: Prediction): boolean {
  if (!p.scores || p.value !== undefined) return false;
  const s = Object.values(p.scores).sort((a, b) => b - a);
  if (p.labels !== undefined) return s.some((v) => Math.abs(v - 0.5) < UNCERTAIN_MARGIN / 2);
  return s.length < 2 || s[0] - s[1] < UNCERTAIN_MARGIN;
}

/** The captures a prediction batch makes under the version's `capture` setting. */
export function capturesOf(
  doc: HeadDocument,
  texts: ReadonlyArray<string | undefined>,
  predictions: readonly Prediction[],
  now = new Date(),
): Capture[] {
  const mode = doc.capture ?? "none";
  if (mode === "none") return [];
  const out: Capture[] = [];
  predictions.forEach((p, i) => {
    const text = texts[i];
    if (text === undefined || p.predictionId === undefined) return;
    if (mode === "uncertain" && !isUncertain(p)) return;
    const label = p.label ?? p.labels ?? p.value;
    out.push({
      predictionId: p.predictionId,
      head: doc.head,
      version: doc.version,
      text,
      ...(label !== undefined ? { label } : {}),
      createdAt: now.toISOString(),
    });
  });
  return out;
}

export async function writeCaptures(store: ObjectStore, captures: readonly Capture[]): Promise<void> {
  await Promise.all(
    captures.map((c) => putJson(store, keys.headCapture(c.head, c.predictionId), c, { ifNoneMatch: "*" })),
  );
}

export async function readCapture(store: ObjectStore, head: string, predictionId: string) {
  return (await getJson(store, keys.headCapture(head, predictionId), Capture))?.value;
}
