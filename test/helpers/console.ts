/**
 * The web console's browser tests share these: the real HTTP stack on an ephemeral port, Debian's
 * Chromium driven by playwright-core, a page that records off-origin requests and console errors,
 * and `check` (axe-core: no serious or critical violation, then a screenshot).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ServerType, serve } from "@hono/node-server";
import { type Browser, chromium, type Page } from "playwright-core";
import { createApp } from "../../shared/api/app.ts";
import { ensureConsoleBuilt } from "../../shared/api/console-build.ts";
import { makeLogger } from "../../shared/log.ts";
import type { Platform } from "../../shared/platform.ts";

/** Installed by scripts/system-deps.sh (npm test's pretest), as the notes on browser tests say. */
export const CHROMIUM = "/usr/bin/chromium";
/**
 * Screenshots go to the git-ignored build folder on every run, so `npm test` leaves the tree clean;
 * `npm run screenshots` writes them to docs/console/ (shown in the README) instead.
 */
export const SHOTS = resolve(
  fileURLToPath(new URL("../..", import.meta.url)),
  process.env.HEADSTART_CONSOLE_SHOTS ?? ".build/console-screenshots",
);
export const SIZES = {
  desktop: { width: 1280, height: 800 },
  mobile: { width: 390, height: 844 },
} as const;
export type Size = keyof typeof SIZES;

export interface Watched {
  page: Page;
  /** Requests to other origins (all refused). */
  elsewhere: string[];
  /** Console errors and uncaught exceptions (CSP violations are console errors). */
  problems: string[];
}

export interface ConsoleServer {
  origin: string;
  browser: Browser;
  close: () => Promise<void>;
}

/** Builds the console if stale, serves `platform` on 127.0.0.1 (the local guard on), launches Chromium. */
export async function startConsole(platform: Platform): Promise<ConsoleServer> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/system-deps.sh as root`);
  await ensureConsoleBuilt();
  await mkdir(SHOTS, { recursive: true });
  let port = 0;
  const app = createApp(platform, makeLogger("test", "silent"), {
    local: { host: "127.0.0.1", port: () => port },
    keyCacheMs: 0,
  });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  return {
    origin: `http://127.0.0.1:${port}`,
    browser,
    close: async () => {
      await browser.close();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A fresh browser context at `size` whose requests off `origin` are refused and recorded. */
export async function openPage(browser: Browser, origin: string, size: Size): Promise<Watched> {
  const context = await browser.newContext({ viewport: SIZES[size] });
  const page = await context.newPage();
  const watched: Watched = { page, elsewhere: [], problems: [] };
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    watched.elsewhere.push(url);
    return route.abort();
  });
  page.on("console", (msg) => {
    if (msg.type() === "error") watched.problems.push(msg.text());
  });
  page.on("pageerror", (err) => watched.problems.push(err.message));
  return watched;
}

let axeSource: string | undefined;

/** axe-core on the page as it is: no serious or critical violation; then its screenshot. */
export async function checkPage(w: Watched, name: string, size: Size): Promise<void> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  // Evaluated through the DevTools protocol, which the page's CSP does not govern.
  await w.page.evaluate(axeSource);
  const violations = await w.page.evaluate(async () => {
    type Violation = { id: string; impact?: string; nodes: Array<{ target: unknown }> };
    const axe = (
      globalThis as unknown as { axe: { run: (o: object) => Promise<{ violations: Violation[] }> } }
    ).axe;
    const result = await axe.run({ resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => JSON.stringify(n.target)).slice(0, 3),
    }));
  });
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `axe on ${name} at ${size}`);
  await w.page.screenshot({ path: join(SHOTS, `${name}-${size}.png`), fullPage: true });
}

/** Waits for the page's one `<h1>` to read `name`. */
/** Creates an API key over HTTP (the first needs none; later ones an admin `key`); answers its secret. */
export async function createKey(origin: string, body: { id: string; scopes: string[] }, key?: string) {
  const res = await fetch(`${origin}/v1/keys`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { key: string }).key;
}

export const heading = (page: Page, name: string | RegExp) =>
  page.getByRole("heading", { level: 1, name }).waitFor({ state: "visible" });
