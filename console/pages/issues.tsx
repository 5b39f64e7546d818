/**
 * Review label issues: the labelled rows confident learning flags
 * (`POST /v1/datasets/{dataset}/label-issues`), each given → suggested with its score. Accepting the
 * suggested label is a correction of the head (`POST /v1/heads/{head}/feedback`, the row's text as
 * `input`, or an image row's file as `{imageKey}`, shown as a thumbnail); keeping the given label sends nothing. Buttons throughout, so Tab and Enter/Space work.
 */
import { useState } from "preact/hooks";
import { api, seg } from "../api.ts";
import { fixed, pct } from "../format.ts";
import { Thumb } from "./dataset-map.tsx";
import { inputOf } from "./label.tsx";
import { type Choice, Failure, headDetail, Pick, useOutcome } from "./pick.tsx";
import { Retrain } from "./retrain.tsx";

interface LabelIssue {
  id: string;
  text?: string;
  image?: string;
  givenLabel: string;
  suggestedLabel: string;
  score: number;
}

interface LabelIssues {
  rows: number;
  type: string;
  issues: LabelIssue[];
  estimatedNoiseRate: number;
}

export function IssuesPage() {
  return (
    <>
      <h1>Label issues</h1>
      <p class="note">
        Labelled rows that are probably labelled wrong, most suspect first. Accept the suggested label to send
        it to the head as feedback, or keep the one given.
      </p>
      <Pick idPrefix="issues">
        {(choice) => <Find key={`${choice.head}/${choice.dataset}`} {...choice} />}
      </Pick>
    </>
  );
}

function Find(props: Choice) {
  const { outcome, run } = useOutcome<LabelIssues>();
  const find = (e: Event) => {
    e.preventDefault();
    // The head's own dataset is read in the head's backbone (an image head's, say); another in its default.
    void run(async () => {
      const { current } = await headDetail(props.head);
      const backbone = current.dataset.name === props.dataset ? current.backbone?.id : undefined;
      return api<LabelIssues>(`v1/datasets/${seg(props.dataset)}/label-issues`, {
        method: "POST",
        body: backbone ? { backbone } : {},
      });
    });
  };
  return (
    <>
      <form class="inline" onSubmit={find}>
        <button type="submit" disabled={outcome.state === "busy"}>
          Find label issues
        </button>
      </form>
      <div aria-live="polite">
        {outcome.state === "busy" && <p>Fitting out-of-fold heads on {props.dataset}…</p>}
        {outcome.state === "error" && <Failure message={outcome.message} />}
        {outcome.state === "done" && (
          <p>
            {outcome.value.issues.length} of {outcome.value.rows} labelled rows flagged; estimated noise rate{" "}
            {pct(outcome.value.estimatedNoiseRate)} ({outcome.value.type}, out of fold).
          </p>
        )}
      </div>
      {outcome.state === "done" && outcome.value.issues.length > 0 && (
        <Review choice={props} issues={outcome.value.issues} />
      )}
    </>
  );
}

type Decision = "accepted" | "kept" | "sending" | { error: string };

function Review(props: { choice: Choice; issues: LabelIssue[] }) {
  const [decided, setDecided] = useState<Record<string, Decision>>({});
  const set = (id: string, d: Decision) => {
    setDecided((all) => ({ ...all, [id]: d }));
    // The row's buttons go once decided: focus moves on to the next row's, not to the page's top.
    if (d === "accepted" || d === "kept") requestAnimationFrame(() => focusAfter(id));
  };
  const accept = async (issue: LabelIssue) => {
    set(issue.id, "sending");
    try {
      await api(`v1/heads/${seg(props.choice.head)}/feedback`, {
        method: "POST",
        body: { input: inputOf(props.choice.dataset, issue), label: issue.suggestedLabel },
      });
      set(issue.id, "accepted");
    } catch (err) {
      set(issue.id, { error: (err as Error).message });
    }
  };
  const accepted = Object.values(decided).filter((d) => d === "accepted").length;
  return (
    <>
      <ol class="issues" aria-label="Label issues">
        {props.issues.map((issue) => (
          <IssueRow
            key={issue.id}
            dataset={props.choice.dataset}
            issue={issue}
            decision={decided[issue.id]}
            onAccept={accept}
            onKeep={set}
          />
        ))}
      </ol>
      <p aria-live="polite" class="status">
        {accepted} accepted, sent to {props.choice.head} as feedback.
      </p>
      {accepted > 0 && <Retrain choice={props.choice} labelled={accepted} />}
    </>
  );
}

/** Focus the first button of a row after the one decided (or the status line after the last). */
function focusAfter(id: string) {
  const rows = [...document.querySelectorAll<HTMLElement>("li[data-issue]")];
  const at = rows.findIndex((r) => r.dataset.issue === id);
  for (const row of rows.slice(at + 1)) {
    const button = row.querySelector<HTMLButtonElement>("button:not(:disabled)");
    if (button) return button.focus();
  }
  document.querySelector<HTMLElement>(".retrain button")?.focus();
}

function IssueRow(props: {
  dataset: string;
  issue: LabelIssue;
  decision?: Decision;
  onAccept: (issue: LabelIssue) => void;
  onKeep: (id: string, d: Decision) => void;
}) {
  const { issue, decision } = props;
  const name = issue.text ?? issue.id;
  return (
    <li data-issue={issue.id}>
      {issue.image !== undefined && issue.text === undefined ? (
        <Thumb dataset={props.dataset} path={issue.image} alt={`Row ${issue.id}: ${issue.image}`} />
      ) : (
        <p class="item-text">{issue.text ?? <code>{issue.id}</code>}</p>
      )}
      <p>
        Given <strong>{issue.givenLabel}</strong> → suggested{" "}
        <strong class="suggested">{issue.suggestedLabel}</strong>{" "}
        <span class="note">
          · score {fixed(issue.score)}
          {(issue.text !== undefined || issue.image !== undefined) && <> · {issue.id}</>}
        </span>
      </p>
      <div>
        {decision === "accepted" && <span class="flag">Accepted: {issue.suggestedLabel}</span>}
        {decision === "kept" && <span class="flag kept">Kept: {issue.givenLabel}</span>}
        {decision === "sending" && <span>Sending…</span>}
        {(decision === undefined || typeof decision === "object") && (
          <span class="choices">
            <button
              type="button"
              disabled={!inputOf(props.dataset, issue)}
              aria-label={`Accept ${issue.suggestedLabel} for ${name}`}
              onClick={() => props.onAccept(issue)}
            >
              Accept {issue.suggestedLabel}
            </button>
            <button
              type="button"
              class="secondary"
              aria-label={`Keep ${issue.givenLabel} for ${name}`}
              onClick={() => props.onKeep(issue.id, "kept")}
            >
              Keep {issue.givenLabel}
            </button>
            {typeof decision === "object" && <Failure message={decision.error} />}
          </span>
        )}
      </div>
    </li>
  );
}
