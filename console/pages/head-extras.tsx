/**
 * The rest of a version's report (shared/heads/version.ts's Report): calibration (reliability
 * bins, ECE before/after temperature scaling), the model search of an `auto` head, the unknown-input
 * detector and the label-issue count; and the ONNX exports
 * (`GET /v1/heads/{head}/versions/{version}/model.onnx[?fused=true]`), fetched with the API key
 * and saved from a blob, since a plain link cannot send the key's header.
 */
import { useState } from "preact/hooks";
import { apiKey, seg } from "../api.ts";
import { fixed, num, pct } from "../format.ts";
import { Reliability, type ReliabilityBin } from "../reliability.tsx";
import { Scroll } from "../scroll.tsx";

export interface ReportExtras {
  calibration?: {
    temperature: number;
    eceBefore: number;
    eceAfter: number;
    fittedOn: string;
    reliabilityBefore: ReliabilityBin[];
    reliabilityAfter: ReliabilityBin[];
  };
  search?: {
    metric: "macroF1" | "rmse";
    folds: number;
    candidates: Array<{
      backbone?: string;
      type: string;
      params: Record<string, unknown>;
      score: number;
      std: number;
      seconds: number;
      chosen: boolean;
    }>;
  };
  unknown?: {
    method: string;
    threshold: number;
    rate: number;
    fittedOn: string;
    heldOut: number;
    selection?: { reason: string; standIns: string[]; auroc?: Record<string, number> };
  };
  labelIssues?: { count: number; rows: number; estimatedNoiseRate: number };
}

export function ReportExtrasView({ report }: { report: ReportExtras }) {
  return (
    <>
      {report.calibration && <CalibrationView c={report.calibration} />}
      {report.search && <SearchView s={report.search} />}
      {report.unknown && <UnknownView u={report.unknown} />}
      {report.labelIssues && (
        <>
          <h3>Label issues</h3>
          <p>
            <strong class="label-issues">{num(report.labelIssues.count)}</strong> of{" "}
            {num(report.labelIssues.rows)} training rows look mislabelled (confident learning on this head's
            out-of-fold probabilities; estimated noise rate {pct(report.labelIssues.estimatedNoiseRate)}).
          </p>
        </>
      )}
    </>
  );
}

function CalibrationView({ c }: { c: NonNullable<ReportExtras["calibration"]> }) {
  return (
    <>
      <h3>Calibration</h3>
      <dl class="facts">
        <div>
          <dt>ECE before</dt>
          <dd>{fixed(c.eceBefore)}</dd>
        </div>
        <div>
          <dt>ECE after</dt>
          <dd>{fixed(c.eceAfter)}</dd>
        </div>
        <div>
          <dt>Temperature</dt>
          <dd>{fixed(c.temperature, 2)}</dd>
        </div>
      </dl>
      <p class="note">
        Accuracy (up) against the top probability (across) per bin, fitted on {c.fittedOn}; on the diagonal is
        calibrated. <span class="key before">○ before</span> <span class="key after">● after</span> scaling.
      </p>
      <Reliability before={c.reliabilityBefore} after={c.reliabilityAfter} title="Reliability diagram" />
    </>
  );
}

const paramText = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
    .join(", ") || "—";

