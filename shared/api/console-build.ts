/**
 * Builds the web console (`console/`, Preact + TSX) with esbuild into `.build/console/`:
 * `index.html`, `assets/app-<hash>.js` and `assets/app-<hash>.css`, minified. `npm run build`
 * calls it, and so does `headstart serve` when the build is missing or older than its sources, so
 * `npm ci && npm start` works from a clean clone. esbuild is imported only here and only when a
 * build runs: the API Lambda serves a finished build and never loads it.
 */
import { readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { CONSOLE_BUILD_DIR } from "./console.ts";

export const CONSOLE_SOURCE_DIR = fileURLToPath(new URL("../../console/", import.meta.url));

export interface ConsoleBuild {
  dir: string;
  /** The files the first page load fetches (`index.html` and its assets): bytes and gzipped bytes. */
  files: Array<{ name: string; bytes: number; gzipBytes: number }>;
  gzipBytes: number;
}

// Relative URLs, so the page also works when the API sits under a path prefix. The empty icon
// stops the browser asking for /favicon.ico (a 404, logged as a console error).
const page = (js: string, css: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>headstart console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="console/assets/${css}">
<script type="module" src="console/assets/${js}"></script>
</head>
<body>
<div id="app"></div>
</body>
</html>
`;

/** The newest modification time of the console's sources (and of this builder, which shapes the output). */
async function newestSource(): Promise<number> {
  let newest = (await stat(fileURLToPath(import.meta.url))).mtimeMs;
  for (const entry of await readdir(CONSOLE_SOURCE_DIR, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

/** Whether `dir` holds a build at least as new as every source file. */
export async function consoleBuildIsCurrent(dir = CONSOLE_BUILD_DIR): Promise<boolean> {
  const built = await stat(join(dir, "index.html")).catch(() => undefined);
  return built !== undefined && built.mtimeMs >= (await newestSource());
}

/** Builds into a fresh folder, then swaps it in, so a running server never reads half a build. */
export async function buildConsole(dir = CONSOLE_BUILD_DIR): Promise<ConsoleBuild> {
  const esbuild = await import("esbuild");
  const work = `${dir.replace(/\/+$/, "")}.tmp-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  const result = await esbuild.build({
    entryPoints: { app: join(CONSOLE_SOURCE_DIR, "main.tsx") },
    outdir: join(work, "assets"),
    entryNames: "[name]-[hash]",
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify: true,
    legalComments: "none",
    metafile: true,
    logLevel: "warning",
    define: { "process.env.NODE_ENV": '"production"' },
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => relative(join(work, "assets"), p));
  const js = outputs.find((n) => n.endsWith(".js"));
  const css = outputs.find((n) => n.endsWith(".css"));
  if (!js || !css) throw new Error(`console build made ${outputs.join(", ")}: expected a .js and a .css`);
  await writeFile(join(work, "index.html"), page(js, css));
  await rm(dir, { recursive: true, force: true });
  await rename(work, dir);
  return measure(dir, ["index.html", `assets/${js}`, `assets/${css}`]);
}

async function measure(dir: string, names: string[]): Promise<ConsoleBuild> {
  const files = [];
  for (const name of names) {
    const bytes = await readFile(join(dir, name));
    files.push({ name, bytes: bytes.length, gzipBytes: gzipSync(bytes, { level: 9 }).length });
  }
  return { dir, files, gzipBytes: files.reduce((s, f) => s + f.gzipBytes, 0) };
}

/** Builds the console unless a current build is there; answers whether it built. */
export async function ensureConsoleBuilt(dir = CONSOLE_BUILD_DIR): Promise<boolean> {
  if (await consoleBuildIsCurrent(dir)) return false;
  await buildConsole(dir);
  return true;
}
