/**
 * HTTP API Lambda authorizer (payload 2.0, simple responses): allows a request that presents
 * an active API key of this customer. Keys (hashed) live in one Secrets Manager secret, read
 * at most every five minutes per container so a revoked key stops working within minutes.
 */
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import {
  type ApiKeySecret,
  parseApiKeySecret,
  presentedKey,
  verifyApiKey,
} from "../../shared/auth/api-keys.ts";
import { loadConfig } from "../../shared/config.ts";
import { ValidationError } from "../../shared/errors.ts";
import { instrument } from "../../shared/lambda.ts";
import { makeLogger } from "../../shared/log.ts";
import { makeMetrics } from "../../shared/metrics.ts";

const config = loadConfig();
const log = makeLogger("headstart-authorizer", config.logLevel);
const metrics = makeMetrics("headstart-authorizer", config, log);
const client = new SecretsManagerClient({ region: config.region });
const CACHE_MS = 5 * 60 * 1000;
let cached: { at: number; secret: ApiKeySecret } | undefined;

async function keys(): Promise<ApiKeySecret> {
  if (cached && Date.now() - cached.at < CACHE_MS) return cached.secret;
  if (!config.apiKeysSecretArn) {
    throw new ValidationError("environment variable HEADSTART_API_KEYS_SECRET_ARN is required", {
      field: "HEADSTART_API_KEYS_SECRET_ARN",
    });
  }
  const out = await client.send(new GetSecretValueCommand({ SecretId: config.apiKeysSecretArn }));
  const secret = parseApiKeySecret(out.SecretString ?? "");
  cached = { at: Date.now(), secret };
  return secret;
}

export interface AuthorizerEvent {
  headers?: Record<string, string | undefined>;
  routeKey?: string;
  requestContext?: { requestId?: string; http?: { sourceIp?: string } };
}

export const handler = instrument(
  { log, metrics },
  async (event: AuthorizerEvent): Promise<{ isAuthorized: boolean; context?: Record<string, string> }> => {
    const keyId = verifyApiKey(presentedKey(event.headers), await keys());
    if (!keyId) {
      log.warn("request refused", {
        correlation_id: event.requestContext?.requestId,
        route: event.routeKey,
        sourceIp: event.requestContext?.http?.sourceIp,
      });
      return { isAuthorized: false };
    }
    return { isAuthorized: true, context: { apiKeyId: keyId } };
  },
);

/** For tests: forget the cached secret. */
export function clearKeyCache(): void {
  cached = undefined;
}
