/**
 * The store the API fuzzer runs against (a temp FsStore with the tiny text backbone): a dataset
 * with rows and a cache, a head with two versions (live and canary), the embedding job — so
 * generated requests that name them reach training, prediction, export and reports — and the
 * hostile cases found before, kept as explicit requests in every run.
 */
import { createApp } from "../../shared/api/app.ts";
import { documentConfig } from "../../shared/api/docs.ts";
import { makeLogger } from "../../shared/log.ts";
import { VERSION } from "../../shared/version.ts";
import { errorCodesOf, type FuzzNames, type FuzzRequest, type OpenApiDocument, type Send } from "./fuzz.ts";
import { tinyPlatform } from "./platform.ts";
import { TINY_DIM, TINY_VOCAB, tinySentimentRows, toJsonlText } from "./tiny-backbone.ts";

export interface FuzzFixture {
  app: ReturnType<typeof createApp>;
  doc: OpenApiDocument;
  names: FuzzNames;
  platform: Awaited<ReturnType<typeof tinyPlatform>>["platform"];
  /** The error codes the document lists. */
  codes: Set<string>;
  /** Sends one request through the app, with the fixture's admin key unless `auth` says otherwise. */
  send: Send;
  /** Waits for embedding jobs the fuzzed requests started, then removes the store. */
  cleanup: () => Promise<void>;
}

export async function fuzzFixture(): Promise<FuzzFixture> {
  const ctx = await tinyPlatform();
  const { platform } = ctx;
  const rows = tinySentimentRows(40, { withSplit: true });
  await platform.putManifest("films", "jsonl", toJsonlText(rows));
  const { job } = await platform.embed("films");
  const live = await platform.train({ dataset: "films", head: "films-head" });
  const canary = await platform.train({ dataset: "films", head: "films-head", type: "knn", promote: false });
  await platform.promote("films-head", canary.version, undefined, "canary");
  const app = createApp(platform, makeLogger("fuzz", "silent"));
  const doc = app.getOpenAPI31Document(documentConfig(VERSION)) as unknown as OpenApiDocument;
  const key = await adminKey(app);
  const send: Send = async (r) => {
    const headers = { ...r.headers };
    if (r.auth === "wrong") headers["x-api-key"] = "hs_fuzz_notakeyatall";
    else if (key && r.auth !== "omit") headers["x-api-key"] = key;
    const res = await app.request(r.path, { method: r.method, headers, body: r.body });
    return { status: res.status, text: await res.text() };
  };
  const names: FuzzNames = {
    datasets: ["films", "no-such-dataset"],
    scratchDatasets: ["scratch", "scratch-2", "no-such-dataset"],
    heads: ["films-head", "no-such-head"],
    versions: [live.version, canary.version, "v00000000-000000-000000"],
    aliases: ["live", "canary", "no-such-alias"],
    jobs: [job.job, "no-such-job"],
    backbones: ["tiny-text", "no-such-model", "tiny-text+tiny-text", "ext-vectors", "constructor"],
    headTypes: [
      "logreg",
      "mlp",
      "knn",
      "centroid",
      "multilabel",
      "ridge",
      "auto",
      "nope",
      "constructor",
      "__proto__",
    ],
    dim: TINY_DIM,
    words: TINY_VOCAB,
    objectKeys: [
      "datasets/films/manifest.jsonl",
      "datasets/films/_status.json",
      "datasets/none/x.png",
      "heads/films-head/aliases/live.json",
      "backbones/tiny-text/backbone.json",
    ],
  };
  return {
    app,
    doc,
    names,
    platform,
    codes: errorCodesOf(doc),
    send,
    cleanup: async () => {
      await platform.local.idle();
      await ctx.cleanup();
    },
  };
}

/**
 * An admin key made through the API while the store has none, so every request is authorized
 * once the fuzzer's own `POST /v1/keys` has made keys required; undefined where the app has no
 * key routes.
 */
async function adminKey(app: FuzzFixture["app"]): Promise<string | undefined> {
  const res = await app.request("/v1/keys", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ id: `fuzz-admin-${process.pid}`, scopes: ["admin"] }),
  });
  if (res.status === 404) return undefined;
  if (res.status !== 201) throw new Error(`fuzz fixture: creating its admin key answered ${res.status}`);
  return ((await res.json()) as { key: string }).key;
}

const json = (
  operationId: string,
  method: string,
  path: string,
  body: string,
  note: string,
): FuzzRequest => ({
  operationId,
  method,
  path,
  headers: { "content-type": "application/json" },
  body,
  note,
});

