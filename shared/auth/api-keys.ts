/**
 * Scoped, per-customer API keys. A key is `hs_<id>_<random>`; the key file
 * (`layout.keys.apiKeys()`, see key-store.ts) holds only its sha256, its scopes and the customer
 * it belongs to, so reading the file (or a log of it) never reveals a usable key. Comparison is
 * constant-time and runs over every entry, so timing does not tell which ids exist.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { CUSTOMER_ID } from "../config.ts";
import { fromZodError, ValidationError } from "../errors.ts";

/** What a key may do; `admin` implies every other scope (see scopes.ts for the route table). */
export const SCOPES = ["predict", "train", "ingest", "admin"] as const;
export const Scope = z.enum(SCOPES);
export type Scope = z.infer<typeof Scope>;

/** The customer a local store's keys belong to when no HEADSTART_CUSTOMER is set. */
export const LOCAL_CUSTOMER = "local";

export const KeyId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "key ids use [a-z0-9-], at most 32 characters");

export const ApiKeyEntry = z.object({
  id: KeyId,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** The one customer (deployment) whose API accepts this key. */
  customer: z.string().regex(CUSTOMER_ID),
  scopes: z.array(Scope).min(1),
  createdAt: z.string(),
  /** A revoked key is refused but kept, so its id stays reserved and visible in audits. */
  revokedAt: z.string().optional(),
});
export type ApiKeyEntry = z.infer<typeof ApiKeyEntry>;

/** The key file: `{version: 1, keys: [...]}`. */
export const ApiKeyFile = z.object({ version: z.literal(1), keys: z.array(ApiKeyEntry) });
export type ApiKeyFile = z.infer<typeof ApiKeyFile>;

/** Who a verified key is: what `verifyApiKey` answers and the authorizer passes on. */
export interface Principal {
  keyId: string;
  scopes: Scope[];
}

const KEY_FORMAT = /^hs_([a-z0-9][a-z0-9-]{0,31})_([A-Za-z0-9_-]{32,128})$/;

export function hashKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

/** Scopes as given on the command line or in a request: deduplicated, each one known. */
export function parseScopes(values: readonly string[], field = "scopes"): Scope[] {
  if (values.length === 0)
    throw new ValidationError(`give at least one scope (${SCOPES.join(", ")})`, { field });
  const out = new Set<Scope>();
  for (const v of values.flatMap((s) => s.split(",")).map((s) => s.trim())) {
    const parsed = Scope.safeParse(v);
    if (!parsed.success)
      throw new ValidationError(`unknown scope ${JSON.stringify(v)}: use ${SCOPES.join(", ")}`, { field });
    out.add(parsed.data);
  }
  return SCOPES.filter((s) => out.has(s));
}

/** A new random key (`hs_<id>_<43 random chars>`) and the entry the key file keeps of it. */
export function newApiKey(
  id: string,
  scopes: readonly Scope[],
  customer: string,
  now = new Date(),
): { key: string; entry: ApiKeyEntry } {
  const parsed = KeyId.safeParse(id);
  if (!parsed.success)
    throw fromZodError(parsed.error, { prefix: `key id ${JSON.stringify(id)}`, field: "id" });
  const key = `hs_${id}_${randomBytes(32).toString("base64url")}`;
  const entry = ApiKeyEntry.parse({
    id,
    sha256: hashKey(key),
    customer,
    scopes: parseScopes(scopes),
    createdAt: now.toISOString(),
  });
  return { key, entry };
}

export function parseApiKeyFile(text: string): ApiKeyFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ValidationError("API key file is not JSON", { field: "keys" });
  }
  const parsed = ApiKeyFile.safeParse(raw);
  if (!parsed.success)
    throw fromZodError(parsed.error, {
      prefix: "API key file",
      field: "keys",
      pathStyle: "dots",
    });
  return parsed.data;
}

/** Active keys of `customer`: what a server needs to know before it demands keys. */
export function activeKeys(file: ApiKeyFile, customer: string): ApiKeyEntry[] {
  return file.keys.filter((k) => !k.revokedAt && k.customer === customer);
}

/**
 * The principal of the key `presented`, or undefined: refused when malformed, unknown, revoked,
 * or bound to another customer than `customer` (the deployment's own).
 */
export function verifyApiKey(
  presented: string | undefined,
  file: ApiKeyFile,
  customer: string,
): Principal | undefined {
  if (!presented) return undefined;
  const m = KEY_FORMAT.exec(presented);
  if (!m) return undefined;
  const digest = Buffer.from(hashKey(presented), "hex");
  let match: ApiKeyEntry | undefined;
  // Compare against every key (no early exit) so timing does not reveal which ids exist.
  for (const entry of file.keys) {
    const ok = timingSafeEqual(digest, Buffer.from(entry.sha256, "hex"));
    if (ok && entry.id === m[1]) match = entry;
  }
  if (!match || match.revokedAt || match.customer !== customer) return undefined;
  return { keyId: match.id, scopes: [...match.scopes] };
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
