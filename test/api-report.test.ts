import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { type HeadDocument, type Report, writeHeadVersion } from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { putJson } from "../shared/store/json.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

const LABELS = ["zeta", "<script>alert(1)</script>", "alpha"];
const CREATED = "2025-02-03T04:05:06.000Z";

function headDoc(head: string, version: string): HeadDocument {
  return {
    head,
    version,
    type: "logreg",
    task: "multiclass",
    labels: LABELS,
    backbone: { id: "tiny-text", sha256: "0".repeat(64), dim: 8 },
    dataset: { name: "films", version: "d7" },
    params: { C: 1 },
    model: {},
    createdAt: CREATED,
  };
}

function report(head: string, version: string): Report {
  const confusion = [
    [8, 1, 1],
    [0, 9, 1],
    [2, 0, 8],
  ];
  const perClass = Object.fromEntries(
    LABELS.map((name, c) => {
      const support = confusion[c].reduce((a, b) => a + b, 0);
      const predicted = confusion.reduce((a, row) => a + row[c], 0);
      const tp = confusion[c][c];
      return [
        name,
        { precision: tp / predicted, recall: tp / support, f1: (2 * tp) / (support + predicted), support },
      ];
    }),
  );
  const bins = [
    { lower: 0.5, upper: 0.75, count: 12, confidence: 0.62, accuracy: 0.5 },
    { lower: 0.75, upper: 1, count: 18, confidence: 0.93, accuracy: 0.83 },
  ];
  // Deliberately without dataset/backbone: the page takes them from the head document.
  return {
    head,
    version,
    type: "logreg",
    evaluation: "cv",
    folds: 3,
    metrics: { accuracy: 25 / 30, macroF1: 0.833, perClass, confusion, n: 30, logLoss: 0.41 },
    calibration: {
      method: "temperature",
      temperature: 1.3,
      eceBefore: 0.09,
      eceAfter: 0.03,
      fittedOn: "out-of-fold predictions",
      reliabilityBefore: bins,
      reliabilityAfter: bins,
    },
    counts: { train: 30, test: 0, unlabeled: 0, unsupported: 0 },
    trainSeconds: 0.25,
    createdAt: CREATED,
  };
}

describe("GET /v1/heads/{head}/versions/{version}/report", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let app: ReturnType<typeof createApp>;
  before(async () => {
    ctx = await tinyPlatform();
    app = createApp(ctx.platform, makeLogger("test", "silent"));
    await writeHeadVersion(ctx.store, headDoc("films-genre", "v1"), report("films-genre", "v1"));
  });
  after(() => ctx.cleanup());

  test("renders the stored report as a self-contained HTML page", async () => {
    const res = await app.request("/v1/heads/films-genre/versions/v1/report");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await res.text();
    assert.match(html, /^<!doctype html>/);
    assert.match(html, /<h1>films-genre@v1<\/h1>/);
    for (const id of ["summary", "per-class", "confusion", "calibration"])
      assert.match(html, new RegExp(`id="${id}"`));
    assert.doesNotMatch(html, /id="search"|id="regression"|id="multilabel"/);
    // Filled in from the head document, and the classes in its order, escaped.
    assert.ok(html.includes("films@d7") && html.includes("tiny-text"));
    const rows = [...html.matchAll(/class="cm-row"[^>]*>([^<]*)</g)].map((m) => m[1]);
    // Long names are shortened in the chart, whole in its tooltip and the table.
    assert.deepEqual(rows, ["zeta", "&lt;script&gt;alert(1)&lt;/s…", "alpha"]);
    assert.ok(html.includes("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"));
    assert.ok(html.includes("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
    assert.equal((html.match(/<rect class="cm-cell"/g) ?? []).length, 9);
    assert.doesNotMatch(html, /<script|https?:|NaN|undefined/);
  });

  test("?format=json returns the stored report", async () => {
    const res = await app.request("/v1/heads/films-genre/versions/v1/report?format=json");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    assert.deepEqual(await read(res), report("films-genre", "v1"));
    const html = await app.request("/v1/heads/films-genre/versions/v1/report?format=html");
    assert.match(html.headers.get("content-type") ?? "", /^text\/html/);
  });

  test("unknown heads, versions and missing reports are 404 in the usual error shape", async () => {
    for (const path of ["/v1/heads/nobody/versions/v1/report", "/v1/heads/films-genre/versions/v9/report"]) {
      const res = await app.request(path);
      assert.equal(res.status, 404, path);
      const body = await read(res);
      assert.equal(body.error.code, "not_found");
      assert.equal(body.error.field, "version");
      assert.match(body.error.message, /version v/);
    }
    // A version whose report.json never made it.
    await putJson(ctx.store, keys.headFile("films-genre", "v2", "head.json"), headDoc("films-genre", "v2"));
    const res = await app.request("/v1/heads/films-genre/versions/v2/report");
    assert.equal(res.status, 404);
    assert.deepEqual((await read(res)).error, {
      code: "not_found",
      message: "report of head films-genre version v2 not found",
      field: "version",
    });
  });

  test("bad names and formats are 400", async () => {
    let res = await app.request("/v1/heads/films-genre/versions/v1/report?format=pdf");
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "format");
    res = await app.request("/v1/heads/Films!/versions/v1/report");
    assert.equal(res.status, 400);
    assert.equal((await read(res)).error.field, "head");
  });

  test("is in the OpenAPI document", async () => {
    const doc = await read(await app.request("/openapi.json"));
    const op = doc.paths["/v1/heads/{head}/versions/{version}/report"]?.get;
    assert.ok(op, "route documented");
    assert.ok(op.responses["200"].content["text/html"]);
    assert.ok(op.responses["404"]);
  });

  test("a head trained through the API has a report page", async () => {
    const rows = tinySentimentRows(60, { withSplit: true });
    let res = await app.request("/v1/datasets/films/manifest", {
      method: "PUT",
      headers: { "content-type": "application/x-ndjson" },
      body: toJsonlText(rows),
    });
    assert.equal(res.status, 200);
    await ctx.platform.local.idle();
    res = await app.request("/v1/heads/films-sentiment/train", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ dataset: "films" }),
    });
    assert.equal(res.status, 200);
    const { version } = await read(res);
    res = await app.request(`/v1/heads/films-sentiment/versions/${version}/report`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, new RegExp(`<h1>films-sentiment@${version}</h1>`));
    assert.match(html, /id="confusion"/);
    assert.doesNotMatch(html, /<script|NaN|undefined/);
  });
});
