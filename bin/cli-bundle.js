/**
 * The CLI's prebuilt bundle (`.build/cli/`): which build is current, whether it is still fresh,
 * and starting a new one when it is not. Plain JavaScript, so bin/headstart.js can decide before
 * paying for tsx.
 *
 * - `npm ci` builds it (package.json `prepare` → scripts/build-cli.ts); so does `npm run build:cli`.
 * - Each build is a folder `.build/cli/<id>/` holding one self-contained `<entry>.mjs` per entry;
 *   `manifest.json` names the current one and stamps (size and mtime) every input it was built
 *   from: our sources, the build script, and `node_modules/.package-lock.json`, which npm rewrites
 *   on every install. It is replaced by a rename, so a reader sees the old build or the new one.
 * - When any stamp differs (a source edited, a pull, another install), the CLI runs from its
 *   sources through tsx, exactly as before the bundle existed, and one detached builder (a lock
 *   file keeps it to one) makes a fresh bundle for the next call.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const PACKAGE_ROOT = fileURLToPath(new URL("..", import.meta.url));
export const CLI_BUILD_DIR = join(PACKAGE_ROOT, ".build", "cli");
const MANIFEST_FILE = "manifest.json";
const LOCK_FILE = "build.lock";
const MANIFEST_VERSION = 1;
/** A builder takes seconds; a lock this old belongs to one that died. */
const STALE_LOCK_MS = 120_000;

/** `size:mtimeMs` of a file, or undefined when it is gone. */
export function stamp(path) {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * The URL of `<entry>.mjs` in the current build when every input still has the stamp it was built
 * from; undefined when there is no build or it is stale.
 */
export function freshCliBundle(entry = "headstart", dir = CLI_BUILD_DIR) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST_FILE), "utf8"));
  } catch {
    return undefined;
  }
  if (manifest?.version !== MANIFEST_VERSION || !manifest.entries?.includes(entry)) return undefined;
  for (const [rel, was] of Object.entries(manifest.inputs ?? {})) {
    if (stamp(join(PACKAGE_ROOT, rel)) !== was) return undefined;
  }
  return pathToFileURL(join(dir, manifest.build, `${entry}.mjs`)).href;
}

/** Makes `build` (a folder in `dir`) current; `inputs` maps paths relative to the package root to stamps. */
export function writeCliManifest(dir, build, entries, inputs) {
  const body = JSON.stringify({ version: MANIFEST_VERSION, build, entries, inputs }, null, 1);
  const tmp = join(dir, `.${MANIFEST_FILE}.${process.pid}.tmp`);
  writeFileSync(tmp, body);
  renameSync(tmp, join(dir, MANIFEST_FILE));
}

/**
 * Starts scripts/build-cli.ts detached, unless another builder holds the lock. Never throws: a
 * bundle that cannot be built only means the CLI keeps running from its sources.
 */
export function rebuildCliInBackground(dir = CLI_BUILD_DIR) {
  try {
    mkdirSync(dir, { recursive: true });
    const lock = join(dir, LOCK_FILE);
    const age = Date.now() - (Number(stamp(lock)?.split(":")[1]) || 0);
    if (stamp(lock) !== undefined && age < STALE_LOCK_MS) return;
    if (stamp(lock) !== undefined) unlinkSync(lock);
    closeSync(openSync(lock, "wx"));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(PACKAGE_ROOT, "scripts", "build-cli.ts"), "--quiet", "--release-lock", lock],
      { cwd: PACKAGE_ROOT, detached: true, stdio: "ignore" },
    );
    child.on("error", () => {});
    child.unref();
  } catch {
    // Another builder took the lock first, or the folder is read-only: nothing to do.
  }
}
