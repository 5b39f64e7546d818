/**
 * Drift per head: a check run now (`POST /v1/drift`, the head's training data against its captured
 * inputs or a dataset) beside the scheduled check's last record (`GET /v1/heads/{head}/drift-state`),
 * drawn as p-values against alpha, with the predicted-label shift when the check has one.
 */
import { useState } from "preact/hooks";
import { api, type DatasetRecord, seg } from "../api.ts";
import { type DriftMark, DriftTests, LabelShift } from "../drift-chart.tsx";
import { num, when } from "../format.ts";
import { Show, useApi } from "../load.tsx";
import { type Choice, Failure, Pick, useOutcome } from "./pick.tsx";

interface DriftResult {
  drift: boolean;
  score: number;
  pValue: number;
  alpha: number;
  n: { reference: number; current: number };
  used: { reference: number; current: number };
  backbone: string;
  permutations: number;
  labelShift?: { reference: Record<string, number>; current: Record<string, number>; distance: number };
  checkedAt: string;
}

interface DriftState {
  version: string;
  drift: boolean;
  checkedAt: string;
  pValue: number;
  score: number;
  n: { reference: number; current: number };
  driftSince?: string;
}

export function DriftPage() {
  return (
    <>
      <h1>Drift</h1>
      <p class="note">
        Does what the head sees now still look like what it was trained on? A test on the embeddings (MMD with
        a permutation p-value): drift when p falls under alpha.
      </p>
      <Pick idPrefix="drift" needDataset={false}>
        {(choice, lists) => <HeadDrift key={choice.head} choice={choice} datasets={lists.datasets} />}
      </Pick>
    </>
  );
}

function HeadDrift(props: { choice: Choice; datasets: DatasetRecord[] }) {
  const head = props.choice.head;
  const [current, setCurrent] = useState(`capture:${head}`);
  const scheduled = useApi(
    () => api<{ state: DriftState | null }>(`v1/heads/${seg(head)}/drift-state`),
    [head],
  );
  const { outcome, run } = useOutcome<DriftResult>();
  const check = (e: Event) => {
    e.preventDefault();
    void run(() =>
      api<DriftResult>("v1/drift", { method: "POST", body: { reference: `head:${head}`, current } }),
    );
  };
  return (
    <>
      <form class="inline" onSubmit={check}>
        <div>
          <label for="drift-current">Compare its training data with</label>
          <select id="drift-current" value={current} onChange={(e) => setCurrent(e.currentTarget.value)}>
            <option value={`capture:${head}`}>its captured inputs</option>
            {props.datasets.map((d) => (
              <option key={d.dataset} value={`dataset:${d.dataset}`}>
                dataset {d.dataset}
              </option>
            ))}
          </select>
        </div>
        <button type="submit" disabled={outcome.state === "busy"}>
          Check drift
        </button>
      </form>
      <div aria-live="polite">
        {outcome.state === "busy" && <p>Testing…</p>}
        {outcome.state === "error" && <Failure message={outcome.message} />}
      </div>
      <Show loaded={scheduled} what="the scheduled check">
        {({ state }) => (
          <Outcome result={outcome.state === "done" ? outcome.value : undefined} state={state} />
        )}
      </Show>
    </>
  );
}

function Outcome(props: { result?: DriftResult; state: DriftState | null }) {
  const { result, state } = props;
  const marks: DriftMark[] = [];
  if (result)
    marks.push({ name: "This check", pValue: result.pValue, alpha: result.alpha, score: result.score });
  if (state) {
    const day = new Date(state.checkedAt).toLocaleDateString("en");
    marks.push({
      name: `Scheduled, ${day}`,
      pValue: state.pValue,
      alpha: result?.alpha ?? 0.05,
      score: state.score,
    });
  }
  return (
    <>
      {result && (
        <p class={result.drift ? "flag unknown" : "flag"}>
          {result.drift ? "Drift" : "No drift"}: p = {result.pValue.toFixed(4)} (alpha {result.alpha}), MMD²{" "}
          {result.score.toFixed(4)}, {num(result.used.reference)} vs {num(result.used.current)} rows on{" "}
          {result.backbone}
        </p>
      )}
      {marks.length > 0 && <DriftTests marks={marks} title="P-value of each drift test against alpha" />}
      {result?.labelShift && (
        <>
          <h2>Predicted labels</h2>
          <p>Total variation distance {result.labelShift.distance.toFixed(3)}.</p>
          <LabelShift {...result.labelShift} title="Share of each predicted label, reference and current" />
        </>
      )}
      <h2>Scheduled check</h2>
      {state ? (
        <p>
          Last checked {when(state.checkedAt)} against version {state.version}:{" "}
          {state.drift ? "drift" : "no drift"} (p = {state.pValue.toFixed(4)}, {num(state.n.current)} captured
          inputs)
          {state.driftSince && `, drifting since ${when(state.driftSince)}`}.
        </p>
      ) : (
        <p class="note">
          No scheduled check has recorded this head yet: it runs for heads that capture all their inputs (
          <code>train --capture all</code>) once enough are captured.
        </p>
      )}
    </>
  );
}
