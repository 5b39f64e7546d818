/**
 * The OpenAPI document: linted by Redocly (no errors, no warnings), complete (operationIds,
 * one error schema, security), and true: every response the app sends in a small end-to-end
 * flow is documented for its status and parses with its documented schema, field for field.
 * Also the offline Swagger UI at /docs.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { z } from "@hono/zod-openapi";
import { createApp } from "../shared/api/app.ts";
import { SWAGGER_UI_ASSETS, swaggerUiAssetsDir } from "../shared/api/docs.ts";
import { makeLogger } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { VERSION } from "../shared/version.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const REDOCLY = join(ROOT, "node_modules", ".bin", "redocly");
const ERROR_REF = "#/components/schemas/ErrorResponse";
const GATEWAY_REF = "#/components/schemas/GatewayError";

interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Document {
  openapi: string;
  info: { version: string };
  servers: Array<{ url: string }>;
  security: Array<Record<string, string[]>>;
  components: { securitySchemes: Record<string, Record<string, string>> };
  paths: Record<string, Record<string, Operation>>;
}
interface LintReport {
  totals: { errors: number; warnings: number };
  problems: Array<{ ruleId: string; severity: string; message: string }>;
}

type App = ReturnType<typeof createApp>;
const json = (body: unknown, method = "POST") => ({
  method,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

async function fetchDocument(app: App): Promise<Document> {
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  return (await res.json()) as Document;
}

function operations(doc: Document): Array<[string, Operation]> {
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]),
  );
}

/** Redocly's JSON report; it exits 1 when it finds errors, with the report on stdout either way. */
async function lint(doc: unknown, dir: string): Promise<LintReport> {
  const file = join(dir, `openapi-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(doc));
  const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };
  const args = ["lint", file, "--config", join(ROOT, "redocly.yaml"), "--format=json"];
  const out = await promisify(execFile)(REDOCLY, args, { env, cwd: ROOT }).catch(
    (err: { stdout?: string }) => err,
  );
  return JSON.parse(out.stdout ?? "") as LintReport;
}

/** The route definitions the document is generated from, with their zod schemas. */
type RouteDef = {
  method: string;
  path: string;
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
};
function routeDefs(app: App): RouteDef[] {
  return app.openAPIRegistry.definitions.flatMap((d) => (d.type === "route" ? [d.route as RouteDef] : []));
}

/**
 * Asserts the response is documented for its route and status, and that its body parses with the
 * documented schema to exactly itself (no field missing, mistyped or undocumented). Returns the body.
 */
async function documented(app: App, method: string, url: string, res: Response) {
  const path = new URL(url, "http://localhost").pathname;
  const route = routeDefs(app).find(
    (r) =>
      r.method === method.toLowerCase() &&
      new RegExp(`^${r.path.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path),
  );
  assert.ok(route, `${method} ${path} is in the document`);
  const response = route.responses[res.status];
  assert.ok(response, `${route.operationId} documents status ${res.status}`);
  const type = (res.headers.get("content-type") ?? "").split(";")[0];
  const schema = response.content?.[type]?.schema as z.ZodType | undefined;
  assert.ok(schema, `${route.operationId} ${res.status} documents content type ${type}`);
  if (type !== "application/json") return undefined;
  const body: unknown = await res.json();
  const parsed = schema.safeParse(body);
  assert.ok(parsed.success, `${route.operationId} ${res.status}: ${JSON.stringify(parsed.error?.issues)}`);
  assert.deepEqual(parsed.data, body, `${route.operationId} ${res.status} has no undocumented field`);
  return body as ReturnType<typeof JSON.parse>;
}

async function call(app: App, method: string, url: string, init: RequestInit = {}) {
  const res = await app.request(url, { method, ...init });
  return { status: res.status, body: await documented(app, method, url, res) };
}

