/**
 * `/v1/webhooks`: the customer's webhook endpoints (`events/registrations.ts`) and the delivery
 * log (`events/delivery.ts`), the same code paths as `headstart webhooks`. Scope `admin`
 * (auth/scopes.ts). An endpoint's signing secret is answered once, by the request that registers it.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { listDeliveries } from "../../events/delivery.ts";
import { EVENT_TYPES } from "../../events/types.ts";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";

const tags = ["webhooks"];

const EventName = z.enum(EVENT_TYPES).openapi("WebhookEventType");

const WebhookInfo = z
  .object({
    id: z.string().openapi({ example: "wh_3f9a0c51d2e847b6" }),
    url: z.string(),
    events: z.array(EventName),
    createdAt: z.string(),
  })
  .openapi("WebhookInfo");

const AddWebhookBody = z
  .object({
    url: z.string().min(1).max(2048).openapi({
      description: "https; http only to localhost, 127.0.0.0/8 or [::1] (a receiver under local test)",
      example: "https://hooks.example.com/headstart",
    }),
    events: z
      .array(EventName)
      .min(1)
      .openapi({ description: "The events to deliver", example: ["head.trained", "head.promoted"] }),
  })
  .strict()
  .openapi("AddWebhook");

const AddedWebhook = z
  .object({
    id: z.string().openapi({ example: "wh_3f9a0c51d2e847b6" }),
    secret: z.string().openapi({
      description:
        "The signing secret (whsec_<base64>, Standard Webhooks): shown only in this answer; verify every delivery with it",
      example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw9Zb9QGVGfKk=",
    }),
  })
  .openapi("AddedWebhook");

const Delivery = z
  .object({
    event: z.object({
      id: z.string(),
      type: EventName,
      createdAt: z.string(),
      data: z.record(z.string(), z.unknown()),
    }),
    webhook: z.string(),
    url: z.string(),
    attempts: z.array(
      z.object({
        at: z.string(),
        status: z.number().int().optional(),
        error: z.string().optional(),
        ms: z.number(),
      }),
    ),
    outcome: z.enum(["pending", "delivered", "failed"]),
    nextAttemptAt: z.string().optional(),
    updatedAt: z.string(),
  })
  .openapi("WebhookDelivery");

const WebhookParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: "wh_3f9a0c51d2e847b6" }),
});

const list = createRoute({
  method: "get",
  path: "/",
  operationId: "listWebhooks",
  tags,
  summary: "The customer's webhook endpoints: id, URL, events, created (never the secret)",
  responses: {
    200: jsonBody(z.object({ webhooks: z.array(WebhookInfo) }).openapi("WebhookList"), "Every endpoint"),
    ...errorResponses({}),
  },
});

const add = createRoute({
  method: "post",
  path: "/",
  operationId: "addWebhook",
  tags,
  summary: "Register an endpoint for events; the answer is the only copy of its signing secret",
  request: { body: { required: true, content: { "application/json": { schema: AddWebhookBody } } } },
  responses: {
    201: jsonBody(AddedWebhook, "The endpoint's id and its signing secret (shown once)"),
    ...errorResponses({
      400: "A URL that is not https (or loopback http), an unknown event",
      409: true,
      413: true,
      415: true,
    }),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/{id}",
  operationId: "removeWebhook",
  tags,
  summary: "Stop delivering to an endpoint",
  request: { params: WebhookParams },
  responses: {
    200: jsonBody(WebhookInfo, "The endpoint removed"),
    ...errorResponses({ 404: "Unknown webhook id" }),
  },
});

const deliveries = createRoute({
  method: "get",
  path: "/deliveries",
  operationId: "listWebhookDeliveries",
  tags,
  summary:
    "The delivery log: per event and endpoint, its attempts (status codes, errors) and outcome, newest first",
  responses: {
    200: jsonBody(
      z.object({ deliveries: z.array(Delivery) }).openapi("WebhookDeliveryList"),
      "Every delivery",
    ),
    ...errorResponses({}),
  },
});

export function webhookRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const registry = platform.notifier.registry;
  app.openapi(list, async (c) => c.json({ webhooks: await registry.list() }, 200));
  app.openapi(add, async (c) => {
    const { url, events } = c.req.valid("json");
    return c.json(await registry.add(url, events), 201);
  });
  app.openapi(deliveries, async (c) => c.json({ deliveries: await listDeliveries(platform.store) }, 200));
  app.openapi(remove, async (c) => c.json(await registry.remove(c.req.valid("param").id), 200));
  return app;
}
