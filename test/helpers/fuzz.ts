/**
 * Property-based fuzzing of the HTTP API from its own OpenAPI document: every operation the
 * document lists (so routes added later are fuzzed without a change here) gets requests whose
 * path params, query and body are generated from the operation's JSON schemas — the same zod
 * schemas the routes validate with — mixing schema-valid values (biased towards names that exist
 * in the fixture, so requests reach deep code) with near-misses (wrong types, missing required or
 * extra fields, boundary numbers and lengths, hostile strings), wrong content types and broken
 * bodies. Used by test/fuzz-api.test.ts (few requests, fixed seed) and scripts/bench-reliability.ts
 * (≥ 10,000, random seed).
 *
 * What every answer must satisfy (`checkResponse`):
 *  - no 5xx;
 *  - every 4xx is JSON `{error: {code, message}}` with a known code;
 *  - `field` names the input wherever one applies, which is:
 *      400, 413, 415, 422 — the request was refused because of an input (a param, a query value,
 *        the body or one of its fields, the content-type header);
 *      404 — a named resource does not exist, so `field` names the param or body field that named
 *        it. The one exception is the router's own 404 ("no route for …"): no route matched, so
 *        no param was ever read;
 *    409 (a concurrent change or an unmet expectation) may name one but need not.
 */
import fc from "fast-check";

/** The slice of JSON Schema the document uses. */
export interface JsonSchema {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  default?: unknown;
}

interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema: JsonSchema;
}

export interface Operation {
  method: string;
  path: string;
  operationId: string;
  parameters: Parameter[];
  contentTypes: string[];
  bodySchemas: Record<string, JsonSchema>;
}

export interface OpenApiDocument {
  paths: Record<
    string,
    Record<
      string,
      {
        operationId?: string;
        parameters?: Parameter[];
        requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
      }
    >
  >;
  components?: { schemas?: Record<string, JsonSchema> };
}

/** Names that exist in the fixture, by role: generated values are drawn from these most of the time. */
export interface FuzzNames {
  /** Datasets with rows and a cache: read by GETs and by train. */
  datasets: string[];
  /** Datasets that write routes (manifest PUT, ingest, import) may replace, so reads stay deep. */
  scratchDatasets: string[];
  heads: string[];
  versions: string[];
  aliases: string[];
  jobs: string[];
  backbones: string[];
  headTypes: string[];
  /** The dim of the heads' backbone, so embeddings reach the head. */
  dim: number;
  /** Words the text backbone knows. */
  words: string[];
  /** Keys of objects in the store (imageKey). */
  objectKeys: string[];
}

export interface FuzzRequest {
  operationId: string;
  method: string;
  /** Already encoded: what goes on the request line. */
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | FormData;
  /** Hostile corpus cases say what they are. */
  note?: string;
  /** Send no API key, or a wrong one, instead of the fixture's (where it has one). */
  auth?: "omit" | "wrong";
}

export interface Finding {
  request: string;
  status: number;
  problem: string;
  body: string;
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const content = op.requestBody?.content ?? {};
      ops.push({
        method: method.toUpperCase(),
        path,
        operationId: op.operationId ?? `${method} ${path}`,
        parameters: op.parameters ?? [],
        contentTypes: Object.keys(content),
        bodySchemas: Object.fromEntries(Object.entries(content).map(([t, c]) => [t, c.schema ?? {}])),
      });
    }
  }
  return ops;
}

// ---------------------------------------------------------------------------------------------
// Values

/** Strings that break names, keys and parsers: traversal, encodings, control bytes, unicode, size. */
export const HOSTILE_STRINGS = [
  "",
  ".",
  "..",
  "../..",
  "..%2f..",
  "%2e%2e",
  "a/b",
  "a\\b",
  "/etc/passwd",
  "a\u0000b",
  "\u0000",
  "\r\nx-injected: 1",
  "A",
  "-a",
  "ünïcödé",
  "名前",
  "\u{1F600}",
  "\uFEFFbom",
  "\uD800",
  "a".repeat(64),
  "a".repeat(10_000),
  " ",
  "null",
  "NaN",
  "1e999",
  "__proto__",
  "constructor",
  "datasets/../heads/x/aliases/live.json",
];

