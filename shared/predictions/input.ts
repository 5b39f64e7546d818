/**
 * A local manifest or folder as a batch job's input. It becomes an ordinary (usually unlabelled)
 * dataset, uploaded and ingested the same way as any other, so its rows are checked by the same
 * rules and embedded into the same cache; its name is taken from its content (`bp-input-<hash>`),
 * so the same file again is the same dataset, the same rows version, and so the same job.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { NotFoundError } from "../errors.ts";

/** Datasets made from batch inputs are named `bp-input-<20 hex>`; users should not take such names. */
export const BATCH_INPUT_PREFIX = "bp-input-";

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
