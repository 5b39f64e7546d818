/**
 * Delivering one event to one endpoint, at least once: a signed POST, retried with exponential
 * backoff (jittered, capped) until a 2xx answer or the last attempt, each attempt cut off after a
 * timeout. Every attempt is recorded in the delivery log (`layout.keys.webhookDelivery`), one
 * document per event and endpoint, written by conditional writes:
 *
 * - the record is created create-only before the first attempt, so an event emitted twice (same
 *   id) finds it and never delivers again what was delivered;
 * - each attempt's outcome is written with `If-Match` on the record's last ETag: a writer that
 *   loses (another process is delivering the same event to the same endpoint) stops, leaving the
 *   record to the winner. Two deliverers may still both send one attempt (at least once); the
 *   receiver dedupes by `webhook-id`.
 *
 * A delivery given a deadline stops scheduling attempts past it and leaves the record `pending`
 * with `nextAttemptAt`; `Notifier.retryPending` (`headstart webhooks retry`, the webhook-retry
 * Lambda every minute in AWS) continues it later. Each unsettled delivery has a marker under
 * `keys.webhookPendingPrefix()`, made before the record and deleted once it is delivered or
 * failed, so the retry lists only what may be pending, never the whole log.
 */
import { z } from "zod";
import { PreconditionFailedError } from "../errors.ts";
import { keys, parseKey } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { VERSION } from "../version.ts";
import type { WebhookEntry } from "./registrations.ts";
import { signDelivery } from "./signing.ts";
import { WebhookEvent } from "./types.ts";

export interface DeliveryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** The pause after the first failed attempt; it doubles after each (±50% jitter), up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** One attempt (connect, send, the answer's status line) is abandoned after this long. */
  timeoutMs: number;
}

/** 6 attempts over about 30 s to 1 min (1, 2, 4, 8, 16 s pauses, jittered). */
export const DELIVERY_DEFAULTS: DeliveryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 1_000,
  maxDelayMs: 60_000,
  timeoutMs: 5_000,
};

/** An attempt is not started with less time than this left before the deadline. */
const MIN_ATTEMPT_MS = 100;

export const DeliveryAttempt = z.object({
  at: z.string(),
  /** The endpoint's HTTP status; absent when no answer came (refused, reset, timed out). */
  status: z.number().int().optional(),
  error: z.string().optional(),
  ms: z.number(),
});
export type DeliveryAttempt = z.infer<typeof DeliveryAttempt>;

export const DeliveryOutcome = z.enum(["pending", "delivered", "failed"]);

export const DeliveryRecord = z.object({
  /** The event as sent (the body of every attempt), so a later retry sends the same bytes. */
  event: WebhookEvent,
  webhook: z.string(),
  url: z.string(),
  attempts: z.array(DeliveryAttempt),
  outcome: DeliveryOutcome,
  /** While `pending`: when the next attempt is due. */
  nextAttemptAt: z.string().optional(),
  updatedAt: z.string(),
});
export type DeliveryRecord = z.infer<typeof DeliveryRecord>;

/** The pause after `attempts` failed attempts: base·2^(attempts−1), capped, then jittered to 50–100%. */
export function backoffMs(attempts: number, policy: DeliveryPolicy, random = Math.random): number {
  const full = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(full / 2 + (random() * full) / 2);
}

export interface DeliverOptions {
  policy: DeliveryPolicy;
  /** Epoch ms after which no attempt starts (and none runs past); the record then stays `pending`. */
  deadline?: number;
}

/** Delivers `event` to `endpoint` (or continues a pending delivery); answers the final record. */
export async function deliver(
  store: ObjectStore,
  endpoint: WebhookEntry,
  event: WebhookEvent,
  opts: DeliverOptions,
): Promise<DeliveryRecord> {
  const started = await openRecord(store, endpoint, event);
  if (!started) {
    await clearPending(store, event.id, endpoint.id); // settled: the emit's marker has nothing to mark
    return (await readDelivery(store, event.id, endpoint.id))!.value;
  }
  let { record, etag } = started;
  const body = JSON.stringify(record.event);
  while (record.outcome === "pending") {
    const waitMs = Math.max(0, Date.parse(record.nextAttemptAt ?? "") - Date.now() || 0);
    const timeoutMs = Math.min(opts.policy.timeoutMs, (opts.deadline ?? Infinity) - Date.now() - waitMs);
    if (timeoutMs < MIN_ATTEMPT_MS) return record; // past the deadline: left pending for a retry
    if (waitMs > 0) await new Promise((r) => setTimeout(r, waitMs));
    const attempt = await attemptOnce(endpoint, record.event.id, body, timeoutMs);
    record = nextRecord(record, attempt, opts.policy);
    try {
      etag = (await putJson(store, keys.webhookDelivery(event.id, endpoint.id), record, { ifMatch: etag }))
        .etag;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
      // Another process is delivering this event to this endpoint: its record stands.
      return (await readDelivery(store, event.id, endpoint.id))!.value;
    }
  }
  await clearPending(store, event.id, endpoint.id); // settled: nothing left to retry
  return record;
}

