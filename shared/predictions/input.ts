/**
 * A local manifest or folder as a batch job's input. It becomes an ordinary (usually unlabelled)
 * dataset, uploaded and ingested the same way as any other, so its rows are checked by the same
 * rules and embedded into the same cache; its name is taken from its content (`bp-input-<hash>`),
 * so the same file again is the same dataset, the same rows version, and so the same job.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { ingestDataset, putManifest, readDatasetStatus } from "../datasets/ingest.ts";
import { NotFoundError, ValidationError } from "../errors.ts";
import { BATCH_INPUT_PREFIX, storageKeyProblem } from "../layout.ts";
import type { ObjectStore } from "../store/types.ts";

/** Datasets made from batch inputs are named `bp-input-<20 hex>` (reserved: see layout.ts). */
export { BATCH_INPUT_PREFIX };

/** The dataset name of a local manifest file or folder: a hash of every file's path and bytes. */
export async function batchInputName(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new NotFoundError(`no file or folder ${path}`, { field: "input" });
  const hash = createHash("sha256");
  if (info.isFile()) {
    hash.update(await readFile(path));
  } else {
    for (const file of await filesUnder(path)) {
      const bytes = await readFile(file);
      hash.update(`${relative(path, file)}\0${createHash("sha256").update(bytes).digest("hex")}\n`);
    }
  }
  return `${BATCH_INPUT_PREFIX}${hash.digest("hex").slice(0, 20)}`;
}

/** Every file below `dir`, sorted, so the hash does not depend on the order of the listing. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

/** Where a `manifestKey` may point: the caller's own uploads, never heads, the cache or `_system/`. */
export const MANIFEST_KEY_PREFIXES = ["batch/", "datasets/"] as const;

/**
 * A manifest already in the store (`manifestKey`, e.g. `batch/films/tonight.jsonl`) as a batch job's
 * input: copied into the dataset named after its bytes (the name a local file with the same bytes
 * gets) and ingested there; answers that name. File rows name files below that dataset's `files/`,
 * which a copied manifest does not bring along, so they come back as refused lines (error rows).
 */
export async function ingestManifestKey(store: ObjectStore, key: string): Promise<string> {
  const problem =
    storageKeyProblem(key) ??
    (MANIFEST_KEY_PREFIXES.some((p) => key.startsWith(p))
      ? undefined
      : `is not under ${MANIFEST_KEY_PREFIXES.join(" or ")}`) ??
    (/\.(jsonl|csv)$/.test(key) ? undefined : "does not end in .jsonl or .csv");
  if (problem) {
    throw new ValidationError(`manifestKey ${JSON.stringify(key)} ${problem}`, { field: "manifestKey" });
  }
  const obj = await store.get(key);
  if (!obj) throw new NotFoundError(`manifest ${key}`, { field: "manifestKey" });
  const dataset = `${BATCH_INPUT_PREFIX}${createHash("sha256").update(obj.body).digest("hex").slice(0, 20)}`;
  if ((await readDatasetStatus(store, dataset))?.version) return dataset;
  const format = key.endsWith(".csv") ? "csv" : "jsonl";
  const status = await ingestDataset(store, dataset, {
    manifestKey: await putManifest(store, dataset, format, obj.body),
  });
  if (!status.version) {
    const first = status.rejected[0];
    throw new ValidationError(
      `manifestKey ${key}: no row could be read${first ? ` (line ${first.line}: ${first.reason})` : ""}`,
      { field: "manifestKey" },
    );
  }
  return dataset;
}
