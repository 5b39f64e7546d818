/**
 * "Retrain with these labels": `POST /v1/heads/{head}/train` with `withFeedback: true` on the
 * dataset, then the new version's report (`GET /v1/heads/{head}/versions/{version}`), whose
 * `feedback` section scores the previous and the new version on the feedback rows. Locally the
 * training answers when done (200); in AWS it is accepted (202) and the page polls the head
 * until a new version appears.
 */
import { useEffect, useState } from "preact/hooks";
import { api, seg } from "../api.ts";
import { pct } from "../format.ts";
import { href } from "../route.ts";
import { type Choice, Failure } from "./pick.tsx";

interface FeedbackReport {
  rows: number;
  metric: "accuracy" | "rmse";
  before?: { version: string; value: number };
  beforeSkipped?: string;
  after: { version: string; value: number };
}

type State =
  | { state: "idle" }
  | { state: "training"; since: number }
  | { state: "error"; message: string }
  | { state: "done"; version: string; feedback?: FeedbackReport };

const POLL_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function trainWithFeedback(choice: Choice): Promise<string> {
  const path = `v1/heads/${seg(choice.head)}`;
  const before = await api<{ versions: string[] }>(path);
  const answer = await api<{ version?: string; accepted?: boolean }>(`${path}/train`, {
    method: "POST",
    body: { dataset: choice.dataset, withFeedback: true },
  });
  if (answer.version) return answer.version;
  // Accepted: the train Lambda runs it; the version shows up under the head when stored.
  for (;;) {
    await sleep(POLL_MS);
    const now = await api<{ versions: string[] }>(path);
    const fresh = now.versions.find((v) => !before.versions.includes(v));
    if (fresh) return fresh;
  }
}

export function Retrain(props: { choice: Choice; labelled: number }) {
  const [s, setS] = useState<State>({ state: "idle" });
  const [, tick] = useState(0);
  useEffect(() => {
    if (s.state !== "training") return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [s.state]);
  const start = async () => {
    setS({ state: "training", since: Date.now() });
    try {
      const version = await trainWithFeedback(props.choice);
      const v = await api<{ report?: { feedback?: FeedbackReport } }>(
        `v1/heads/${seg(props.choice.head)}/versions/${seg(version)}`,
      );
      setS({ state: "done", version, feedback: v.report?.feedback });
    } catch (err) {
      setS({ state: "error", message: (err as Error).message });
    }
  };
  return (
    <div class="retrain">
      <button type="button" disabled={s.state === "training"} onClick={() => void start()}>
        Retrain {props.choice.head} with these labels
      </button>
      <div aria-live="polite">
        {s.state === "training" && (
          <p>
            <progress aria-label="Training" /> Training on {props.choice.dataset} and the feedback…{" "}
            {Math.round((Date.now() - s.since) / 1000)} s
          </p>
        )}
        {s.state === "error" && <Failure message={s.message} />}
        {s.state === "done" && <Trained head={props.choice.head} version={s.version} feedback={s.feedback} />}
      </div>
    </div>
  );
}

function Trained(props: { head: string; version: string; feedback?: FeedbackReport }) {
  const f = props.feedback;
  const score = (x: number) => (f?.metric === "rmse" ? x.toFixed(3) : pct(x));
  return (
    <div class="trained">
      <p>
        New version <a href={href("heads", props.head, props.version)}>{props.version}</a>.
      </p>
      {f && (
        <p>
          Trained on {f.rows} feedback rows: {f.metric} on them {f.before ? score(f.before.value) : "—"}{" "}
          before, {score(f.after.value)} now.
          {f.beforeSkipped && <span class="note"> ({f.beforeSkipped})</span>}
        </p>
      )}
    </div>
  );
}
