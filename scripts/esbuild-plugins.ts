/**
 * What every esbuild bundle of ours shares: the Lambda bundles (scripts/build.ts) and the CLI's
 * (scripts/build-cli.ts).
 */
import { dirname, join } from "node:path";
import type * as esbuild from "esbuild";

// CommonJS dependencies inside an ESM bundle still call require() and read __dirname.
export const ESM_CJS_BANNER = [
  'import { createRequire as __hsRequire } from "node:module";',
  'import { fileURLToPath as __hsPath } from "node:url";',
  "const require = __hsRequire(import.meta.url);",
  "const __filename = __hsPath(import.meta.url);",
  'const __dirname = __hsPath(new URL(".", import.meta.url));',
].join("");

/**
 * zod 4 re-exports every locale (≈260 KB minified) through `z.locales`; headstart speaks English
 * only and never reads `z.locales`, so the bundles get zod's English locale alone.
 */
export const zodEnglishOnly: esbuild.Plugin = {
  name: "zod-english-only",
  setup(build) {
    build.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)
        ? { path: join(dirname(args.importer), "..", "locales", "en.js"), namespace: "zod-locales" }
        : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "zod-locales" }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(args.path)};`,
      resolveDir: dirname(args.path),
    }));
  },
};
