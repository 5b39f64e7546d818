/**
 * `npm run build`: one minified ESM bundle per function (infra/bundles.ts) under
 * `dist/functions/<name>/index.mjs` (and `<worker>.mjs` beside it for each of its worker-thread
 * scripts), with source maps. AWS SDK clients and every pure-JS
 * dependency are bundled and tree-shaken; native packages (onnxruntime-node, sharp) are copied
 * beside the bundle with only their linux-x64 (glibc) binaries. Dynamic imports become chunks
 * that load on first use, so a function that never predicts never reads onnxruntime. The web
 * console is built first (`.build/console/`, shared/api/console-build.ts) and copied into the API's
 * package.
 *
 *   npm run build [-- name …] [--json]
 */
import { cp, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import {
  AUDIO_PACKAGES,
  bundleDir,
  CONSOLE_BUILD,
  FUNCTION_BUNDLES,
  FUNCTION_NAMES,
  type FunctionBundle,
  type FunctionName,
  NATIVE_PACKAGES,
  REPO_ROOT,
} from "../infra/bundles.ts";
import { buildConsole, ensureConsoleBuilt } from "../shared/api/console-build.ts";
import { ESM_CJS_BANNER, zodEnglishOnly } from "./esbuild-plugins.ts";

const NODE_MODULES = join(REPO_ROOT, "node_modules");

/** Packages a native package depends on only to install itself (ORT's CUDA download). */
const INSTALL_ONLY = new Set(["adm-zip", "global-agent"]);

/** Files a deployed package never needs. */
const SKIP_FILE = /(\.[cm]?ts|\.map|\.md|\.cc|\.h|\.gyp)$/i;
/** Folders of native packages that are sources or install scripts, or other platforms' binaries. */
const SKIP_DIR: Record<string, RegExp> = {
  "onnxruntime-node":
    /^(script|lib|bin\/napi-v6\/(?!linux(\/x64)?$)[^/]+|bin\/napi-v6\/linux\/(?!x64$)[^/]+)$/,
  sharp: /^(src|install)$/,
};

export interface BuiltFunction {
  name: FunctionName;
  dir: string;
  /**
   * The package unzipped without its source maps: what init reads and what the budgets hold.
   * The maps ship too (NODE_OPTIONS=--enable-source-maps) and are counted in `mapBytes`.
   */
  bytes: number;
  mapBytes: number;
  /** The JavaScript bundle and its chunks, without maps and natives. */
  bundleBytes: number;
  budgetBytes: number;
  files: number;
  native: readonly string[];
}

async function bundle(name: FunctionName, spec: FunctionBundle, outdir: string): Promise<void> {
  await esbuild
    .build({
      entryPoints: {
        index: join(REPO_ROOT, spec.entry),
        ...Object.fromEntries(Object.entries(spec.workers ?? {}).map(([n, e]) => [n, join(REPO_ROOT, e)])),
      },
      outdir,
      bundle: true,
      splitting: true,
      format: "esm",
      platform: "node",
      target: "node22",
      outExtension: { ".js": ".mjs" },
      // ESM builds first: a CommonJS build of one package requiring another (zod-to-openapi → zod)
      // would bundle a second copy of it, and zod's OpenAPI extension would patch the wrong one.
      mainFields: ["module", "main"],
      chunkNames: "chunks/[name]-[hash]",
      minify: true,
      sourcemap: "linked",
      sourcesContent: false,
      legalComments: "none",
      banner: { js: ESM_CJS_BANNER },
      // Always external: a function that does not ship a native package keeps it in chunks it never
      // runs (tests hold ingest, job-complete and the authorizer to never loading one). The audio
      // decoders likewise, except where the function decodes audio.
      external: [...NATIVE_PACKAGES, ...(spec.audio ? [] : AUDIO_PACKAGES)],
      logLevel: "warning",
      plugins: [zodEnglishOnly],
      define: { "process.env.NODE_ENV": '"production"' },
    })
    .catch((err) => {
      throw new Error(`build of ${name} failed: ${(err as Error).message}`);
    });
}

async function packageJson(pkg: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(NODE_MODULES, pkg, "package.json"), "utf8"));
}

/** The package and what it needs at run time, on linux-x64 glibc (the Lambda platform). */
async function runtimeClosure(root: string): Promise<string[]> {
  const seen = new Set<string>();
  const visit = async (pkg: string) => {
    if (seen.has(pkg) || INSTALL_ONLY.has(pkg)) return;
    const meta = await packageJson(pkg).catch(() => undefined);
    if (!meta) return; // an optional dependency for another platform
    seen.add(pkg);
    const deps = {
      ...(meta.dependencies as Record<string, string>),
      ...(meta.optionalDependencies as Record<string, string>),
    };
    for (const dep of Object.keys(deps ?? {})) {
      if (/^@img\/sharp-/.test(dep) && !/-linux-x64$/.test(dep)) continue;
      await visit(dep);
    }
  };
  await visit(root);
  return [...seen];
}