function SearchView({ s }: { s: NonNullable<ReportExtras["search"]> }) {
  const score = (x: number) => (s.metric === "rmse" ? fixed(x) : pct(x));
  const withBackbone = s.candidates.some((c) => c.backbone);
  return (
    <>
      <h3>Model search</h3>
      <p class="note">
        {s.candidates.length} candidates, {s.metric} over {s.folds} folds; the chosen one is marked.
      </p>
      <Scroll label="Model search table">
        <table class="search">
          <thead>
            <tr>
              {withBackbone && <th scope="col">Backbone</th>}
              <th scope="col">Type</th>
              <th scope="col">Params</th>
              <th scope="col" class="n">
                {s.metric}
              </th>
              <th scope="col" class="n">
                ± std
              </th>
              <th scope="col" class="n">
                Seconds
              </th>
              <th scope="col">Chosen</th>
            </tr>
          </thead>
          <tbody>
            {s.candidates.map((c, i) => (
              <tr key={i} class={c.chosen ? "chosen" : undefined}>
                {withBackbone && <td>{c.backbone ?? "—"}</td>}
                <td>{c.type}</td>
                <td>{paramText(c.params)}</td>
                <td class="n">{score(c.score)}</td>
                <td class="n">{score(c.std)}</td>
                <td class="n">{fixed(c.seconds, 2)}</td>
                <td>{c.chosen ? "✓ chosen" : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
    </>
  );
}

function UnknownView({ u }: { u: NonNullable<ReportExtras["unknown"]> }) {
  return (
    <>
      <h3>Unknown inputs</h3>
      <p>
        Scorer <strong>{u.method}</strong>, threshold {fixed(u.threshold)}: it flags {pct(u.rate)} of{" "}
        {num(u.heldOut)} held-out rows ({u.fittedOn}).
      </p>
      {u.selection && (
        <>
          <p class="note">Chosen automatically: {u.selection.reason}</p>
          {u.selection.auroc && (
            <ul class="auroc">
              {Object.entries(u.selection.auroc).map(([m, v]) => (
                <li key={m}>
                  {m}: AUROC {fixed(v)}
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </>
  );
}

/** Saves `bytes` as `filename` through a temporary object URL. */
function save(bytes: Blob, filename: string) {
  const url = URL.createObjectURL(bytes);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function fetchWithKey(url: string): Promise<Response> {
  const key = apiKey.get();
  const res = await fetch(url, { headers: key ? { "x-api-key": key } : {} });
  if (!res.ok) {
    const body = await res.json().catch(() => undefined);
    throw new Error(body?.error?.message ?? res.statusText);
  }
  return res;
}

/**
 * One export: the bytes themselves, or — for a model over the inline limit — JSON naming where to
 * GET it (this server's download route, with the key; or a presigned S3 URL, opened directly).
 */
async function exportModel(head: string, version: string, fused: boolean): Promise<string> {
  const path = `v1/heads/${seg(head)}/versions/${seg(version)}/model.onnx${fused ? "?fused=true" : ""}`;
  const res = await fetchWithKey(path);
  const fallback = `${head}-${version}${fused ? "-fused" : ""}.onnx`;
  if (!(res.headers.get("content-type") ?? "").includes("application/json")) {
    const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? fallback;
    const blob = await res.blob();
    save(blob, name);
    return `${name} (${num(blob.size)} bytes)`;
  }
  const stored = (await res.json()) as { url: string; filename: string; bytes: number; expiresAt?: string };
  if (stored.expiresAt) {
    // A presigned URL on another origin: the browser downloads it itself (no key needed).
    location.assign(stored.url);
  } else {
    save(await (await fetchWithKey(stored.url)).blob(), stored.filename);
  }
  return `${stored.filename} (${num(stored.bytes)} bytes)`;
}

export function Exports(props: { head: string; version: string }) {
  const [state, setState] = useState<{ busy?: boolean; text?: string; error?: boolean }>({});
  const run = async (fused: boolean) => {
    setState({ busy: true, text: "Exporting…" });
    try {
      setState({ text: `Downloaded ${await exportModel(props.head, props.version, fused)}.` });
    } catch (err) {
      setState({ text: `Export failed: ${(err as Error).message}`, error: true });
    }
  };
  return (
    <section aria-labelledby="export-h">
      <h3 id="export-h">Export</h3>
      <p class="buttons">
        <button type="button" disabled={state.busy} onClick={() => run(false)}>
          Head ONNX
        </button>{" "}
        <button type="button" disabled={state.busy} onClick={() => run(true)}>
          Fused backbone + head ONNX
        </button>
      </p>
      <p aria-live="polite" class={state.error ? "error" : "note"}>
        {state.text}
      </p>
    </section>
  );
}
