/**
 * Per-customer API keys. The secret holds only sha256 hashes of the keys, so reading the
 * secret (or a log of it) never reveals a usable key; comparison is constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { ValidationError } from "../errors.ts";

export const ApiKeyEntry = z.object({
  id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "key ids use [a-z0-9-], at most 32 characters"),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: z.string().optional(),
  /** A disabled key is refused but kept, so its id stays reserved in audit logs. */
  disabled: z.boolean().default(false),
});
export type ApiKeyEntry = z.infer<typeof ApiKeyEntry>;

export const ApiKeySecret = z.object({ keys: z.array(ApiKeyEntry) });
export type ApiKeySecret = z.infer<typeof ApiKeySecret>;

const KEY_FORMAT = /^hs_([a-z0-9][a-z0-9-]{0,31})_([A-Za-z0-9_-]{32,128})$/;

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** A new random key (`hs_<id>_<43 random chars>`) and the entry to add to the secret. */
export function newApiKey(id: string, now = new Date()): { key: string; entry: ApiKeyEntry } {
  const parsed = ApiKeyEntry.shape.id.safeParse(id);
  if (!parsed.success)
    throw new ValidationError(`key id ${JSON.stringify(id)}: ${parsed.error.issues[0].message}`, {
      field: "id",
    });
  const key = `hs_${id}_${randomBytes(32).toString("base64url")}`;
  return { key, entry: { id, sha256: hashKey(key), createdAt: now.toISOString(), disabled: false } };
}

export function parseApiKeySecret(text: string): ApiKeySecret {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError("API key secret is not JSON", { field: "secret" });
  }
  const parsed = ApiKeySecret.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ValidationError(`API key secret: ${issue.path.join(".")}: ${issue.message}`, {
      field: "secret",
    });
  }
  return parsed.data;
}

/** The id of the active key matching `presented`, or undefined. */
export function verifyApiKey(presented: string | undefined, secret: ApiKeySecret): string | undefined {
  if (!presented) return undefined;
  const m = KEY_FORMAT.exec(presented);
  if (!m) return undefined;
  const digest = Buffer.from(hashKey(presented), "hex");
  let match: string | undefined;
  // Compare against every key (no early exit) so timing does not reveal which ids exist.
  for (const entry of secret.keys) {
    const ok = timingSafeEqual(digest, Buffer.from(entry.sha256, "hex"));
    if (ok && !entry.disabled && entry.id === m[1]) match = entry.id;
  }
  return match;
}

/** `x-api-key: <key>` or `authorization: Bearer <key>`. */
export function presentedKey(headers: Record<string, string | undefined> | undefined): string | undefined {
  if (!headers) return undefined;
  const lower: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  if (lower["x-api-key"]) return lower["x-api-key"].trim();
  const auth = lower.authorization;
  const m = auth ? /^Bearer\s+(\S+)$/i.exec(auth.trim()) : null;
  return m?.[1];
}
