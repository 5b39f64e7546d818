/**
 * `GET /v1/me`: who the caller is to this server. The web console asks it first: a loopback
 * server of a store without keys answers `authRequired: false` (no sign-in), and a key's scopes
 * say which pages to show. The API still enforces every scope itself; this only spares a person
 * pages that would answer 403.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { Scope } from "../../auth/api-keys.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";

const Me = z
  .object({
    authRequired: z.boolean().openapi({
      description:
        "Whether this server demands an API key (false: a loopback server of a store without keys)",
    }),
    keyId: z
      .string()
      .optional()
      .openapi({ description: "The key's id, when a key was sent", example: "webshop" }),
    scopes: z.array(Scope).openapi({ description: "What the caller may do; admin implies the rest" }),
  })
  .openapi("Me");

const me = createRoute({
  method: "get",
  path: "/me",
  operationId: "getMe",
  tags: ["keys"],
  summary: "The caller: whether keys are required here, and the scopes of the key sent",
  responses: { 200: jsonBody(Me, "The caller"), ...errorResponses({}) },
});

export function meRoutes() {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(me, (c) => {
    const principal = c.get("principal");
    const authRequired = c.get("authRequired") ?? true;
    return c.json(
      {
        authRequired,
        ...(authRequired && principal ? { keyId: principal.keyId } : {}),
        scopes: principal?.scopes ?? [],
      },
      200,
    );
  });
  return app;
}
