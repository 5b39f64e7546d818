/** Builds the platform for an entry point from its environment, once, at module scope. */
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { EventBridgePublisher } from "./aws/eventbridge-publisher.ts";
import { LambdaBatchDispatcher } from "./aws/lambda-batch-dispatcher.ts";
import { LambdaTrainDispatcher } from "./aws/lambda-train-dispatcher.ts";
import { SageMakerJobRunner } from "./aws/sagemaker-runner.ts";
import { type Config, loadConfig } from "./config.ts";
import { type Logger, makeLogger } from "./log.ts";
import { addMetric, makeMetrics } from "./metrics.ts";
import { openStore } from "./open-store.ts";
import { Platform, type PlatformOptions } from "./platform.ts";

export function bootstrap(
  service: string,
  env: NodeJS.ProcessEnv = process.env,
  opts: PlatformOptions = {},
): { config: Config; log: Logger; metrics: Metrics; platform: Platform } {
  const config = loadConfig(env);
  const log = makeLogger(service, config.logLevel);
  const metrics = makeMetrics(service, config, log);
  const store = openStore(config);
  // HEADSTART_RUNNER=sagemaker: submitted embedding jobs become SageMaker Processing jobs.
  const runner =
    opts.runner ??
    (config.runner === "sagemaker" ? SageMakerJobRunner.fromConfig(store, config, log) : undefined);
  // HEADSTART_TRAIN_FUNCTION_NAME: the API hands training to the train Lambda (202).
  const trainDispatcher =
    opts.trainDispatcher ??
    (config.trainFunctionName
      ? new LambdaTrainDispatcher(config.trainFunctionName, { region: config.region })
      : undefined);
  // HEADSTART_BATCH_FUNCTION_NAME: the API hands started batch jobs to that Lambda (job-complete).
  const batchDispatcher =
    opts.batchDispatcher ??
    (config.batchFunctionName
      ? new LambdaBatchDispatcher(config.batchFunctionName, { region: config.region })
      : undefined);
  // HEADSTART_EVENT_BUS_NAME: events also go to the customer's EventBridge bus.
  const publisher = config.eventBusName
    ? new EventBridgePublisher(config.eventBusName, { region: config.region })
    : undefined;
  const platform = new Platform(store, config, {
    onJobError: (job, err) => log.error("embedding job failed", { job, error: (err as Error).message }),
    // Jobs a local runner embeds in this process count towards this invocation's metrics.
    onProgress: (e) => {
      if (e.type === "shard" && e.committed) addMetric(metrics, "itemsEmbedded", e.items);
    },
    ...opts,
    runner,
    trainDispatcher,
    batchDispatcher,
    // A Lambda may be frozen once it returns: events are delivered before, within a bounded time.
    notifications: { mode: "await", log, publisher, ...opts.notifications },
  });
  return { config, log, metrics, platform };
}
