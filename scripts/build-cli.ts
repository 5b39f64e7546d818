/**
 * `npm run build:cli` (also package.json's `prepare`, so `npm ci` runs it): bundles the CLI's
 * TypeScript sources and the pure-JS packages they import into `.build/cli/<build>/headstart.mjs`,
 * which bin/headstart.js runs while it is fresh (bin/cli-bundle.js). Under tsx a command spends
 * ≈ 0.7 s before it does anything (the loader compiling and resolving some 200 sources and 400
 * package files); the bundle starts in a fraction of that (docs/benchmarks.md, "The whole `train`
 * command").
 *
 * The bundle is a cache of the source tree, not a deployable artifact (that is `npm run build`):
 * every `import.meta.url` keeps the URL of the source file it is written in, so paths computed
 * from it (the package root, the console's sources, the audio decode worker) are the ones the
 * sources would compute. Packages loaded only on first use (natives, audio decoders, the AWS
 * clients of deployed stacks) stay outside, so they still cost nothing until used.
 *
 *   npm run build:cli [-- --quiet]
 */
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";
import { CLI_BUILD_DIR, PACKAGE_ROOT, stamp, writeCliManifest } from "../bin/cli-bundle.js";
import { AUDIO_PACKAGES, NATIVE_PACKAGES } from "../infra/bundles.ts";
import { ESM_CJS_BANNER, zodEnglishOnly } from "./esbuild-plugins.ts";

/** The CLI's entry points: `<name>.mjs` in each build. */
export const CLI_ENTRIES = { headstart: "functions/cli/main.ts" } as const;

/** Packages the CLI imports only on first use, or never at run time: left to node_modules. */
const LOADED_ON_USE = [
  ...NATIVE_PACKAGES,
  ...AUDIO_PACKAGES,
  "@aws-sdk/client-eventbridge",
  "@aws-sdk/client-lambda",
  "@aws-sdk/client-sagemaker",
  "esbuild",
  "tar",
  "tsx",
];

/** Inputs outside the sources whose change must rebuild the bundle. */
const EXTRA_INPUTS = [
  "node_modules/.package-lock.json",
  "package-lock.json",
  "scripts/build-cli.ts",
  "scripts/esbuild-plugins.ts",
];

/** Old builds are removed once no process can still be between reading the manifest and loading them. */
const OLD_BUILD_GRACE_MS = 60_000;

/** Each source module keeps its own `import.meta.url` (see above). */
const sourceMetaUrl: esbuild.Plugin = {
  name: "source-import-meta-url",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes(`${"/"}node_modules${"/"}`)) return undefined;
      const source = await readFile(args.path, "utf8");
      const url = JSON.stringify(pathToFileURL(args.path).href);
      return { contents: source.replaceAll("import.meta.url", url), loader: "ts" };
    });
  },
};

export interface BuiltCli {
  dir: string;
  build: string;
  inputs: number;
  bytes: number;
  seconds: number;
  /** False when a source changed while it was built: the manifest was left as it was. */
  current: boolean;
}

export async function buildCliBundle(dir = CLI_BUILD_DIR): Promise<BuiltCli> {
  const started = Date.now();
  const build = `${started.toString(36)}-${process.pid}`;
  const outdir = join(dir, build);
  await mkdir(outdir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: Object.fromEntries(Object.entries(CLI_ENTRIES).map(([n, e]) => [n, join(PACKAGE_ROOT, e)])),
    outdir,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    // One file per entry, read whole at start: an old build can be removed under a running
    // server without breaking a later dynamic import.
    splitting: false,
    format: "esm",
    platform: "node",
    target: "node20",
    mainFields: ["module", "main"],
    banner: { js: ESM_CJS_BANNER },
    external: LOADED_ON_USE,
    metafile: true,
    sourcemap: "linked",
    logLevel: "error",
    plugins: [zodEnglishOnly, sourceMetaUrl],
  });
  const inputs: Record<string, string> = {};
  const sources = Object.keys(result.metafile.inputs).filter((p) => !p.includes("node_modules/"));
  let current = true;
  for (const rel of [
    ...sources.map((p) => relative(PACKAGE_ROOT, join(process.cwd(), p))),
    ...EXTRA_INPUTS,
  ]) {
    const s = stamp(join(PACKAGE_ROOT, rel));
    if (s === undefined) continue;
    // Edited while esbuild read it: the bundle may hold either version, so it is not made current.
    if (Number(s.split(":")[1]) >= started) current = false;
    inputs[rel] = s;
  }
  if (current) writeCliManifest(dir, build, Object.keys(CLI_ENTRIES), inputs);
  await removeOldBuilds(dir, current ? build : undefined);
  const bytes = (await stat(join(outdir, "headstart.mjs"))).size;
  return {
    dir,
    build,
    inputs: Object.keys(inputs).length,
    bytes,
    seconds: (Date.now() - started) / 1000,
    current,
  };
}

async function removeOldBuilds(dir: string, keep: string | undefined): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name === keep) continue;
    const path = join(dir, entry.name);
    const age = Date.now() - (await stat(path)).mtimeMs;
    if (age > OLD_BUILD_GRACE_MS) await rm(path, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      quiet: { type: "boolean", default: false },
      "release-lock": { type: "string" },
    },
  });
  try {
    const built = await buildCliBundle();
    if (!values.quiet) {
      process.stdout.write(
        `cli bundle: ${built.inputs} inputs, ${(built.bytes / 1e6).toFixed(1)} MB in ${built.seconds.toFixed(1)} s → ${relative(PACKAGE_ROOT, join(built.dir, built.build))}/headstart.mjs${built.current ? "" : " (a source changed meanwhile: not made current)"}\n`,
      );
    }
  } catch (err) {
    // Never fails an install: without a bundle the CLI runs from its sources.
    process.stderr.write(
      `build-cli: ${(err as Error).message.split("\n")[0]} (the CLI runs from its sources)\n`,
    );
  } finally {
    if (values["release-lock"]) await rm(values["release-lock"], { force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main();
