/**
 * Powertools' Idempotency semantics over our ObjectStore (no DynamoDB here: the customer's own
 * bucket holds the records). The key is the sha256 of a scope and the request's chosen fields.
 *  - The first caller creates an INPROGRESS record create-only (`If-None-Match: *`), with an
 *    expiry after which a crashed attempt may be taken over.
 *  - When the work returns, the record becomes COMPLETED with its result (`If-Match` on the
 *    record we wrote); duplicates within `expiresAfterSeconds` get that result without the work.
 *  - A duplicate that meets an unexpired INPROGRESS record is refused with
 *    `IdempotencyInProgressError` (an internal error: Lambda retries the event later).
 *  - Work that throws deletes its record, so a retry starts afresh.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { HeadstartError, PreconditionFailedError } from "./errors.ts";
import { keys } from "./layout.ts";
import { getJson, putJson } from "./store/json.ts";
import type { ObjectStore } from "./store/types.ts";

export const IdempotencyRecord = z.object({
  status: z.enum(["INPROGRESS", "COMPLETED"]),
  /** Epoch ms: an INPROGRESS record may be taken over after it, a COMPLETED one is replayed until it. */
  expiresAt: z.number(),
  startedAt: z.string(),
  result: z.unknown().optional(),
});
export type IdempotencyRecord = z.infer<typeof IdempotencyRecord>;

export class IdempotencyInProgressError extends HeadstartError {
  constructor(key: string) {
    super("internal", `the same request is already in progress (${key}); retry later`, { field: key });
  }
}

export interface IdempotencyOptions {
  /** How long a completed result is returned to duplicates (Powertools' default: one hour). */
  expiresAfterSeconds?: number;
  /** How long an attempt is presumed alive: the Lambda's remaining time, or 15 minutes. */
  inProgressSeconds?: number;
  now?: () => number;
}

/** sha256 over the scope and the payload as canonical JSON (object keys sorted). */
export function idempotencyHash(scope: string, payload: unknown): string {
  return createHash("sha256").update(scope).update("\0").update(canonicalJson(payload)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** Attempts at creating or taking over the record before contention counts as "in progress". */
const MAX_ATTEMPTS = 5;

export async function idempotent<T>(
  store: ObjectStore,
  scope: string,
  payload: unknown,
  work: () => Promise<T>,
  opts: IdempotencyOptions = {},
): Promise<{ result: T; replayed: boolean }> {
  const now = opts.now ?? Date.now;
  const key = keys.idempotencyRecord(scope, idempotencyHash(scope, payload));
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await getJson(store, key, IdempotencyRecord);
    if (current && current.value.expiresAt > now()) {
      if (current.value.status === "COMPLETED") return { result: current.value.result as T, replayed: true };
      throw new IdempotencyInProgressError(key);
    }
    // Absent, or expired (a crashed attempt, an old result): claim it, create-only or by CAS.
    const claim: IdempotencyRecord = {
      status: "INPROGRESS",
      expiresAt: now() + 1000 * (opts.inProgressSeconds ?? 900),
      startedAt: new Date(now()).toISOString(),
    };
    const claimed = await tryPut(store, key, claim, current?.etag);
    if (!claimed) continue; // another caller got there first: look again
    return { result: await runClaimed(store, key, claimed, claim, work, opts, now), replayed: false };
  }
  throw new IdempotencyInProgressError(key);
}

async function runClaimed<T>(
  store: ObjectStore,
  key: string,
  etag: string,
  claim: IdempotencyRecord,
  work: () => Promise<T>,
  opts: IdempotencyOptions,
  now: () => number,
): Promise<T> {
  let result: T;
  try {
    result = await work();
  } catch (err) {
    // Only our own claim is released; one taken over after our expiry belongs to its taker.
    if ((await store.head(key))?.etag === etag) await store.delete(key);
    throw err;
  }
  const done: IdempotencyRecord = {
    ...claim,
    status: "COMPLETED",
    expiresAt: now() + 1000 * (opts.expiresAfterSeconds ?? 3600),
    result,
  };
  // If our claim expired and was taken over, the taker's record stands; the work is done either way.
  await tryPut(store, key, done, etag);
  return result;
}

/** A conditional write: create-only without `etag`, compare-and-swap with it; undefined if it lost. */
async function tryPut(
  store: ObjectStore,
  key: string,
  record: IdempotencyRecord,
  etag: string | undefined,
): Promise<string | undefined> {
  try {
    const info = await putJson(store, key, record, etag ? { ifMatch: etag } : { ifNoneMatch: "*" });
    return info.etag;
  } catch (err) {
    if (err instanceof PreconditionFailedError) return undefined;
    throw err;
  }
}
