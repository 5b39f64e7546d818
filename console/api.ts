/**
 * The console's only way to the server: the public JSON API over fetch, with the API key (if the
 * person signed in) in `x-api-key`, as every other client sends it. Scopes are the API's to
 * enforce; a 403 is shown as the API's own message.
 */

const KEY = "headstart.apiKey";

/** Kept for this tab only: sessionStorage ends with the tab, so a key never outlives its use. */
export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (key: string) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The request field the API names (`dataset`, `params.classWeight`…), when it names one. */
    readonly field?: string,
  ) {
    super(message);
  }
}

/** A path segment, encoded: names are user input. */
export const seg = (s: string) => encodeURIComponent(s);

/** `path` is relative (`v1/…`), so the console also works when the API sits under a path prefix. */
export async function api<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const key = apiKey.get();
  if (key) headers["x-api-key"] = key;
  if (init.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method: init.method ?? "GET",
    headers,
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = data?.error ?? {};
    throw new ApiError(
      res.status,
      err.code ?? "error",
      err.message ?? data?.message ?? res.statusText,
      err.field,
    );
  }
  return data as T;
}

export type Scope = "predict" | "train" | "ingest" | "admin";
export interface Me {
  authRequired: boolean;
  keyId?: string;
  scopes: Scope[];
}

export interface DatasetRecord {
  dataset: string;
  state: "ingested" | "rejected";
  rows: { total: number; accepted: number; rejected: number };
  labels: Record<string, number>;
  splits: { train: number; test: number; unspecified: number };
  modalities: Record<string, number>;
  ingestedAt: string;
}

export interface DatasetInfo {
  status: DatasetRecord & {
    rejected: Array<{ line: number; id?: string; field?: string; reason: string }>;
    message?: string;
  };
  embedding: {
    backbone: string;
    cachedItems: number;
    failedItems: number;
    failures: Array<{ id: string; reason: string; message: string }>;
  };
}

export interface Metric {
  name: string;
  value: number;
}

export interface HeadRecord {
  head: string;
  live?: string;
  aliases: Record<string, string>;
  versions: number;
  current?: { type?: string; task?: string; dataset?: { name: string }; backbone?: string; metric?: Metric };
}

export interface VersionRecord {
  version: string;
  aliases: string[];
  type?: string;
  task?: string;
  metric?: Metric;
  createdAt?: string;
}

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface Report {
  evaluation: "test-split" | "cv";
  metrics?: {
    accuracy: number;
    macroF1: number;
    perClass: Record<string, ClassMetrics>;
    confusion: number[][];
    n: number;
  };
  multilabel?: {
    subsetAccuracy: number;
    microF1: number;
    macroF1: number;
    hammingLoss: number;
    perLabel: Record<string, ClassMetrics & { threshold: number }>;
    n: number;
  };
  regression?: { rmse: number; mae: number; r2: number; n: number };
  counts: { train: number; test: number };
}

export interface HeadVersion {
  head: string;
  version: string;
  type: string;
  task?: string;
  labels: string[];
  backbone: { id: string };
  dataset: { name: string; version: string };
  createdAt: string;
  report?: Report;
}

export interface Prediction {
  label?: string;
  labels?: string[];
  value?: number;
  score?: number;
  scores?: Record<string, number>;
  unknown?: boolean;
  unknownScore?: number;
}
