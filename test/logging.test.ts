/**
 * Logging and metrics: the log level's precedence, JSON lines on stderr only, the request log
 * with its correlation id, and the EMF documents a Lambda invocation prints on stdout.
 */
// First: shared/api/responses.ts extends schemas of shared/datasets/status.ts with `.openapi`,
// which zod v4 only offers on schemas made after @hono/zod-openapi is loaded.
import "@hono/zod-openapi";
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { APIGatewayProxyEventV2, Context } from "aws-lambda";
import { createApp } from "../shared/api/app.ts";
import { loadConfig } from "../shared/config.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { addMetric, makeMetrics } from "../shared/metrics.ts";
import { loadEvent } from "./helpers/events.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

/** Everything written to stdout and stderr while `fn` runs (and nothing reaches the terminal). */
async function capture<T>(fn: () => Promise<T>): Promise<{ result: T; stdout: string[]; stderr: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const origOut = process.stdout.write;
  const origErr = process.stderr.write;
  process.stdout.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof origOut;
  process.stderr.write = ((chunk: string | Uint8Array) => err.push(String(chunk)) > 0) as typeof origErr;
  try {
    const result = await fn();
    return { result, stdout: lines(out), stderr: lines(err) };
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
  }
}
const lines = (chunks: string[]) => chunks.join("").split("\n").filter(Boolean);
const json = (ls: string[]) => ls.map((l) => JSON.parse(l) as Record<string, unknown>);

interface Emf {
  _aws: {
    CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }>;
  };
  [key: string]: unknown;
}
const metricNames = (doc: Emf) => doc._aws.CloudWatchMetrics[0].Metrics.map((m) => m.Name).sort();

describe("log level", () => {
  test("AWS_LAMBDA_LOG_LEVEL > HEADSTART_LOG_LEVEL > info", () => {
    assert.equal(loadConfig({}).logLevel, "info");
    assert.equal(loadConfig({ HEADSTART_LOG_LEVEL: "debug" }).logLevel, "debug");
    assert.equal(loadConfig({ HEADSTART_LOG_LEVEL: "debug", AWS_LAMBDA_LOG_LEVEL: "WARN" }).logLevel, "warn");
    assert.equal(loadConfig({ AWS_LAMBDA_LOG_LEVEL: "TRACE" }).logLevel, "debug");
    assert.equal(loadConfig({ AWS_LAMBDA_LOG_LEVEL: "FATAL" }).logLevel, "error");
    assert.throws(() => loadConfig({ AWS_LAMBDA_LOG_LEVEL: "LOUD" }), /AWS_LAMBDA_LOG_LEVEL/);
  });

  test("Powertools applies AWS_LAMBDA_LOG_LEVEL itself, and ignores POWERTOOLS_LOG_LEVEL", () => {
    const written: string[] = [];
    process.env.AWS_LAMBDA_LOG_LEVEL = "WARN";
    try {
      const log = makeLogger("t", "debug", (l) => written.push(l));
      log.info("hidden");
      log.warn("shown");
    } finally {
      delete process.env.AWS_LAMBDA_LOG_LEVEL;
    }
    process.env.POWERTOOLS_LOG_LEVEL = "ERROR";
    try {
      makeLogger("t", "info", (l) => written.push(l)).info("also shown");
    } finally {
      delete process.env.POWERTOOLS_LOG_LEVEL;
    }
    assert.deepEqual(
      json(written).map((l) => l.message),
      ["shown", "also shown"],
    );
  });

  test("JSON lines on stderr, nothing on stdout; silent prints nothing", async () => {
    const { stdout, stderr } = await capture(async () => {
      makeLogger("headstart-cli", "info").info("hello", { dataset: "reviews" });
      makeLogger("headstart-cli", "info").debug("below the level");
      makeLogger("headstart-cli", "silent").error("silenced");
    });
    assert.deepEqual(stdout, []);
    assert.equal(stderr.length, 1);
    const line = JSON.parse(stderr[0]);
    assert.equal(line.level, "INFO");
    assert.equal(line.message, "hello");
    assert.equal(line.service, "headstart-cli");
    assert.equal(line.dataset, "reviews");
    assert.match(line.timestamp, /^\d{4}-\d\d-\d\dT/);
  });

  test("metrics are off outside Lambda unless asked, on in Lambda", async () => {
    assert.equal(loadConfig({}).metrics, false);
    assert.equal(loadConfig({ AWS_LAMBDA_FUNCTION_NAME: "f" }).metrics, true);
    assert.equal(loadConfig({ AWS_LAMBDA_FUNCTION_NAME: "f", HEADSTART_METRICS: "off" }).metrics, false);
    const log = makeLogger("t", "silent");
    const { stdout } = await capture(async () => {
      const off = makeMetrics("t", loadConfig({}), log);
      addMetric(off, "predictions", 3);
      off.publishStoredMetrics();
    });
    assert.deepEqual(stdout, []);
  });
});

