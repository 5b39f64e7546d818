/**
 * CloudWatch metrics as EMF documents on stdout (Powertools Metrics), namespace `headstart`,
 * dimensions `service` and `customer`. Every metric name lives here. Lambdas publish once per
 * invocation (`shared/lambda.ts`); elsewhere metrics are off unless HEADSTART_METRICS=on, since
 * stdout is the CLI's output.
 */
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Config } from "./config.ts";
import type { Logger } from "./log.ts";

export const NAMESPACE = "headstart";

export const METRICS = {
  /** Inputs answered by predict (one per prediction). */
  predictions: { name: "Predictions", unit: MetricUnit.Count },
  predictLatency: { name: "PredictLatency", unit: MetricUnit.Milliseconds },
  /** Items committed to the cache by embedding (failed ones included), and the failed ones. */
  itemsEmbedded: { name: "ItemsEmbedded", unit: MetricUnit.Count },
  itemsFailed: { name: "ItemsFailed", unit: MetricUnit.Count },
  trainingTime: { name: "TrainingTime", unit: MetricUnit.Seconds },
  headsTrained: { name: "HeadsTrained", unit: MetricUnit.Count },
  ingestRowsAccepted: { name: "IngestRowsAccepted", unit: MetricUnit.Count },
  ingestRowsRejected: { name: "IngestRowsRejected", unit: MetricUnit.Count },
} as const;
export type MetricKey = keyof typeof METRICS;

/** Metrics that record nothing and print nothing (the CLI, the local server, tests). */
class DisabledMetrics extends Metrics {
  override addMetric(): this {
    return this;
  }
  override captureColdStartMetric(): void {}
  override publishStoredMetrics(): this {
    return this;
  }
}

export function makeMetrics(
  service: string,
  config: Pick<Config, "metrics" | "customer" | "lambdaFunction">,
  log: Logger,
): Metrics {
  const options = {
    namespace: NAMESPACE,
    serviceName: service,
    // A dimension value must not be empty: a deployment without a customer is `default`.
    defaultDimensions: { customer: config.customer ?? "default" },
    functionName: config.lambdaFunction,
    logger: log,
  };
  return config.metrics ? new Metrics(options) : new DisabledMetrics(options);
}

export function addMetric(metrics: Metrics, key: MetricKey, value: number): void {
  const { name, unit } = METRICS[key];
  metrics.addMetric(name, unit, value);
}
