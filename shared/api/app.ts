/**
 * The HTTP API. The same app runs behind API Gateway (functions/api/handler.ts) and locally
 * (`headstart serve`). Inputs are validated by zod; every error leaves as JSON through
 * `onError`, with a code and the offending field.
 */
import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { PayloadTooLargeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Platform } from "../platform.ts";
import { VERSION } from "../version.ts";
import { docsRoutes, documentConfig, SECURITY_SCHEMES } from "./docs.ts";
import type { AppEnv } from "./env.ts";
import { errorBody, handleError, zodIssueToError } from "./errors.ts";
import { requestLog } from "./request-log.ts";
import { errorResponses, HealthResponse, jsonBody } from "./responses.ts";
import { datasetRoutes } from "./routes/datasets.ts";
import { doctorRoutes } from "./routes/doctor.ts";
import { headRoutes } from "./routes/heads.ts";
import { jobRoutes } from "./routes/jobs.ts";

export const MAX_JSON_BYTES = 8 * 1024 * 1024;

export interface AppOptions {
  /** Where Swagger UI's files are (see docs.ts `SWAGGER_UI_ASSETS`); default: the installed swagger-ui-dist. */
  docsAssetsDir?: string;
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
  app.use(
    "/v1/heads/*",
    bodyLimit({
      maxSize: MAX_JSON_BYTES,
      onError: () => {
        throw new PayloadTooLargeError(`request body is larger than ${MAX_JSON_BYTES} bytes`, {
          field: "body",
        });
      },
    }),
  );
  app.openapi(health, (c) => c.json({ status: "ok" as const, runner: platform.runner.name }, 200));
  app.route("/v1/datasets", datasetRoutes(platform));
  app.route("/v1/heads", headRoutes(platform));
  app.route("/v1/jobs", jobRoutes(platform));
  app.route("/v1/doctor", doctorRoutes(platform));
  for (const [name, scheme] of Object.entries(SECURITY_SCHEMES)) {
    app.openAPIRegistry.registerComponent("securitySchemes", name, scheme);
  }
  // Built on first request, once every route is registered; the routes never change afterwards.
  let document: ReturnType<typeof app.getOpenAPI31Document> | undefined;
  app.get("/openapi.json", (c) => {
    document ??= app.getOpenAPI31Document(documentConfig(VERSION));
    return c.json(document);
  });
  app.route("/docs", docsRoutes({ specUrl: "openapi.json", assetsDir: opts.docsAssetsDir }));
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => handleError(err, c, log));
  return app;
}
