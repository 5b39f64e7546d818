/**
 * `headstart gc`: removes what nothing refers to (docs/formats.md, "Garbage collection"):
 * - head versions beyond the last `keepVersions` that no alias points or rolls back to and no
 *   queued or running batch job scores with (with their stored exports), and exports of versions
 *   that no longer exist;
 * - datasets' rows versions that are not current and that no kept head version (its dataset, its
 *   feedback rows), batch job or running embedding job reads; datasets made from batch inputs (`bp-input-…`) that no batch job
 *   refers to; embedding job records that ended on rows versions nothing keeps;
 * - cache shards nothing kept needs (gc-cache.ts), and the plans and leases of committed shards;
 * - expired idempotency records and, on a filesystem store, temporaries of interrupted writes.
 * Never `_system/`, uploads (`batch/`, manifests, `files/`) or batch outputs (`predictions/`).
 *
 * Safe while other work runs: only objects older than `minAgeMs` are removed, and the plan is made
 * twice, the second time right before deleting; only what both plans name goes.
 */
import { z } from "zod";
import { ValidationError } from "../errors.ts";
import { HeadDocument, readReport } from "../heads/version.ts";
import { IdempotencyRecord } from "../idempotency.ts";
import { BATCH_INPUT_PREFIX, keys, parseKey } from "../layout.ts";
import { getJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { cacheGarbage, type KeptRefs } from "./gc-cache.ts";
import { liveBatchJob, liveEmbedJob, type Snapshot, takeSnapshot } from "./gc-snapshot.ts";

/** Versions of each head kept besides those an alias or a batch job needs. */
export const DEFAULT_KEEP_VERSIONS = 5;
/** Objects younger than this belong to work in progress (an upload, a training, a job starting). */
export const DEFAULT_MIN_AGE_MS = 60 * 60_000;

export interface GcOptions {
  /** Only say what would be removed. */
  dryRun?: boolean;
  keepVersions?: number;
  minAgeMs?: number;
}

export const GcResult = z.object({
  /** Every key removed (or, with `dryRun`, that would be), with its size in bytes. */
  removed: z.array(z.object({ key: z.string(), bytes: z.number().int() })),
  /** Their total size. */
  bytes: z.number().int(),
});
export type GcResult = z.infer<typeof GcResult>;

type Entry = GcResult["removed"][number];
/** Keys removed together, in order; `temporary`: a filesystem temporary, not an object. */
interface Group {
  entries: Entry[];
  temporary?: boolean;
}

export async function collectGarbage(store: ObjectStore, opts: GcOptions = {}): Promise<GcResult> {
  const planned = await planGarbage(store, opts);
  if (opts.dryRun) return summarize(planned.flatMap((g) => g.entries));
  const again = new Set((await planGarbage(store, opts)).flatMap((g) => g.entries.map((e) => e.key)));
  const confirmed = planned.filter((g) => g.entries.every((e) => again.has(e.key)));
  const removed: Entry[] = [];
  const minAgeMs = opts.minAgeMs ?? DEFAULT_MIN_AGE_MS;
  for (let i = 0; i < confirmed.length; i += 16) {
    await Promise.all(confirmed.slice(i, i + 16).map((g) => removeGroup(store, g, minAgeMs, removed)));
  }
  return summarize(removed.sort((a, b) => (a.key < b.key ? -1 : 1)));
}

async function removeGroup(store: ObjectStore, group: Group, minAgeMs: number, removed: Entry[]) {
  for (const entry of group.entries) {
    if (group.temporary) {
      if (await store.removeTemporary?.(entry.key, minAgeMs)) removed.push(entry);
    } else {
      await store.delete(entry.key);
      removed.push(entry);
    }
  }
}

function summarize(entries: Entry[]): GcResult {
  const removed = [...entries].sort((a, b) => (a.key < b.key ? -1 : 1));
  return { removed, bytes: removed.reduce((s, e) => s + e.bytes, 0) };
}

/** What gc would remove now, in groups; every group's keys are older than `minAgeMs`. */
export async function planGarbage(store: ObjectStore, opts: GcOptions = {}): Promise<Group[]> {
  const keep = opts.keepVersions ?? DEFAULT_KEEP_VERSIONS;
  const minAgeMs = opts.minAgeMs ?? DEFAULT_MIN_AGE_MS;
  if (!Number.isInteger(keep) || keep < 0)
    throw new ValidationError(`keepVersions must be an integer ≥ 0, got ${keep}`, { field: "keepVersions" });
  if (!Number.isFinite(minAgeMs) || minAgeMs < 0)
    throw new ValidationError(`minAge must be ≥ 0, got ${minAgeMs} ms`, { field: "minAge" });
  const snap = await takeSnapshot(store);
  const now = Date.now();
  const old = (key: string) => {
    const at = snap.objects.get(key)?.modifiedMs;
    return at === undefined ? minAgeMs <= 0 : now - at >= minAgeMs;
  };
  const ripe = (g: string[]) => g.every(old);
  const versions = versionGarbage(snap, keep).filter(ripe);
  const goneVersions = new Set(versions.flat());
  const heads = await keptHeads(store, snap, goneVersions);
  const inputs = batchInputGarbage(snap, heads).filter(ripe);
  const refs = keptRefs(snap, heads, new Set(inputs.map((g) => parseKey(g[0])!).map(datasetOf)));
  const groups = [
    ...versions,
    ...inputs,
    ...orphanExports(snap, goneVersions),
    ...rowsGarbage(snap, refs),
    ...jobGarbage(snap, refs),
    ...(await cacheGarbage(store, snap, refs)),
    ...(await idempotencyGarbage(store, snap, now)),
  ].filter(ripe);
  const sized = groups.map((g) => ({
    entries: g.map((key) => ({ key, bytes: snap.objects.get(key)?.size ?? 0 })),
  }));
  const temporaries = ((await store.temporaries?.()) ?? []).filter((t) => t.ageMs >= minAgeMs);
  return [
    ...sized,
    ...temporaries.map((t) => ({ entries: [{ key: t.key, bytes: t.size }], temporary: true })),
  ];
}

const datasetOf = (p: NonNullable<ReturnType<typeof parseKey>>) => ("dataset" in p ? p.dataset : "");

const under = (snap: Snapshot, prefix: string) =>
  [...snap.objects.keys()].filter((k) => k.startsWith(prefix));

/** Old versions (marker first, then the report, then their exports), and versions with no marker. */
function versionGarbage(snap: Snapshot, keep: number): string[][] {
  const out: string[][] = [];
  const heads = new Set([...snap.versions.keys()]);
  for (const key of snap.objects.keys()) {
    const p = parseKey(key);
    if (p?.kind === "headFile") heads.add(p.head);
  }
  for (const head of heads) {
    const versions = snap.versions.get(head) ?? [];
    const kept = new Set(versions.slice(Math.max(0, versions.length - keep)));
    for (const a of snap.aliases.filter((x) => x.head === head)) {
      kept.add(a.version);
      if (a.previous) kept.add(a.previous);
    }
    for (const j of snap.batchJobs) if (j.head === head && liveBatchJob(j)) kept.add(j.version);
    const all = new Set(under(snap, keys.headVersionPrefix(head)).map((k) => parseKey(k)));
    for (const version of new Set([...all].flatMap((p) => (p?.kind === "headFile" ? [p.version] : [])))) {
      if (kept.has(version) && versions.includes(version)) continue;
      const marker = keys.headFile(head, version, "head.json");
      const files = under(snap, keys.headVersionFiles(head, version));
      out.push([
        ...files.filter((k) => k === marker),
        ...files.filter((k) => k !== marker),
        ...under(snap, keys.headExportsOf(head, version)),
      ]);
    }
  }
  return out;
}

interface KeptHead {
  head: string;
  version: string;
  dataset: { name: string; version: string };
  /** The feedback rows it was trained with (its report's `feedback`), if any. */
  feedback?: { name: string; version: string };
  backbones: Array<{ id: string; sha256: string }>;
}

/** The `head.json` of every version that stays: what it was trained on, and with which backbones. */
async function keptHeads(store: ObjectStore, snap: Snapshot, gone: Set<string>): Promise<KeptHead[]> {
  const out: KeptHead[] = [];
  for (const [head, versions] of snap.versions) {
    for (const version of versions) {
      const marker = keys.headFile(head, version, "head.json");
      if (gone.has(marker)) continue;
      const doc = (await getJson(store, marker, HeadDocument))?.value;
      if (!doc) continue;
      const backbones = doc.backbone.parts ?? [{ id: doc.backbone.id, sha256: doc.backbone.sha256 }];
      const fb = (await readReport(store, head, version).catch(() => undefined))?.feedback;
      const feedback = fb && { name: fb.dataset, version: fb.datasetVersion };
      out.push({ head, version, dataset: doc.dataset, backbones, ...(feedback ? { feedback } : {}) });
    }
  }
  return out;
}

/** Datasets made from batch inputs that no batch job, kept head version or running embedding reads. */
function batchInputGarbage(snap: Snapshot, heads: KeptHead[]): string[][] {
  const out: string[][] = [];
  for (const dataset of snap.datasets.keys()) {
    if (!dataset.startsWith(BATCH_INPUT_PREFIX)) continue;
    if (snap.batchJobs.some((j) => j.input.dataset === dataset)) continue;
    if (heads.some((h) => h.dataset.name === dataset || h.feedback?.name === dataset)) continue;
    if (snap.embedJobs.some((j) => j.dataset === dataset && liveEmbedJob(j))) continue;
    const status = keys.datasetStatus(dataset);
    const files = under(snap, keys.datasetPrefix(dataset));
    out.push([status, ...files.filter((k) => k !== status)]);
  }
  return out;
}

/** The rows versions each dataset still needs, and what kept heads were trained with. */
function keptRefs(snap: Snapshot, heads: KeptHead[], collected: Set<string>): KeptRefs {
  const rows = new Map<string, Set<string>>();
  const add = (dataset: string, version: string | undefined) => {
    if (version === undefined || collected.has(dataset)) return;
    if (!rows.has(dataset)) rows.set(dataset, new Set());
    rows.get(dataset)!.add(version);
  };
  for (const [dataset, status] of snap.datasets) add(dataset, status.version);
  for (const h of heads) {
    add(h.dataset.name, h.dataset.version);
    if (h.feedback) add(h.feedback.name, h.feedback.version);
  }
  for (const j of snap.batchJobs) add(j.input.dataset, j.input.datasetVersion);
  for (const j of snap.embedJobs) if (liveEmbedJob(j)) add(j.dataset, j.datasetVersion);
  const headBackbones = heads.flatMap((h) =>
    h.backbones.map((b) => ({ dataset: h.dataset.name, backbone: b.id, sha256: b.sha256 })),
  );
  return { rows, headBackbones, collected };
}

/** Rows versions nothing keeps, and the embedding maps of such versions (each recomputable). */
function rowsGarbage(snap: Snapshot, refs: KeptRefs): string[][] {
  const out: string[][] = [];
  for (const key of snap.objects.keys()) {
    const p = parseKey(key);
    if ((p?.kind !== "datasetRows" && p?.kind !== "datasetMap") || refs.collected.has(p.dataset)) continue;
    if (!refs.rows.get(p.dataset)?.has(p.version)) out.push([key]);
  }
  return out;
}

/**
 * Embedding job records that ended on rows nothing keeps, or with a backbone model that is gone:
 * a record left would answer a later identical job with shards `gc` may have removed.
 */
function jobGarbage(snap: Snapshot, refs: KeptRefs): string[][] {
  const out: string[][] = [];
  for (const job of snap.embedJobs) {
    if (liveEmbedJob(job)) continue;
    const spec = snap.backbones.get(job.backbone);
    const keptRows = refs.rows.get(job.dataset)?.has(job.datasetVersion);
    if (keptRows && spec?.sha256 === job.backboneSha && !refs.collected.has(job.dataset)) continue;
    out.push([keys.job(job.job), ...under(snap, keys.jobPrefix(job.job))]);
  }
  return out;
}

/** Stored exports of versions that no longer exist (and are not removed in this run already). */
function orphanExports(snap: Snapshot, gone: Set<string>): string[][] {
  const out: string[][] = [];
  for (const key of snap.objects.keys()) {
    const p = parseKey(key);
    if (p?.kind !== "headExport" || gone.has(key)) continue;
    if (!snap.objects.has(keys.headFile(p.head, p.version, "head.json"))) out.push([key]);
  }
  return out;
}

async function idempotencyGarbage(store: ObjectStore, snap: Snapshot, now: number): Promise<string[][]> {
  const out: string[][] = [];
  for (const key of snap.objects.keys()) {
    if (parseKey(key)?.kind !== "idempotencyRecord") continue;
    const record = (await getJson(store, key, IdempotencyRecord).catch(() => undefined))?.value;
    if (record && record.expiresAt < now) out.push([key]);
  }
  return out;
}