const ABSENT = Symbol("absent");

const WRONG_TYPES: unknown[] = [null, true, false, 0, -1, 1.5, "x", "", [], {}, [null], { a: 1 }];

const BOUNDARY_NUMBERS = [
  0,
  -0,
  -1,
  1,
  0.5,
  1e308,
  -1e308,
  5e-324,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER - 2,
  2 ** 31,
  2 ** 32 + 1,
];

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);

/** What the items of an array field are, where they have a role of their own. */
const ITEM_ROLE: Record<string, string | undefined> = { candidates: "type", backbones: "backbone" };

/** Percent-encodes any string, lone surrogates included (as U+FFFD's bytes, like a browser). */
function encode(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return [...Buffer.from(value, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");
  }
}

export class SchemaArbitraries {
  constructor(
    private readonly doc: OpenApiDocument,
    private readonly names: FuzzNames,
  ) {}

  private resolve(schema: JsonSchema): JsonSchema {
    let s = schema;
    for (let i = 0; s.$ref && i < 10; i++) {
      const name = s.$ref.replace("#/components/schemas/", "");
      s = { ...this.doc.components?.schemas?.[name], ...(s.$ref ? {} : s) };
    }
    return s;
  }

  /** Known values for a field of this name, when the fixture has any. */
  private hinted(name: string | undefined, write: boolean): fc.Arbitrary<unknown> | undefined {
    const n = this.names;
    switch (name) {
      case "dataset":
        return pick(write ? n.scratchDatasets : n.datasets);
      case "head":
        return pick(n.heads);
      case "version":
      case "expectedVersion":
        return pick(n.versions);
      case "alias":
        return pick(n.aliases);
      case "job":
        return pick(n.jobs);
      case "backbone":
        return pick(n.backbones);
      case "type":
        return pick(n.headTypes);
      case "imageKey":
        return pick(n.objectKeys);
      case "text":
        return fc.array(pick(n.words), { minLength: 1, maxLength: 8 }).map((w) => w.join(" "));
      case "embeddings":
        return fc.array(
          fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: n.dim, maxLength: n.dim }),
          {
            minLength: 1,
            maxLength: 4,
          },
        );
      case "params":
        return fc.dictionary(
          pick(["C", "classWeight", "units", "layers", "k", "maxEpochs", "alpha", "lr", "nope", ""]),
          pick([-1, 0, 0.5, 1, 2, 3, 1e308, -1e308, "balanced", "none", "NaN", "", true, false]),
          { maxKeys: 3 },
        );
      default:
        return undefined;
    }
  }

  /**
   * A value for `schema`: usually valid (from the fixture's names where the field has a known
   * role), sometimes a near-miss of this node. `write` marks values a write route will use.
   */
  value(schema: JsonSchema, name?: string, depth = 0, write = false): fc.Arbitrary<unknown> {
    const valid = this.valid(schema, name, depth, write);
    if (depth > 6) return valid;
    return fc.oneof({ weight: 14, arbitrary: valid }, { weight: 1, arbitrary: this.nearMiss(schema) });
  }

  valid(schema: JsonSchema, name: string | undefined, depth: number, write: boolean): fc.Arbitrary<unknown> {
    const s = this.resolve(schema);
    const hint = this.hinted(name, write);
    const generic = this.generic(s, name, depth, write);
    return hint ? fc.oneof({ weight: 4, arbitrary: hint }, { weight: 1, arbitrary: generic }) : generic;
  }

  private generic(
    s: JsonSchema,
    name: string | undefined,
    depth: number,
    write: boolean,
  ): fc.Arbitrary<unknown> {
    const alternatives = s.anyOf ?? s.oneOf;
    if (alternatives) return fc.oneof(...alternatives.map((a) => this.value(a, name, depth + 1, write)));
    if (s.allOf)
      return this.value(Object.assign({}, ...s.allOf.map((a) => this.resolve(a))), name, depth, write);
    if (s.enum) return pick(s.enum);
    const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
    if (types.length > 1)
      return fc.oneof(...types.map((t) => this.generic({ ...s, type: t }, name, depth, write)));
    switch (types[0]) {
      case "null":
        return fc.constant(null);
      case "boolean":
        return fc.boolean();
      case "integer":
        return fc.integer({ min: s.minimum ?? -1000, max: Math.min(s.maximum ?? 1000, 1_000_000) });
      case "number":
        return fc.double({
          min: s.minimum ?? s.exclusiveMinimum ?? -1e6,
          max: s.maximum ?? 1e6,
          noNaN: true,
          noDefaultInfinity: true,
        });
      case "string":
        return this.string(s);
      case "array":
        return fc.array(this.value(s.items ?? {}, name && ITEM_ROLE[name], depth + 1, write), {
          minLength: s.minItems ?? 0,
          maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 4, 4)),
        });
      case "object":
        return this.object(s, depth, write);
      default:
        return fc.jsonValue({ maxDepth: 2 });
    }
  }

  private string(s: JsonSchema): fc.Arbitrary<string> {
    if (s.format === "byte") return fc.base64String({ minLength: 4, maxLength: 64 });
    if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
    return fc.string({
      unit: "grapheme",
      minLength: s.minLength ?? 0,
      maxLength: Math.min(s.maxLength ?? 40, 40),
    });
  }

  private object(s: JsonSchema, depth: number, write: boolean): fc.Arbitrary<unknown> {
    const props = s.properties ?? {};
    const required = new Set(s.required ?? []);
    if (Object.keys(props).length === 0) {
      const extra = typeof s.additionalProperties === "object" ? s.additionalProperties : {};
      return fc.dictionary(fc.string({ maxLength: 8 }), this.value(extra, undefined, depth + 1, write), {
        maxKeys: 3,
      });
    }
    // Optional fields are mostly left out: a request with few fields is more often valid as a
    // whole, so it gets past validation into the route (fc.record would add each half the time).
    const entries = Object.entries(props).map(([key, sub]) => {
      const v = this.value(sub, key, depth + 1, write);
      const field = required.has(key)
        ? v
        : fc.oneof({ weight: 3, arbitrary: fc.constant(ABSENT) }, { weight: 1, arbitrary: v });
      return field.map((x) => [key, x] as const);
    });
    return fc.tuple(...entries).map((kv) => Object.fromEntries(kv.filter(([, x]) => x !== ABSENT)));
  }

  /** A value the schema rejects, or one at its edge. */
  nearMiss(schema: JsonSchema): fc.Arbitrary<unknown> {
    const s = this.resolve(schema);
    const misses: fc.Arbitrary<unknown>[] = [pick(WRONG_TYPES), pick(HOSTILE_STRINGS)];
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (types.includes("number") || types.includes("integer")) {
      const edges = [...BOUNDARY_NUMBERS];
      if (s.minimum !== undefined) edges.push(s.minimum - 1, s.minimum, s.minimum - 0.5);
      if (s.maximum !== undefined) edges.push(s.maximum + 1, s.maximum, s.maximum + 0.5);
      misses.push(pick(edges));
    }
    if (types.includes("string")) {
      if (s.maxLength !== undefined) misses.push(fc.constant("a".repeat(s.maxLength + 1)));
      misses.push(fc.string({ unit: "binary", maxLength: 20 }));
    }
    if (types.includes("array")) {
      const item = this.valid(s.items ?? {}, undefined, 7, false);
      misses.push(fc.constant([]));
      if (s.maxItems !== undefined && s.maxItems < 5000) {
        misses.push(item.map((x) => Array.from({ length: (s.maxItems ?? 0) + 1 }, () => x)));
      }
    }
    if (types.includes("object") && s.properties) {
      const base = this.object(s, 7, false) as fc.Arbitrary<Record<string, unknown>>;
      const keys = Object.keys(s.properties);
      misses.push(base.map((o) => ({ ...o, zzExtra: 1 })));
      if (s.required?.length) {
        misses.push(
          base.map((o) => Object.fromEntries(Object.entries(o).filter(([k]) => !s.required?.includes(k)))),
        );
      }
      misses.push(fc.tuple(base, pick(keys), pick(WRONG_TYPES)).map(([o, k, v]) => ({ ...o, [k]: v })));
    }
    return fc.oneof(...misses);
  }
}

