/**
 * Reading head.json model documents. Every head type's `…FromJson` takes the document or its JSON
 * text, checks the envelope (`type`, `version` 1 and, for the input-space linear heads, `space`) and
 * then reads typed fields, each failure a ValidationError naming the field. The envelope and the field
 * readers live here once; each message is the one its head type has always written (tests and stored
 * error reports rely on them), which is why some checks come in two wordings.
 */
import { ValidationError } from "../errors.ts";
import { finiteArray, finiteNumber, float32FromJson, integerAtLeast } from "./numeric.ts";

export interface ModelEnvelope {
  /** The head type, also the message prefix: "knn head must be a JSON object". */
  type: string;
  /** Required value of the `space` field, for heads that store one. */
  space?: "input";
  /**
   * Let a JSON array through the object check (it then fails on its `type`). The head types that
   * have always done so keep that message.
   */
  allowArray?: boolean;
}

/** The fields of one model document, read with the checks every head type shares. */
export class ModelJson {
  constructor(readonly fields: Record<string, unknown>) {}

  /** The raw value of a field, for checks only one head type makes. */
  get(name: string): unknown {
    return this.fields[name];
  }

  /** An integer >= min ("d must be an integer >= 1"). */
  integerAtLeast(name: string, min: number): number {
    return integerAtLeast(this.fields, name, min);
  }

  /** An integer >= 1, worded "d must be a positive integer". */
  positiveInt(name: string): number {
    const v = this.fields[name];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
      throw new ValidationError(`${name} must be a positive integer`, { field: name });
    }
    return v;
  }

  /** An integer in min..max, worded "layers must be an integer in 1..2". */
  integerIn(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.fields[name];
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max)
      throw new ValidationError(`${name} must be an integer in ${min}..${max}`, { field: name });
    return v;
  }

  /** A finite number. */
  finite(name: string): number {
    return finiteNumber(this.fields, name);
  }

  /** A finite number or null. */
  finiteOrNull(name: string): number | null {
    return this.fields[name] === null ? null : finiteNumber(this.fields, name);
  }

  /** An array of exactly `length` finite numbers, as float64. */
  floats(name: string, length: number): Float64Array {
    return finiteArray(this.fields[name], length, name);
  }

  /** `length` finite float32 values: base64 (as written) or an array of numbers. */
  float32(name: string, length: number): Float32Array {
    return float32FromJson(this.fields[name], length, name);
  }

  /** A boolean, required. */
  boolean(name: string): boolean {
    const v = this.fields[name];
    if (typeof v !== "boolean") throw new ValidationError(`${name} must be a boolean`, { field: name });
    return v;
  }

  /** True only for `true`: an absent or malformed flag reads as false. */
  flag(name: string): boolean {
    return this.fields[name] === true;
  }

  /** One of `options`, worded "weights must be one of uniform, similarity, distance". */
  oneOf<T extends string>(name: string, options: readonly T[]): T {
    const v = this.fields[name];
    if (!(options as readonly unknown[]).includes(v)) {
      throw new ValidationError(`${name} must be one of ${options.join(", ")}`, { field: name });
    }
    return v as T;
  }

  /** The field's value when `valid` accepts it, else a ValidationError with `message`. */
  check<T>(name: string, valid: (v: unknown) => v is T, message: string): T {
    const v = this.fields[name];
    if (!valid(v)) throw new ValidationError(message, { field: name });
    return v;
  }
}

/**
 * Parses a head.json model document (an object or its JSON text) and checks its envelope: a plain
 * object whose `type` is `envelope.type`, `version` 1 and, where given, `space`.
 */
export function readModelJson(input: unknown, envelope: ModelEnvelope): ModelJson {
  const { type } = envelope;
  const obj = typeof input === "string" ? (JSON.parse(input) as unknown) : input;
  if (typeof obj !== "object" || obj === null || (!envelope.allowArray && Array.isArray(obj))) {
    throw new ValidationError(`${type} head must be a JSON object`);
  }
  const o = obj as Record<string, unknown>;
  if (o.type !== type) throw new ValidationError(`type must be "${type}"`, { field: "type" });
  if (o.version !== 1)
    throw new ValidationError(`unsupported ${type} version ${String(o.version)}`, { field: "version" });
  if (envelope.space !== undefined && o.space !== envelope.space) {
    throw new ValidationError(`space must be "${envelope.space}"`, { field: "space" });
  }
  return new ModelJson(o);
}

/** The envelope `readModelJson` checks, for a head's `toJson` to begin its document with. */
export function modelEnvelope<T extends string>(type: T): { type: T; version: 1 };
export function modelEnvelope<T extends string, S extends "input">(
  type: T,
  space: S,
): { type: T; version: 1; space: S };
export function modelEnvelope(type: string, space?: "input"): Record<string, unknown> {
  return space === undefined ? { type, version: 1 } : { type, version: 1, space };
}

/** Throws at the first value that is not > 0, naming it: "rowWeight[3] must be > 0". */
export function checkPositive(values: ArrayLike<number>, field: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!(values[i] > 0)) throw new ValidationError(`${field}[${i}] must be > 0`, { field });
  }
}

/** A value that is a finite number. */
export function isFiniteNumber(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}
