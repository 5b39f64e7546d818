/**
 * The two sides of a drift check, as vectors in one input space. A reference is a dataset (its
 * current rows, embedded with a backbone) or a head (the rows of the dataset version it was trained
 * on, in its own backbone(s)); a current sample is a dataset or a head's captured online inputs
 * (`capture:<head>`, texts kept by `feedback/capture.ts`), embedded here with the same backbone(s).
 */
import { loadEmbedder } from "../backbone/registry.ts";
import type { BackboneSpec } from "../backbone/spec.ts";
import { normalizeText } from "../cache/address.ts";
import type { Config } from "../config.ts";
import { readDatasetStatus } from "../datasets/ingest.ts";
import { loadBackboneSetDataset, normalizeConcat } from "../embed/composite.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import { Capture } from "../feedback/capture.ts";
import { parseHeadRef, readAlias } from "../heads/version.ts";
import { assertName, keys } from "../layout.ts";
import { sampleIndices } from "../learn/mmd.ts";
import { mulberry32 } from "../learn/split.ts";
import { getJson } from "../store/json.ts";
import type { ObjectInfo, ObjectStore } from "../store/types.ts";

export type DriftSource =
  | { kind: "dataset"; dataset: string }
  | { kind: "head"; ref: string }
  | { kind: "capture"; head: string };

/** One side, embedded: `n` rows of `dim`, and what it was (the dataset version it read, if any). */
export interface DriftSample {
  source: DriftSource;
  version?: string;
  vectors: Float32Array;
  n: number;
  dim: number;
}

const PREFIXES = ["dataset:", "head:", "capture:"] as const;

/**
 * `dataset:<d>`, `head:<h>` (or `head:<h>@<version>`, `head:<h>:<alias>`), `capture:<h>`, or a bare
 * name: for a reference, a head if one has that name (a dataset too is ambiguous), else a dataset;
 * for a current sample, a dataset. A reference cannot be captures; a current sample cannot be a head.
 */
export async function parseDriftSource(
  store: ObjectStore,
  value: string,
  side: "reference" | "current",
): Promise<DriftSource> {
  const prefix = PREFIXES.find((p) => value.startsWith(p));
  const rest = prefix ? value.slice(prefix.length) : value;
  const source = prefix ? sourceOf(prefix, rest, side) : await bareSource(store, value, side);
  const allowed = side === "reference" ? ["dataset", "head"] : ["dataset", "capture"];
  if (!allowed.includes(source.kind)) {
    throw new ValidationError(
      `${side} must be ${side === "reference" ? "a dataset or a head" : "a dataset or capture:<head>"}, got ${value}`,
      { field: side },
    );
  }
  return source;
}

function sourceOf(prefix: (typeof PREFIXES)[number], rest: string, field: string): DriftSource {
  if (prefix === "dataset:") return { kind: "dataset", dataset: assertName("dataset", rest, field) };
  if (prefix === "capture:") return { kind: "capture", head: assertName("head", rest, field) };
  parseHeadRef(rest, field);
  return { kind: "head", ref: rest };
}

async function bareSource(store: ObjectStore, value: string, side: string): Promise<DriftSource> {
  if (side === "current") return { kind: "dataset", dataset: assertName("dataset", value, side) };
  const ref = parseHeadRef(value, side);
  if (value !== ref.head) return { kind: "head", ref: value }; // head@version or head:alias
  const [isHead, status] = await Promise.all([readAlias(store, value), readDatasetStatus(store, value)]);
  if (isHead && status) {
    throw new ValidationError(
      `${value} is both a head and a dataset: write head:${value} or dataset:${value}`,
      {
        field: side,
      },
    );
  }
  return isHead ? { kind: "head", ref: value } : { kind: "dataset", dataset: value };
}

/** A dataset's current rows (or a given version's) in the input space of `specs`. */
export async function datasetSample(
  store: ObjectStore,
  source: DriftSource,
  dataset: string,
  specs: readonly BackboneSpec[],
  version?: string,
): Promise<DriftSample> {
  const data = await loadBackboneSetDataset(store, dataset, specs, version);
  return { source, version: data.version, vectors: data.vectors, n: data.rows.length, dim: data.dim };
}

/**
 * Up to `max` of a head's captured inputs (drawn by `seed` from all of them, or from those stored
 * at or after `sinceMs`, so a check reads a bounded number of objects), embedded with `specs` as
 * serving embeds texts. A capture is written once (create-only), so its stored time is its capture time.
 */
export async function captureSample(
  store: ObjectStore,
  head: string,
  specs: readonly BackboneSpec[],
  config: Pick<Config, "modelsDir">,
  opts: { max: number; seed: number; sinceMs?: number },
): Promise<DriftSample & { texts: string[] }> {
  const all = await store.list(keys.headCapturePrefix(head));
  const listed = all
    .filter((o) => isCapturedSince(o, opts.sinceMs))
    .map((o) => o.key)
    .sort();
  if (listed.length === 0) {
    if (!(await readAlias(store, head))) throw new NotFoundError(`head ${head}`, { field: "current" });
    const when = all.length > 0 ? ` since ${new Date(opts.sinceMs ?? 0).toISOString()}` : "";
    throw new ValidationError(
      `head ${head} has no captured inputs${when}: train it with --capture all (or uncertain) and predict first`,
      { field: "current" },
    );
  }
  const picked = sampleIndices(listed.length, opts.max, mulberry32(opts.seed ^ 0x5eed));
  const docs = await Promise.all([...picked].map((i) => getJson(store, listed[i], Capture)));
  const texts = docs.flatMap((d) => (d ? [d.value.text] : [])); // one deleted meanwhile is skipped
  const vectors = await embedTexts(store, texts, specs, config);
  const dim = specs.reduce((s, p) => s + p.dim, 0);
  return { source: { kind: "capture", head }, vectors, n: texts.length, dim, texts };
}

/** Whether a listed capture was stored at or after `sinceMs` (always, without a bound). */
export function isCapturedSince(o: ObjectInfo, sinceMs: number | undefined): boolean {
  return sinceMs === undefined || (o.modifiedMs ?? Number.POSITIVE_INFINITY) >= sinceMs;
}

async function embedTexts(
  store: ObjectStore,
  texts: readonly string[],
  specs: readonly BackboneSpec[],
  config: Pick<Config, "modelsDir">,
): Promise<Float32Array> {
  const items = texts.map((t) => ({ text: normalizeText(t) }));
  const parts: Array<{ vectors: Float32Array; dim: number }> = [];
  for (const spec of specs) {
    if (spec.modality !== "text") {
      throw new ValidationError(`captured inputs are texts; backbone ${spec.id} embeds ${spec.modality}`, {
        field: "backbone",
      });
    }
    const embedder = await loadEmbedder(store, spec.id, config);
    parts.push({ vectors: await embedder.embed(items), dim: spec.dim });
  }
  return parts.length === 1 ? parts[0].vectors : normalizeConcat(parts, texts.length);
}