// ---------------------------------------------------------------------------------------------
// Requests

/** Raw JSON bodies no schema produces: syntax errors, depth, numbers JSON.parse turns into Infinity. */
export const MALFORMED_JSON = [
  "",
  "{",
  "[",
  '{"a":',
  "nul",
  "{'a': 1}",
  '{"inputs": ["x",]}',
  "\uFEFF{}",
  "1e999",
  '{"embeddings": [[1e999]]}',
  '{"__proto__": {"polluted": true}}',
  "[".repeat(100_000) + "]".repeat(100_000),
  `{"a":${"[".repeat(5_000)}${"]".repeat(5_000)}}`,
  JSON.stringify({ inputs: ["x".repeat(200_000)] }),
  "\u0000\u0001\u0002",
];

const WRONG_CONTENT_TYPES = [
  "",
  "text/plain",
  "application/xml",
  "application/x-www-form-urlencoded",
  "application/json; charset=utf-16",
  "multipart/form-data",
  "multipart/form-data; boundary=",
  "image/png",
  "application/octet-stream",
  "*/*",
];

/** A 1×1 PNG: a real image part for multipart bodies. */
const PNG_1X1 = Uint8Array.from(
  Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    "base64",
  ),
);

/** Path segments inserted raw (not encoded): traversal, encoded slashes, bad percent-escapes. */
const RAW_SEGMENTS = [
  "..",
  "%2e%2e",
  "%2E%2E%2F",
  "a%2Fb",
  "%00",
  "a%00b",
  "%",
  "%zz",
  "%C0%AE",
  "%E2%80%AE",
  ";",
  "a?b=c",
];