/** The record to work on: created now, or an existing one still `pending`; undefined when it is settled. */
async function openRecord(
  store: ObjectStore,
  endpoint: WebhookEntry,
  event: WebhookEvent,
): Promise<{ record: DeliveryRecord; etag: string } | undefined> {
  const key = keys.webhookDelivery(event.id, endpoint.id);
  const record: DeliveryRecord = {
    event,
    webhook: endpoint.id,
    url: endpoint.url,
    attempts: [],
    outcome: "pending",
    updatedAt: new Date().toISOString(),
  };
  await markPending(store, event.id, endpoint.id);
  try {
    return { record, etag: (await putJson(store, key, record, { ifNoneMatch: "*" })).etag };
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
  const existing = await readDelivery(store, event.id, endpoint.id);
  if (existing?.value.outcome !== "pending") return undefined;
  return { record: existing.value, etag: existing.etag };
}

function nextRecord(
  record: DeliveryRecord,
  attempt: DeliveryAttempt,
  policy: DeliveryPolicy,
): DeliveryRecord {
  const attempts = [...record.attempts, attempt];
  const ok = attempt.status !== undefined && attempt.status >= 200 && attempt.status < 300;
  const outcome = ok ? "delivered" : attempts.length >= policy.maxAttempts ? "failed" : "pending";
  const { nextAttemptAt: _, ...rest } = record;
  return {
    ...rest,
    attempts,
    outcome,
    ...(outcome === "pending"
      ? { nextAttemptAt: new Date(Date.now() + backoffMs(attempts.length, policy)).toISOString() }
      : {}),
    updatedAt: new Date().toISOString(),
  };
}

/** One signed POST. Redirects are not followed (a 3xx is a failed attempt): the URL registered is the one signed for. */
async function attemptOnce(
  endpoint: WebhookEntry,
  id: string,
  body: string,
  timeoutMs: number,
): Promise<DeliveryAttempt> {
  const at = new Date();
  const started = performance.now();
  const took = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(endpoint.url, {
      method: "POST",
      headers: {
        ...signDelivery(endpoint.secret, id, body, at),
        "content-type": "application/json",
        "user-agent": `headstart-webhooks/${VERSION}`,
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel().catch(() => undefined); // the answer's body is not read
    return { at: at.toISOString(), status: res.status, ms: took() };
  } catch (err) {
    // fetch's own message is "fetch failed"; the cause says why (ECONNREFUSED, a bad port…).
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const error =
      e.name === "TimeoutError"
        ? `no answer within ${timeoutMs} ms`
        : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { at: at.toISOString(), error, ms: took() };
  }
}

const PendingMarker = z.object({ createdAt: z.string() });

/** The pending marker, create-only (a repeated emit keeps the first). */
async function markPending(store: ObjectStore, eventId: string, webhookId: string): Promise<void> {
  try {
    const marker = { createdAt: new Date().toISOString() };
    await putJson(store, keys.webhookPending(eventId, webhookId), marker, { ifNoneMatch: "*" });
  } catch (err) {
    if (!(err instanceof PreconditionFailedError)) throw err;
  }
}

/** Deliveries that may still be pending (their markers), by event and webhook id. */
export async function pendingDeliveries(store: ObjectStore): Promise<{ event: string; webhook: string }[]> {
  const out: { event: string; webhook: string }[] = [];
  for (const o of await store.list(keys.webhookPendingPrefix())) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "webhookPending") out.push({ event: parsed.event, webhook: parsed.webhook });
  }
  return out;
}

/** How long ago the marker was made; undefined when it is gone. */
export async function pendingAgeMs(store: ObjectStore, eventId: string, webhookId: string) {
  const marker = await getJson(store, keys.webhookPending(eventId, webhookId), PendingMarker);
  return marker && Date.now() - Date.parse(marker.value.createdAt);
}

/** Drops the marker of a delivery that is settled (or whose record never came to be). */
export function clearPending(store: ObjectStore, eventId: string, webhookId: string): Promise<void> {
  return store.delete(keys.webhookPending(eventId, webhookId));
}

export function readDelivery(store: ObjectStore, eventId: string, webhookId: string) {
  return getJson(store, keys.webhookDelivery(eventId, webhookId), DeliveryRecord);
}

/** Every record of the delivery log, newest change first. */
export async function listDeliveries(store: ObjectStore): Promise<DeliveryRecord[]> {
  const out: DeliveryRecord[] = [];
  for (const obj of await store.list(keys.webhookDeliveriesPrefix())) {
    const got = await getJson(store, obj.key, DeliveryRecord);
    if (got) out.push(got.value);
  }
  return out.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
}
