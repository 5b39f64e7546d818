/** Try it: a text to a head's live version (`POST /v1/heads/{head}/predict`); label, scores, unknown. */
import { useState } from "preact/hooks";
import { api, type HeadRecord, type Prediction, seg } from "../api.ts";
import { Bars } from "../charts.tsx";
import { fixed, pct } from "../format.ts";
import { Show, useApi } from "../load.tsx";

export function TryItPage(props: { head?: string }) {
  const heads = useApi(() => api<HeadRecord[]>("v1/heads"), []);
  return (
    <>
      <h1>Try it</h1>
      <Show loaded={heads} what="heads">
        {(list) => {
          const usable = list.filter((h) => h.live);
          return usable.length === 0 ? (
            <p>No head with a live version yet.</p>
          ) : (
            <TryForm heads={usable} initial={props.head} />
          );
        }}
      </Show>
    </>
  );
}

function TryForm(props: { heads: HeadRecord[]; initial?: string }) {
  const start = props.heads.find((h) => h.head === props.initial)?.head ?? props.heads[0].head;
  const [head, setHead] = useState(start);
  const [text, setText] = useState("");
  const [result, setResult] = useState<{ prediction?: Prediction; error?: string; busy?: boolean }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    setResult({ busy: true });
    try {
      const body = await api<{ predictions: Prediction[] }>(`v1/heads/${seg(head)}/predict`, {
        method: "POST",
        body: { inputs: [text] },
      });
      setResult({ prediction: body.predictions[0] });
    } catch (err) {
      setResult({ error: (err as Error).message });
    }
  };
  return (
    <>
      <form class="try" onSubmit={submit}>
        <label for="try-head">Head</label>
        <select id="try-head" value={head} onChange={(e) => setHead(e.currentTarget.value)}>
          {props.heads.map((h) => (
            <option key={h.head} value={h.head}>
              {h.head}
            </option>
          ))}
        </select>
        <label for="try-text">Text</label>
        <textarea
          id="try-text"
          rows={4}
          required
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          placeholder="What a great movie!"
        />
        <button type="submit" disabled={result.busy}>
          Predict
        </button>
      </form>
      <div aria-live="polite">
        {result.busy && <p>Predicting…</p>}
        {result.error && (
          <p class="error" role="alert">
            {result.error}
          </p>
        )}
        {result.prediction && <Answer p={result.prediction} />}
      </div>
    </>
  );
}

function Answer({ p }: { p: Prediction }) {
  const scores = Object.entries(p.scores ?? {}).sort((a, b) => b[1] - a[1]);
  return (
    <section class="answer" aria-labelledby="answer-h">
      <h2 id="answer-h">
        Label: <strong class="label-out">{p.label ?? p.labels?.join(", ") ?? p.value}</strong>
      </h2>
      {p.unknown !== undefined && (
        <p class={p.unknown ? "flag unknown" : "flag"}>
          {p.unknown ? "Unknown: unlike the training data" : "Like the training data"}
          {p.unknownScore !== undefined && ` (unknown score ${fixed(p.unknownScore)})`}
        </p>
      )}
      {scores.length > 0 && (
        <Bars
          title="Scores"
          max={1}
          highlight={p.label}
          bars={scores.map(([label, value]) => ({ label, value, text: pct(value) }))}
        />
      )}
    </section>
  );
}
