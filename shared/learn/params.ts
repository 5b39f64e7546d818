/** Small validators for head hyper-parameters: every error names the parameter. */
import { ValidationError } from "../errors.ts";

/** Throws naming the first unknown key and listing the valid ones. */
export function rejectUnknownParams(
  type: string,
  input: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(input)) {
    if (!known.includes(key)) {
      throw new ValidationError(
        `unknown parameter ${JSON.stringify(key)} for head type ${type}; valid: ${known.join(", ") || "(none)"}`,
        { field: `params.${key}` },
      );
    }
  }
}

export function numberParam(
  input: Record<string, unknown>,
  name: string,
  fallback: number,
  check: { min?: number; max?: number; exclusiveMin?: number; integer?: boolean } = {},
): number {
  const raw = input[name];
  if (raw === undefined) return fallback;
  const v = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
  const field = `params.${name}`;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ValidationError(`${name} must be a finite number, got ${JSON.stringify(raw)}`, { field });
  }
  if (check.integer && !Number.isInteger(v)) {
    throw new ValidationError(`${name} must be an integer, got ${v}`, { field });
  }
  if (check.min !== undefined && v < check.min) {
    throw new ValidationError(`${name} must be >= ${check.min}, got ${v}`, { field });
  }
  if (check.exclusiveMin !== undefined && v <= check.exclusiveMin) {
    throw new ValidationError(`${name} must be > ${check.exclusiveMin}, got ${v}`, { field });
  }
  if (check.max !== undefined && v > check.max) {
    throw new ValidationError(`${name} must be <= ${check.max}, got ${v}`, { field });
  }
  return v;
}

export function enumParam<T extends string>(
  input: Record<string, unknown>,
  name: string,
  options: readonly T[],
  fallback: T,
): T {
  const raw = input[name];
  if (raw === undefined) return fallback;
  if (typeof raw === "string" && (options as readonly string[]).includes(raw)) return raw as T;
  throw new ValidationError(`${name} must be one of ${options.join(", ")}, got ${JSON.stringify(raw)}`, {
    field: `params.${name}`,
  });
}
