/**
 * `npm run bench:cold [-- --json] [--runs N]`: cold starts of the built Lambda bundles (not the
 * sources), each in a fresh `node` process as Lambda's runtime starts them, median of N runs:
 *  (a) process start → handler ready, per function;
 *  (b) → first head-only prediction (an embedding in, no backbone);
 *  (c) → first text prediction with glove-100d and with use-lite-512, the model fetched from an
 *      S3 store (radosgw on loopback) into an empty scratch folder each time.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { bundleDir, type FunctionName, LAMBDA_NAMES } from "../infra/bundles.ts";
import { loadConfig } from "../shared/config.ts";
import { Platform } from "../shared/platform.ts";
import { loadImdb } from "../shared/samples/imdb.ts";
import { createS3TestStore, s3Env, startS3Server } from "../test/helpers/s3-server.ts";
import { machine } from "./bench-common.ts";
import { buildFunctions } from "./build.ts";

const CHILD = new URL("cold-start-child.mjs", import.meta.url).pathname;
const TARGETS_MS = { headOnlyFirstPredictMs: 300, gloveFirstPredictMs: 1500, useLiteFirstPredictMs: 1000 };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number) => Math.round(x * 10) / 10;

/** One fresh process: ms from spawn to handler ready, and to the first answer when `event` is given. */
function coldStart(name: FunctionName, env: Record<string, string>, event?: unknown) {
  return new Promise<{ initMs: number; firstMs?: number }>((resolve, reject) => {
    const start = performance.timeOrigin + performance.now();
    const child = spawn(process.execPath, ["--enable-source-maps", CHILD], {
      env: {
        PATH: process.env.PATH,
        ...env,
        AWS_LAMBDA_FUNCTION_NAME: `headstart-bench-${name}`,
        COLD_BUNDLE: join(bundleDir(name), "index.mjs"),
        ...(event ? { COLD_EVENT: JSON.stringify(event) } : {}),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("close", (code) => {
      const last = out.trim().split("\n").at(-1) ?? "";
      if (code !== 0 || !last.startsWith("{")) {
        reject(new Error(`${name} cold start failed (exit ${code}): ${err.slice(-2000)}`));
        return;
      }
      const r = JSON.parse(last) as { ready: number; answered?: number };
      resolve({
        initMs: r.ready - start,
        firstMs: r.answered === undefined ? undefined : r.answered - start,
      });
    });
  });
}

/** An API Gateway HTTP API (payload 2.0) request, as the deployed route `ANY /{proxy+}` delivers it. */
function apiEvent(path: string, body: unknown) {
  return {
    version: "2.0",
    routeKey: "ANY /{proxy+}",
    rawPath: path,
    rawQueryString: "",
    headers: { "content-type": "application/json", host: "bench.execute-api.us-east-1.amazonaws.com" },
    requestContext: {
      accountId: "123456789012",
      apiId: "bench",
      domainName: "bench.execute-api.us-east-1.amazonaws.com",
      http: { method: "POST", path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: "bench" },
      requestId: "bench",
      routeKey: "ANY /{proxy+}",
      stage: "$default",
      time: "06/Dec/2026:00:00:00 +0000",
      timeEpoch: 1796515200000,
    },
    pathParameters: { proxy: path.slice(1) },
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

async function main() {
  const { values } = parseArgs({
    options: { json: { type: "boolean", default: false }, runs: { type: "string", default: "7" } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 5)
    throw new Error(`--runs must be an integer ≥ 5, got ${values.runs}`);
  const say = (m: string) => process.stderr.write(`bench:cold: ${m}\n`);

  say("building the bundles (npm run build)");
  const built = await buildFunctions(LAMBDA_NAMES);
  say("starting radosgw and preparing a store (backbones, a dataset, three heads)");
  const s3 = await startS3Server();
  const work = await mkdtemp(join(tmpdir(), "headstart-cold-"));
  try {
    const { store, platform } = await prepareStore(s3, work);
    const vector = Array.from({ length: 100 }, (_, i) => Math.sin(i));

    const env = {
      ...s3Env(s3, store.bucket, "cold"),
      HEADSTART_LOG_LEVEL: "warn",
      HEADSTART_BUILD_BACKBONES: "false",
    };
    const platformEnv = {
      ...env,
      HEADSTART_RUNNER: "sagemaker",
      HEADSTART_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/bench",
      HEADSTART_EMBED_IMAGE_URI: "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench:latest",
    };
    /** Each run gets an empty /tmp: the model must come from the store again. */
    const fresh = async <T>(fn: (tmp: Record<string, string>) => Promise<T>) => {
      const tmp = await mkdtemp(join(work, "tmp-"));
      try {
        return await fn({ HEADSTART_SCRATCH_DIR: tmp, HEADSTART_MODELS_DIR: join(tmp, "models") });
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    };
    const measure = async (name: FunctionName, event?: unknown) => {
      const init: number[] = [];
      const first: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await fresh((tmp) =>
          coldStart(name, { ...(name === "api" ? env : platformEnv), ...tmp }, event),
        );
        init.push(r.initMs);
        if (r.firstMs !== undefined) first.push(r.firstMs);
      }
      return { initMs: round(median(init)), firstMs: first.length ? round(median(first)) : undefined };
    };

    const functions: Record<string, { bytes: number; mapBytes: number; initMs: number }> = {};
    for (const b of built) {
      say(`${b.name}: ${runs} cold starts`);
      functions[b.name] = { bytes: b.bytes, mapBytes: b.mapBytes, initMs: (await measure(b.name)).initMs };
    }
    say("api: first predictions");
    const headOnly = await measure("api", apiEvent("/v1/heads/cold-glove/predict", { embeddings: [vector] }));
    const glove = await measure("api", apiEvent("/v1/heads/cold-glove/predict", { inputs: ["a fine film"] }));
    const useLite = await measure("api", apiEvent("/v1/heads/cold-use/predict", { inputs: ["a fine film"] }));
    const result = {
      functions,
      headOnlyFirstPredictMs: headOnly.firstMs,
      gloveFirstPredictMs: glove.firstMs,
      useLiteFirstPredictMs: useLite.firstMs,
      targetsMs: TARGETS_MS,
      runs,
      modelBytes: {
        "glove-100d": await objectBytes(platform, "glove-100d"),
        "use-lite-512": await objectBytes(platform, "use-lite-512"),
      },
      machine: await machine(),
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else printTable(result);
  } finally {
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/** A store on radosgw with 300 IMDB reviews embedded by both text backbones, and a head on each. */
async function prepareStore(s3: Awaited<ReturnType<typeof startS3Server>>, work: string) {
  const store = await createS3TestStore(s3, { prefix: "cold", scratchDir: join(work, "scratch") });
  const config = loadConfig(
    {},
    { store: store.url, s3Endpoint: s3.endpoint, region: s3.region, logLevel: "silent" },
  );
  const platform = new Platform(store, config);
  const reviews = await loadImdb(300);
  const manifest = reviews.map((r) => JSON.stringify({ text: r.text, label: r.label })).join("\n");
  await platform.putManifest("cold", "jsonl", manifest);
  for (const [head, backbone] of [
    ["cold-glove", "glove-100d"],
    ["cold-use", "use-lite-512"],
  ] as const) {
    await platform.embed("cold", { backbone });
    await platform.train({ dataset: "cold", head, backbone });
  }
  return { store, platform };
}

/** Bytes a cold start downloads for a backbone: its model and assets. */
async function objectBytes(platform: Platform, id: string): Promise<number> {
  const spec = await platform.backbone(id);
  let bytes = 0;
  for (const obj of await platform.store.list(`backbones/${id}/`)) {
    if ([spec.model, ...spec.assets].some((f) => obj.key.endsWith(`/${f}`))) bytes += obj.size;
  }
  return bytes;
}

function printTable(r: {
  functions: Record<string, { bytes: number; mapBytes: number; initMs: number }>;
  headOnlyFirstPredictMs?: number;
  gloveFirstPredictMs?: number;
  useLiteFirstPredictMs?: number;
  runs: number;
  machine: unknown;
}) {
  const lines = [`cold starts, median of ${r.runs} fresh processes each`, ""];
  lines.push("function       package (MB)  init (ms)");
  for (const [name, f] of Object.entries(r.functions)) {
    lines.push(
      `${name.padEnd(14)} ${(f.bytes / 1e6).toFixed(2).padStart(12)}  ${f.initMs.toFixed(1).padStart(9)}`,
    );
  }
  const row = (label: string, ms: number | undefined, target: number) =>
    `${label.padEnd(34)} ${String(ms).padStart(8)} ms  (target ≤ ${target} ms${ms !== undefined && ms <= target ? ", met" : ", NOT met"})`;
  lines.push("", "process start → first prediction");
  lines.push(row("head only (embedding in)", r.headOnlyFirstPredictMs, TARGETS_MS.headOnlyFirstPredictMs));
  lines.push(row("text, glove-100d (model from S3)", r.gloveFirstPredictMs, TARGETS_MS.gloveFirstPredictMs));
  lines.push(
    row("text, use-lite-512 (model from S3)", r.useLiteFirstPredictMs, TARGETS_MS.useLiteFirstPredictMs),
  );
  lines.push("", `machine: ${JSON.stringify(r.machine)}`);
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch((err) => {
  process.stderr.write(`bench:cold: ${(err as Error).stack}\n`);
  process.exit(1);
});