describe("OpenAPI document", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: App;
  let doc: Document;
  let dir: string;
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    doc = await fetchDocument(app);
    dir = await mkdtemp(join(tmpdir(), "headstart-openapi-"));
  });
  after(async () => {
    await ctx.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  test("Redocly lints it with no errors and no warnings", async () => {
    const report = await lint(doc, dir);
    assert.deepEqual(
      report.problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message}`),
      [],
    );
    assert.deepEqual(report.totals, { ...report.totals, errors: 0, warnings: 0 });
  });

  test("the lint finds problems when there are some", async () => {
    const broken = structuredClone(doc);
    delete broken.paths["/v1/jobs/{job}"].get.operationId;
    delete (broken as Partial<Document>).security;
    const report = await lint(broken, dir);
    const rules = report.problems.map((p) => p.ruleId);
    assert.ok(rules.includes("operation-operationId"), rules.join(", "));
    assert.ok(rules.includes("security-defined"), rules.join(", "));
    assert.ok(report.totals.errors > 0);
  });

  test("docs/api.md's operation table lists exactly the document's operations", async () => {
    const text = await readFile(join(ROOT, "docs", "api.md"), "utf8");
    const listed = [...text.matchAll(/^\| `(\w+)` +\| `([A-Z]+ [^`]+)` +\|$/gm)].map(
      (m) => `${m[1]} ${m[2]}`,
    );
    const served = operations(doc).map(([route, op]) => `${op.operationId} ${route}`);
    assert.deepEqual(listed.sort(), served.sort());
  });

  test("every operation has a unique camelCase operationId, a summary and a known tag", () => {
    const ops = operations(doc);
    assert.ok(ops.length >= 14, `${ops.length} operations`);
    const ids = ops.map(([, op]) => op.operationId);
    for (const [name, op] of ops) {
      assert.match(op.operationId ?? "", /^[a-z][a-zA-Z]+$/, `${name} operationId`);
      assert.ok(op.summary, `${name} summary`);
      assert.equal(op.tags?.length, 1, `${name} tags`);
      assert.ok(
        ["datasets", "heads", "jobs", "backbones", "keys", "webhooks", "system"].includes(op.tags![0]),
        `${name} tag ${op.tags}`,
      );
    }
    assert.equal(new Set(ids).size, ids.length, "operationIds are unique");
    for (const id of ["getHealth", "predictHead", "trainHead", "getJob", "putManifest", "importEmbeddings"]) {
      assert.ok(ids.includes(id), id);
    }
  });

  test("every error response is the one ErrorResponse, or API Gateway's own body for 401 and 403", () => {
    for (const [name, op] of operations(doc)) {
      const statuses = Object.keys(op.responses);
      assert.ok(statuses.includes("500"), `${name} documents 500`);
      if (op.operationId !== "getHealth") {
        // Stands in for Redocly's operation-4xx-response, off in redocly.yaml for /health. A 403
        // is the app's own too: a key without the route's scope (shared/api/auth.ts).
        assert.ok(
          statuses.some((s) => /^4\d\d$/.test(s) && s !== "401"),
          `${name} has a 4xx of its own`,
        );
      }
      for (const status of statuses.filter((s) => !s.startsWith("2"))) {
        const content = op.responses[status].content ?? {};
        assert.deepEqual(Object.keys(content), ["application/json"], `${name} ${status}`);
        const schema = content["application/json"].schema;
        if (["401", "403"].includes(status)) {
          // The app's own refusal (local keys, scopes, Host, Origin) or API Gateway's authorizer.
          assert.deepEqual(
            schema,
            { anyOf: [{ $ref: ERROR_REF }, { $ref: GATEWAY_REF }] },
            `${name} ${status}`,
          );
        } else assert.equal(schema?.$ref, ERROR_REF, `${name} ${status}`);
      }
    }
  });

  test("API keys secure every operation but /health, as the deployment does", () => {
    assert.deepEqual(doc.components.securitySchemes.apiKey, {
      ...doc.components.securitySchemes.apiKey,
      type: "apiKey",
      in: "header",
      name: "x-api-key",
    });
    assert.deepEqual(doc.components.securitySchemes.bearer, {
      ...doc.components.securitySchemes.bearer,
      type: "http",
      scheme: "bearer",
    });
    assert.deepEqual(doc.security, [{ apiKey: [] }, { bearer: [] }]);
    for (const [name, op] of operations(doc)) {
      const isPublic = name === "GET /health";
      assert.deepEqual(op.security, isPublic ? [] : undefined, `${name} security`);
      assert.equal("403" in op.responses, !isPublic, `${name} documents the authorizer's 403`);
      assert.equal("401" in op.responses, !isPublic, `${name} documents the gateway's 401`);
    }
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.version, VERSION);
    assert.deepEqual(
      doc.servers.map((s) => s.url),
      ["/"],
    );
  });

  test("what the app answers in a whole flow is what the document says", async () => {
    assert.equal((await call(app, "GET", "/health")).body.status, "ok");
    const manifest = toJsonlText(tinySentimentRows(60, { withSplit: true }));
    const put = (query = "") =>
      call(app, "PUT", `/v1/datasets/films/manifest${query}`, {
        headers: { "content-type": "application/x-ndjson" },
        body: manifest,
      });
    const ingested = (await put()).body;
    await ctx.platform.local.idle();
    assert.equal((await put("?embed=false")).body.job, undefined);
    assert.equal((await call(app, "POST", "/v1/datasets/films/ingest?embed=false")).status, 200);
    assert.equal((await call(app, "GET", "/v1/datasets/films")).body.embedding.cachedItems, 60);
    assert.equal((await call(app, "GET", `/v1/jobs/${ingested.job.job}`)).body.state, "succeeded");

    const first = (await call(app, "POST", "/v1/heads/films/train", json({ dataset: "films" }))).body;
    const auto = { dataset: "films", type: "auto", candidates: ["logreg", "centroid"], cv: 2 };
    const second = (await call(app, "POST", "/v1/heads/films/train", json(auto))).body;
    assert.equal(second.search.candidates.length > 0, true);
    assert.equal((await call(app, "GET", "/v1/heads/films")).body.live, second.version);
    const versionUrl = `/v1/heads/films/versions/${first.version}`;
    assert.equal((await call(app, "GET", versionUrl)).body.version, first.version);
    assert.equal((await call(app, "GET", `${versionUrl}/report?format=json`)).body.version, first.version);
    assert.equal((await call(app, "GET", `${versionUrl}/report`)).status, 200);
    assert.equal((await call(app, "GET", `${versionUrl}/model.onnx`)).status, 200);
    const canary = { version: first.version, expectedVersion: null };
    assert.equal((await call(app, "PUT", "/v1/heads/films/aliases/canary", json(canary, "PUT"))).status, 200);
    const rolled = (await call(app, "POST", "/v1/heads/films/aliases/live/rollback")).body;
    assert.deepEqual([rolled.from, rolled.to], [second.version, first.version]);
    const predict = { inputs: ["great fun", "dull"], neighbors: 2 };
    const predicted = (await call(app, "POST", "/v1/heads/films/predict", json(predict))).body;
    assert.equal(predicted.predictions[0].neighbors.length, 2);

    const rows = [
      { id: "a", label: ["x", "y"] },
      { id: "b", label: ["y"] },
      { id: "c", label: ["x"] },
    ];
    const vectors = {
      backbone: "ext-3",
      rows,
      embeddings: [
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
      ],
    };
    assert.equal((await call(app, "POST", "/v1/datasets/tags/embeddings", json(vectors))).body.dim, 3);
  });

  test("its error responses are what the app sends, status by status", async () => {
    // Runs after the flow above, on its head `films` and dataset `tags`.
    const { live } = (await call(app, "GET", "/v1/heads/films")).body;
    const wrongExpectation = json({ version: live, expectedVersion: "v-somewhere-else" }, "PUT");
    const errors: Array<[number, string, string, RequestInit?]> = [
      [400, "GET", "/v1/heads/Not!A-Name"],
      [400, "PUT", "/v1/datasets/films/manifest", { headers: { "content-type": "text/plain" }, body: "x" }],
      [404, "GET", "/v1/heads/nobody"],
      [404, "GET", "/v1/jobs/nothing"],
      [415, "POST", "/v1/heads/films/predict", { headers: { "content-type": "text/plain" }, body: "hi" }],
      [413, "POST", "/v1/heads/films/predict", json({ inputs: ["x".repeat(9 * 1024 * 1024)] })],
      [409, "PUT", "/v1/heads/films/aliases/live", wrongExpectation],
      [422, "POST", "/v1/heads/tagger/train", json({ dataset: "tags", backbone: "ext-3", type: "logreg" })],
    ];
    for (const [status, method, url, init] of errors) {
      const res = await call(app, method, url, init);
      assert.equal(res.status, status, `${method} ${url}: ${JSON.stringify(res.body)}`);
      assert.equal(typeof res.body.error.message, "string");
    }
  });

  test("handing training elsewhere answers the documented 202", async () => {
    const dispatched: string[] = [];
    const platform = new Platform(ctx.store, ctx.config, {
      trainDispatcher: { name: "recording", dispatch: async (req) => void dispatched.push(req.head) },
    });
    const elsewhere = createApp(platform, makeLogger("test", "silent"));
    const res = await call(elsewhere, "POST", "/v1/heads/later/train", json({ dataset: "films" }));
    assert.equal(res.status, 202);
    assert.deepEqual(dispatched, ["later"]);
  });
});

