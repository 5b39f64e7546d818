import type { Command } from "commander";
import { collect, context, intOption } from "../context.ts";
import type { ServeOptions } from "../serve.ts";

export function registerServe(program: Command): void {
  addServerOptions(
    program.command("serve").description("serve the HTTP API; embedding jobs run in worker processes"),
  ).action(async (opts, cmd: Command) => {
    const { platform, log } = context(cmd, "process");
    // The HTTP app (hono, every route, the console) loads only for the commands that serve it.
    const { serveApi } = await import("../serve.ts");
    const url = await serveApi(platform, log, toServeOptions(opts));
    log.info("listening", {
      url,
      store: platform.store.url,
      openapi: `${url}/openapi.json`,
      docs: `${url}/docs`,
      console: `${url}/`,
    });
  });
}

/** `--port`, `--host` and `--allowed-host`, as `serve` and `start` both take them. */
export function addServerOptions(command: Command): Command {
  return command
    .option("--port <n>", "port", intOption("port"), 8787)
    .option("--host <host>", "interface to bind (not loopback: API keys required)", "127.0.0.1")
    .option(
      "--drift-check-minutes <n>",
      "every n minutes, check each head that captures all inputs (with 50 or more) for drift against its training data (0: never)",
      intOption("drift-check-minutes"),
      0,
    )
    .option(
      "--drift-window-days <n>",
      "the scheduled check reads the inputs captured in the last n days (default 7, or HEADSTART_DRIFT_WINDOW_DAYS)",
      intOption("drift-window-days"),
    )
    .option(
      "--allowed-host <name>",
      "a host name clients may use besides this server's addresses (repeatable)",
      collect,
      [],
    );
}

/** The flags as `serveApi` takes them. */
export const toServeOptions = (opts: {
  port: number;
  host: string;
  allowedHost: string[];
  driftCheckMinutes?: number;
  driftWindowDays?: number;
}): ServeOptions => ({
  port: opts.port,
  host: opts.host,
  allowedHosts: opts.allowedHost,
  driftCheckMinutes: opts.driftCheckMinutes,
  driftWindowDays: opts.driftWindowDays,
});
