/**
 * A head version's report as one self-contained HTML page: inline CSS and inline SVG only, no
 * scripts, fonts or remote resources, so it can be saved, mailed or opened offline and shows the
 * same thing everywhere. Every value that came from a user (labels, names, params) is escaped.
 */
import { searchMatrix } from "./search-matrix.ts";
import type { ReliabilityBin, Report } from "./version.ts";

type ClassRow = { precision: number; recall: number; f1: number; support: number; threshold?: number };

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (ch) => ENTITIES[ch]);
}

/** A number for people: fixed digits, or an em dash for absent and non-finite values (never "NaN"). */
function fmt(x: number | undefined, digits = 3): string {
  if (x === undefined || Number.isNaN(x)) return "—";
  if (x === Number.POSITIVE_INFINITY) return "∞";
  if (x === Number.NEGATIVE_INFINITY) return "−∞";
  return x.toFixed(digits);
}

function fmtInt(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? "—" : Math.round(x).toLocaleString("en-US");
}

function fmtSeconds(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return "—";
  return x < 10 ? `${x.toFixed(2)} s` : x < 600 ? `${x.toFixed(1)} s` : `${(x / 60).toFixed(1)} min`;
}

/** A coordinate for SVG: finite and short. */
function px(x: number): string {
  return Number.isFinite(x) ? String(Math.round(x * 100) / 100) : "0";
}

/** Clamps a score to [0, 1] so a stray value cannot draw outside its chart. */
function unit(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** SVG text content: shortened to `max` characters, the full name in a tooltip when it was cut. */
function svgLabel(s: string, max: number): string {
  const short = truncate(s, max);
  return short === s ? escapeHtml(s) : `${escapeHtml(short)}<title>${escapeHtml(s)}</title>`;
}

function compactJson(value: unknown): string {
  try {
    return (
      JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v)) ?? ""
    );
  } catch {
    return String(value);
  }
}

