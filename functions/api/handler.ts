import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Context } from "aws-lambda";
import { handle, type LambdaContext, type LambdaEvent } from "hono/aws-lambda";
import { createApp } from "../../shared/api/app.ts";
import { bootstrap } from "../../shared/bootstrap.ts";
import { instrument } from "../../shared/lambda.ts";
import { addMetric } from "../../shared/metrics.ts";

const { platform, log, metrics } = bootstrap("headstart-api");

/** The bundle carries the console's build beside index.mjs (scripts/build.ts); from source, the local build. */
const bundledConsole = fileURLToPath(new URL("console", import.meta.url));
export const app = createApp(platform, log, {
  consoleDir: existsSync(bundledConsole) ? bundledConsole : undefined,
});
const serve = handle(app);

export const handler = instrument({ log, metrics }, async (event: LambdaEvent, context?: Context) => {
  const started = performance.now();
  const result = await serve(event, context as LambdaContext | undefined);
  recordPredict(event, result, performance.now() - started);
  // Lambda may freeze this process once the handler returns: the inputs a version keeps
  // (`capture`) are written first, so none is lost; a head without capture waits for nothing.
  await platform.captureIdle();
  return result;
});

const PREDICT_PATH = /^\/v1\/heads\/[^/]+\/predict$/;

/** Predictions answered and their latency: from the response, so the routes stay unaware of metrics. */
function recordPredict(event: LambdaEvent, result: { statusCode?: number; body?: string }, ms: number) {
  const path = "rawPath" in event ? event.rawPath : "path" in event ? event.path : undefined;
  if (!path || !PREDICT_PATH.test(path) || result.statusCode !== 200 || !result.body) return;
  let count = 0;
  try {
    count = (JSON.parse(result.body) as { predictions?: unknown[] }).predictions?.length ?? 0;
  } catch {
    return; // not JSON: nothing to count
  }
  addMetric(metrics, "predictions", count);
  addMetric(metrics, "predictLatency", ms);
}
