/**
 * Label suggested items (active learning): the rows a head is least sure of
 * (`POST /v1/datasets/{dataset}/suggest`), one at a time, labelled by keyboard — 1–9 for the head's
 * classes in order, ← → to move — or by Tab and Enter/Space on the label buttons. Each label is a
 * correction of the head (`POST /v1/heads/{head}/feedback` with the row's text as `input`, or an image
 * row's file as `{imageKey: "datasets/<dataset>/files/<image>"}`, shown as a thumbnail); then
 * one action retrains the head on them (`POST /v1/heads/{head}/train` with `withFeedback: true`).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, seg } from "../api.ts";
import { fixed } from "../format.ts";
import { Thumb } from "./dataset-map.tsx";
import { type Choice, Failure, type HeadDetail, headDetail, Pick, useOutcome } from "./pick.tsx";
import { Retrain } from "./retrain.tsx";

interface SuggestItem {
  id: string;
  text?: string;
  image?: string;
  score: number;
  reason: string;
}

interface Suggestions {
  strategy: string;
  labelled: number;
  unlabelled: number;
  items: SuggestItem[];
}

export function LabelPage() {
  return (
    <>
      <h1>Label suggested items</h1>
      <p class="note">
        The rows the head is least sure of. Each label you give is sent to the head as feedback; retrain it on
        them when you are done.
      </p>
      <Pick idPrefix="label">
        {(choice) => <Suggest key={`${choice.head}/${choice.dataset}`} {...choice} />}
      </Pick>
    </>
  );
}

function Suggest(props: Choice) {
  const [k, setK] = useState(10);
  const { outcome, run } = useOutcome<{ s: Suggestions; head: HeadDetail }>();
  const load = (e: Event) => {
    e.preventDefault();
    void run(async () => {
      const [s, head] = await Promise.all([
        api<Suggestions>(`v1/datasets/${seg(props.dataset)}/suggest`, {
          method: "POST",
          body: { head: props.head, k },
        }),
        headDetail(props.head),
      ]);
      return { s, head };
    });
  };
  return (
    <>
      <form class="inline" onSubmit={load}>
        <div>
          <label for="label-k">How many</label>
          <input
            id="label-k"
            type="number"
            min={1}
            max={1000}
            value={k}
            onInput={(e) => setK(Number(e.currentTarget.value) || 1)}
          />
        </div>
        <button type="submit" disabled={outcome.state === "busy"}>
          Suggest items
        </button>
      </form>
      <div aria-live="polite">
        {outcome.state === "busy" && <p>Ranking the unlabelled rows…</p>}
        {outcome.state === "error" && <Failure message={outcome.message} />}
      </div>
      {outcome.state === "done" &&
        (outcome.value.s.items.length === 0 ? (
          <p>No unlabelled row left in {props.dataset}.</p>
        ) : (
          <Queue choice={props} items={outcome.value.s.items} labels={outcome.value.head.current.labels} />
        ))}
    </>
  );
}

/** Typing in a field is not a shortcut. */
const typing = (t: EventTarget | null) =>
  t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName));

/**
 * The queue's keys on the document while it is shown (not inside a field): 1–9 give the n-th
 * label, ← → move. The handlers are read at key time, so they always see the current item.
 */
function useShortcuts(labels: number, give: (n: number) => void, move: (by: number) => void) {
  const latest = useRef({ give, move });
  latest.current = { give, move };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (typing(e.target) || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        latest.current.move(e.key === "ArrowRight" ? 1 : -1);
        return;
      }
      const n = Number(e.key);
      if (Number.isInteger(n) && n >= 1 && n <= Math.min(9, labels)) {
        e.preventDefault();
        latest.current.give(n - 1);
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [labels]);
}

function Queue(props: { choice: Choice; items: SuggestItem[]; labels: string[] }) {
  const [at, setAt] = useState(0);
  const [given, setGiven] = useState<Record<string, string>>({});
  const [error, setError] = useState<string>();
  // A ref, not state: a second key pressed before the page re-renders must see the first one.
  const sending = useRef(false);
  const item = props.items[at];
  const move = (by: number) => setAt((i) => Math.min(props.items.length - 1, Math.max(0, i + by)));
  const input = inputOf(props.choice.dataset, item);
  const give = async (label: string) => {
    if (!input || sending.current) return;
    sending.current = true;
    setError(undefined);
    try {
      await api(`v1/heads/${seg(props.choice.head)}/feedback`, {
        method: "POST",
        body: { input, label },
      });
      setGiven((g) => ({ ...g, [item.id]: label }));
      move(1);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      sending.current = false;
    }
  };
  useShortcuts(props.labels.length, (n) => void give(props.labels[n]), move);
  const done = Object.keys(given).length;
  return (
    <section class="queue" aria-labelledby="queue-h">
      <h2 id="queue-h">
        Item {at + 1} of {props.items.length}
      </h2>
      <p class="note">
        Keys: {props.labels.length > 1 ? `1–${Math.min(9, props.labels.length)}` : "1"} label, ← → move; or
        Tab to a label and press Enter or Space.
      </p>
      <ItemCard dataset={props.choice.dataset} item={item} given={given[item.id]} />
      <fieldset class="labels">
        <legend class="sr-only">Labels</legend>
        {props.labels.map((label, i) => (
          <button
            type="button"
            key={label}
            aria-keyshortcuts={i < 9 ? String(i + 1) : undefined}
            aria-pressed={given[item.id] === label}
            disabled={!input}
            onClick={() => void give(label)}
          >
            {i < 9 && <kbd>{i + 1}</kbd>} {label}
          </button>
        ))}
      </fieldset>
      <Moves at={at} count={props.items.length} move={move} />
      <p aria-live="polite" class="status">
        {done} of {props.items.length} labelled, each sent to {props.choice.head} as feedback.
      </p>
      {error && <Failure message={error} />}
      {done > 0 && <Retrain choice={props.choice} labelled={done} />}
    </section>
  );
}

function Moves(props: { at: number; count: number; move: (by: number) => void }) {
  return (
    <div class="moves">
      <button
        type="button"
        class="secondary"
        aria-keyshortcuts="ArrowLeft"
        disabled={props.at === 0}
        onClick={() => props.move(-1)}
      >
        ← Previous
      </button>
      <button
        type="button"
        class="secondary"
        aria-keyshortcuts="ArrowRight"
        disabled={props.at === props.count - 1}
        onClick={() => props.move(1)}
      >
        Next →
      </button>
    </div>
  );
}

/** What the feedback names: the row's text, or its image by its key in the dataset; audio: none. */
export function inputOf(dataset: string, row: { text?: string; image?: string }) {
  if (row.text !== undefined) return row.text;
  if (row.image !== undefined) return { imageKey: `datasets/${dataset}/files/${row.image}` };
  return undefined;
}

function ItemCard(props: { dataset: string; item: SuggestItem; given?: string }) {
  const { item } = props;
  return (
    <div class="item">
      {item.text !== undefined ? (
        <blockquote class="item-text">{item.text}</blockquote>
      ) : item.image !== undefined ? (
        <Thumb dataset={props.dataset} path={item.image} alt={`Row ${item.id}: ${item.image}`} size={160} />
      ) : (
        <p>
          Row <code>{item.id}</code> has no text or image to show here (an audio row): label it where you can
          hear it.
        </p>
      )}
      <p class="note">
        <code>{item.id}</code> · uncertainty {fixed(item.score)} · {item.reason}
        {props.given && (
          <>
            {" "}
            · <strong>labelled {props.given}</strong>
          </>
        )}
      </p>
    </div>
  );
}
