/**
 * Where the platform's use cases hand their events: each is delivered to every endpoint
 * subscribed to its type (`delivery.ts`) and, where one is configured, put on the customer's
 * event bus (`EventPublisher`); a failed delivery never fails the use case.
 *
 * Two ways to run, chosen by the entry point:
 * - `background` (the long-running local server): `emit` returns at once and the delivery runs in
 *   this process after the response, through its whole retry schedule.
 * - `await` (the CLI, the Lambdas): `emit` delivers before returning, within `budgetMs` in all
 *   (each attempt's timeout cut to fit). A Lambda may be frozen as soon as it returns, so nothing
 *   is left running: what did not succeed in the budget stays `pending` in the delivery log with
 *   its next attempt's time, for `retryPending` (`headstart webhooks retry`).
 */
import type { Logger } from "../log.ts";
import type { ObjectStore } from "../store/types.ts";
import {
  clearPending,
  DELIVERY_DEFAULTS,
  type DeliveryPolicy,
  type DeliveryRecord,
  deliver,
  pendingAgeMs,
  pendingDeliveries,
  readDelivery,
} from "./delivery.ts";
import { WebhookRegistry } from "./registrations.ts";
import type { WebhookEvent } from "./types.ts";

/** A second channel every event also goes to, whatever the webhooks: the customer's EventBridge bus in AWS. */
export interface EventPublisher {
  readonly name: string;
  publish(event: WebhookEvent): Promise<void>;
}

export interface NotifierOptions {
  mode?: "await" | "background";
  publisher?: EventPublisher;
  /** `await` mode: how long one `emit` may take in all (default 5 s). */
  budgetMs?: number;
  policy?: Partial<DeliveryPolicy>;
  log?: Logger;
}

export const AWAIT_BUDGET_MS = 5_000;
/** A pending marker with no record this long after it was made: its emitter stopped before writing one. */
const ORPHAN_MARKER_MS = 3_600_000;

export interface RetrySummary {
  retried: number;
  delivered: number;
  failed: number;
  pending: number;
}

export class Notifier {
  readonly registry: WebhookRegistry;
  readonly policy: DeliveryPolicy;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    readonly store: ObjectStore,
    private readonly opts: NotifierOptions = {},
  ) {
    this.registry = new WebhookRegistry(store);
    this.policy = { ...DELIVERY_DEFAULTS, ...opts.policy };
  }

  get mode(): "await" | "background" {
    return this.opts.mode ?? "await";
  }

  /** Delivers `event` to its subscribers (see the modes above); never throws. */
  async emit(event: WebhookEvent): Promise<void> {
    const deadline = this.mode === "await" ? Date.now() + (this.opts.budgetMs ?? AWAIT_BUDGET_MS) : undefined;
    const run = this.fanOut(event, deadline);
    if (this.mode === "await") return run;
    this.inFlight.add(run);
    run.finally(() => this.inFlight.delete(run));
  }

  /**
   * `emit` of what `make` builds from the store (a job's record, an alias's last move); a failure
   * to build it is logged, never thrown: an event never fails the use case that caused it.
   */
  async emitFrom(make: () => Promise<WebhookEvent | undefined> | WebhookEvent | undefined): Promise<void> {
    let event: WebhookEvent | undefined;
    try {
      event = await make();
    } catch (err) {
      this.opts.log?.warn("event not emitted", { error: (err as Error).message });
      return;
    }
    if (event) await this.emit(event);
  }

  /** Resolves when every background delivery started so far has ended (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /**
   * Continues `pending` deliveries whose endpoint is still registered (to the same URL), due
   * attempts first, at most `limit` of them (default all); within this notifier's budget in
   * `await` mode. They are found by their pending markers (`delivery.ts`), not by reading the log.
   */
  async retryPending(opts: { limit?: number } = {}): Promise<RetrySummary> {
    const deadline = this.mode === "await" ? Date.now() + (this.opts.budgetMs ?? AWAIT_BUDGET_MS) : undefined;
    const endpoints = new Map((await this.registry.read()).file.webhooks.map((w) => [w.id, w]));
    const records = await this.pendingRecords();
    // An endpoint removed (or moved to another URL) is never delivered to again: drop its markers.
    for (const r of records.filter((r) => endpoints.get(r.webhook)?.url !== r.url))
      await clearPending(this.store, r.event.id, r.webhook);
    const pending = records
      .filter((r) => endpoints.get(r.webhook)?.url === r.url)
      .sort((a, b) => (a.nextAttemptAt ?? "").localeCompare(b.nextAttemptAt ?? ""))
      .slice(0, opts.limit ?? Infinity);
    const done = await Promise.all(
      pending.map((r) => this.deliverSafely(endpoints.get(r.webhook)!, r.event, deadline)),
    );
    const count = (o: DeliveryRecord["outcome"]) => done.filter((r) => r?.outcome === o).length;
    return {
      retried: pending.length,
      delivered: count("delivered"),
      failed: count("failed"),
      pending: count("pending"),
    };
  }

  /**
   * The records behind the pending markers that are still `pending`; the marker of a settled
   * record, or of one never written (its emitter stopped first) after an hour, is dropped.
   */
  private async pendingRecords(): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    for (const { event, webhook } of await pendingDeliveries(this.store)) {
      const found = await readDelivery(this.store, event, webhook);
      if (found?.value.outcome === "pending") out.push(found.value);
      else if (found || (await this.orphanMarker(event, webhook)))
        await clearPending(this.store, event, webhook);
    }
    return out;
  }

  private async orphanMarker(event: string, webhook: string): Promise<boolean> {
    return ((await pendingAgeMs(this.store, event, webhook)) ?? 0) > ORPHAN_MARKER_MS;
  }

  private async fanOut(event: WebhookEvent, deadline: number | undefined): Promise<void> {
    const published = this.publishSafely(event);
    try {
      const endpoints = await this.registry.subscribers(event.type);
      await Promise.all([published, ...endpoints.map((e) => this.deliverSafely(e, event, deadline))]);
    } catch (err) {
      await published;
      this.opts.log?.warn("event not delivered: the webhook registrations could not be read", {
        event: event.id,
        type: event.type,
        error: (err as Error).message,
      });
    }
  }

  private async publishSafely(event: WebhookEvent): Promise<void> {
    const publisher = this.opts.publisher;
    if (!publisher) return;
    try {
      await publisher.publish(event);
    } catch (err) {
      this.opts.log?.warn("event not published", {
        event: event.id,
        type: event.type,
        publisher: publisher.name,
        error: (err as Error).message,
      });
    }
  }

  private async deliverSafely(
    endpoint: Parameters<typeof deliver>[1],
    event: WebhookEvent,
    deadline: number | undefined,
  ): Promise<DeliveryRecord | undefined> {
    try {
      const record = await deliver(this.store, endpoint, event, { policy: this.policy, deadline });
      const level = record.outcome === "failed" ? "warn" : "info";
      this.opts.log?.[level]("webhook delivery", {
        event: event.id,
        type: event.type,
        webhook: endpoint.id,
        outcome: record.outcome,
        attempts: record.attempts.length,
      });
      return record;
    } catch (err) {
      this.opts.log?.warn("webhook delivery not recorded", {
        event: event.id,
        webhook: endpoint.id,
        error: (err as Error).message,
      });
      return undefined;
    }
  }
}
