/**
 * `EventPublisher` on AWS: the platform's events onto the customer's EventBridge bus
 * (`headstart-<customer>`, infra/event-bus.ts), one entry per event: source `headstart`,
 * detail-type the event's type (`head.trained`…), detail the whole event `{id, type, createdAt,
 * data}` — the webhook body — so rules match on `detail-type` and consumers dedupe by `detail.id`.
 */
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { HeadstartError } from "../errors.ts";
import type { EventPublisher } from "../events/notifier.ts";
import type { WebhookEvent } from "../events/types.ts";

export const EVENT_SOURCE = "headstart";

export interface EventBridgePublisherOptions {
  region?: string;
  /** An EventBridge-compatible endpoint (a stand-in under test). */
  endpoint?: string;
  client?: EventBridgeClient;
  /** One `PutEvents` call, retries included, is abandoned after this long (default 3 s). */
  timeoutMs?: number;
}

export class EventBridgePublisher implements EventPublisher {
  readonly name = "eventbridge";
  private client?: EventBridgeClient;

  constructor(
    readonly busName: string,
    private readonly opts: EventBridgePublisherOptions = {},
  ) {
    this.client = opts.client;
  }

  async publish(event: WebhookEvent): Promise<void> {
    // The SDK loads on the first event, not at every cold start.
    const { EventBridgeClient, PutEventsCommand } = await import("@aws-sdk/client-eventbridge");
    this.client ??= new EventBridgeClient({
      ...(this.opts.region ? { region: this.opts.region } : {}),
      ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
    });
    const out = await this.client.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: this.busName,
            Source: EVENT_SOURCE,
            DetailType: event.type,
            Detail: JSON.stringify(event),
            Time: new Date(event.createdAt),
          },
        ],
      }),
      { abortSignal: AbortSignal.timeout(this.opts.timeoutMs ?? 3_000) },
    );
    if (out.FailedEntryCount) {
      const entry = out.Entries?.[0];
      throw new HeadstartError(
        "unavailable",
        `event ${event.id} not put on bus ${this.busName}: ${entry?.ErrorCode ?? "failed"} ${entry?.ErrorMessage ?? ""}`.trim(),
      );
    }
  }
}
