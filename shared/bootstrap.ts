/** Builds the platform for an entry point from its environment, once, at module scope. */
import { type Config, loadConfig } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { Platform, type PlatformOptions } from "./platform.ts";
import { openStore } from "./store/index.ts";

export function bootstrap(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: PlatformOptions = {},
): { config: Config; log: Logger; platform: Platform } {
  const config = loadConfig(env);
  const log = createLogger(config.logLevel, undefined, { service });
  const platform = new Platform(openStore(config), config, {
    onJobError: (job, err) => log.error("embedding job failed", { job, error: (err as Error).message }),
    ...opts,
  });
  return { config, log, platform };
}
