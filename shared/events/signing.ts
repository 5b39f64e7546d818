/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), by the specification's own
 * library: `webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`
 * under the endpoint's secret, `whsec_<base64 of 32 random bytes>`. Receivers verify with any
 * Standard Webhooks library (`new Webhook(secret).verify(body, headers)`), which also refuses a
 * timestamp more than 5 minutes from its own clock (replays).
 */
import { randomBytes } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { ValidationError } from "../errors.ts";

export const SECRET_PREFIX = "whsec_";
/** A receiver refuses a delivery whose timestamp is further than this from its clock (the library's rule). */
export const RECEIVER_TOLERANCE_SECONDS = 5 * 60;
const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{40,}={0,2}$/;

export function newWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString("base64")}`;
}

export function assertWebhookSecret(secret: string, field = "secret"): string {
  if (!SECRET_PATTERN.test(secret))
    throw new ValidationError("a webhook secret is whsec_ followed by base64 of at least 30 bytes", {
      field,
    });
  return secret;
}

export interface SignedHeaders {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
}

/** The three headers of one delivery attempt (a retry is signed again, with its own timestamp). */
export function signDelivery(secret: string, id: string, body: string, at = new Date()): SignedHeaders {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": new Webhook(secret).sign(id, at, body),
  };
}

/**
 * What a receiver does: checks the signature and the timestamp's tolerance, and answers the
 * parsed body. Throws the library's `WebhookVerificationError` on any mismatch.
 */
export function verifyDelivery(secret: string, body: string, headers: Record<string, string>): unknown {
  return new Webhook(secret).verify(body, headers);
}
