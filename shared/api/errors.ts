/** The one mapping from domain errors to HTTP. Routes only throw. */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, HeadstartError, ValidationError } from "../errors.ts";
import type { Logger } from "../log.ts";

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_input: 400,
  invalid_name: 400,
  not_found: 404,
  conflict: 409,
  precondition_failed: 409,
  payload_too_large: 413,
  unsupported: 422,
  internal: 500,
};

export function errorBody(code: string, message: string, field?: string, details?: unknown) {
  return {
    error: { code, message, ...(field ? { field } : {}), ...(details === undefined ? {} : { details }) },
  };
}

export function zodIssueToError(
  error: { issues: Array<{ code?: string; path: PropertyKey[]; message: string; keys?: string[] }> },
  target: string,
) {
  const issue = error.issues[0];
  const segments =
    issue.code === "unrecognized_keys" && issue.keys?.length ? [...issue.path, issue.keys[0]] : issue.path;
  const path = segments
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .replace(/^\./, "");
  const field = path || target;
  return new ValidationError(`${field}: ${issue.message}`, { field });
}

export function handleError(err: Error, c: Context, log: Logger) {
  if (err instanceof HeadstartError && err.code !== "internal") {
    return c.json(errorBody(err.code, err.message, err.field, err.details), STATUS[err.code]);
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code = status === 413 ? "payload_too_large" : status === 404 ? "not_found" : "invalid_input";
    return c.json(errorBody(code, err.message || "request rejected"), status);
  }
  log.error("request failed", {
    path: c.req.path,
    method: c.req.method,
    error: err.message,
    stack: err.stack,
  });
  return c.json(errorBody("internal", "internal error; see the server log"), 500);
}
