/**
 * `/v1/keys`: the admin API over the customer's key file (`auth/key-store.ts`), the same code
 * path as `headstart keys`. Needs scope `admin` (auth/scopes.ts). A key is answered once, by
 * the request that creates it; listing shows ids, scopes and dates, never a hash.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { KeyId, SCOPES, Scope } from "../../auth/api-keys.ts";
import type { KeyStore } from "../../auth/key-store.ts";
import { PayloadTooLargeError } from "../../errors.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";

const tags = ["keys"];
const MAX_BODY_BYTES = 16 * 1024;

const KeyInfo = z
  .object({
    id: z.string(),
    customer: z.string().openapi({ description: "The customer (deployment) whose API accepts the key" }),
    scopes: z.array(Scope),
    createdAt: z.string(),
    revoked: z.boolean(),
    revokedAt: z.string().optional(),
  })
  .openapi("ApiKeyInfo");

const CreateKeyBody = z
  .object({
    // Cloned: KeyId (auth/) may be built before @hono/zod-openapi extended zod (see schemas.ts).
    id: KeyId.clone().openapi({
      description: "A name for the key, e.g. the client's ([a-z0-9-], ≤ 32)",
      example: "webshop",
    }),
    scopes: z
      .array(Scope)
      .min(1)
      .openapi({
        description: `Any of ${SCOPES.join(", ")}; admin implies the others`,
        example: ["predict"],
      }),
  })
  .strict()
  .openapi("CreateApiKey");

const CreatedKey = z
  .object({
    key: z
      .string()
      .openapi({ description: "The key itself: shown only in this answer, stored only as its sha256" }),
    info: KeyInfo,
  })
  .openapi("CreatedApiKey");

const KeyParams = z.object({
  id: KeyId.clone().openapi({ param: { name: "id", in: "path" }, example: "webshop" }),
});

const list = createRoute({
  method: "get",
  path: "/",
  operationId: "listApiKeys",
  tags,
  summary: "The customer's API keys: id, scopes, dates, whether revoked (never the key or its hash)",
  responses: {
    200: jsonBody(
      z.object({ keys: z.array(KeyInfo) }).openapi("ApiKeyList"),
      "Every key, revoked ones included",
    ),
    ...errorResponses({}),
  },
});

const create = createRoute({
  method: "post",
  path: "/",
  operationId: "createApiKey",
  tags,
  summary: "Make a key with the given scopes, bound to this customer; the answer is the only copy of the key",
  request: { body: { required: true, content: { "application/json": { schema: CreateKeyBody } } } },
  responses: {
    201: jsonBody(CreatedKey, "The new key (shown once) and what is stored of it"),
    ...errorResponses({
      400: true,
      409: "The id is taken (a revoked key's id stays reserved)",
      413: true,
      415: true,
    }),
  },
});

const revoke = createRoute({
  method: "delete",
  path: "/{id}",
  operationId: "revokeApiKey",
  tags,
  summary:
    "Revoke a key: it is refused from now on (within the servers' key cache time) and its id stays reserved",
  request: { params: KeyParams },
  responses: {
    200: jsonBody(KeyInfo, "The key, now revoked"),
    ...errorResponses({ 400: true, 404: "Unknown key id" }),
  },
});

/** `onChange` runs after every change, so this process's own key cache forgets at once. */
export function keyRoutes(keyStore: KeyStore, onChange: () => void) {
  const app = new OpenAPIHono<AppEnv>();
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new PayloadTooLargeError(`request body is larger than ${MAX_BODY_BYTES} bytes`, {
          field: "body",
        });
      },
    }),
  );
  app.openapi(list, async (c) => c.json({ keys: await keyStore.list() }, 200));
  app.openapi(create, async (c) => {
    const { id, scopes } = c.req.valid("json");
    const made = await keyStore.create(id, scopes);
    onChange();
    return c.json(made, 201);
  });
  app.openapi(revoke, async (c) => {
    const info = await keyStore.revoke(c.req.valid("param").id);
    onChange();
    return c.json(info, 200);
  });
  return app;
}
