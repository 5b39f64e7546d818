import type { Command } from "commander";
import { type DeliveryRecord, listDeliveries } from "../../../shared/events/delivery.ts";
import { type WebhookInfo, WebhookRegistry } from "../../../shared/events/registrations.ts";
import { RECEIVER_TOLERANCE_SECONDS } from "../../../shared/events/signing.ts";
import { EVENT_TYPES, parseEventTypes } from "../../../shared/events/types.ts";
import { context, output } from "../context.ts";

export function registerWebhooks(program: Command): void {
  const webhooks = program
    .command("webhooks")
    .description("endpoints told of events, signed the Standard Webhooks way (see docs/api.md#webhooks)");
  webhooks
    .command("add")
    .description("register an endpoint; prints its signing secret once (whsec_…)")
    .argument("<url>", "https URL (http only to localhost/127.0.0.1/[::1], for local testing)")
    .requiredOption("--events <e1,e2>", `comma-separated: ${EVENT_TYPES.join(", ")}`)
    .action(async (url: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const made = await new WebhookRegistry(platform.store).add(url, parseEventTypes(opts.events));
      output(
        json,
        made,
        `webhook ${made.id} → ${url}\nsigning secret, shown once (verify each delivery with it; ` +
          `refuse timestamps more than ${RECEIVER_TOLERANCE_SECONDS / 60} minutes off):\n  ${made.secret}`,
      );
    });
  webhooks
    .command("list")
    .description("every endpoint: id, URL, events, created (never the secret)")
    .action(async (_opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const all = await new WebhookRegistry(platform.store).list();
      output(json, all, all.map(webhookLine).join("\n") || "(no webhooks)");
    });
  webhooks
    .command("remove")
    .description("stop delivering to an endpoint")
    .argument("<id>", "webhook id (wh_…)")
    .action(async (id: string, _opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const removed = await new WebhookRegistry(platform.store).remove(id);
      output(json, removed, `webhook ${removed.id} removed (${removed.url})`);
    });
  registerDeliveryCommands(webhooks);
}

function registerDeliveryCommands(webhooks: Command): void {
  webhooks
    .command("deliveries")
    .description("the delivery log: per event and endpoint, its attempts and outcome (newest first)")
    .action(async (_opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const all = await listDeliveries(platform.store);
      output(json, all, all.map(deliveryLine).join("\n") || "(no deliveries)");
    });
  webhooks
    .command("retry")
    .description(
      "continue deliveries left pending (a budget ran out, a Lambda returned) to endpoints still registered",
    )
    .action(async (_opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const summary = await platform.notifier.retryPending();
      output(
        json,
        summary,
        `${summary.retried} pending: ${summary.delivered} delivered, ${summary.failed} failed, ${summary.pending} still pending`,
      );
    });
}

const webhookLine = (w: WebhookInfo) => `${w.id}\t${w.url}\t${w.events.join(",")}\t${w.createdAt}`;

const deliveryLine = (d: DeliveryRecord) =>
  `${d.event.id}\t${d.event.type}\t${d.webhook}\t${d.outcome}\t${d.attempts.length} attempts\t` +
  (d.attempts.map((a) => a.status ?? a.error).join(",") || "-");