describe("Swagger UI at /docs", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: App;
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
  });
  after(() => ctx.cleanup());

  const TYPES: Record<string, string> = { js: "text/javascript", css: "text/css", png: "image/png" };
  const referenced = (html: string) => [...html.matchAll(/\b(?:src|href)="([^"]+)"/g)].map((m) => m[1]);

  test("the page loads only same-origin files, each served with its content type", async () => {
    const res = await app.request("/docs");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self';/);
    const html = await res.text();
    const refs = referenced(html);
    assert.ok(refs.length >= 4, refs.join(" "));
    assert.doesNotMatch(html, /<script>|https?:|\/\//, "no inline script, no absolute URL");
    for (const ref of refs) {
      const url = new URL(ref, "http://localhost/docs");
      assert.equal(url.origin, "http://localhost", ref);
      const asset = await app.request(url.pathname);
      assert.equal(asset.status, 200, url.pathname);
      const type = TYPES[url.pathname.split(".").pop()!];
      assert.equal((asset.headers.get("content-type") ?? "").split(";")[0], type, url.pathname);
      const name = url.pathname.replace("/docs/assets/", "");
      if (name in SWAGGER_UI_ASSETS) {
        const original = await readFile(join(swaggerUiAssetsDir(), name));
        assert.ok(Buffer.from(await asset.arrayBuffer()).equals(original), `${name} is the package's file`);
      }
    }
    const init = await (await app.request("/docs/init.js")).text();
    const spec = /url: "([^"]+)"/.exec(init)?.[1];
    assert.ok(spec, init);
    const specUrl = new URL(spec, "http://localhost/docs");
    assert.equal(specUrl.href, "http://localhost/openapi.json");
    assert.match(init, /validatorUrl: null/, "no request to the online validator");
  });

  test("every file the bundle must ship is one the page uses", async () => {
    const html = await (await app.request("/docs")).text();
    const used = referenced(html)
      .filter((r) => r.startsWith("docs/assets/"))
      .map((r) => r.slice("docs/assets/".length));
    assert.deepEqual(used.sort(), Object.keys(SWAGGER_UI_ASSETS).sort());
  });

  test("assets are cached and revalidated by ETag", async () => {
    const res = await app.request("/docs/assets/swagger-ui.css");
    const etag = res.headers.get("etag");
    assert.ok(etag);
    assert.match(res.headers.get("cache-control") ?? "", /max-age=\d+/);
    const again = await app.request("/docs/assets/swagger-ui.css", { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), "");
  });

  test("anything else under /docs/assets is a 404, path tricks included", async () => {
    for (const name of [
      "index.html",
      "swagger-ui.js.map",
      "package.json",
      "..%2Fpackage.json",
      "%2e%2e%2f%2e%2e%2fpackage.json",
      "..%5Cpackage.json",
      "__proto__",
      "constructor",
    ]) {
      const res = await app.request(`/docs/assets/${name}`);
      assert.equal(res.status, 404, name);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, "not_found", name);
    }
    assert.equal((await app.request("/docs/assets/../../package.json")).status, 404);
  });

  test("a bundle's copy of the files is served from the directory given to createApp", async () => {
    const dir = await mkdtemp(join(tmpdir(), "headstart-docs-assets-"));
    try {
      await writeFile(join(dir, "swagger-ui.css"), "/* bundled copy */");
      const bundled = createApp(ctx.platform, makeLogger("test", "silent"), { docsAssetsDir: dir });
      assert.equal(await (await bundled.request("/docs/assets/swagger-ui.css")).text(), "/* bundled copy */");
      const missing = await bundled.request("/docs/assets/swagger-ui-bundle.js");
      assert.equal(missing.status, 500, "a file the bundle forgot is an internal error, not a 404");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
