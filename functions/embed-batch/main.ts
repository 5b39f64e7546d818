/**
 * The batch embedding stage's entry point: the SageMaker Processing container's command and
 * the local worker process. Configured only by environment (see shared/embed/batch.ts).
 */
import { loadConfig } from "../../shared/config.ts";
import { batchExitCode, batchGroupResult, batchSettingsFromEnv, runBatch } from "../../shared/embed/batch.ts";
import { isUserError } from "../../shared/errors.ts";
import { makeLogger } from "../../shared/log.ts";
import { addMetric, makeMetrics } from "../../shared/metrics.ts";
import { openStore } from "../../shared/open-store.ts";

const config = loadConfig();
const log = makeLogger("headstart-embed-batch", config.logLevel);
// Off unless HEADSTART_METRICS=on (a container whose log agent extracts EMF); printed before
// the result, which must stay the last line on stdout.
const metrics = makeMetrics("headstart-embed-batch", config, log);
try {
  const settings = batchSettingsFromEnv(process.env);
  const outcome = await runBatch(openStore(config), config, settings, log);
  // One job: its failure fails the process, as it always has (no result line).
  if (settings.jobs.length === 1 && outcome.failures.length > 0) throw outcome.failures[0].error;
  for (const result of outcome.results) {
    addMetric(metrics, "itemsEmbedded", result.itemsEmbedded);
    addMetric(metrics, "itemsFailed", result.itemsFailed);
  }
  metrics.publishStoredMetrics();
  // The result is the last line on stdout: the local runner reads it whatever the log level.
  // Several jobs: `{jobs: [RunShardsResult…], failed: [{job, error}…]}`, and a failure of any
  // fails the process (so SageMaker reports the processing job Failed).
  const result = settings.jobs.length === 1 ? outcome.results[0] : batchGroupResult(outcome);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = batchExitCode(outcome);
} catch (err) {
  log.error("batch stage failed", { error: (err as Error).message });
  process.exitCode = isUserError(err) ? 2 : 1;
}