export class RequestArbitraries {
  private readonly values: SchemaArbitraries;

  constructor(
    doc: OpenApiDocument,
    private readonly names: FuzzNames,
  ) {
    this.values = new SchemaArbitraries(doc, names);
  }

  /** Every operation's requests, each weighted (operations that start long work weigh less). */
  all(ops: Operation[], weights: Record<string, number> = {}): fc.Arbitrary<FuzzRequest> {
    return fc.oneof(
      ...ops.map((op) => ({ weight: weights[op.operationId] ?? 10, arbitrary: this.forOperation(op) })),
    );
  }

  forOperation(op: Operation): fc.Arbitrary<FuzzRequest> {
    const write = op.method !== "GET";
    const pathParams = op.parameters.filter((p) => p.in === "path");
    const queryParams = op.parameters.filter((p) => p.in === "query");
    const path = fc
      .tuple(...pathParams.map((p) => this.pathSegment(p, write)))
      .map((segs) => pathParams.reduce((acc, p, i) => acc.replace(`{${p.name}}`, segs[i]!), op.path));
    const query = fc
      .tuple(
        ...queryParams.map((p) =>
          fc.option(
            this.values.value(p.schema, p.name, 0, write).map((v) => [p.name, String(v)] as const),
            {
              freq: 2,
            },
          ),
        ),
        fc.option(
          fc.tuple(pick(["unknown", "backbone", "embed", "format", "fused"]), pick(HOSTILE_STRINGS)),
          {
            freq: 6,
          },
        ),
      )
      .map((pairs) => {
        const kept = pairs.filter((x): x is readonly [string, string] => x !== null);
        return kept.length ? `?${kept.map(([k, v]) => `${k}=${encode(v)}`).join("&")}` : "";
      });
    // Now and then without the API key, or with a wrong one.
    const auth = fc.oneof(
      { weight: 30, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: pick(["omit", "wrong"] as const) },
    );
    return fc.tuple(path, query, this.body(op), auth).map(([p, q, body, a]): FuzzRequest => {
      const headers: Record<string, string> = {};
      if (body.contentType !== undefined) headers["content-type"] = body.contentType;
      return {
        operationId: op.operationId,
        method: op.method,
        path: p + q,
        headers,
        ...(body.body === undefined ? {} : { body: body.body }),
        ...(a === undefined ? {} : { auth: a }),
      };
    });
  }

