/**
 * The platform's events: what happened, to what, when. One payload shape for every event and every
 * channel (webhooks now; the customer's EventBridge bus later): `{id, type, createdAt, data}`.
 *
 * Ids are derived from what happened (the job, the version, the alias move), not drawn at random,
 * so an event emitted twice (a replayed SageMaker event, a retried Lambda) has the same id: the
 * delivery log skips what it already delivered, and receivers dedupe by `webhook-id`.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { ValidationError } from "../errors.ts";

export const EVENT_TYPES = [
  "dataset.embedded",
  "dataset.failed",
  "head.trained",
  "head.promoted",
  "batch.succeeded",
  "batch.failed",
  "drift.detected",
] as const;
export const EventType = z.enum(EVENT_TYPES);
export type EventType = z.infer<typeof EventType>;

/** An embedding job of a dataset version with one backbone ended. */
const DatasetJobData = z.object({
  dataset: z.string(),
  datasetVersion: z.string(),
  backbone: z.string(),
  job: z.string(),
  items: z.object({ toEmbed: z.number().int(), cached: z.number().int(), unsupported: z.number().int() }),
  finishedAt: z.string().optional(),
});

export const EventData = {
  "dataset.embedded": DatasetJobData,
  "dataset.failed": DatasetJobData.extend({ error: z.string() }),
  "head.trained": z.object({
    head: z.string(),
    version: z.string(),
    dataset: z.string(),
    type: z.string(),
    task: z.string(),
    /** Whether the training moved the live alias to it (a `head.promoted` event follows then). */
    promoted: z.boolean(),
  }),
  "head.promoted": z.object({
    head: z.string(),
    alias: z.string(),
    version: z.string(),
    /** What the alias pointed to before; null for a head's first version. */
    previous: z.string().nullable(),
    by: z.enum(["promote", "rollback"]),
    at: z.string(),
  }),
  /** Batch predictions (issue 15, part 1) emit these; the job record's id, head and counts. */
  "batch.succeeded": z.looseObject({ job: z.string(), head: z.string() }),
  "batch.failed": z.looseObject({ job: z.string(), head: z.string(), error: z.string() }),
  /** A drift check (`quality/drift.ts`) about a head found its current data unlike the reference. */
  "drift.detected": z.object({
    head: z.string(),
    /** The head version that was the reference; absent when the reference was a dataset. */
    version: z.string().optional(),
    reference: z.string(),
    current: z.string(),
    method: z.string(),
    score: z.number(),
    pValue: z.number(),
    alpha: z.number(),
    n: z.object({ reference: z.number().int(), current: z.number().int() }),
    /** Total variation distance of the head's predicted-label shares (multiclass heads). */
    labelShiftDistance: z.number().optional(),
    checkedAt: z.string(),
  }),
} as const satisfies Record<EventType, z.ZodType>;

export type EventDataOf<T extends EventType> = z.infer<(typeof EventData)[T]>;

export const WebhookEvent = z.object({
  id: z.string().regex(/^evt_[0-9a-f]{32}$/),
  type: EventType,
  createdAt: z.string(),
  data: z.record(z.string(), z.unknown()),
});
export type WebhookEvent = z.infer<typeof WebhookEvent>;

/**
 * A new event of `type`; `identity` names the occurrence (the same identity is the same event, so
 * the same id). `data` is checked against the type's schema: a wrong payload is a bug here.
 */
export function makeEvent<T extends EventType>(
  type: T,
  identity: readonly string[],
  data: EventDataOf<T>,
  now = new Date(),
): WebhookEvent {
  const parsed = EventData[type].parse(data) as Record<string, unknown>;
  const hash = createHash("sha256")
    .update(["headstart-event-v1", type, ...identity].join("\0"))
    .digest("hex");
  return { id: `evt_${hash.slice(0, 32)}`, type, createdAt: now.toISOString(), data: parsed };
}

/** `--events a,b` or `["a","b"]`: known, distinct event types; an unknown one is named with the valid ones. */
export function parseEventTypes(value: string | readonly string[], field = "events"): EventType[] {
  const names = (typeof value === "string" ? value.split(",") : [...value])
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0)
    throw new ValidationError(`name at least one event: ${EVENT_TYPES.join(", ")}`, { field });
  for (const name of names) {
    if (!(EVENT_TYPES as readonly string[]).includes(name))
      throw new ValidationError(`unknown event ${JSON.stringify(name)}: use ${EVENT_TYPES.join(", ")}`, {
        field,
      });
  }
  return [...new Set(names)] as EventType[];
}
