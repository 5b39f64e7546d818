/**
 * Built-in backbones converted at first use (GloVe from its npm JSON, USE lite from its TF.js
 * graph) share one way of landing in the models folder: build into a temp directory, then rename it
 * into place, so a reader sees a whole backbone or none, and concurrent first uses are safe.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { BackboneSpec } from "./spec.ts";

const SPEC_FILE = "backbone.json";

/**
 * Renames `tmp` to `outDir`. When `outDir` exists: replaces it if `replace` (a leftover to
 * repair), else returns false (another process finished first; the caller discards `tmp`).
 */
export async function commitDir(tmp: string, outDir: string, replace: boolean): Promise<boolean> {
  try {
    await rename(tmp, outDir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "EISDIR") throw err;
    if (!replace) return false;
    const old = `${outDir}.old-${process.pid}-${randomUUID().slice(0, 8)}`;
    await rename(outDir, old);
    await rename(tmp, outDir);
    await rm(old, { recursive: true, force: true });
    return true;
  }
}

/**
 * Writes `files` and then `backbone.json` (last: its presence means the directory is complete)
 * into a temp directory beside `outDir` and commits it there (see `commitDir`).
 */
export async function writeBuiltBackbone(
  outDir: string,
  files: Record<string, Uint8Array | string>,
  spec: BackboneSpec,
  replace: boolean,
): Promise<void> {
  const parent = dirname(outDir);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(outDir)}.tmp-${process.pid}-${randomUUID().slice(0, 8)}`);
  await mkdir(tmp);
  try {
    for (const [name, body] of Object.entries(files)) await writeFile(join(tmp, name), body);
    await writeFile(join(tmp, SPEC_FILE), `${JSON.stringify(spec, null, 2)}\n`);
    if (!(await commitDir(tmp, outDir, replace))) await rm(tmp, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Reads `dir/backbone.json`, or undefined when the directory is absent or incomplete. */
export async function readBuiltBackbone(dir: string): Promise<BackboneSpec | undefined> {
  const specPath = join(dir, SPEC_FILE);
  if (!existsSync(specPath)) return undefined;
  try {
    const spec = BackboneSpec.parse(JSON.parse(await readFile(specPath, "utf8")));
    const missing = [spec.model, ...spec.assets].some((f) => !existsSync(join(dir, f)));
    return missing ? undefined : spec;
  } catch {
    return undefined;
  }
}

const ensuring = new Map<string, Promise<{ dir: string; spec: BackboneSpec }>>();

/**
 * `dir`, built by `build(replace)` on first use and reused afterwards. Callers in one process
 * share one build; across processes the first finished build wins and later ones discard theirs.
 */
export function ensureBuiltBackbone(
  dir: string,
  build: (replace: boolean) => Promise<BackboneSpec>,
): Promise<{ dir: string; spec: BackboneSpec }> {
  const pending = ensuring.get(dir);
  if (pending) return pending;
  const p = (async () => {
    const existing = await readBuiltBackbone(dir);
    if (existing) return { dir, spec: existing };
    // A directory that exists but did not read as complete is a leftover to replace; one that appears
    // while we build is another process's finished build, so ours is discarded.
    const built = await build(existsSync(dir));
    const spec = (await readBuiltBackbone(dir)) ?? built;
    return { dir, spec };
  })();
  ensuring.set(dir, p);
  p.catch(() => {
    if (ensuring.get(dir) === p) ensuring.delete(dir);
  });
  return p;
}
