/**
 * `headstart serve` / `start`: the HTTP API on this machine. Loopback (127.0.0.1) by default;
 * Host and cross-site checks always (shared/api/local-guard.ts). Bound to any other address it
 * refuses to start without an API key in the store, then demands keys on every request and says
 * so in its log.
 */
import type { AddressInfo } from "node:net";
import { serve as serveNode } from "@hono/node-server";
import { createApp } from "../../shared/api/app.ts";
import { ensureConsoleBuilt } from "../../shared/api/console-build.ts";
import { isLoopback } from "../../shared/api/local-guard.ts";
import { activeKeys, LOCAL_CUSTOMER } from "../../shared/auth/api-keys.ts";
import { KeyStore } from "../../shared/auth/key-store.ts";
import { ValidationError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { Platform } from "../../shared/platform.ts";
import { every, logDriftRound } from "../../shared/quality/drift-schedule.ts";

export interface ServeOptions {
  port: number;
  host: string;
  /** Host names besides this server's own addresses that the Host header may carry. */
  allowedHosts?: readonly string[];
  /** Every this many minutes, check heads that capture all inputs for drift (0 or absent: never). */
  driftCheckMinutes?: number;
  /** The scheduled check's window of captured inputs (default: the config's, else 7 days). */
  driftWindowDays?: number;
}

/** Starts the server; answers its URL once it listens. */
export async function serveApi(platform: Platform, log: Logger, opts: ServeOptions): Promise<string> {
  const keyStore = new KeyStore(platform.store, platform.config.customer ?? LOCAL_CUSTOMER);
  const keyCount = activeKeys((await keyStore.read()).file, keyStore.customer).length;
  const loopback = isLoopback(opts.host);
  if (!loopback && keyCount === 0) {
    throw new ValidationError(
      `--host ${opts.host} is not a loopback address, so anyone who can reach it could use this server: it needs API keys, and customer ${keyStore.customer} has none. Create one with \`headstart keys create --id <name> --scope admin\` (then send it as x-api-key), or bind 127.0.0.1`,
      { field: "host" },
    );
  }
  if (opts.driftCheckMinutes !== undefined && opts.driftCheckMinutes < 0)
    throw new ValidationError("--drift-check-minutes must be 0 or more", { field: "drift-check-minutes" });
  if (opts.driftWindowDays !== undefined && opts.driftWindowDays < 1)
    throw new ValidationError("--drift-window-days must be 1 or more", { field: "drift-window-days" });
  await buildConsoleIfStale(log);
  let port = opts.port;
  const app = createApp(platform, log, {
    local: { host: opts.host, port: () => port, allowedHosts: opts.allowedHosts },
    requireKeys: !loopback,
  });
  const server = serveNode({ fetch: app.fetch, port: opts.port, hostname: opts.host });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  port = (server.address() as AddressInfo).port;
  if (!loopback) {
    log.warn("listening on a non-loopback address: every request but /health and the docs needs an API key", {
      host: opts.host,
      port,
      activeKeys: keyCount,
    });
  } else if (keyCount > 0) {
    log.info("API keys in the store: every request but /health and the docs needs one", {
      activeKeys: keyCount,
    });
  }
  const stopDriftChecks = opts.driftCheckMinutes
    ? scheduleDriftChecks(platform, log, opts.driftCheckMinutes, opts.driftWindowDays)
    : undefined;
  const shutdown = () => {
    log.info("shutting down");
    stopDriftChecks?.();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
  return `http://${urlHost(opts.host)}:${port}`;
}

/**
 * The web console is built at `npm run build`; a clean clone (`npm ci && npm start`) or edited
 * sources get a build here. Without esbuild (a production install) the API still serves, and `/`
 * says the console is not built.
 */
async function buildConsoleIfStale(log: Logger): Promise<void> {
  const started = performance.now();
  try {
    if (await ensureConsoleBuilt())
      log.info("built the web console", { ms: Math.round(performance.now() - started) });
  } catch (err) {
    log.warn("could not build the web console; the API serves without it", { error: (err as Error).message });
  }
}

/** The scheduled drift check of the local server: each head's outcome in the log. */
export function scheduleDriftChecks(
  platform: Platform,
  log: Logger,
  minutes: number,
  windowDays?: number,
): () => void {
  log.info("drift checks scheduled", { everyMinutes: minutes, windowDays });
  return every(minutes * 60_000, async () =>
    logDriftRound(log, await platform.checkCapturingHeads({ windowDays })),
  );
}

function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return "127.0.0.1";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