  private pathSegment(p: Parameter, write: boolean): fc.Arbitrary<string> {
    const generated = this.values.value(p.schema, p.name, 0, write).map((v) => encode(String(v)));
    return fc.oneof({ weight: 12, arbitrary: generated }, { weight: 1, arbitrary: pick(RAW_SEGMENTS) });
  }

  private body(op: Operation): fc.Arbitrary<{ contentType?: string; body?: FuzzRequest["body"] }> {
    // fetch cannot send a body with GET or HEAD, and neither can any client worth fuzzing for.
    if (op.method === "GET" || op.method === "HEAD") return fc.constant({});
    if (op.contentTypes.length === 0) {
      return fc.oneof(
        { weight: 8, arbitrary: fc.constant({}) },
        {
          weight: 1,
          arbitrary: fc.record({
            contentType: pick(["application/json", "text/plain"]),
            body: pick(MALFORMED_JSON),
          }),
        },
      );
    }
    const declared = op.contentTypes.map((type) => this.bodyOfType(type, op.bodySchemas[type] ?? {}));
    return fc.oneof(
      { weight: 12, arbitrary: fc.oneof(...declared) },
      {
        // A declared body under a wrong or missing content type.
        weight: 1,
        arbitrary: fc
          .tuple(fc.oneof(...declared), pick(WRONG_CONTENT_TYPES))
          .map(([b, t]) => (t === "" ? { body: b.body } : { contentType: t, body: b.body })),
      },
    );
  }

  private bodyOfType(
    type: string,
    schema: JsonSchema,
  ): fc.Arbitrary<{ contentType?: string; body?: FuzzRequest["body"] }> {
    if (type === "application/json") {
      return fc.oneof(
        {
          weight: 10,
          arbitrary: this.values
            .value(schema, undefined, 0, false)
            .map((v) => ({ contentType: type, body: JSON.stringify(v) ?? "" })),
        },
        { weight: 1, arbitrary: pick(MALFORMED_JSON).map((body) => ({ contentType: type, body })) },
      );
    }
    if (type === "multipart/form-data") return this.multipart(schema);
    if (type === "text/csv") return this.csv().map((body) => ({ contentType: type, body }));
    if (/json|ndjson/.test(type)) return this.jsonl().map((body) => ({ contentType: type, body }));
    return fc.uint8Array({ maxLength: 64 }).map((body) => ({ contentType: type, body }));
  }

  /** Manifest rows: mostly plausible (known words, two labels), some broken lines. */
  private manifestRow(): fc.Arbitrary<Record<string, unknown>> {
    return fc.record(
      {
        id: fc.oneof(
          fc.string({ maxLength: 6 }),
          fc.nat(50).map((i) => `r${i}`),
        ),
        text: this.values.valid({ type: "string" }, "text", 0, true),
        label: fc.oneof(
          { weight: 6, arbitrary: pick(["pos", "neg"]) },
          { weight: 1, arbitrary: pick(["constructor", "__proto__", "toString", ["pos", "neg"]]) },
          { weight: 1, arbitrary: pick(WRONG_TYPES) },
        ),
        split: pick(["train", "test", "nope"]),
        file: pick(HOSTILE_STRINGS),
      },
      { requiredKeys: ["text"] },
    );
  }

