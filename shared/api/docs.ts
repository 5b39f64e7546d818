/**
 * Swagger UI at `/docs`, served from this origin: the page, its start script and swagger-ui-dist's
 * files under `/docs/assets/`, so it renders with no network (no CDN, no validator badge).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Hono } from "hono";
import { NotFoundError } from "../errors.ts";
import type { AppEnv } from "./env.ts";

/**
 * The swagger-ui-dist files the page loads, with their content types. Nothing else is served,
 * which also rules out path traversal; a bundle (Lambda) must ship exactly these files.
 */
export const SWAGGER_UI_ASSETS: Readonly<Record<string, string>> = {
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
  "swagger-ui.css": "text/css; charset=utf-8",
  "index.css": "text/css; charset=utf-8",
  "favicon-32x32.png": "image/png",
  "favicon-16x16.png": "image/png",
};

/** The installed swagger-ui-dist package's directory (throws if it is not installed). */
export function swaggerUiAssetsDir(): string {
  return dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
}

/** Assets change only with the package, so a day is safe; the ETag revalidates after that. */
const ASSET_CACHE = "public, max-age=86400";
/** Swagger UI sets inline styles; scripts, styles and fetches stay on this origin. */
const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// Relative URLs, so the page also works when the API sits under a path prefix.
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>headstart API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="stylesheet" href="docs/assets/index.css">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="docs/assets/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
`;

/** A script file rather than inline, so the CSP needs no 'unsafe-inline' for scripts. */
const initScript = (specUrl: string) => `window.ui = SwaggerUIBundle({
  url: ${JSON.stringify(specUrl)},
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayOperationId: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
`;

interface Asset {
  bytes: Uint8Array<ArrayBuffer>;
  etag: string;
}

/**
 * `/docs` and its files. `assetsDir` holds the `SWAGGER_UI_ASSETS` files (default: the installed
 * swagger-ui-dist, looked up on first use so an app without the files still starts).
 */
export function docsRoutes(opts: { specUrl: string; assetsDir?: string }) {
  const app = new Hono<AppEnv>();
  const cache = new Map<string, Promise<Asset>>();
  const load = (name: string): Promise<Asset> => {
    let found = cache.get(name);
    if (!found) {
      found = readFile(join(opts.assetsDir ?? swaggerUiAssetsDir(), name)).then((buf) => ({
        bytes: new Uint8Array(buf),
        etag: `"${createHash("sha256").update(buf).digest("base64url").slice(0, 27)}"`,
      }));
      found.catch(() => cache.delete(name)); // a failed read is retried, not remembered
      cache.set(name, found);
    }
    return found;
  };

  app.get("/", (c) =>
    c.html(PAGE, 200, { "cache-control": "no-cache", "content-security-policy": PAGE_CSP }),
  );
  app.get("/init.js", (c) =>
    c.body(initScript(opts.specUrl), 200, {
      "content-type": SWAGGER_UI_ASSETS["swagger-ui-bundle.js"],
      "cache-control": "no-cache",
    }),
  );
  app.get("/assets/:file", async (c) => {
    const name = c.req.param("file");
    const type = Object.hasOwn(SWAGGER_UI_ASSETS, name) ? SWAGGER_UI_ASSETS[name] : undefined;
    if (!type) throw new NotFoundError(`docs asset ${JSON.stringify(name)}`, { field: "file" });
    const asset = await load(name);
    const headers = { etag: asset.etag, "cache-control": ASSET_CACHE, "x-content-type-options": "nosniff" };
    if (c.req.header("if-none-match") === asset.etag) return c.body(null, 304, headers);
    return c.body(asset.bytes, 200, { ...headers, "content-type": type });
  });
  return app;
}

/** The API-key schemes the deployment's authorizer accepts (functions/authorizer, shared/auth/api-keys.ts). */
export const SECURITY_SCHEMES = {
  apiKey: {
    type: "apiKey",
    in: "header",
    name: "x-api-key",
    description:
      "A customer API key, `hs_<id>_<secret>`, with scopes (`headstart keys create`, `POST /v1/keys`; docs/api.md#authentication)",
  },
  bearer: {
    type: "http",
    scheme: "bearer",
    bearerFormat: "hs_<id>_<secret>",
    description: "The same API key as `Authorization: Bearer hs_<id>_<secret>`",
  },
} as const;

/** The document's top level: every operation needs one of the schemes unless it says `security: []`. */
export function documentConfig(version: string): Parameters<OpenAPIHono["getOpenAPI31Document"]>[0] {
  return {
    openapi: "3.1.0",
    info: {
      title: "headstart",
      version,
      license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
      description:
        "Transfer learning the cheap way: embed once, train small heads, serve them. " +
        "Deployed in AWS, every route but `GET /health` (this document and `/docs` included) needs an API key " +
        "(`x-api-key` or `Authorization: Bearer`), or SigV4 where the deployment uses IAM auth; API Gateway refuses " +
        "others with 403 before they reach the app. A key has scopes (predict, train, ingest, admin; admin implies " +
        "all): each operation's `x-required-scopes` lists those that admit it. `headstart serve` demands keys once " +
        "the store has any, and always when bound to a non-loopback address. Errors: docs/api.md#errors.",
    },
    servers: [{ url: "/", description: "This server" }],
    security: [{ apiKey: [] }, { bearer: [] }],
    tags: [
      { name: "datasets", description: "Upload, ingest and import datasets; their embedding status" },
      { name: "heads", description: "Train, inspect, promote, export and predict with heads" },
      { name: "jobs", description: "Batch embedding jobs" },
      { name: "backbones", description: "The published backbones" },
      { name: "keys", description: "Scoped API keys of this customer (scope admin)" },
      { name: "webhooks", description: "Signed event deliveries: endpoints, delivery log (scope admin)" },
      { name: "system", description: "Health" },
    ],
  };
}
