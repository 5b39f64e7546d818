/**
 * HTTP API Lambda authorizer (payload 2.0, simple responses): allows a request that presents
 * an active API key of this customer, and hands the key's id and scopes to the API in its
 * context. The answer does not depend on the route — API Gateway caches it per `x-api-key` and
 * reuses it for every route — so the scopes are checked per route by the API itself
 * (shared/api/auth.ts), from this context. The keys (hashed) are one object in the customer's
 * bucket (`_system/api-keys.json`), read at most once a minute per container, so a revoked key
 * stops working within a minute plus API Gateway's own cache time.
 */
import { presentedKey, verifyApiKey } from "../../shared/auth/api-keys.ts";
import { KeyStore } from "../../shared/auth/key-store.ts";
import { loadConfig } from "../../shared/config.ts";
import { ValidationError } from "../../shared/errors.ts";
import { instrument } from "../../shared/lambda.ts";
import { makeLogger } from "../../shared/log.ts";
import { makeMetrics } from "../../shared/metrics.ts";
import { openStore } from "../../shared/open-store.ts";

const config = loadConfig();
const log = makeLogger("headstart-authorizer", config.logLevel);
const metrics = makeMetrics("headstart-authorizer", config, log);
const CACHE_MS = 60 * 1000;
let cached: { at: number; file: Awaited<ReturnType<KeyStore["read"]>>["file"] } | undefined;
let keyStore: KeyStore | undefined;

function store(): KeyStore {
  // Fail closed: without its customer the authorizer cannot tell whose keys to accept.
  if (!config.customer) {
    throw new ValidationError("environment variable HEADSTART_CUSTOMER is required", {
      field: "HEADSTART_CUSTOMER",
    });
  }
  keyStore ??= new KeyStore(openStore(config), config.customer);
  return keyStore;
}

async function keyFile() {
  if (cached && Date.now() - cached.at < CACHE_MS) return cached.file;
  const { file } = await store().read();
  cached = { at: Date.now(), file };
  return file;
}

export interface AuthorizerEvent {
  headers?: Record<string, string | undefined>;
  routeKey?: string;
  /** Not consulted: the answer holds for every route (see above). */
  rawPath?: string;
  requestContext?: { requestId?: string; http?: { sourceIp?: string } };
}

export const handler = instrument(
  { log, metrics },
  async (event: AuthorizerEvent): Promise<{ isAuthorized: boolean; context?: Record<string, string> }> => {
    const principal = verifyApiKey(presentedKey(event.headers), await keyFile(), store().customer);
    if (!principal) {
      log.warn("request refused", {
        correlation_id: event.requestContext?.requestId,
        route: event.routeKey,
        sourceIp: event.requestContext?.http?.sourceIp,
      });
      return { isAuthorized: false };
    }
    return { isAuthorized: true, context: { apiKeyId: principal.keyId, scopes: principal.scopes.join(",") } };
  },
);

/** For tests: forget the cached key file. */
export function clearKeyCache(): void {
  cached = undefined;
}
