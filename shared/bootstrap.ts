/** Builds the platform for an entry point from its environment, once, at module scope. */
import { type Config, loadConfig } from "./config.ts";
import { LambdaTrainDispatcher } from "./heads/train-dispatch.ts";
import { SageMakerJobRunner } from "./jobs/sagemaker-runner.ts";
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
  const platform = new Platform(store, config, {
    onJobError: (job, err) => log.error("embedding job failed", { job, error: (err as Error).message }),
    ...opts,
    runner,
    trainDispatcher,
  });
  return { config, log, platform };
}
