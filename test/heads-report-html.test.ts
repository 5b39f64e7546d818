import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { escapeHtml, renderReportHtml } from "../shared/heads/report-html.ts";
import { Report } from "../shared/heads/version.ts";
import { reliabilityBins } from "../shared/learn/calibration.ts";
import { mulberry32 } from "../shared/learn/split.ts";

const EVIL = "<script>alert(1)</script>";
const QUOTES = `&"'`;

function count(html: string, re: RegExp): number {
  return (html.match(new RegExp(re.source, `${re.flags.replace("g", "")}g`)) ?? []).length;
}

/** A multiclass report with k classes, a dense confusion matrix and matching per-class metrics. */
function multiclassReport(labels: string[], extra: Partial<Report> = {}): Report {
  const k = labels.length;
  const rand = mulberry32(k);
  const confusion = labels.map((_, t) =>
    labels.map((_, p) => (t === p ? 20 + Math.floor(rand() * 30) : Math.floor(rand() * 4))),
  );
  const perClass: NonNullable<Report["metrics"]>["perClass"] = {};
  let correct = 0;
  let n = 0;
  labels.forEach((name, c) => {
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    const tp = confusion[c][c];
    correct += tp;
    n += support;
    perClass[name] = {
      precision: tp / predicted,
      recall: tp / support,
      f1: (2 * tp) / (support + predicted),
      support,
    };
  });
  const proba = new Float64Array(400 * 3);
  const y = new Int32Array(400);
  for (let i = 0; i < 400; i++) {
    const top = 0.34 + 0.66 * rand();
    proba.set([top, (1 - top) / 2, (1 - top) / 2], i * 3);
    y[i] = rand() < top * 0.8 ? 0 : 1;
  }
  const report: Report = {
    head: "films-sentiment",
    version: "v20250101-000000-abcdef",
    type: "logreg",
    task: "multiclass",
    dataset: { name: "films", version: "d1" },
    backbone: "tiny-text",
    params: { C: 1, cv: 5 },
    evaluation: "cv",
    folds: 5,
    metrics: { accuracy: correct / n, macroF1: 0.8123, perClass, confusion, n, logLoss: 0.4321 },
    calibration: {
      method: "temperature",
      temperature: 1.7,
      eceBefore: 0.1234,
      eceAfter: 0.0211,
      fittedOn: "out-of-fold predictions on the training rows",
      reliabilityBefore: reliabilityBins(proba, y, 3, 10),
      reliabilityAfter: reliabilityBins(proba, y, 3, 10),
    },
    search: {
      metric: "macroF1",
      folds: 5,
      candidates: [
        { type: "logreg", params: { C: 0.1 }, score: 0.71, std: 0.02, seconds: 1.5, chosen: false },
        { type: "logreg", params: { C: 1 }, score: 0.8123, std: 0.015, seconds: 1.7, chosen: true },
        { type: "mlp", params: { hidden: 64 }, score: 0.79, std: 0.03, seconds: 12.25, chosen: false },
      ],
    },
    counts: { train: n, test: 0, unlabeled: 3, unsupported: 1 },
    trainSeconds: 2.5,
    iterations: 42,
    converged: true,
    createdAt: "2025-01-01T00:00:00.000Z",
    ...extra,
  };
  return Report.parse(report);
}

function minimalReport(extra: Partial<Report> = {}): Report {
  return {
    head: "h",
    version: "v1",
    type: "logreg",
    evaluation: "test-split",
    counts: { train: 10, test: 5, unlabeled: 0, unsupported: 0 },
    trainSeconds: 0.1,
    createdAt: "2025-01-01T00:00:00.000Z",
    ...extra,
  };
}

