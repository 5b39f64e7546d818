/**
 * Who may call which route (`auth/scopes.ts`), enforced in the app for every request, so the
 * local server and the API Lambda apply the same table.
 *
 * - Behind API Gateway, the authorizer has already checked the key and answers the same for
 *   every route (its answer is cached per key, not per route); it hands the key's scopes over in
 *   its context (`requestContext.authorizer.lambda.scopes`), and this middleware checks them
 *   against the route. Only API Gateway can invoke the function, so the context is trusted. An
 *   IAM-authenticated caller (`auth: "iam"`) is authorized by its IAM policy and gets every scope.
 *   A non-public request with neither is refused: fail closed.
 * - Locally, the key is checked here against the store's key file. Keys are demanded when the
 *   server is bound to a non-loopback address (`required`) or as soon as this customer has any
 *   active key; a loopback server of a store without keys stays zero-config.
 */
import type { MiddlewareHandler } from "hono";
import { type Principal, SCOPES, type Scope } from "../auth/api-keys.ts";
import type { KeyRing } from "../auth/key-store.ts";
import { PUBLIC, routeAccess, scopesAllow } from "../auth/scopes.ts";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";
import type { AppEnv } from "./env.ts";

export interface LocalAuth {
  ring: KeyRing;
  /** Demand a key even while no key exists (a server bound to a non-loopback address). */
  required: boolean;
}

/** What the authorizer puts in its context (functions/authorizer/handler.ts). */
export interface AuthorizerContext {
  apiKeyId: string;
  /** Comma-separated: API Gateway passes context values as strings. */
  scopes: string;
}

interface GatewayContext {
  requestId?: string;
  authorizer?: { lambda?: Partial<AuthorizerContext>; iam?: unknown };
}

const ANONYMOUS: Principal = { keyId: "(local, no keys)", scopes: ["admin"] };

export function authorize(local: LocalAuth): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const access = routeAccess(c.req.method, c.req.path);
    if (access === PUBLIC) return next();
    const gateway = (c.env as { requestContext?: GatewayContext } | undefined)?.requestContext;
    const principal = gateway ? fromGateway(gateway) : await fromLocalKey(local, c.req.header());
    c.set("principal", principal);
    c.set("authRequired", principal !== ANONYMOUS);
    if (!scopesAllow(principal.scopes, access)) {
      throw new ForbiddenError(
        `key ${principal.keyId} may not ${c.req.method} ${c.req.path}: it needs scope ${access.join(" or ")} (or admin), and has ${principal.scopes.join(", ")}`,
        { field: "x-api-key", details: { required: access, scopes: principal.scopes } },
      );
    }
    return next();
  };
}

function fromGateway(gateway: GatewayContext): Principal {
  const lambda = gateway.authorizer?.lambda;
  if (lambda?.apiKeyId && typeof lambda.scopes === "string") {
    const scopes = lambda.scopes
      .split(",")
      .filter((s): s is Scope => (SCOPES as readonly string[]).includes(s));
    return { keyId: lambda.apiKeyId, scopes };
  }
  if (gateway.authorizer?.iam) return { keyId: "(iam)", scopes: ["admin"] };
  throw new ForbiddenError("this request carries no authorizer answer", { field: "x-api-key" });
}

async function fromLocalKey(local: LocalAuth, headers: Record<string, string>): Promise<Principal> {
  if (!local.required && !(await local.ring.hasKeys())) return ANONYMOUS;
  const principal = await local.ring.verify(headers);
  if (!principal) {
    throw new UnauthorizedError(
      "this server requires an API key: send `x-api-key: hs_…` or `Authorization: Bearer hs_…` (create one with `headstart keys create`); the key sent is missing, unknown, revoked or another customer's",
      { field: "x-api-key" },
    );
  }
  return principal;
}
