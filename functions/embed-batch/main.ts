/**
 * The batch embedding stage's entry point: the SageMaker Processing container's command and
 * the local worker process. Configured only by environment (see shared/embed/batch.ts).
 */
import { loadConfig } from "../../shared/config.ts";
import { batchSettingsFromEnv, runBatch } from "../../shared/embed/batch.ts";
import { isUserError } from "../../shared/errors.ts";
import { createLogger } from "../../shared/log.ts";
import { openStore } from "../../shared/store/index.ts";

const config = loadConfig();
const log = createLogger(config.logLevel, undefined, { service: "headstart-embed-batch" });
try {
  const result = await runBatch(openStore(config), config, batchSettingsFromEnv(process.env), log);
  // The result is the only thing on stdout: the local runner reads it whatever the log level.
  process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (err) {
  log.error("batch stage failed", { error: (err as Error).message });
  process.exitCode = isUserError(err) ? 2 : 1;
}