/** Things a self-contained, well-formed page must satisfy whatever the report holds. */
function assertSane(html: string): void {
  assert.match(html, /^<!doctype html>/);
  assert.doesNotMatch(html, /NaN|undefined|Infinity|\[object Object\]/);
  // Nothing fetched from anywhere: no scripts, links, remote or embedded resources.
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /https?:|<link|<img|<iframe|\bsrc=|\bhref=|url\(|@import|@font-face/i);
  for (const tag of ["svg", "section", "table", "details", "style", "main"]) {
    assert.equal(
      count(html, new RegExp(`<${tag}[\\s>]`)),
      count(html, new RegExp(`</${tag}>`)),
      `<${tag}> balanced`,
    );
  }
  // Every coordinate in every SVG is a finite number.
  for (const m of html.matchAll(/\s(x|y|x1|x2|y1|y2|cx|cy|r|width|height|font-size)="([^"]*)"/g)) {
    assert.ok(Number.isFinite(Number(m[2])), `${m[1]}="${m[2]}"`);
  }
}

describe("renderReportHtml", () => {
  it("shows every section of a full multiclass report", () => {
    const labels = ["negative", "neutral", "positive"];
    const report = multiclassReport(labels);
    const html = renderReportHtml(report, { labels });
    assertSane(html);
    assert.match(html, /<title>films-sentiment@v20250101-000000-abcdef — headstart report<\/title>/);
    assert.match(html, /<h1>films-sentiment@v20250101-000000-abcdef<\/h1>/);
    for (const text of [
      "logreg",
      "multiclass",
      "films@d1",
      "tiny-text",
      "5-fold cross-validation",
      "2025-01-01T00:00:00.000Z",
    ]) {
      assert.ok(html.includes(text), text);
    }
    for (const id of ["summary", "per-class", "confusion", "calibration", "search"]) {
      assert.equal(count(html, new RegExp(`<section id="${id}">`)), 1, id);
    }
    assert.doesNotMatch(html, /id="multilabel"|id="regression"/);
    // Headline numbers, formatted.
    assert.ok(html.includes(report.metrics!.accuracy.toFixed(3)));
    for (const text of ["0.812", "0.4321", "0.1234", "0.0211", "1.700", "2.50 s", ">42<"])
      assert.ok(html.includes(text), text);
    // Per-class: one table row and three bars per class.
    for (const name of labels) assert.ok(html.includes(`<td>${name}</td>`), name);
    assert.equal(count(html, /<rect class="bar"/), 3 * labels.length);
    // Confusion: k × k cells, every non-zero count written in its cell, rows and columns labelled.
    const cm = report.metrics!.confusion;
    assert.equal(count(html, /<rect class="cm-cell"/), 9);
    assert.equal(count(html, /class="cm-row"/), 3);
    assert.equal(count(html, /class="cm-col"/), 3);
    assert.ok(html.includes(`>${cm[0][0]}</text>`));
    assert.match(html, new RegExp(`true negative → predicted neutral: ${cm[0][1]} `));
    // Reliability: one bar and one point per non-empty bin and series, plus the diagonal.
    const used = report.calibration!.reliabilityBefore.filter((b) => b.count > 0).length;
    assert.ok(used >= 3);
    assert.equal(count(html, /<rect class="rel-bar"/), 2 * used);
    assert.equal(count(html, /<circle class="rel-point"/), 2 * used);
    assert.equal(count(html, /class="diagonal"/), 1);
    // Search: every candidate, the chosen one highlighted once.
    assert.equal(count(html, /<tr class="chosen">/), 1);
    assert.match(
      html,
      /<tr class="chosen"><td>★ logreg<\/td><td class="params">\{&quot;C&quot;:1\}<\/td><td>0\.8123 ± 0\.0150<\/td>/,
    );
    assert.ok(html.includes("12.3 s"));
    assert.ok(html.includes("mlp"));
  });

  it("orders the matrix by the head's labels", () => {
    const labels = ["zeta", "alpha", "mid"];
    const html = renderReportHtml(multiclassReport(labels), { labels });
    const rows = [...html.matchAll(/class="cm-row"[^>]*>([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(rows, labels);
  });

  it("does not guess class names from integer-like keys without the head", () => {
    // JavaScript lists "10" after "2" whatever order the classes had, so the names cannot be trusted.
    const html = renderReportHtml(multiclassReport(["1", "10", "2"]));
    assertSane(html);
    const rows = [...html.matchAll(/class="cm-row"[^>]*>([^<]*)</g)].map((m) => m[1]);
    assert.deepEqual(rows, ["#0", "#1", "#2"]);
    assert.equal(count(html, /<td>(1|10|2)<\/td>/), 3, "per-class rows keep their real names");
    // With the head, the real names in its order.
    const named = renderReportHtml(multiclassReport(["1", "10", "2"]), { labels: ["1", "10", "2"] });
    assert.deepEqual(
      [...named.matchAll(/class="cm-row"[^>]*>([^<]*)</g)].map((m) => m[1]),
      ["1", "10", "2"],
    );
  });

  it("fills what an older report lacks from the head document, without overriding the report", () => {
    const head = {
      labels: ["a", "b"],
      task: "multiclass" as const,
      dataset: { name: "older-films", version: "d3" },
      backbone: { id: "old-backbone" },
      params: { l2: 0.5 },
    };
    const html = renderReportHtml(minimalReport(), head);
    assertSane(html);
    assert.ok(html.includes("older-films@d3") && html.includes("old-backbone"));
    assert.ok(html.includes("{&quot;l2&quot;:0.5}"));
    const own = renderReportHtml(
      minimalReport({ dataset: { name: "new", version: "d9" }, backbone: "bb" }),
      head,
    );
    assert.ok(own.includes("new@d9") && own.includes("<b>bb</b>"));
    assert.doesNotMatch(own, /older-films|old-backbone/);
  });

  it("omits what the report does not have", () => {
    const html = renderReportHtml(minimalReport());
    assertSane(html);
    assert.equal(count(html, /<section id="/), 1);
    assert.match(html, /<section id="summary">/);
    assert.equal(count(html, /<svg/), 0);
    assert.ok(html.includes("held-out test split"));
    assert.ok(html.includes("multiclass"), "task defaults to multiclass");
    // A multiclass report without calibration or search has no reliability or search section.
    const plain = renderReportHtml(
      multiclassReport(["a", "b"], { calibration: undefined, search: undefined }),
    );
    assertSane(plain);
    assert.doesNotMatch(plain, /id="calibration"|id="search"|ECE/);
    assert.match(plain, /id="confusion"/);
  });

  it("shows the unknown-input scorer and threshold", () => {
    const unknown = {
      method: "knn" as const,
      threshold: 0.4321,
      rate: 0.05,
      fittedOn: "the test split's 200 rows",
      heldOut: 200,
      bytes: 2048,
    };
    const html = renderReportHtml(multiclassReport(["a", "b"], { unknown }));
    assertSane(html);
    assert.match(
      html,
      /<section id="unknown">.*knn.*0\.4321.*5\.0%.*2\.0 KB.*the test split&#39;s 200 rows/s,
    );
    assert.doesNotMatch(renderReportHtml(multiclassReport(["a", "b"])), /id="unknown"/);
  });

  it("escapes every user-supplied text", () => {
    const labels = [EVIL, QUOTES, "plain"];
    const report = multiclassReport(labels, {
      head: EVIL,
      dataset: { name: QUOTES, version: EVIL },
      backbone: EVIL,
      params: { [EVIL]: QUOTES },
      search: {
        metric: "macroF1",
        folds: 3,
        candidates: [{ type: EVIL, params: { x: EVIL }, score: 0.5, std: 0.1, seconds: 1, chosen: true }],
      },
      multilabel: {
        subsetAccuracy: 0.5,
        microF1: 0.6,
        macroF1: 0.55,
        hammingLoss: 0.2,
        perLabel: { [EVIL]: { precision: 1, recall: 0.5, f1: 0.667, support: 2, threshold: 0.4 } },
        n: 4,
      },
    });
    report.calibration!.fittedOn = EVIL;
    const html = renderReportHtml(report, { labels });
    assertSane(html);
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.ok(html.includes("&amp;&quot;&#39;"));
    assert.doesNotMatch(html, /<script|alert\(1\)<|="[^"]*'[^"]*"/);
    assert.equal(escapeHtml(`${EVIL}${QUOTES}`), "&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;");
  });

  it("renders 100 classes with cells scaled down and numbers left to tooltips", () => {
    const labels = Array.from({ length: 100 }, (_, i) => `class-${String(i).padStart(3, "0")}`);
    const html = renderReportHtml(multiclassReport(labels), { labels });
    assertSane(html);
    assert.equal(count(html, /<rect class="cm-cell"/), 100 * 100);
    const sizes = new Set(
      [...html.matchAll(/<rect class="cm-cell"[^>]* width="([^"]+)"/g)].map((m) => Number(m[1])),
    );
    assert.equal(sizes.size, 1);
    const cell = [...sizes][0];
    assert.ok(cell >= 5 && cell <= 8, `cell ${cell}`);
    // No count text in the matrix; labels thinned so they do not overlap.
    const svg = /<svg class="confusion"[\s\S]*?<\/svg>/.exec(html)![0];
    assert.equal(count(svg, /<text x="[^"]*" y="[^"]*" font-size="[^"]*" text-anchor="middle" style=/), 0);
    const rows = count(svg, /class="cm-row"/);
    assert.ok(rows >= 20 && rows <= 60, `${rows} row labels`);
    assert.equal(count(html, /<rect class="bar"/), 300);
    // Tooltips only where there is something to say, so the page stays small.
    assert.ok(html.length < 3_000_000, `${html.length} bytes`);
  });

  it("shows multilabel thresholds and regression metrics", () => {
    const ml = renderReportHtml(
      minimalReport({
        task: "multilabel",
        multilabel: {
          subsetAccuracy: 0.41,
          microF1: 0.77,
          macroF1: 0.66,
          hammingLoss: 0.125,
          perLabel: {
            action: { precision: 0.9, recall: 0.8, f1: 0.847, support: 12, threshold: 0.35 },
            drama: { precision: 0.5, recall: 0.25, f1: 0.333, support: 4, threshold: 0.6 },
          },
          n: 30,
        },
      }),
      { labels: ["action", "drama"] },
    );
    assertSane(ml);
    assert.match(ml, /<section id="multilabel">/);
    assert.doesNotMatch(ml, /id="confusion"|id="per-class"|id="regression"/);
    assert.match(
      ml,
      /<td>action<\/td><td>0\.350<\/td><td>0\.900<\/td><td>0\.800<\/td><td>0\.847<\/td><td>12<\/td>/,
    );
    assert.match(ml, /<td>drama<\/td><td>0\.600<\/td>/);
    assert.ok(ml.includes("0.1250") && ml.includes("0.410"));
    assert.equal(count(ml, /<rect class="bar"/), 6);

    const reg = renderReportHtml(
      minimalReport({ task: "regression", regression: { rmse: 1.2345, mae: 0.9876, r2: -0.25, n: 17 } }),
    );
    assertSane(reg);
    assert.match(reg, /<section id="regression">/);
    assert.match(reg, /<td>RMSE<\/td><td>1\.2345<\/td>/);
    assert.match(reg, /<td>R²<\/td><td>-0\.2500<\/td>/);
    assert.doesNotMatch(reg, /id="confusion"|id="multilabel"/);
  });

  it("writes non-finite and degenerate values as text, not NaN", () => {
    const report = multiclassReport(["a", "b"]);
    report.metrics!.logLoss = Number.POSITIVE_INFINITY;
    report.metrics!.confusion = [
      [0, 0],
      [0, 0],
    ];
    report.calibration!.reliabilityBefore = [];
    report.calibration!.reliabilityAfter = [];
    const html = renderReportHtml(report, { labels: ["a", "b"] });
    assertSane(html);
    assert.ok(html.includes(">∞<"));
    assert.equal(count(html, /<rect class="cm-cell"/), 4);
    assert.doesNotMatch(html, /class="reliability"/);
    assert.match(html, /id="calibration"/);
  });
});
