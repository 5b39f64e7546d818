/**
 * Train a head (`POST /v1/heads/{head}/train`): dataset, head name, type (every registered type,
 * `auto`, `zero-shot` with its labels), backbone or a `+` combination of the backbones the API
 * lists, class weights, unknown-input scorer. Locally the request trains in-process and answers
 * 200 with the version; behind a dispatcher (AWS) it answers 202 and the version appears under
 * the head later, so the page polls `GET /v1/heads` until the head has one more version. Either
 * way the page then opens the new version's report.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, type DatasetRecord, type HeadRecord, seg } from "../api.ts";
import { CLASS_WEIGHTED, HEAD_TYPES, META_TYPES, UNKNOWN_SCORERS } from "../head-types.ts";
import { Show, useApi } from "../load.tsx";
import { href } from "../route.ts";

interface BackboneInfo {
  id: string;
  modality: string;
  dim: number;
}

interface Choices {
  datasets: DatasetRecord[];
  backbones: BackboneInfo[];
  heads: HeadRecord[];
}

export function TrainPage(props: { dataset?: string }) {
  const loaded = useApi<Choices>(async () => {
    const [datasets, backbones, heads] = await Promise.all([
      api<DatasetRecord[]>("v1/datasets"),
      api<BackboneInfo[]>("v1/backbones"),
      api<HeadRecord[]>("v1/heads"),
    ]);
    return { datasets, backbones, heads };
  }, []);
  return (
    <>
      <p class="crumbs">
        <a href={href("heads")}>Heads</a> /
      </p>
      <h1>Train a head</h1>
      <Show loaded={loaded} what="datasets and backbones">
        {(c) =>
          c.datasets.length === 0 ? (
            <p>No dataset yet: upload one first.</p>
          ) : (
            <TrainForm choices={c} dataset={props.dataset} />
          )
        }
      </Show>
    </>
  );
}

export interface TrainFields {
  dataset: string;
  head: string;
  type: string;
  labels: string;
  backbones: string[];
  classWeight: string;
  unknownScorer: string;
}

/** The request body the form's fields make (only what was chosen; the API defaults the rest). */
export function trainBody(f: TrainFields): Record<string, unknown> {
  const body: Record<string, unknown> = { dataset: f.dataset };
  if (f.type) body.type = f.type;
  if (f.type === "zero-shot") {
    body.labels = f.labels
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  }
  if (f.backbones.length > 0) body.backbone = f.backbones.join("+");
  if (f.classWeight && classWeighted(f.type)) body.params = { classWeight: f.classWeight };
  if (f.unknownScorer) body.unknownScorer = f.unknownScorer;
  return body;
}

const classWeighted = (type: string) => type === "" || (CLASS_WEIGHTED as readonly string[]).includes(type);

/** The control that shows an error the API names `field` for. */
function controlFor(field?: string): string | undefined {
  if (!field) return undefined;
  const top = field.split(/[.[]/)[0];
  const ids: Record<string, string> = {
    dataset: "train-dataset",
    head: "train-head",
    type: "train-type",
    labels: "train-labels",
    backbone: "train-backbones",
    params: "train-class-weight",
    unknownScorer: "train-unknown",
  };
  return ids[top];
}

type Progress =
  | { state: "idle" }
  | { state: "training"; since: number; note: string }
  | { state: "failed"; message: string; field?: string };

function TrainForm(props: { choices: Choices; dataset?: string }) {
  const first = props.choices.datasets.find((d) => d.dataset === props.dataset) ?? props.choices.datasets[0];
  const [f, setF] = useState<TrainFields>({
    dataset: first.dataset,
    head: "",
    type: "",
    labels: "",
    backbones: [],
    classWeight: "",
    unknownScorer: "",
  });
  const [progress, setProgress] = useState<Progress>({ state: "idle" });
  // Polling stops when the person leaves the page.
  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );
  const set = (patch: Partial<TrainFields>) => setF((old) => ({ ...old, ...patch }));
  const submit = async (e: Event) => {
    e.preventDefault();
    const since = Date.now();
    setProgress({ state: "training", since, note: `Training ${f.head} on ${f.dataset}` });
    try {
      const note = (text: string) => setProgress({ state: "training", since, note: text });
      const version = await trainAndWait(f, note, () => mounted.current);
      if (version && mounted.current) location.hash = href("heads", f.head, version);
    } catch (err) {
      const field = err instanceof ApiError ? err.field : undefined;
      setProgress({ state: "failed", message: (err as Error).message, field });
    }
  };
  const busy = progress.state === "training";
  const invalid = progress.state === "failed" ? controlFor(progress.field) : undefined;
  return (
    <>
      <form class="train" onSubmit={submit} aria-describedby="train-status">
        <TrainControls f={f} set={set} choices={props.choices} invalid={invalid} />
        <button type="submit" disabled={busy}>
          Train
        </button>
      </form>
      <TrainStatus progress={progress} invalid={invalid} />
    </>
  );
}

