/**
 * The web console's files, served by the app that answers its API calls: `index.html` at `/` and
 * the build's content-hashed scripts and styles under `/console/assets/` (from
 * `shared/api/console-build.ts`). The page is a plain client of the public JSON API; nothing
 * here reads the store. A strict Content-Security-Policy keeps every fetch, script and style on
 * this origin with no inline code, so the console works offline and leaks nothing.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { NotFoundError } from "../errors.ts";
import type { AppEnv } from "./env.ts";

/** Where `npm run build` (and `headstart serve`, when it is missing or stale) writes the console. */
export const CONSOLE_BUILD_DIR = fileURLToPath(new URL("../../.build/console/", import.meta.url));

/**
 * `media-src blob:`: try-it previews a picked audio clip from an object URL (`URL.createObjectURL`
 * of the user's own file; a blob: URL is only ever this page's own), not from elsewhere.
 */
export const CONSOLE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};
/** Only the build's own hashed file names: no other file is reachable, so no traversal either. */
const ASSET_NAME = /^[a-z]+-[A-Z0-9]{8,}\.(js|css)$/;
/** A hashed name never changes content, so browsers keep it for a year without asking. */
const IMMUTABLE = "public, max-age=31536000, immutable";

interface ConsoleFiles {
  page: string;
  assets: Map<string, Uint8Array<ArrayBuffer>>;
}

async function loadFiles(dir: string): Promise<ConsoleFiles> {
  const page = await readFile(join(dir, "index.html"), "utf8");
  const assets = new Map<string, Uint8Array<ArrayBuffer>>();
  for (const name of await readdir(join(dir, "assets"))) {
    if (ASSET_NAME.test(name)) assets.set(name, new Uint8Array(await readFile(join(dir, "assets", name))));
  }
  return { page, assets };
}

/** `/` and `/console/assets/:file`; `dir` holds `index.html` and `assets/` (default: the local build). */
export function consoleRoutes(opts: { dir?: string } = {}) {
  const app = new Hono<AppEnv>();
  let files: Promise<ConsoleFiles> | undefined;
  const load = () => {
    files ??= loadFiles(opts.dir ?? CONSOLE_BUILD_DIR).catch((err) => {
      files = undefined; // built later (npm run build): read again on the next request
      throw new NotFoundError(
        `the web console is not built (${(err as Error).message}): run \`npm run build\``,
        { field: "console" },
      );
    });
    return files;
  };
  app.get("/", async (c) => {
    const { page } = await load();
    return c.html(page, 200, {
      "cache-control": "no-cache",
      "content-security-policy": CONSOLE_CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    });
  });
  app.get("/console/assets/:file", async (c) => {
    const name = c.req.param("file");
    const bytes = ASSET_NAME.test(name) ? (await load()).assets.get(name) : undefined;
    if (!bytes) throw new NotFoundError(`console asset ${JSON.stringify(name)}`, { field: "file" });
    const type = TYPES[name.slice(name.lastIndexOf(".") + 1)];
    return c.body(bytes, 200, {
      "content-type": type,
      "cache-control": IMMUTABLE,
      "x-content-type-options": "nosniff",
    });
  });
  return app;
}
