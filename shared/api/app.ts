/**
 * The HTTP API. The same app runs behind API Gateway (functions/api/handler.ts) and locally
 * (`headstart serve`). Inputs are validated by zod; every error leaves as JSON through
 * `onError`, with a code and the offending field.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { LOCAL_CUSTOMER } from "../auth/api-keys.ts";
import { KeyRing, KeyStore } from "../auth/key-store.ts";
import { PUBLIC, routeAccess } from "../auth/scopes.ts";
import type { Logger } from "../log.ts";
import type { Platform } from "../platform.ts";
import { VERSION } from "../version.ts";
import { authorize } from "./auth.ts";
import { bodyLimit } from "./body-limit.ts";
import { consoleRoutes } from "./console.ts";
import { docsRoutes, documentConfig, SECURITY_SCHEMES } from "./docs.ts";
import type { AppEnv } from "./env.ts";
import { errorBody, handleError, zodIssueToError } from "./errors.ts";
import { type LocalGuardOptions, localGuard } from "./local-guard.ts";
import { requestLog } from "./request-log.ts";
import { errorResponses, HealthResponse, jsonBody } from "./responses.ts";
import { batchPredictionRoutes } from "./routes/batch-predictions.ts";
import { datasetRoutes } from "./routes/datasets.ts";
import { doctorRoutes } from "./routes/doctor.ts";
import { feedbackRoutes } from "./routes/feedback.ts";
import { headRoutes } from "./routes/heads.ts";
import { jobRoutes } from "./routes/jobs.ts";
import { keyRoutes } from "./routes/keys.ts";
import { lifecycleRoutes } from "./routes/lifecycle.ts";
import { meRoutes } from "./routes/me.ts";
import { qualityRoutes } from "./routes/quality.ts";
import { webhookRoutes } from "./routes/webhooks.ts";

export const MAX_JSON_BYTES = 8 * 1024 * 1024;

export interface AppOptions {
  /** Where Swagger UI's files are (see docs.ts `SWAGGER_UI_ASSETS`); default: the installed swagger-ui-dist. */
  docsAssetsDir?: string;
  /** Where the web console's build is (`index.html`, `assets/`); default: `.build/console/` (console.ts). */
  consoleDir?: string;
  /**
   * The local server's protections (Host and cross-site checks, see local-guard.ts); absent
   * behind API Gateway, where the authorizer and the key requirement do that work.
   */
  local?: LocalGuardOptions;
  /** Demand API keys even while the store has none (a server bound to a non-loopback address). */
  requireKeys?: boolean;
  /** How long the key file is trusted before it is read again (default 2 s). */
  keyCacheMs?: number;
}

/** Public in the deployment too: infra/api.ts routes it past the authorizer. */
const health = createRoute({
  method: "get",
  path: "/health",
  operationId: "getHealth",
  tags: ["system"],
  summary: "Liveness: the store and job runner this server uses",
  security: [],
  responses: { 200: jsonBody(HealthResponse, "The server is up"), ...errorResponses({}, { public: true }) },
});

export function createApp(platform: Platform, log: Logger, opts: AppOptions = {}) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodIssueToError(result.error, result.target);
    },
  });
  app.use(requestLog(log));
  if (opts.local) app.use(localGuard(opts.local));
  const keyStore = new KeyStore(platform.store, platform.config.customer ?? LOCAL_CUSTOMER);
  const ring = new KeyRing(keyStore, opts.keyCacheMs ?? 2_000);
  app.use(authorize({ ring, required: Boolean(opts.requireKeys) }));
  app.use("/v1/heads/*", bodyLimit(MAX_JSON_BYTES));
  app.openapi(health, (c) => c.json({ status: "ok" as const, runner: platform.runner.name }, 200));
  app.route("/v1/datasets", datasetRoutes(platform));
  app.route("/v1/heads", headRoutes(platform));
  app.route("/v1/heads", batchPredictionRoutes(platform));
  app.route("/v1/heads", feedbackRoutes(platform));
  app.route("/v1/jobs", jobRoutes(platform));
  app.route("/v1/doctor", doctorRoutes(platform));
  app.route("/v1", lifecycleRoutes(platform));
  app.route("/v1", qualityRoutes(platform));
  app.route(
    "/v1/keys",
    keyRoutes(keyStore, () => ring.invalidate()),
  );
  app.route("/v1/webhooks", webhookRoutes(platform));
  app.route("/v1", meRoutes());
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  // Built on first request, once every route is registered; the routes never change afterwards.
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  app.get("/openapi.json", (c) => {
    document ??= withScopes(app.getOpenAPI31Document(documentConfig(VERSION)));
    return c.json(document);
  });
  app.route("/docs", docsRoutes({ specUrl: "openapi.json", assetsDir: opts.docsAssetsDir }));
  app.route("/", consoleRoutes({ dir: opts.consoleDir }));
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => handleError(err, c, log));
  return app;
}

/** Each operation says which scopes admit it (`x-required-scopes`, from auth/scopes.ts's table). */
function withScopes<T extends { paths?: object }>(doc: T): T {
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries((item ?? {}) as Record<string, unknown>)) {
      if (!op || typeof op !== "object" || !("responses" in op)) continue;
      const access = routeAccess(method, path);
      if (access !== PUBLIC) (op as Record<string, unknown>)["x-required-scopes"] = [...access];
    }
  }
  return doc;
}
