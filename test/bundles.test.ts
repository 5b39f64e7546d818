/**
 * The deployed packages themselves: each Lambda bundle from `npm run build`, copied out of the
 * repository (so nothing resolves from its node_modules, as in Lambda's /var/task) and run in a
 * fresh `node` with the sample events. The functions that never run a backbone must start without
 * any native package; the API and train packages must run onnxruntime from what they ship.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { keys } from "../shared/layout.ts";
import { buildLambdaBundles } from "./helpers/bundles.ts";
import { loadEvent } from "./helpers/events.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const run = promisify(execFile);

/** Imports `<dir>/index.mjs`, calls its handler with `event` (if any), prints the result as JSON. */
const RUNNER = `
const mod = await import(process.env.BUNDLE);
// 15 minutes left, a fresh invocation of the longest timeout: drift-check starts no check in its last 3.
const context = { awsRequestId: "bundle-test", functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
  getRemainingTimeInMillis: () => 900000 };
const event = process.env.EVENT ? JSON.parse(process.env.EVENT) : undefined;
const result = event === undefined ? { handler: typeof mod.handler } : await mod.handler(event, context);
process.stdout.write("\\n" + JSON.stringify(result) + "\\n");
`;

describe("the built Lambda packages, outside the repository", () => {
  let work: string;
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const dirs: Record<string, string> = {};

  before(
    async () => {
      work = await mkdtemp(join(tmpdir(), "headstart-bundles-"));
      await writeFile(join(work, "runner.mjs"), RUNNER);
      for (const b of await buildLambdaBundles()) {
        dirs[b.name] = join(work, b.name);
        await cp(b.dir, dirs[b.name]!, { recursive: true });
      }
      ctx = await tinyPlatform();
      await ctx.platform.putManifest("reviews", "jsonl", toJsonlText(tinySentimentRows(40)));
      await ctx.platform.embed("reviews");
    },
    { timeout: 300_000 },
  );
  after(async () => {
    await ctx?.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function invoke(name: string, event?: unknown, env: Record<string, string> = {}) {
    const { stdout } = await run(process.execPath, ["--enable-source-maps", join(work, "runner.mjs")], {
      cwd: dirs[name],
      env: {
        PATH: process.env.PATH,
        BUNDLE: join(dirs[name]!, "index.mjs"),
        AWS_LAMBDA_FUNCTION_NAME: `headstart-test-${name}`,
        HEADSTART_STORE: ctx.store.root,
        HEADSTART_DEFAULT_BACKBONE: "tiny-text",
        HEADSTART_BUILD_BACKBONES: "false",
        HEADSTART_SCRATCH_DIR: work,
        HEADSTART_MODELS_DIR: join(work, "models"),
        HEADSTART_LOG_LEVEL: "error",
        HEADSTART_METRICS: "off",
        AWS_REGION: "eu-west-1",
        ...(event === undefined ? {} : { EVENT: JSON.stringify(event) }),
        ...env,
      },
      maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout.trim().split("\n").at(-1)!);
  }

  test("authorizer, ingest and job-complete start with no native package to load", async () => {
    const sagemaker = {
      HEADSTART_RUNNER: "sagemaker",
      HEADSTART_STORE: "s3://headstart-test-bucket",
      HEADSTART_SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/test",
      HEADSTART_EMBED_IMAGE_URI: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/embed:latest",
    };
    assert.deepEqual(await invoke("authorizer"), { handler: "function" });
    assert.deepEqual(await invoke("ingest", undefined, sagemaker), { handler: "function" });
    // A state change of a job this store does not know: answered without SageMaker or natives.
    const result = await invoke("job-complete", loadEvent("sagemaker-job-state-change"));
    assert.equal(result.outcome, "ignored");
  });

  test("api: a text prediction runs the tiny backbone in the onnxruntime the package ships", async () => {
    await ctx.platform.train({ dataset: "reviews", head: "sentiment" });
    const event = loadEvent<{ body: string }>("api-predict");
    event.body = JSON.stringify({ inputs: ["a wonderful great film", "an awful boring film"] });
    const res = await invoke("api", event);
    assert.equal(res.statusCode, 200, res.body);
    const body = JSON.parse(res.body);
    assert.deepEqual(
      body.predictions.map((p: { label: string }) => p.label),
      ["pos", "neg"],
    );
    const css = loadEvent<{ rawPath: string; requestContext: { http: { path: string } } }>("api-health");
    css.rawPath = css.requestContext.http.path = "/docs/assets/swagger-ui.css";
    const asset = await invoke("api", css);
    assert.equal(asset.statusCode, 200, "Swagger UI's assets ship with the API package");
    // The web console ships in the package too: its page at /, and the script that page names.
    css.rawPath = css.requestContext.http.path = "/";
    const page = await invoke("api", css);
    assert.equal(page.statusCode, 200, "the console's page ships with the API package");
    assert.match(page.headers["content-security-policy"], /default-src 'self'/);
    const script = /src="(console\/assets\/app-[A-Z0-9]+\.js)"/.exec(page.body)?.[1];
    assert.ok(script, page.body);
    css.rawPath = css.requestContext.http.path = `/${script}`;
    const js = await invoke("api", css);
    assert.equal(js.statusCode, 200, "the console's script ships with the API package");
    assert.match(js.headers["cache-control"], /immutable/);
  });

  test("drift-check: a round embeds a head's captured texts with the onnxruntime the package ships", async () => {
    await ctx.platform.train({ dataset: "reviews", head: "watched", capture: "all" });
    await ctx.platform.predict("watched", { inputs: tinySentimentRows(60, { seed: 5 }).map((r) => r.text) });
    await ctx.platform.captureIdle();
    const result = await invoke("drift-check", {});
    assert.equal(result.failed, 0, JSON.stringify(result));
    assert.equal(result.checked, 1, JSON.stringify(result));
    assert.ok(await ctx.store.head(keys.headDriftState("watched")), "its drift record");
  });

  test("train: an MLP head fits with the onnxruntime the package ships", async () => {
    const event = { ...loadEvent<Record<string, unknown>>("train-request"), type: "mlp", cv: 2 };
    const result = await invoke("train", event);
    assert.equal(result.error, undefined, JSON.stringify(result.error));
    assert.equal(result.type, "mlp");
    assert.ok(result.version);
  });
});
