/**
 * The customer's webhook endpoints, one object in its own store (`layout.keys.webhooks()`, beside
 * the API keys). Changes are compare-and-swap writes retried on a lost race, as for the key file.
 *
 * Unlike an API key, an endpoint's secret is stored as it is: the platform must sign every delivery
 * with it (an HMAC needs the key itself; a hash could only verify). It is shown once, by `add`, and
 * never listed; the file lives under `_system/`, which no dataset or head name can reach, in the
 * customer's own bucket (encrypted with its key in AWS) and readable only by its functions.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from "../errors.ts";
import { keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import { newWebhookSecret } from "./signing.ts";
import { EventType } from "./types.ts";

export const WEBHOOK_ID = /^wh_[0-9a-f]{16}$/;
const MAX_ATTEMPTS = 8;
const MAX_WEBHOOKS = 50;

export const WebhookEntry = z.object({
  id: z.string().regex(WEBHOOK_ID),
  url: z.string(),
  events: z.array(EventType).min(1),
  /** `whsec_…`: needed to sign, so stored as is (see above). */
  secret: z.string(),
  createdAt: z.string(),
});
export type WebhookEntry = z.infer<typeof WebhookEntry>;

export const WebhookFile = z.object({ version: z.literal(1), webhooks: z.array(WebhookEntry) });
export type WebhookFile = z.infer<typeof WebhookFile>;

/** What `list` shows: never the secret. */
export type WebhookInfo = Omit<WebhookEntry, "secret">;

const EMPTY: WebhookFile = { version: 1, webhooks: [] };

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * An endpoint URL: https, or http to this machine only (a receiver under local test); no
 * credentials in it (they would be stored and logged), no fragment.
 */
export function checkWebhookUrl(raw: string, field = "url"): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(`not a URL: ${JSON.stringify(raw)}`, { field });
  }
  const loopback = LOOPBACK_HOSTS.has(url.hostname) || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback))
    throw new ValidationError(
      `webhook URL ${JSON.stringify(raw)} must be https (http only to localhost/127.0.0.1/[::1], for local testing)`,
      { field },
    );
  if (url.username || url.password)
    throw new ValidationError("a webhook URL may not hold credentials; verify the signature instead", {
      field,
    });
  if (url.hash) throw new ValidationError("a webhook URL may not hold a #fragment", { field });
  if (raw.length > 2048) throw new ValidationError("a webhook URL is at most 2048 characters", { field });
  return url.toString();
}

export function webhookInfo({ secret: _secret, ...info }: WebhookEntry): WebhookInfo {
  return { ...info, events: [...info.events] };
}

export class WebhookRegistry {
  constructor(readonly store: ObjectStore) {}

  async read(): Promise<{ file: WebhookFile; etag?: string }> {
    const got = await getJson(this.store, keys.webhooks(), WebhookFile);
    return got ? { file: got.value, etag: got.etag } : { file: EMPTY };
  }

  async list(): Promise<WebhookInfo[]> {
    return (await this.read()).file.webhooks.map(webhookInfo);
  }

  /** The endpoints subscribed to `type`, with their secrets (for signing). */
  async subscribers(type: EventType): Promise<WebhookEntry[]> {
    return (await this.read()).file.webhooks.filter((w) => w.events.includes(type));
  }

  /** A new endpoint; its secret is answered here once. `url` and `events` are checked first. */
  async add(
    url: string,
    events: readonly EventType[],
    now = new Date(),
  ): Promise<{ id: string; secret: string }> {
    const entry: WebhookEntry = {
      id: `wh_${randomBytes(8).toString("hex")}`,
      url: checkWebhookUrl(url),
      events: z.array(EventType).min(1).parse(events),
      secret: newWebhookSecret(),
      createdAt: now.toISOString(),
    };
    await this.update((file) => {
      if (file.webhooks.length >= MAX_WEBHOOKS)
        throw new ConflictError(`at most ${MAX_WEBHOOKS} webhooks; remove one first`, { field: "url" });
      return { ...file, webhooks: [...file.webhooks, entry] };
    });
    return { id: entry.id, secret: entry.secret };
  }

  /** Removes an endpoint: no delivery starts to it afterwards (one already under way may finish). */
  async remove(id: string): Promise<WebhookInfo> {
    let removed: WebhookEntry | undefined;
    await this.update((file) => {
      removed = file.webhooks.find((w) => w.id === id);
      if (!removed) throw new NotFoundError(`webhook ${JSON.stringify(id)}`, { field: "id" });
      return { ...file, webhooks: file.webhooks.filter((w) => w.id !== id) };
    });
    return webhookInfo(removed as WebhookEntry);
  }

  /** Read, change, write with a condition; a lost race re-reads and re-applies `change`. */
  private async update(change: (file: WebhookFile) => WebhookFile): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { file, etag } = await this.read();
      const next = change(file);
      try {
        await putJson(this.store, keys.webhooks(), next, etag ? { ifMatch: etag } : { ifNoneMatch: "*" });
        return;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    throw new ConflictError("the webhook file kept changing under this update; try again", {
      field: "webhooks",
    });
  }
}
