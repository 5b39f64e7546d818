/**
 * One error hierarchy for the whole platform. Entry points (CLI, HTTP, Lambda) map these to
 * exit codes and status codes in exactly one place each; domain code only throws.
 */
export type ErrorCode =
  | "invalid_input"
  | "invalid_name"
  | "not_found"
  | "conflict"
  | "precondition_failed"
  | "payload_too_large"
  | "unsupported"
  | "unauthorized"
  | "forbidden"
  | "unavailable"
  | "internal";

export class HeadstartError extends Error {
  readonly code: ErrorCode;
  /** Dotted path of the offending input field, or a manifest line like `line 7`. */
  readonly field?: string;
  readonly details?: unknown;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { field?: string; details?: unknown; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
  }

  toJSON() {
    return {
      code: this.code,
      message: this.message,
      ...(this.field === undefined ? {} : { field: this.field }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** The caller sent something we cannot accept. CLI exit 2, HTTP 400. */
export class ValidationError extends HeadstartError {
  constructor(message: string, opts: { field?: string; details?: unknown; cause?: unknown } = {}) {
    super("invalid_input", message, opts);
  }
}

/**
 * The parts of a zod error that `fromZodError` reads. Structural, so this module stays free of
 * zod at runtime (the authorizer's bundle imports it).
 */
export interface ZodErrorLike {
  issues: ReadonlyArray<{ code?: string; path: readonly PropertyKey[]; message: string; keys?: string[] }>;
}

/**
 * The path of a zod error's first issue: `inputs[0].image` (`js`, the default) or `keys.0.id`
 * (`dots`). An unrecognized key is named at the end of the path; "" at the root.
 */
export function zodIssuePath(error: ZodErrorLike, style: "js" | "dots" = "js"): string {
  const issue = error.issues[0];
  const segments =
    issue.code === "unrecognized_keys" && issue.keys?.length ? [...issue.path, issue.keys[0]] : issue.path;
  if (style === "dots") return segments.map(String).join(".");
  return segments
    .map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("")
    .replace(/^\./, "");
}

/**
 * The one conversion of a failed zod parse into a `ValidationError`, from its first issue:
 * message `<prefix>: <path>: <issue message>` (an absent prefix or path is left out) and field
 * the path.
 * - `fallback`: the path to use when the issue is at the root (the request part, `Records`).
 * - `field`: a fixed field, or one made from the path (default: the path itself).
 */
export function fromZodError(
  error: ZodErrorLike,
  opts: {
    prefix?: string;
    fallback?: string;
    field?: string | ((path: string) => string);
    pathStyle?: "js" | "dots";
  } = {},
): ValidationError {
  const path = zodIssuePath(error, opts.pathStyle) || opts.fallback;
  const message = [
    ...(opts.prefix === undefined ? [] : [opts.prefix]),
    ...(path === undefined ? [] : [path]),
    error.issues[0].message,
  ].join(": ");
  const field =
    typeof opts.field === "function" ? opts.field(path ?? "") : (opts.field ?? (path || undefined));
  return new ValidationError(message, { field });
}

export class InvalidNameError extends HeadstartError {
  constructor(kind: string, value: string, field?: string) {
    super(
      "invalid_name",
      `invalid ${kind} name ${JSON.stringify(value)}: use 1-63 characters from [a-z0-9-_.], starting with a letter or digit`,
      { field: field ?? kind },
    );
  }
}

export class NotFoundError extends HeadstartError {
  constructor(what: string, opts: { field?: string } = {}) {
    super("not_found", `${what} not found`, opts);
  }
}

/** A conditional write lost a race or an immutable object already exists. HTTP 409. */
export class ConflictError extends HeadstartError {
  constructor(message: string, opts: { field?: string; details?: unknown } = {}) {
    super("conflict", message, opts);
  }
}

export class PreconditionFailedError extends HeadstartError {
  constructor(key: string) {
    super("precondition_failed", `conditional write on ${key} failed: it changed or already exists`, {
      field: key,
    });
  }
}

export class PayloadTooLargeError extends HeadstartError {
  constructor(message: string, opts: { field?: string } = {}) {
    super("payload_too_large", message, opts);
  }
}

export class UnsupportedError extends HeadstartError {
  constructor(message: string, opts: { field?: string } = {}) {
    super("unsupported", message, opts);
  }
}

/**
 * The object store kept failing (5xx, throttling, resets, timeouts) after its bounded retries.
 * HTTP 503, CLI exit 1; Lambdas rethrow it so their own retries try again later.
 */
export class StoreUnavailableError extends HeadstartError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super("unavailable", message, opts);
  }
}

/** No API key, or one that is unknown, revoked or another customer's. HTTP 401, CLI exit 2. */
export class UnauthorizedError extends HeadstartError {
  constructor(message: string, opts: { field?: string } = {}) {
    super("unauthorized", message, opts);
  }
}

/**
 * Refused whoever asks: a key without the route's scope, a foreign Host header, a cross-site
 * state-changing request. HTTP 403, CLI exit 2.
 */
export class ForbiddenError extends HeadstartError {
  constructor(message: string, opts: { field?: string; details?: unknown } = {}) {
    super("forbidden", message, opts);
  }
}

/** True for errors caused by the caller's input rather than by the platform. */
export function isUserError(err: unknown): err is HeadstartError {
  return err instanceof HeadstartError && err.code !== "internal" && err.code !== "unavailable";
}