/** The hostile cases found earlier (all fixed), as explicit requests kept in every run. */
export function hostileCorpus(names: FuzzNames): FuzzRequest[] {
  const head = names.heads[0]!;
  const predict = `/v1/heads/${head}/predict`;
  const manifest = (path: string, type: string, body: string | Uint8Array, note: string): FuzzRequest => ({
    operationId: "putManifest",
    method: "PUT",
    path,
    headers: { "content-type": type },
    body,
    note,
  });
  const cases: FuzzRequest[] = [
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ inputs: [{ imageKey: "datasets/a\u0000b.png" }] }),
      "imageKey with a NUL byte",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ inputs: [{ imageKey: "heads/films-head/aliases/live.json" }] }),
      "imageKey outside datasets/",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ inputs: [{ imageKey: "datasets/../heads/x" }] }),
      "imageKey with ..",
    ),
    manifest(
      "/v1/datasets/scratch/manifest",
      "text/csv",
      '"id,text,label\nr1,good,pos\n',
      "CSV header with a bad quote",
    ),
    manifest(
      "/v1/datasets/scratch/manifest",
      "text/csv",
      Uint8Array.from([0x69, 0x64, 0x2c, 0x00, 0xff, 0xfe, 0x0a, 0x61]),
      "CSV header with binary bytes",
    ),
    manifest(
      "/v1/datasets/scratch/manifest",
      "text/csv",
      'id,text,label\nr1,"good,pos\nr2,bad,neg\n',
      "CSV record with a bad quote",
    ),
    manifest(
      "/v1/datasets/scratch/manifest?backbone=no-such-model",
      "application/x-ndjson",
      toJsonlText(tinySentimentRows(4)),
      "unknown ?backbone= on manifest PUT",
    ),
    manifest("/v1/datasets/scratch/manifest", "application/pdf", "x", "manifest with a wrong content-type"),
    json("predictHead", "POST", predict, "{", "malformed JSON"),
    json("trainHead", "POST", `/v1/heads/${head}/train`, '{"dataset": "films",', "malformed JSON"),
    json("setHeadAlias", "PUT", `/v1/heads/${head}/aliases/live`, "", "empty JSON body"),
    {
      operationId: "predictHead",
      method: "POST",
      path: predict,
      headers: { "content-type": "text/plain" },
      body: '{"inputs":["good"]}',
      note: "wrong content-type",
    },
    {
      operationId: "predictHead",
      method: "POST",
      path: predict,
      headers: {},
      body: '{"inputs":["good"]}',
      note: "no content-type",
    },
    {
      operationId: "predictHead",
      method: "POST",
      path: predict,
      headers: { "content-type": "multipart/form-data; boundary=xyz" },
      body: '--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc',
      note: "multipart never closed",
    },
    {
      operationId: "predictHead",
      method: "POST",
      path: predict,
      headers: { "content-type": "multipart/form-data" },
      body: "garbage",
      note: "multipart without boundary",
    },
    {
      operationId: "getDataset",
      method: "GET",
      path: "/v1/datasets/..",
      headers: {},
      note: "path traversal ..",
    },
    {
      operationId: "getDataset",
      method: "GET",
      path: "/v1/datasets/%2e%2e",
      headers: {},
      note: "path traversal %2e%2e",
    },
    {
      operationId: "getDataset",
      method: "GET",
      path: "/v1/datasets/%2e%2e%2fheads",
      headers: {},
      note: "encoded slash",
    },
    {
      operationId: "getHead",
      method: "GET",
      path: "/v1/heads/films-head%2F..%2F..",
      headers: {},
      note: "encoded slash",
    },
    {
      operationId: "getHeadVersion",
      method: "GET",
      path: `/v1/heads/${head}/versions/%2e%2e`,
      headers: {},
      note: "path traversal in version",
    },
    { operationId: "getJob", method: "GET", path: "/v1/jobs/%00", headers: {}, note: "NUL in a path param" },
    { operationId: "getJob", method: "GET", path: "/v1/jobs/%zz", headers: {}, note: "bad percent-escape" },
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ embeddings: [[1e308, -1e308, 0, 0, 0, 0, 0, 0]] }),
      "huge numbers",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      '{"embeddings": [[1e999, 0, 0, 0, 0, 0, 0, 0]]}',
      "a number JSON.parse makes Infinity",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ embeddings: [[-1, -2, -3, -4, -5, -6, -7, -8]], neighbors: -1 }),
      "negative neighbors",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      '{"embeddings": [["NaN", null, 0, 0, 0, 0, 0, 0]]}',
      "NaN-ish values",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      `{"inputs": ${"[".repeat(10_000)}${"]".repeat(10_000)}}`,
      "deeply nested JSON",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ inputs: ["good ".repeat(30_000)] }),
      "very long string",
    ),
    json(
      "predictHead",
      "POST",
      predict,
      JSON.stringify({ inputs: ["gööd 名前 \u{1F600} \uD800"] }),
      "unicode",
    ),
    json(
      "trainHead",
      "POST",
      `/v1/heads/${head}/train`,
      JSON.stringify({ dataset: "films", cv: 1e308, seed: -1 }),
      "huge and negative numbers",
    ),
    json(
      "trainHead",
      "POST",
      `/v1/heads/${head}/train`,
      JSON.stringify({ dataset: "films", params: { C: -1 } }),
      "negative param",
    ),
    json(
      "importEmbeddings",
      "POST",
      "/v1/datasets/scratch/embeddings",
      JSON.stringify({ backbone: "ext", rows: [{ id: "a" }], embeddings: [[Number.MAX_VALUE]] }),
      "huge vector value",
    ),
    json(
      "setHeadAlias",
      "PUT",
      `/v1/heads/${head}/aliases/live`,
      JSON.stringify({ version: "../../x" }),
      "path traversal in a body name",
    ),
  ];
  return cases;
}
