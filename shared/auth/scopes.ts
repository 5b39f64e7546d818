/**
 * The one table of which scope each route needs. A route not listed here needs `admin`, so a
 * route added later (or a typo in this table) is closed by default, never open. `admin` implies
 * every scope. Patterns use the OpenAPI form (`{name}` matches one path segment).
 */
import type { Scope } from "./api-keys.ts";

/** Needs no key anywhere (API Gateway routes them past the authorizer too: infra/api.ts). */
export const PUBLIC = "public" as const;
export type RouteAccess = typeof PUBLIC | readonly Scope[];

/**
 * `METHOD path` → the scopes any one of which admits the request. Reads of heads serve the
 * applications that predict with them and the people who train them; reads of datasets and jobs
 * serve those who upload and those who train. Exporting a model hands over its weights, so it is
 * a `train` right, not a `predict` one. A batch prediction is predict over many rows: it reads the
 * head as predict does and hands out only predictions (its embedding stage changes no head), so
 * starting, following, cancelling one and fetching its parts are `predict` rights.
 */
export const ROUTE_SCOPES: Readonly<Record<string, RouteAccess>> = {
  "GET /health": PUBLIC,
  "GET /openapi.json": PUBLIC,
  "GET /docs": PUBLIC,
  "GET /docs/{file}": PUBLIC,
  "GET /docs/assets/{file}": PUBLIC,
  // The web console's page and files hold no data: it signs in and reads through the API.
  "GET /": PUBLIC,
  "GET /console/assets/{file}": PUBLIC,
  // Who the caller is: any key may ask (the console shows only the pages its scopes can use).
  "GET /v1/me": ["predict", "train", "ingest"],

  "POST /v1/heads/{head}/predict": ["predict"],
  "POST /v1/heads/{head}/batch-predictions": ["predict"],
  "GET /v1/heads/{head}/batch-predictions/{job}": ["predict"],
  "POST /v1/heads/{head}/batch-predictions/{job}/cancel": ["predict"],
  "GET /v1/heads/{head}/batch-predictions/{job}/files": ["predict"],
  "GET /v1/heads/{head}/batch-predictions/{job}/files/{name}": ["predict"],
  // Corrections come from whoever sees predictions (a predict key in an app); deleting one changes
  // what the next training learns, so it is train's.
  "POST /v1/heads/{head}/feedback": ["predict", "train"],
  "GET /v1/heads/{head}/feedback": ["predict", "train"],
  "DELETE /v1/heads/{head}/feedback/{id}": ["train"],
  "GET /v1/heads/{head}": ["predict", "train"],
  "GET /v1/heads/{head}/versions/{version}": ["predict", "train"],
  "GET /v1/heads/{head}/versions/{version}/report": ["predict", "train"],
  "GET /v1/heads/{head}/aliases/{alias}": ["predict", "train"],

  "POST /v1/heads/{head}/train": ["train"],
  "PUT /v1/heads/{head}/aliases/{alias}": ["train"],
  "POST /v1/heads/{head}/aliases/{alias}/rollback": ["train"],
  "GET /v1/heads/{head}/versions/{version}/model.onnx": ["train"],
  "GET /v1/heads/{head}/versions/{version}/model.onnx/download": ["train"],

  "PUT /v1/datasets/{dataset}/manifest": ["ingest"],
  "POST /v1/datasets/{dataset}/ingest": ["ingest"],
  "POST /v1/datasets/{dataset}/embeddings": ["ingest"],
  "GET /v1/datasets/{dataset}": ["ingest", "train"],
  // The console's upload (files first, then the manifest) and its map and thumbnails.
  "PUT /v1/datasets/{dataset}/files": ["ingest"],
  "GET /v1/datasets/{dataset}/files": ["ingest", "train"],
  "GET /v1/datasets/{dataset}/map": ["ingest", "train"],
  // Judging labels fits heads on the dataset (as training does) and changes nothing: train's.
  "POST /v1/datasets/{dataset}/label-issues": ["train"],
  "GET /v1/jobs/{job}": ["ingest", "train"],
  // Choosing what to label next is part of training a head; it reads a head and a dataset, writes nothing.
  "POST /v1/datasets/{dataset}/suggest": ["train"],
  // A drift check reads a head's training data and captured inputs (not only its predictions), and
  // changes nothing but a possible drift.detected event: train's, like judging labels.
  "POST /v1/drift": ["train"],
  // The scheduled check's record of the same test: read as the check itself is run.
  "GET /v1/heads/{head}/drift-state": ["train"],

  // Lists read what the matching single-item reads do. Deletes are admin's: they cannot be undone
  // and reach across what other scopes own (ingest's datasets, train's heads), and `force` goes
  // past what still refers to them, so a pipeline's ingest or train key cannot destroy data.
  "GET /v1/datasets": ["ingest", "train"],
  "GET /v1/heads": ["predict", "train"],
  "GET /v1/heads/{head}/versions": ["predict", "train"],
  "GET /v1/jobs": ["ingest", "train"],
  "GET /v1/backbones": ["ingest", "train"],
  "DELETE /v1/datasets/{dataset}": ["admin"],
  "DELETE /v1/heads/{head}": ["admin"],
  "DELETE /v1/heads/{head}/versions/{version}": ["admin"],
  "DELETE /v1/jobs/{job}": ["admin"],
  "DELETE /v1/backbones/{backbone}": ["admin"],
  "POST /v1/gc": ["admin"],

  "GET /v1/keys": ["admin"],
  "POST /v1/keys": ["admin"],
  "DELETE /v1/keys/{id}": ["admin"],

  "GET /v1/webhooks": ["admin"],
  "POST /v1/webhooks": ["admin"],
  "DELETE /v1/webhooks/{id}": ["admin"],
  "GET /v1/webhooks/deliveries": ["admin"],
};

const ADMIN_ONLY: readonly Scope[] = ["admin"];

interface Compiled {
  method: string;
  re: RegExp;
  access: RouteAccess;
}

const COMPILED: Compiled[] = Object.entries(ROUTE_SCOPES).map(([route, access]) => {
  const [method, path] = route.split(" ");
  const source = path
    .split("/")
    .map((seg) => (/^\{[^}]+\}$/.test(seg) ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return { method, re: new RegExp(`^${source}$`), access };
});

/** What a request needs: `public`, or the scopes any one of which admits it (unknown: admin). */
export function routeAccess(method: string, path: string): RouteAccess {
  const m = method.toUpperCase() === "HEAD" ? "GET" : method.toUpperCase();
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  for (const r of COMPILED) if (r.method === m && r.re.test(trimmed)) return r.access;
  return ADMIN_ONLY;
}

/** Whether a key holding `held` may make a request needing one of `needed`. */
export function scopesAllow(held: readonly Scope[], needed: readonly Scope[]): boolean {
  return held.includes("admin") || needed.some((s) => held.includes(s));
}