/** White → dark blue; t in [0, 1]. */
function heat(t: number): string {
  const lo = [247, 251, 255];
  const hi = [8, 48, 107];
  const c = lo.map((l, i) => Math.round(l + (hi[i] - l) * unit(t)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; margin: 0; background: #f6f8fa; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 0 0 12px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 16px 20px; margin: 16px 0; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 20px; color: #57606a; margin: 0; padding: 0; list-style: none; }
.meta b { color: #1f2328; font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; }
.card .k { color: #57606a; font-size: 12px; }
.card .v { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eaeef2; text-align: right; }
th:first-child, td:first-child { text-align: left; word-break: break-all; }
th { background: #f6f8fa; font-weight: 600; }
tr.chosen td { background: #dafbe1; font-weight: 600; }
td.params { text-align: left; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; word-break: break-all; }
.scroll { overflow-x: auto; }
.note { color: #57606a; font-size: 12px; margin: 8px 0 0; }
.legend { display: flex; gap: 16px; font-size: 12px; color: #57606a; margin-bottom: 6px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
svg { display: block; font-family: system-ui, sans-serif; }
svg text { fill: #1f2328; }
details summary { cursor: pointer; color: #57606a; margin-top: 8px; }
footer { color: #57606a; font-size: 12px; text-align: center; margin: 24px 0; }
`;

function card(label: string, value: string): string {
  return `<div class="card"><div class="k">${escapeHtml(label)}</div><div class="v">${escapeHtml(value)}</div></div>`;
}

function header(report: Report): string {
  const meta: Array<[string, string]> = [
    ["type", report.zeroShot ? `zero-shot (${report.type})` : report.type],
    ["task", report.task ?? "multiclass"],
  ];
  if (report.dataset) meta.push(["dataset", `${report.dataset.name}@${report.dataset.version}`]);
  if (report.backbone) meta.push(["backbone", report.backbone]);
  meta.push([
    "evaluation",
    report.evaluation === "cv"
      ? `${report.folds ?? "k"}-fold cross-validation`
      : report.zeroShot
        ? "every labelled row (nothing trained on them)"
        : "held-out test split",
  ]);
  meta.push(["created", report.createdAt]);
  const params =
    report.params && Object.keys(report.params).length > 0
      ? `<p class="note">params: <code>${escapeHtml(compactJson(report.params))}</code></p>`
      : "";
  return `<header><section><h1>${escapeHtml(`${report.head}@${report.version}`)}</h1><ul class="meta">${meta
    .map(([k, v]) => `<li>${escapeHtml(k)}: <b>${escapeHtml(v)}</b></li>`)
    .join("")}</ul>${params}</section></header>`;
}

function headline(report: Report): string {
  const cards: string[] = [];
  const m = report.metrics;
  if (m) {
    cards.push(card("accuracy", fmt(m.accuracy)), card("macro-F1", fmt(m.macroF1)));
    if (m.logLoss !== undefined) cards.push(card("log-loss", fmt(m.logLoss, 4)));
  }
  const ml = report.multilabel;
  if (ml) {
    cards.push(
      card("subset accuracy", fmt(ml.subsetAccuracy)),
      card("micro-F1", fmt(ml.microF1)),
      card("macro-F1", fmt(ml.macroF1)),
      card("Hamming loss", fmt(ml.hammingLoss, 4)),
    );
  }
  const r = report.regression;
  if (r) cards.push(card("RMSE", fmt(r.rmse, 4)), card("MAE", fmt(r.mae, 4)), card("R²", fmt(r.r2, 4)));
  const cal = report.calibration;
  if (cal) {
    cards.push(
      card("ECE before", fmt(cal.eceBefore, 4)),
      card("ECE after", fmt(cal.eceAfter, 4)),
      card("temperature", fmt(cal.temperature, 3)),
    );
  }
  cards.push(card("train time", fmtSeconds(report.trainSeconds)));
  const evaluated = m?.n ?? ml?.n ?? r?.n;
  if (evaluated !== undefined) cards.push(card("rows evaluated", fmtInt(evaluated)));
  cards.push(card("train rows", fmtInt(report.counts.train)), card("test rows", fmtInt(report.counts.test)));
  if (report.counts.unlabeled > 0) cards.push(card("unlabeled", fmtInt(report.counts.unlabeled)));
  if (report.counts.unsupported > 0) cards.push(card("unsupported", fmtInt(report.counts.unsupported)));
  if (report.iterations !== undefined) cards.push(card("iterations", fmtInt(report.iterations)));
  if (report.epochs !== undefined) cards.push(card("epochs", fmtInt(report.epochs)));
  if (report.converged !== undefined) cards.push(card("converged", report.converged ? "yes" : "no"));
  return `<section id="summary"><h2>Summary</h2><div class="cards">${cards.join("")}</div></section>`;
}

const SERIES = [
  { key: "precision", color: "#4e79a7" },
  { key: "recall", color: "#f28e2b" },
  { key: "f1", color: "#59a14f" },
] as const;

function legend(items: Array<{ label: string; color: string }>): string {
  return `<div class="legend">${items
    .map((i) => `<span><i style="background:${i.color}"></i>${escapeHtml(i.label)}</span>`)
    .join("")}</div>`;
}

/** Precision, recall and F1 side by side per class; wide class lists scroll instead of squeezing. */
function groupedBars(rows: Array<[string, ClassRow]>): string {
  const group = Math.max(18, Math.min(60, Math.floor(900 / Math.max(1, rows.length))));
  const bar = (group - 4) / 3;
  const plotH = 180;
  const left = 36;
  const top = 10;
  const longest = Math.max(1, ...rows.map(([name]) => Math.min(name.length, 18)));
  const bottom = Math.min(120, 14 + longest * 6);
  const width = left + rows.length * group + 10;
  const height = top + plotH + bottom;
  const parts: string[] = [];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    const yy = top + plotH * (1 - t);
    parts.push(
      `<line x1="${left}" x2="${px(width - 10)}" y1="${px(yy)}" y2="${px(yy)}" stroke="#eaeef2"/>`,
      `<text x="${left - 4}" y="${px(yy + 4)}" font-size="10" text-anchor="end">${t.toFixed(2)}</text>`,
    );
  }
  rows.forEach(([name, m], i) => {
    const x0 = left + i * group + 2;
    SERIES.forEach((s, j) => {
      const v = unit(m[s.key]);
      const h = plotH * v;
      parts.push(
        `<rect class="bar" x="${px(x0 + j * bar)}" y="${px(top + plotH - h)}" width="${px(bar)}" height="${px(h)}" fill="${s.color}"><title>${escapeHtml(`${name} ${s.key}: ${fmt(m[s.key])}`)}</title></rect>`,
      );
    });
    const cx = x0 + (group - 4) / 2;
    const ty = top + plotH + 10;
    parts.push(
      `<text x="${px(cx)}" y="${px(ty)}" font-size="10" text-anchor="end" transform="rotate(-45 ${px(cx)} ${px(ty)})">${svgLabel(name, 18)}</text>`,
    );
  });
  return `${legend(SERIES.map((s) => ({ label: s.key === "f1" ? "F1" : s.key, color: s.color })))}<div class="scroll"><svg class="chart" role="img" aria-label="per-class precision, recall and F1" width="${px(width)}" height="${px(height)}" viewBox="0 0 ${px(width)} ${px(height)}">${parts.join("")}</svg></div>`;
}

function classTable(rows: Array<[string, ClassRow]>, withThreshold: boolean): string {
  const head = `<tr><th>${withThreshold ? "label" : "class"}</th>${withThreshold ? "<th>threshold</th>" : ""}<th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>`;
  const body = rows
    .map(
      ([name, m]) =>
        `<tr><td>${escapeHtml(name)}</td>${withThreshold ? `<td>${fmt(m.threshold)}</td>` : ""}<td>${fmt(m.precision)}</td><td>${fmt(m.recall)}</td><td>${fmt(m.f1)}</td><td>${fmtInt(m.support)}</td></tr>`,
    )
    .join("");
  return `<div class="scroll"><table>${head}${body}</table></div>`;
}

/**
 * The class names in confusion-matrix order, and whether they are the real names. The head's label
 * list is authoritative; a report alone only has `perClass` keys, whose order JavaScript rearranges
 * for integer-like names, so those are trusted only when that cannot have happened.
 */
function classNames(report: Report, k: number, labels?: string[]): { names: string[]; known: boolean } {
  if (labels && labels.length === k) return { names: labels, known: true };
  const keys = Object.keys(report.metrics?.perClass ?? {});
  if (keys.length === k && keys.every((key) => !/^(0|[1-9]\d*)$/.test(key)))
    return { names: keys, known: true };
  return { names: Array.from({ length: k }, (_, i) => `#${i}`), known: false };
}

function confusionMatrix(confusion: number[][], names: string[]): string {
  const k = confusion.length;
  const cell = Math.max(5, Math.min(44, Math.floor(640 / Math.max(1, k))));
  const showCounts = cell >= 24;
  const labelEvery = cell >= 10 ? 1 : Math.ceil(10 / cell);
  const font = Math.max(8, Math.min(12, cell * 0.7));
  const longest = Math.max(1, ...names.map((n) => Math.min(n.length, 20)));
  const margin = Math.min(150, 20 + longest * font * 0.6);
  const left = margin + 18;
  // Column labels are rotated by 60°: they rise by ~0.87 and lean right by ~0.5 of their length.
  const top = margin * 0.9 + 6;
  const size = k * cell;
  const width = left + size + Math.max(10, margin * 0.5);
  const height = top + size + 24;
  const total = confusion.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  // Shade by the share of the true class (row), so rare classes' mistakes stay visible.
  const rowSums = confusion.map((row) => row.reduce((a, b) => a + b, 0));
  // Tooltips on every cell of a 100×100 matrix would weigh megabytes; keep them for non-empty ones.
  const titleEmpty = k <= 40;
  const parts: string[] = [];
  for (let t = 0; t < k; t++) {
    for (let p = 0; p < k; p++) {
      const count = confusion[t]?.[p] ?? 0;
      const share = rowSums[t] > 0 ? count / rowSums[t] : 0;
      const x = left + p * cell;
      const y = top + t * cell;
      const title =
        count > 0 || titleEmpty
          ? `<title>${escapeHtml(`true ${names[t]} → predicted ${names[p]}: ${fmtInt(count)} (${(share * 100).toFixed(1)}% of ${names[t]})`)}</title>`
          : "";
      parts.push(
        `<rect class="cm-cell" x="${px(x)}" y="${px(y)}" width="${cell}" height="${cell}" fill="${heat(share)}">${title}</rect>`,
      );
      if (showCounts && count > 0) {
        parts.push(
          `<text x="${px(x + cell / 2)}" y="${px(y + cell / 2 + 4)}" font-size="${Math.min(12, cell / 3)}" text-anchor="middle" style="fill:${share > 0.5 ? "#fff" : "#1f2328"}">${fmtInt(count)}</text>`,
        );
      }
    }
  }
  for (let i = 0; i < k; i += labelEvery) {
    const name = svgLabel(names[i], 20);
    const cy = top + i * cell + cell / 2 + font / 3;
    const cx = left + i * cell + cell / 2;
    parts.push(
      `<text class="cm-row" x="${px(left - 4)}" y="${px(cy)}" font-size="${px(font)}" text-anchor="end">${name}</text>`,
      `<text class="cm-col" x="${px(cx)}" y="${px(top - 4)}" font-size="${px(font)}" transform="rotate(-60 ${px(cx)} ${px(top - 4)})">${name}</text>`,
    );
  }
  // Outlines last, so no neighbouring cell paints over them.
  for (let i = 0; i < k; i++) {
    parts.push(
      `<rect class="cm-diag" x="${px(left + i * cell)}" y="${px(top + i * cell)}" width="${cell}" height="${cell}" fill="none" stroke="#1f2328" stroke-width="${cell >= 12 ? 1 : 0.5}"/>`,
    );
  }
  parts.push(
    `<text x="${px(left + size / 2)}" y="${px(top + size + 18)}" font-size="12" font-weight="600" text-anchor="middle">predicted</text>`,
    `<text x="12" y="${px(top + size / 2)}" font-size="12" font-weight="600" text-anchor="middle" transform="rotate(-90 12 ${px(top + size / 2)})">true</text>`,
  );
  const note = `${fmtInt(total)} rows; true classes are rows, predictions columns; shade = share of the true class.${showCounts ? "" : " Counts are in each cell's tooltip."}${labelEvery > 1 ? ` Every ${labelEvery}th class is labelled.` : ""}`;
  return `<section id="confusion"><h2>Confusion matrix</h2><div class="scroll"><svg class="confusion" role="img" aria-label="confusion matrix" width="${px(width)}" height="${px(height)}" viewBox="0 0 ${px(width)} ${px(height)}">${parts.join("")}</svg></div><p class="note">${escapeHtml(note)}</p></section>`;
}

const BEFORE = "#e15759";
const AFTER = "#4e79a7";

function reliabilityDiagram(before: ReliabilityBin[], after: ReliabilityBin[]): string {
  const plot = 320;
  const left = 44;
  const top = 12;
  const width = left + plot + 16;
  const height = top + plot + 40;
  const X = (v: number) => left + plot * unit(v);
  const Y = (v: number) => top + plot * (1 - unit(v));
  const parts: string[] = [];
  for (const t of [0, 0.2, 0.4, 0.6, 0.8, 1]) {
    parts.push(
      `<line x1="${px(X(0))}" x2="${px(X(1))}" y1="${px(Y(t))}" y2="${px(Y(t))}" stroke="#eaeef2"/>`,
      `<text x="${px(left - 4)}" y="${px(Y(t) + 4)}" font-size="10" text-anchor="end">${t.toFixed(1)}</text>`,
      `<text x="${px(X(t))}" y="${px(top + plot + 14)}" font-size="10" text-anchor="middle">${t.toFixed(1)}</text>`,
    );
  }
  // Bars: accuracy per bin, before on the left half of the bin and after on the right.
  const bars = (bins: ReliabilityBin[], color: string, half: 0 | 1, label: string) => {
    for (const b of bins) {
      if (b.count <= 0) continue;
      const w = (X(b.upper) - X(b.lower)) / 2;
      const x = X(b.lower) + half * w;
      const h = Y(0) - Y(b.accuracy);
      parts.push(
        `<rect class="rel-bar" x="${px(x + 0.5)}" y="${px(Y(b.accuracy))}" width="${px(Math.max(0, w - 1))}" height="${px(h)}" fill="${color}" fill-opacity="0.35"><title>${escapeHtml(`${label}, confidence ${fmt(b.lower, 2)}–${fmt(b.upper, 2)}: accuracy ${fmt(b.accuracy)}, mean confidence ${fmt(b.confidence)}, ${fmtInt(b.count)} rows`)}</title></rect>`,
      );
    }
  };
  bars(before, BEFORE, 0, "before");
  bars(after, AFTER, 1, "after");
  parts.push(
    `<line class="diagonal" x1="${px(X(0))}" y1="${px(Y(0))}" x2="${px(X(1))}" y2="${px(Y(1))}" stroke="#57606a" stroke-dasharray="4 4"/>`,
  );
  // Points at (mean confidence, accuracy) show the gap to the diagonal exactly.
  const points = (bins: ReliabilityBin[], color: string) => {
    const used = bins.filter((b) => b.count > 0);
    if (used.length > 1) {
      parts.push(
        `<polyline points="${used.map((b) => `${px(X(b.confidence))},${px(Y(b.accuracy))}`).join(" ")}" fill="none" stroke="${color}" stroke-width="1.5"/>`,
      );
    }
    for (const b of used) {
      parts.push(
        `<circle class="rel-point" cx="${px(X(b.confidence))}" cy="${px(Y(b.accuracy))}" r="3.5" fill="${color}"/>`,
      );
    }
  };
  points(before, BEFORE);
  points(after, AFTER);
  parts.push(
    `<text x="${px(left + plot / 2)}" y="${px(height - 4)}" font-size="12" text-anchor="middle">confidence (top-label probability)</text>`,
    `<text x="12" y="${px(top + plot / 2)}" font-size="12" text-anchor="middle" transform="rotate(-90 12 ${px(top + plot / 2)})">accuracy</text>`,
  );
  return `<svg class="reliability" role="img" aria-label="reliability diagram" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${parts.join("")}</svg>`;
}

function binTable(before: ReliabilityBin[], after: ReliabilityBin[]): string {
  const rows = Math.max(before.length, after.length);
  const cells = (b: ReliabilityBin | undefined) =>
    b
      ? `<td>${fmtInt(b.count)}</td><td>${fmt(b.confidence)}</td><td>${fmt(b.accuracy)}</td>`
      : "<td>—</td><td>—</td><td>—</td>";
  let body = "";
  for (let i = 0; i < rows; i++) {
    const b = before[i] ?? after[i];
    body += `<tr><td>${fmt(b.lower, 3)}–${fmt(b.upper, 3)}</td>${cells(before[i])}${cells(after[i])}</tr>`;
  }
  return `<details><summary>bins</summary><div class="scroll"><table><tr><th>confidence</th><th>rows before</th><th>confidence before</th><th>accuracy before</th><th>rows after</th><th>confidence after</th><th>accuracy after</th></tr>${body}</table></div></details>`;
}

function calibrationSection(report: Report): string {
  const cal = report.calibration;
  if (!cal) return "";
  const hasBins = cal.reliabilityBefore.length > 0 || cal.reliabilityAfter.length > 0;
  const summary = `<p class="note">Temperature scaling (T = ${fmt(cal.temperature)}), fitted on ${escapeHtml(cal.fittedOn)}. Expected calibration error ${fmt(cal.eceBefore, 4)} → ${fmt(cal.eceAfter, 4)}. Bars: accuracy per confidence bin; dots: (mean confidence, accuracy); dashed: perfect calibration.</p>`;
  const chart = hasBins
    ? `${legend([
        { label: "before calibration", color: BEFORE },
        { label: "after calibration", color: AFTER },
      ])}${reliabilityDiagram(cal.reliabilityBefore, cal.reliabilityAfter)}${binTable(cal.reliabilityBefore, cal.reliabilityAfter)}`
    : "";
  return `<section id="calibration"><h2>Calibration</h2>${chart}${summary}</section>`;
}

function multiclassSections(report: Report, labels?: string[]): string {
  const m = report.metrics;
  if (!m) return "";
  const k = m.confusion.length;
  const { names, known } = classNames(report, k, labels);
  // Classes in matrix order first; any perClass entry the matrix does not cover is appended.
  const rows: Array<[string, ClassRow]> = [];
  const seen = new Set<string>();
  if (known) {
    for (const name of names) {
      const pc = Object.hasOwn(m.perClass, name) ? m.perClass[name] : undefined;
      if (pc) {
        rows.push([name, pc]);
        seen.add(name);
      }
    }
  }
  for (const [name, pc] of Object.entries(m.perClass)) if (!seen.has(name)) rows.push([name, pc]);
  const perClass =
    rows.length > 0
      ? `<section id="per-class"><h2>Per class</h2>${groupedBars(rows)}${classTable(rows, false)}</section>`
      : "";
  return `${perClass}${k > 0 ? confusionMatrix(m.confusion, names) : ""}`;
}

function multilabelSection(report: Report): string {
  const ml = report.multilabel;
  if (!ml) return "";
  const rows = Object.entries(ml.perLabel) as Array<[string, ClassRow]>;
  const body = rows.length > 0 ? `${groupedBars(rows)}${classTable(rows, true)}` : "";
  return `<section id="multilabel"><h2>Per label</h2><p class="note">Each label is a yes/no decision at its own threshold. Subset accuracy ${fmt(ml.subsetAccuracy)}, micro-F1 ${fmt(ml.microF1)}, macro-F1 ${fmt(ml.macroF1)}, Hamming loss ${fmt(ml.hammingLoss, 4)} over ${fmtInt(ml.n)} rows.</p>${body}</section>`;
}

function regressionSection(report: Report): string {
  const r = report.regression;
  if (!r) return "";
  return `<section id="regression"><h2>Regression</h2><table><tr><th>metric</th><th>value</th></tr><tr><td>RMSE</td><td>${fmt(r.rmse, 4)}</td></tr><tr><td>MAE</td><td>${fmt(r.mae, 4)}</td></tr><tr><td>R²</td><td>${fmt(r.r2, 4)}</td></tr><tr><td>rows</td><td>${fmtInt(r.n)}</td></tr></table></section>`;
}

/** A version trained with feedback: the version before it and this one, scored on the feedback rows. */
function feedbackSection(report: Report): string {
  const f = report.feedback;
  if (!f) return "";
  const value = (v: number) => (f.metric === "rmse" ? fmt(v, 4) : `${(v * 100).toFixed(1)}%`);
  const metric = f.metric === "rmse" ? "RMSE (lower is better)" : "accuracy";
  const before = f.before
    ? `<tr><td>before (${escapeHtml(f.before.version)})</td><td>${value(f.before.value)}</td></tr>`
    : `<tr><td>before</td><td>${escapeHtml(f.beforeSkipped ?? "—")}</td></tr>`;
  const after = `<tr><td>after (${escapeHtml(f.after.version)})</td><td>${value(f.after.value)}</td></tr>`;
  return `<section id="feedback"><h2>Feedback</h2><p class="note">${escapeHtml(metric)} on ${fmtInt(f.rows)} feedback rows (dataset ${escapeHtml(f.dataset)}), which this version trained on.</p><table><tr><th>version</th><th>${escapeHtml(metric)}</th></tr>${before}${after}</table></section>`;
}

/** How many training rows look mislabelled to this head's out-of-fold probabilities (confident learning). */
function labelIssuesSection(report: Report): string {
  const l = report.labelIssues;
  if (!l) return "";
  const dataset = report.dataset?.name ?? "<dataset>";
  return `<section id="label-issues"><h2>Label issues</h2><p>${fmtInt(l.count)} of ${fmtInt(l.rows)} training rows look mislabelled (estimated noise rate ${(l.estimatedNoiseRate * 100).toFixed(1)}%).</p><p class="note">Confident learning over this head's out-of-fold probabilities. List them, most suspect first: <code>headstart label-issues ${escapeHtml(dataset)}</code>.</p></section>`;
}

/** A zero-shot version: the descriptions it was built from, and what its scores are on. */
function zeroShotSection(report: Report): string {
  const z = report.zeroShot;
  if (!z) return "";
  const rows = z.labels
    .map((l) => `<tr><td>${escapeHtml(l.label)}</td><td>${escapeHtml(l.description)}</td></tr>`)
    .join("");
  const scored =
    z.evaluatedOn > 0
      ? `The scores above are on every labelled row of the dataset (${fmtInt(z.evaluatedOn)}), all test rows: nothing was trained on them.`
      : "The dataset has no labelled rows, so there are no scores.";
  const centered =
    z.centeredOn > 0
      ? ` Inputs and descriptions are centered on the mean of ${fmtInt(z.centeredOn)} dataset rows.`
      : "";
  return `<section id="zero-shot"><h2>Zero-shot</h2><p>Built from label descriptions alone: each class's centroid is its description embedded with the head's backbone.${centered}</p><table><tr><th>class</th><th>description</th></tr>${rows}</table><p class="note">${scored} No temperature was fitted and there is no unknown-input detector.</p></section>`;
}

/** The unknown-input detector: its scorer and the threshold chosen on held-out in-distribution rows. */
function unknownSection(report: Report): string {
  const u = report.unknown;
  if (!u) return "";
  const kb = (u.bytes / 1024).toFixed(1);
  return `<section id="unknown"><h2>Unknown inputs</h2><table><tr><th>scorer</th><td>${escapeHtml(u.method)}</td></tr><tr><th>threshold</th><td>${fmt(u.threshold, 4)}</td></tr><tr><th>held-out rows flagged</th><td>${(u.rate * 100).toFixed(1)}%</td></tr><tr><th>stored scorer</th><td>${kb} KB</td></tr></table><p class="note">Inputs scoring above the threshold answer <code>unknown: true</code> (with <code>rejectUnknown</code>, the label <code>unknown</code>). Chosen on ${escapeHtml(u.fittedOn)}.</p>${unknownSelection(u.selection)}</section>`;
}

/** `auto`: each scorer's mean AUROC with seen classes standing in, in turn, for an unseen one. */
function unknownSelection(s: NonNullable<Report["unknown"]>["selection"]): string {
  if (!s) return "";
  const rows = Object.entries(s.auroc ?? {})
    .map(([m, v]) => `<tr><td>${escapeHtml(m)}</td><td>${fmt(v, 3)}</td></tr>`)
    .join("");
  const table = rows ? `<table><tr><th>scorer</th><th>mean AUROC</th></tr>${rows}</table>` : "";
  const turns = s.standIns.length
    ? ` Stand-in unseen classes: ${s.standIns.map(escapeHtml).join(", ")}.`
    : "";
  return `<p>Scorer chosen automatically: ${escapeHtml(s.reason)}.${turns}</p>${table}`;
}

function searchSection(report: Report): string {
  const s = report.search;
  if (!s) return "";
  const metric = s.metric === "rmse" ? "RMSE (lower is better)" : "macro-F1 (higher is better)";
  const named = s.candidates.some((c) => c.backbone !== undefined);
  const body = s.candidates
    .map(
      (c) =>
        `<tr${c.chosen ? ' class="chosen"' : ""}>${named ? `<td>${escapeHtml(c.backbone ?? "")}</td>` : ""}<td>${c.chosen ? "★ " : ""}${escapeHtml(c.type)}</td><td class="params">${escapeHtml(compactJson(c.params))}</td><td>${fmt(c.score, 4)} ± ${fmt(c.std, 4)}</td><td>${fmtSeconds(c.seconds)}</td></tr>`,
    )
    .join("");
  const spent =
    s.seconds === undefined
      ? ""
      : ` The search took ${fmtSeconds(s.seconds)}${s.budgetSeconds === undefined ? "" : ` of a ${fmtSeconds(s.budgetSeconds)} budget`}.`;
  const why = s.chosenBy ? `<p>${escapeHtml(`Chosen: ${s.chosenBy}.`)}</p>` : "";
  const head = `${named ? "<th>backbone</th>" : ""}<th>type</th><th>params</th><th>score ± std</th><th>time</th>`;
  return `<section id="search"><h2>Model selection</h2><p class="note">${fmtInt(s.folds)}-fold cross-validated ${escapeHtml(metric)}; ★ marks the chosen candidate.${spent}</p>${matrixTable(s)}${why}<div class="scroll"><table><tr>${head}</tr>${body}</table></div>${skippedList(s)}</section>`;
}

/** Over several backbones: the best score of each backbone set (rows) × head type (columns). */
function matrixTable(s: NonNullable<Report["search"]>): string {
  const m = searchMatrix(s);
  if (!m) return "";
  const rows = m.backbones
    .map((b, i) => {
      const cells = m.cells[i]
        .map((v, j) => {
          const chosen = m.chosen?.backbone === i && m.chosen.type === j;
          return `<td${chosen ? ' class="chosen"' : ""}>${chosen ? "★ " : ""}${v === undefined ? "–" : fmt(v, 4)}</td>`;
        })
        .join("");
      return `<tr><th>${escapeHtml(b)}</th>${cells}</tr>`;
    })
    .join("");
  const types = m.types.map((t) => `<th>${escapeHtml(t)}</th>`).join("");
  return `<div class="scroll"><table class="matrix"><tr><th>backbone \\ head</th>${types}</tr>${rows}</table></div>`;
}

/** Candidates the search did not score, and why (its budget, or a screen). */
function skippedList(s: NonNullable<Report["search"]>): string {
  const skipped = s.skipped ?? [];
  if (skipped.length === 0) return "";
  const items = skipped
    .map((k) => `<li>${escapeHtml(`${k.backbone ? `${k.backbone} ` : ""}${k.type}: ${k.reason}`)}</li>`)
    .join("");
  return `<details><summary>${fmtInt(skipped.length)} not tried</summary><ul>${items}</ul></details>`;
}

/**
 * What the page can take from the version's head document (a `HeadDocument` fits): `labels` orders
 * the confusion matrix; the rest fills in what reports written before those fields lack.
 */
export interface ReportHeadContext {
  labels: string[];
  task?: Report["task"];
  dataset?: { name: string; version: string };
  backbone?: { id: string };
  params?: Record<string, unknown>;
}

/** The report as a standalone HTML document. */
export function renderReportHtml(report: Report, head?: ReportHeadContext): string {
  if (head) {
    report = {
      ...report,
      task: report.task ?? head.task,
      dataset: report.dataset ?? head.dataset,
      backbone: report.backbone ?? head.backbone?.id,
      params: report.params ?? head.params,
    };
  }
  const title = `${report.head}@${report.version} — headstart report`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${header(report)}
${headline(report)}
${zeroShotSection(report)}
${multiclassSections(report, head?.labels)}
${calibrationSection(report)}
${multilabelSection(report)}
${regressionSection(report)}
${feedbackSection(report)}
${unknownSection(report)}
${labelIssuesSection(report)}
${searchSection(report)}
<footer>Generated by headstart from report.json of ${escapeHtml(`${report.head}@${report.version}`)}.</footer>
</main>
</body>
</html>
`;
}
