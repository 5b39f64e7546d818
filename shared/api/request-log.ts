/**
 * One log line per request, under a correlation id that is echoed in `x-correlation-id`:
 * behind API Gateway its `requestContext.requestId` (Powertools' `correlationPaths.API_GATEWAY_HTTP`),
 * locally the caller's `x-correlation-id` / `x-request-id`, else a new UUID. The id and the
 * client's `Idempotency-Key` stay visible to the code serving the request (`currentRequestIds`),
 * so errors and the train dispatch can name them.
 */
import { randomUUID } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { type Logger, withRequestIds } from "../log.ts";

export const CORRELATION_HEADER = "x-correlation-id";
const INCOMING_HEADERS = [CORRELATION_HEADER, "x-request-id"];
/** What a caller-chosen id may look like; anything else is replaced, not logged. */
const SAFE_ID = /^[A-Za-z0-9._:=+/-]{1,128}$/;

export function requestLog(log: Logger): MiddlewareHandler {
  return async (c, next) => {
    const gatewayId = (c.env as { requestContext?: { requestId?: unknown } } | undefined)?.requestContext
      ?.requestId;
    const fromGateway = typeof gatewayId === "string" && gatewayId ? gatewayId : undefined;
    const correlationId =
      fromGateway ?? INCOMING_HEADERS.map((h) => safe(c.req.header(h))).find(Boolean) ?? randomUUID();
    // A Lambda container serves one request at a time, so every line of it may carry the id;
    // a local server interleaves requests, so there only this module's lines carry it.
    if (fromGateway) log.setCorrelationId(correlationId);
    const started = performance.now();
    const idempotencyKey = safe(c.req.header("idempotency-key"));
    // Set before the route runs, so it joins the response the route builds: `c.header` after
    // `next()` would rebuild a finished response around its body as a stream, which takes the Node
    // adapter off its fast path for string bodies (a third of a small predict's time).
    c.header(CORRELATION_HEADER, correlationId);
    await withRequestIds({ correlationId, ...(idempotencyKey ? { idempotencyKey } : {}) }, () => next());
    // A response built without the context (a raw Response) lacks it: set on its own headers.
    if (!c.res.headers.has(CORRELATION_HEADER)) c.res.headers.set(CORRELATION_HEADER, correlationId);
    log.info("request", {
      correlation_id: correlationId,
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round(performance.now() - started),
    });
  };
}

function safe(value: string | undefined): string | undefined {
  return value !== undefined && SAFE_ID.test(value) ? value : undefined;
}