  private jsonl(): fc.Arbitrary<string | Uint8Array> {
    const line = fc.oneof(
      { weight: 8, arbitrary: this.manifestRow().map((r) => JSON.stringify(r)) },
      { weight: 1, arbitrary: pick(MALFORMED_JSON.filter((m) => m.length < 1000)) },
    );
    return fc.oneof(
      {
        weight: 10,
        arbitrary: fc.array(line, { minLength: 0, maxLength: 12 }).map((ls) => `${ls.join("\n")}\n`),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    );
  }

  private csv(): fc.Arbitrary<string | Uint8Array> {
    const cell = fc.oneof(
      this.values.valid({ type: "string" }, "text", 0, true),
      pick(["pos", "neg", "constructor", '"', '""', 'a"b', "\u0000", "x,y", "\r", "train"]),
    );
    const header = fc.oneof(
      { weight: 8, arbitrary: fc.constant("id,text,label,split") },
      {
        weight: 1,
        arbitrary: pick(['"id,text,label', "id,\u0000\u00ff,label", "text,text", "", "a\u0001,b"]),
      },
    );
    return fc.oneof(
      {
        weight: 10,
        arbitrary: fc
          .tuple(header, fc.array(fc.array(cell, { minLength: 1, maxLength: 5 }), { maxLength: 10 }))
          .map(([h, rows]) => `${h}\n${rows.map((r) => r.join(",")).join("\n")}\n`),
      },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    );
  }

  private multipart(schema: JsonSchema): fc.Arbitrary<{ contentType?: string; body?: FuzzRequest["body"] }> {
    const file = fc.oneof(
      fc.constant(PNG_1X1),
      fc.uint8Array({ maxLength: 64 }),
      fc.constant(new Uint8Array(0)),
    );
    const props = Object.keys(this.valuesProps(schema)).filter((k) => k !== "image");
    const form = fc
      .tuple(
        fc.array(file, { minLength: 0, maxLength: 3 }),
        fc.dictionary(
          pick([...props, "zzExtra"]),
          fc.oneof(
            pick(this.names.versions),
            pick(["1", "0", "51", "x", "live"]),
            pick(HOSTILE_STRINGS.filter((s) => s.length < 100)),
          ),
          { maxKeys: 2 },
        ),
      )
      .map(([files, fields]) => {
        const fd = new FormData();
        files.forEach((bytes, i) => {
          fd.append(
            "image",
            new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "image/png" }),
            `f${i}.png`,
          );
        });
        for (const [k, v] of Object.entries(fields)) fd.append(k, v);
        return { body: fd as FuzzRequest["body"] };
      });
    // Broken multipart: a boundary the body never closes, or no boundary at all.
    const broken = pick([
      {
        contentType: "multipart/form-data; boundary=xyz",
        body: '--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc',
      },
      { contentType: "multipart/form-data; boundary=xyz", body: "--xyz\r\n\r\n" },
      { contentType: "multipart/form-data", body: "garbage" },
      { contentType: "multipart/form-data; boundary=xyz", body: "" },
      {
        contentType: "multipart/form-data; boundary=xyz",
        body: '--xyz\r\nContent-Disposition: form-data; name="neighbors"\r\n\r\n5\r\n--xyz--\r\n',
      },
    ]);
    return fc.oneof({ weight: 6, arbitrary: form }, { weight: 1, arbitrary: broken });
  }

  private valuesProps(schema: JsonSchema): Record<string, JsonSchema> {
    return schema.properties ?? {};
  }
}

// ---------------------------------------------------------------------------------------------
// Running and judging

/** 401 and 403 are refusals of a header (the key, Host, Origin): they name it too. */
const FIELD_REQUIRED = new Set([400, 401, 403, 404, 413, 415, 422]);

