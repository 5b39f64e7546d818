/** The one mapping from domain errors to HTTP, and the one error body. Routes only throw. */
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, fromZodError, HeadstartError, type ZodErrorLike } from "../errors.ts";
import { currentRequestIds, type Logger } from "../log.ts";

const STATUS: Record<ErrorCode, ContentfulStatusCode> = {
  invalid_input: 400,
  invalid_name: 400,
  not_found: 404,
  conflict: 409,
  precondition_failed: 409,
  payload_too_large: 413,
  unsupported: 422,
  unauthorized: 401,
  forbidden: 403,
  unavailable: 503,
  internal: 500,
};

/** Every code the API answers with; `STATUS` has one entry per `ErrorCode`, so none is missed. */
const CODES = Object.keys(STATUS) as [ErrorCode, ...ErrorCode[]];

/** The body of every error the app sends (not API Gateway's own refusals: see responses.ts). */
export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.enum(CODES).openapi({ description: "Stable machine-readable code; see docs/api.md#errors" }),
      message: z.string().openapi({ description: "What went wrong, for a person; names the field" }),
      field: z.string().optional().openapi({
        description: "The offending input: a dotted path (`inputs[0].image`), a header, or `line <n>`",
        example: "inputs[0]",
      }),
      details: z
        .unknown()
        .optional()
        .openapi({ description: "Structured extras, e.g. `{reason}` for images" }),
    }),
  })
  .openapi("ErrorResponse");
export type ErrorResponse = z.infer<typeof ErrorResponse>;

export function errorBody(
  code: ErrorCode,
  message: string,
  field?: string,
  details?: unknown,
): ErrorResponse {
  return {
    error: { code, message, ...(field ? { field } : {}), ...(details === undefined ? {} : { details }) },
  };
}

/** A request part (`body`, `query`, …) or event that failed its schema: the field is the issue's path. */
export function zodIssueToError(error: ZodErrorLike, target: string) {
  return fromZodError(error, { fallback: target });
}

export function handleError(err: Error, c: Context, log: Logger) {
  if (err instanceof HeadstartError && err.code !== "internal") {
    return c.json(errorBody(err.code, err.message, err.field, err.details), STATUS[err.code]);
  }
  if (err instanceof HTTPException) {
    const status = err.status as ContentfulStatusCode;
    const code = status === 413 ? "payload_too_large" : status === 404 ? "not_found" : "invalid_input";
    const { message, field } = describeHttpException(status, err.message, c.req.header("content-type"));
    return c.json(errorBody(code, message, field), status);
  }
  log.error("request failed", {
    correlation_id: currentRequestIds()?.correlationId,
    path: c.req.path,
    method: c.req.method,
    error: err.message,
    stack: err.stack,
  });
  return c.json(errorBody("internal", "internal error; see the server log"), 500);
}

/**
 * Hono's own refusals (body parsing, content negotiation) in our terms: what was wrong, and the
 * field — `content-type` for a type the route does not take, `body` for one that did not parse.
 */
function describeHttpException(
  status: number,
  message: string,
  contentType: string | undefined,
): { message: string; field?: string } {
  if (status === 415) {
    const sent = contentType ? JSON.stringify(contentType.split(";")[0]!.trim()) : "none";
    return {
      message: `unsupported content-type ${sent}: send application/json (or multipart/form-data with image parts where the route takes images)`,
      field: "content-type",
    };
  }
  if (status === 400 || status === 413) return { message: message || "request body rejected", field: "body" };
  return { message: message || "request rejected" };
}