async function copyPackage(pkg: string, root: string, outdir: string): Promise<void> {
  const from = join(NODE_MODULES, pkg);
  const skipDir = SKIP_DIR[root === pkg ? pkg : ""];
  await cp(from, join(outdir, "node_modules", pkg), {
    recursive: true,
    filter: (src) => {
      const rel = relative(from, src);
      if (rel === "") return true;
      if (skipDir?.test(rel)) return false;
      return !SKIP_FILE.test(rel);
    },
  });
}

async function copyFiles(spec: FunctionBundle, outdir: string): Promise<void> {
  for (const { pkg, paths } of spec.files ?? []) {
    for (const p of paths) {
      const to = join(outdir, "node_modules", pkg, p);
      await mkdir(dirname(to), { recursive: true });
      await cp(join(NODE_MODULES, pkg, p), to);
    }
  }
}

async function sizeOf(dir: string) {
  let bytes = 0;
  let mapBytes = 0;
  let bundleBytes = 0;
  let files = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const size = (await stat(path)).size;
    files++;
    if (entry.name.endsWith(".map")) {
      mapBytes += size;
      continue;
    }
    bytes += size;
    if (/\.mjs$/.test(entry.name) && !relative(dir, path).startsWith("node_modules")) bundleBytes += size;
  }
  return { bytes, mapBytes, bundleBytes, files };
}

export async function buildFunction(name: FunctionName): Promise<BuiltFunction> {
  const spec: FunctionBundle = FUNCTION_BUNDLES[name];
  const dir = bundleDir(name);
  await rm(dir, { recursive: true, force: true });
  await bundle(name, spec, dir);
  // The container installs its natives with the CUDA provider (functions/embed-batch/Dockerfile).
  if (!spec.container) {
    for (const root of spec.native) {
      for (const pkg of await runtimeClosure(root)) await copyPackage(pkg, root, dir);
    }
    await copyFiles(spec, dir);
  }
  if (spec.console) {
    await ensureConsoleBuilt(CONSOLE_BUILD);
    await cp(CONSOLE_BUILD, join(dir, "console"), { recursive: true });
  }
  return { name, dir, ...(await sizeOf(dir)), budgetBytes: spec.budgetBytes, native: spec.native };
}

export async function buildFunctions(names: readonly FunctionName[] = FUNCTION_NAMES) {
  const built: BuiltFunction[] = [];
  for (const name of names) built.push(await buildFunction(name));
  return built;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { json: { type: "boolean", default: false } },
  });
  const unknown = positionals.filter((p) => !(FUNCTION_NAMES as string[]).includes(p));
  if (unknown.length) {
    throw new Error(`unknown function ${unknown.join(", ")}; valid: ${FUNCTION_NAMES.join(", ")}`);
  }
  // Fresh every time (not only when stale), so the sizes printed are this build's.
  const site = await buildConsole(CONSOLE_BUILD);
  // stderr under --json, so stdout stays one JSON document.
  (values.json ? process.stderr : process.stdout).write(
    `console       ${site.files.map((f) => `${f.name} ${f.bytes} B (${f.gzipBytes} B gz)`).join(", ")}; first load ${site.gzipBytes} B gz  → ${relative(REPO_ROOT, site.dir)}\n`,
  );
  const built = await buildFunctions(positionals.length ? (positionals as FunctionName[]) : undefined);
  const over = built.filter((b) => b.bytes > b.budgetBytes);
  await writeFile(
    join(dirname(built[0]!.dir), "sizes.json"),
    `${JSON.stringify(Object.fromEntries(built.map(({ name, dir: _d, ...rest }) => [name, rest])), null, 2)}\n`,
  );
  if (values.json) {
    process.stdout.write(`${JSON.stringify(built, null, 2)}\n`);
  } else {
    const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
    for (const b of built) {
      process.stdout.write(
        `${b.name.padEnd(13)} ${mb(b.bytes).padStart(9)} (bundle ${mb(b.bundleBytes)}, budget ${mb(b.budgetBytes)}; maps ${mb(b.mapBytes)})` +
          `${b.native.length ? `  natives: ${b.native.join(", ")}` : ""}  → ${relative(REPO_ROOT, b.dir)}/index.mjs\n`,
      );
    }
  }
  if (over.length) {
    throw new Error(`over budget: ${over.map((b) => `${b.name} ${b.bytes} > ${b.budgetBytes}`).join("; ")}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`build: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