/** The error codes the document's `ErrorResponse` schema lists. */
export function errorCodesOf(doc: OpenApiDocument): Set<string> {
  const error = doc.components?.schemas?.ErrorResponse?.properties?.error;
  return new Set((error?.properties?.code?.enum ?? []) as string[]);
}

export function describeRequest(r: FuzzRequest): string {
  const body =
    r.body === undefined
      ? ""
      : r.body instanceof FormData
        ? " <multipart>"
        : typeof r.body === "string"
          ? ` ${JSON.stringify(r.body.slice(0, 300))}${r.body.length > 300 ? `…(${r.body.length} chars)` : ""}`
          : ` <${r.body.length} bytes>`;
  const type = r.headers["content-type"] === undefined ? "" : ` [${r.headers["content-type"]}]`;
  const auth = r.auth ? ` (key: ${r.auth})` : "";
  return `${r.note ? `(${r.note}) ` : ""}${r.method} ${r.path.slice(0, 300)}${type}${auth}${body}`;
}

/** The problem with an answer, or undefined when it is acceptable (see the file header). */
export function checkResponse(status: number, text: string, codes: Set<string>): string | undefined {
  if (status >= 500) return `status ${status}`;
  if (status < 400) return undefined;
  let body: { error?: { code?: unknown; message?: unknown; field?: unknown } };
  try {
    body = JSON.parse(text);
  } catch {
    return "error body is not JSON";
  }
  const e = body?.error;
  if (!e || typeof e.code !== "string" || typeof e.message !== "string")
    return "error body is not {error:{code,message}}";
  if (!codes.has(e.code)) return `unknown error code ${e.code}`;
  const routerMiss = status === 404 && /^no route for /.test(e.message);
  if (FIELD_REQUIRED.has(status) && !routerMiss && (typeof e.field !== "string" || e.field === "")) {
    return `${status} without field`;
  }
  return undefined;
}

export interface FuzzStats {
  requests: number;
  status5xx: number;
  withoutField: number;
  /** Other contract breaks: a non-JSON error body, an unknown code. */
  malformed: number;
  byStatus: Record<string, number>;
  byOperation: Record<string, number>;
  findings: Finding[];
}

export type Send = (r: FuzzRequest) => Promise<{ status: number; text: string }>;

/** Sends each request in turn and judges each answer; keeps the first `keep` findings. */
export async function runRequests(
  requests: Iterable<FuzzRequest>,
  send: Send,
  codes: Set<string>,
  keep = 50,
): Promise<FuzzStats> {
  const stats: FuzzStats = {
    requests: 0,
    status5xx: 0,
    withoutField: 0,
    malformed: 0,
    byStatus: {},
    byOperation: {},
    findings: [],
  };
  for (const r of requests) {
    let status: number;
    let text: string;
    try {
      ({ status, text } = await send(r));
    } catch (err) {
      // The app itself threw instead of answering: as bad as a 500.
      status = 599;
      text = String((err as Error).stack ?? err);
    }
    stats.requests++;
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
    stats.byOperation[r.operationId] = (stats.byOperation[r.operationId] ?? 0) + 1;
    const problem = checkResponse(status, text, codes);
    if (!problem) continue;
    if (status >= 500) stats.status5xx++;
    else if (problem.endsWith("without field")) stats.withoutField++;
    else stats.malformed++;
    if (stats.findings.length < keep) {
      stats.findings.push({ request: describeRequest(r), status, problem, body: text.slice(0, 500) });
    }
  }
  return stats;
}

/** `count` generated requests from `seed`, in chunks so 10,000 never sit in memory at once. */
export function* generate(
  arb: fc.Arbitrary<FuzzRequest>,
  count: number,
  seed: number,
  chunk = 200,
): Generator<FuzzRequest> {
  for (let done = 0, i = 0; done < count; i++) {
    const n = Math.min(chunk, count - done);
    yield* fc.sample(arb, { numRuns: n, seed: (seed + i * 7919) | 0 });
    done += n;
  }
}