/** How long the page waits for a handed-over training's version (the train Lambda stops at 15 minutes). */
const WAIT_MS = 20 * 60_000;

/**
 * Sends the train request and returns the new version: at once (200), or — when the API hands
 * the training over (202) — once `GET /v1/heads` shows the head with one more version
 * (undefined if the page was left meanwhile).
 */
async function trainAndWait(
  f: TrainFields,
  onNote: (note: string) => void,
  alive: () => boolean,
): Promise<string | undefined> {
  const before = (await api<HeadRecord[]>("v1/heads")).find((h) => h.head === f.head)?.versions ?? 0;
  const res = await api<{ version?: string; accepted?: boolean }>(`v1/heads/${seg(f.head)}/train`, {
    method: "POST",
    body: trainBody(f),
  });
  if (res.version) return res.version;
  onNote(`Accepted: training ${f.head} in the background; waiting for its version`);
  for (const start = Date.now(); alive(); ) {
    if (Date.now() - start > WAIT_MS) {
      throw new Error(
        `no new version of ${f.head} after ${WAIT_MS / 60_000} minutes: the training failed or is still queued (see the server's logs)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const now = (await api<HeadRecord[]>("v1/heads")).find((h) => h.head === f.head);
    if (now && now.versions > before) {
      const versions = await api<Array<{ version: string }>>(`v1/heads/${seg(f.head)}/versions`);
      return versions.at(-1)!.version;
    }
  }
  return undefined;
}

function TrainStatus(props: { progress: Progress; invalid?: string }) {
  const { progress } = props;
  const [now, setNow] = useState(Date.now());
  const alert = useRef<HTMLParagraphElement>(null);
  useEffect(() => {
    if (progress.state !== "training") return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [progress.state]);
  useEffect(() => {
    if (progress.state !== "failed") return;
    const control = props.invalid && document.getElementById(props.invalid);
    (control || alert.current)?.focus();
  }, [progress]);
  return (
    <div id="train-status" class="train-status">
      <div role="status">
        {progress.state === "training" && (
          <p>
            <progress aria-label="Training" /> {progress.note}…{" "}
            {Math.max(0, Math.round((now - progress.since) / 1000))} s
          </p>
        )}
      </div>
      {progress.state === "failed" && (
        <p class="error" role="alert" id="train-error" ref={alert} tabIndex={-1}>
          {progress.field ? `${progress.field}: ` : ""}
          {progress.message}
        </p>
      )}
    </div>
  );
}

function TrainControls(props: {
  f: TrainFields;
  set: (patch: Partial<TrainFields>) => void;
  choices: Choices;
  invalid?: string;
}) {
  const { f, set } = props;
  const err = (id: string) =>
    props.invalid === id ? { "aria-invalid": true, "aria-describedby": "train-error" } : {};
  return (
    <>
      <label for="train-dataset">Dataset</label>
      <select
        id="train-dataset"
        value={f.dataset}
        onChange={(e) => set({ dataset: e.currentTarget.value })}
        {...err("train-dataset")}
      >
        {props.choices.datasets.map((d) => (
          <option key={d.dataset} value={d.dataset}>
            {d.dataset}
          </option>
        ))}
      </select>
      <label for="train-head">Head name</label>
      <input
        id="train-head"
        required
        pattern="[a-z0-9][a-z0-9\-_.]{0,62}"
        title="1–63 characters from a–z, 0–9, -, _ and ., starting with a letter or digit"
        list="train-heads"
        value={f.head}
        onInput={(e) => set({ head: e.currentTarget.value })}
        {...err("train-head")}
      />
      <datalist id="train-heads">
        {props.choices.heads.map((h) => (
          <option key={h.head} value={h.head} />
        ))}
      </datalist>
      <TypeControls f={f} set={set} err={err} />
      <BackboneControls f={f} set={set} backbones={props.choices.backbones} invalid={props.invalid} />
    </>
  );
}

type ErrProps = (id: string) => Record<string, unknown>;

function TypeControls(props: { f: TrainFields; set: (p: Partial<TrainFields>) => void; err: ErrProps }) {
  const { f, set, err } = props;
  return (
    <>
      <label for="train-type">Type</label>
      <select
        id="train-type"
        value={f.type}
        onChange={(e) => set({ type: e.currentTarget.value })}
        {...err("train-type")}
      >
        <option value="">default for the labels</option>
        {[...META_TYPES, ...HEAD_TYPES].map((t) => (
          <option key={t} value={t}>
            {t}
          </option>
        ))}
      </select>
      {f.type === "zero-shot" && (
        <>
          <label for="train-labels">Labels, one per line (name: description)</label>
          <textarea
            id="train-labels"
            rows={3}
            required
            placeholder={"pos: a positive review\nneg: a negative review"}
            value={f.labels}
            onInput={(e) => set({ labels: e.currentTarget.value })}
            {...err("train-labels")}
          />
        </>
      )}
      {classWeighted(f.type) && (
        <>
          <label for="train-class-weight">Class weights</label>
          <select
            id="train-class-weight"
            value={f.classWeight}
            onChange={(e) => set({ classWeight: e.currentTarget.value })}
            {...err("train-class-weight")}
          >
            <option value="">none (default)</option>
            <option value="balanced">balanced</option>
          </select>
        </>
      )}
      <label for="train-unknown">Unknown-input scorer</label>
      <select
        id="train-unknown"
        value={f.unknownScorer}
        onChange={(e) => set({ unknownScorer: e.currentTarget.value })}
        {...err("train-unknown")}
      >
        <option value="">auto (default)</option>
        {UNKNOWN_SCORERS.filter((s) => s !== "auto").map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
    </>
  );
}

function BackboneControls(props: {
  f: TrainFields;
  set: (p: Partial<TrainFields>) => void;
  backbones: BackboneInfo[];
  invalid?: string;
}) {
  const { f, set } = props;
  const toggle = (id: string, on: boolean) => {
    const chosen = new Set(f.backbones);
    if (on) chosen.add(id);
    else chosen.delete(id);
    // In the API's list order, so the same choice always makes the same `a+b`.
    set({ backbones: props.backbones.map((b) => b.id).filter((b) => chosen.has(b)) });
  };
  return (
    <fieldset
      id="train-backbones"
      tabIndex={-1}
      aria-invalid={props.invalid === "train-backbones" ? true : undefined}
      aria-describedby="train-backbone-note"
    >
      <legend>Backbone</legend>
      <p class="note" id="train-backbone-note">
        {f.backbones.length === 0
          ? "None chosen: the dataset's default backbone."
          : `Trains on ${f.backbones.join("+")}${f.backbones.length > 1 ? " (each part normalized, side by side)" : ""}.`}
      </p>
      {props.backbones.map((b) => (
        <label key={b.id} class="check">
          <input
            type="checkbox"
            checked={f.backbones.includes(b.id)}
            onChange={(e) => toggle(b.id, e.currentTarget.checked)}
          />{" "}
          {b.id}{" "}
          <span class="note">
            ({b.modality}, {b.dim} d)
          </span>
        </label>
      ))}
    </fieldset>
  );
}
