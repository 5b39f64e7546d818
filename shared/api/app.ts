/**
 * The HTTP API. The same app runs behind API Gateway (functions/api/handler.ts) and locally
 * (`headstart serve`). Inputs are validated by zod; every error leaves as JSON through
 * `onError`, with a code and the offending field.
 */
import { swaggerUI } from "@hono/swagger-ui";
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { PayloadTooLargeError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Platform } from "../platform.ts";
import type { AppEnv } from "./env.ts";
import { errorBody, handleError, zodIssueToError } from "./errors.ts";
import { datasetRoutes } from "./routes/datasets.ts";
import { headRoutes } from "./routes/heads.ts";
import { jobRoutes } from "./routes/jobs.ts";

export const MAX_JSON_BYTES = 8 * 1024 * 1024;

export function createApp(platform: Platform, log: Logger) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw zodIssueToError(result.error, result.target);
    },
  });
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
  app.get("/health", (c) =>
    c.json({ status: "ok", store: platform.store.url, runner: platform.runner.name }),
  );
  app.route("/v1/datasets", datasetRoutes(platform));
  app.route("/v1/heads", headRoutes(platform));
  app.route("/v1/jobs", jobRoutes(platform));
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "headstart",
      version: "0.1.0",
      description: "Transfer learning the cheap way: embed once, train small heads, serve them.",
    },
  });
  app.get("/docs", swaggerUI({ url: "/openapi.json" }));
  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => handleError(err, c, log));
  return app;
}