describe("request log", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  before(async () => {
    ctx = await tinyPlatform();
  });
  after(() => ctx.cleanup());

  test("echoes the caller's correlation id, or makes one, and logs the request under it", async () => {
    const written: string[] = [];
    const app = createApp(
      ctx.platform,
      makeLogger("headstart-api", "info", (l) => written.push(l)),
    );
    const given = await app.request("/health", { headers: { "x-request-id": "req-abc.1" } });
    assert.equal(given.status, 200);
    assert.equal(given.headers.get("x-correlation-id"), "req-abc.1");
    const made = await app.request("/v1/heads/nope/predict", {
      method: "POST",
      headers: { "content-type": "application/json", "x-correlation-id": "bad id with spaces" },
      body: JSON.stringify({ inputs: ["x"] }),
    });
    assert.equal(made.status, 404);
    const id = made.headers.get("x-correlation-id");
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    const logged = json(written).filter((l) => l.message === "request");
    assert.deepEqual(
      logged.map((l) => [l.correlation_id, l.method, l.path, l.status]),
      [
        ["req-abc.1", "GET", "/health", 200],
        [id, "POST", "/v1/heads/nope/predict", 404],
      ],
    );
  });
});

describe("Lambda invocations: context in the logs, one EMF document per invocation", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let ingest: (e: unknown, c?: Context) => Promise<{ results: Array<{ state: string }> }>;
  let api: (e: APIGatewayProxyEventV2, c?: Context) => Promise<{ statusCode?: number; headers?: unknown }>;
  const lambdaContext = (id: string, functionName: string) =>
    ({ awsRequestId: id, functionName, getRemainingTimeInMillis: () => 60_000 }) as unknown as Context;

  before(async () => {
    ctx = await tinyPlatform();
    Object.assign(process.env, {
      HEADSTART_STORE: ctx.store.root,
      HEADSTART_DEFAULT_BACKBONE: "tiny-text",
      HEADSTART_MODELS_DIR: join(ctx.dir, "models"),
      HEADSTART_LOG_LEVEL: "info",
      HEADSTART_METRICS: "on",
      HEADSTART_CUSTOMER: "acme",
      // What the Lambda runtime sets; Powertools reports cold starts only for on-demand starts.
      AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    });
    ingest = (await import("../functions/ingest/handler.ts")).handler;
    api = (await import("../functions/api/handler.ts")).handler as unknown as typeof api;
  });
  after(() => ctx.cleanup());

  test("ingest: cold start, request id, rows and items as metrics", async () => {
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(40, { withSplit: true })),
    );
    const first = await capture(() =>
      ingest(loadEvent("s3-manifest-put"), lambdaContext("req-1", "ingest-fn")),
    );
    assert.equal(first.result.results[0].state, "ingested");
    const docs = json(first.stdout) as Emf[];
    // The cold-start metric is its own document, printed first; then the invocation's.
    assert.equal(docs.length, 2);
    assert.deepEqual(metricNames(docs[0]), ["ColdStart"]);
    const emf = docs[1];
    assert.equal(emf._aws.CloudWatchMetrics[0].Namespace, "headstart");
    assert.deepEqual(emf._aws.CloudWatchMetrics[0].Dimensions[0].sort(), ["customer", "service"]);
    assert.equal(emf.customer, "acme");
    assert.equal(emf.service, "headstart-ingest");
    assert.deepEqual(metricNames(emf), ["IngestRowsAccepted", "IngestRowsRejected", "ItemsEmbedded"]);
    assert.equal(emf.IngestRowsAccepted, 40);
    assert.equal(emf.IngestRowsRejected, 0);
    assert.equal(emf.ItemsEmbedded, 40);
    const ingested = json(first.stderr).find((l) => l.message === "dataset ingested");
    assert.equal(ingested?.cold_start, true);
    assert.equal(ingested?.function_request_id, "req-1");
    assert.equal(ingested?.function_name, "ingest-fn");

    // A newer upload of the key: a warm invocation prints exactly one document.
    await ctx.store.put(
      keys.manifest("reviews", "jsonl"),
      toJsonlText(tinySentimentRows(30, { withSplit: true })),
    );
    const event = loadEvent<{ Records: Array<{ s3: { object: { sequencer: string } } }> }>("s3-manifest-put");
    event.Records[0].s3.object.sequencer = "0055AED6DCD90281F0";
    const second = await capture(() => ingest(event, lambdaContext("req-2", "ingest-fn")));
    const docs2 = json(second.stdout) as Emf[];
    assert.equal(docs2.length, 1);
    assert.equal(docs2[0].IngestRowsAccepted, 30);
    const warm = json(second.stderr).find((l) => l.message === "dataset ingested");
    assert.equal(warm?.cold_start, false);
    assert.equal(warm?.function_request_id, "req-2");
  });

  test("API: predictions and latency; API Gateway's request id is the correlation id", async () => {
    await ctx.platform.train({ dataset: "reviews", head: "sentiment" });
    const event = loadEvent<APIGatewayProxyEventV2>("api-predict");
    const { result, stdout, stderr } = await capture(() => api(event, lambdaContext("req-3", "api-fn")));
    assert.equal(result.statusCode, 200);
    assert.equal(
      (result.headers as Record<string, string>)["x-correlation-id"],
      event.requestContext.requestId,
    );
    const docs = (json(stdout) as Emf[]).filter((d) => !metricNames(d).includes("ColdStart"));
    assert.equal(docs.length, 1);
    assert.deepEqual(metricNames(docs[0]), ["PredictLatency", "Predictions"]);
    assert.equal(docs[0].Predictions, 2);
    assert.ok(Number(docs[0].PredictLatency) > 0);
    const request = json(stderr).find((l) => l.message === "request");
    assert.equal(request?.correlation_id, event.requestContext.requestId);
    assert.equal(request?.function_request_id, "req-3");
  });
});
