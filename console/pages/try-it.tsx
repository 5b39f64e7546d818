/**
 * Try it: a text, or an image or audio clip dropped or picked, to a head's live version
 * (`POST /v1/heads/{head}/predict`, files as base64 `{image}` / `{audio}` inputs, with `neighbors`
 * for the nearest training items); label, scores, unknown; and "this is wrong", which sends the
 * right label with the prediction's `predictionId` and the file (`POST /v1/heads/{head}/feedback`).
 * A clip is previewed in an `<audio>` element from an object URL (the CSP's `media-src blob:`).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api, type HeadRecord, type Prediction, seg } from "../api.ts";
import { Bars } from "../charts.tsx";
import { useDrop } from "../drop.ts";
import { fixed, num, pct } from "../format.ts";
import { Show, useApi } from "../load.tsx";
import { Scroll } from "../scroll.tsx";
import { Thumb, useFileUrl } from "./dataset-map.tsx";

/** How many training neighbours an answer shows. */
const NEIGHBORS = 5;

interface Answered extends Prediction {
  predictionId: string;
  /** The training item: a text row's `text` (cut by the API), an image or audio row's file path. */
  neighbors?: Array<{
    id: string;
    label?: string | number | string[];
    text?: string;
    image?: string;
    audio?: string;
    similarity: number;
  }>;
}

interface Picked {
  kind: "image" | "audio";
  file: File;
  /** `data:` URL: an image's preview (the page's CSP allows data: images); its base64 tail is sent. */
  dataUrl: string;
}

/** The formats predict decodes, by MIME type or, where the browser knows none, by extension. */
const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
const AUDIO_TYPES = [
  "audio/wav",
  "audio/x-wav",
  "audio/wave",
  "audio/flac",
  "audio/x-flac",
  "audio/mpeg",
  "audio/ogg",
];
const AUDIO_EXTENSION = /\.(wav|flac|mp3|ogg)$/i;
const ACCEPT = [...IMAGE_TYPES, ...AUDIO_TYPES, ".wav", ".flac", ".mp3", ".ogg"].join(",");

function kindOf(file: File): Picked["kind"] | undefined {
  if (file.type.startsWith("image/")) return "image";
  if (file.type.startsWith("audio/") || AUDIO_EXTENSION.test(file.name)) return "audio";
  return undefined;
}

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

/** A picked file as predict's input: its base64, without the data: URL's prefix. */
function fileInput(picked: Picked): Input {
  const b64 = picked.dataUrl.slice(picked.dataUrl.indexOf(",") + 1);
  return picked.kind === "image" ? { image: b64 } : { audio: b64 };
}

const readDataUrl = (file: File) =>
  new Promise<string>((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(reader.error ?? new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  });

/** What was predicted: a text, or an image or audio file as base64 (sent again with a correction). */
type Input = string | { image: string } | { audio: string };
type Result = { answer?: Answered; input?: Input; error?: string; busy?: boolean };

function TryForm(props: { heads: HeadRecord[]; initial?: string }) {
  const start = props.heads.find((h) => h.head === props.initial)?.head ?? props.heads[0].head;
  const [head, setHead] = useState(start);
  const [text, setText] = useState("");
  const [picked, setPicked] = useState<Picked>();
  const [result, setResult] = useState<Result>({});
  const pick = async (file?: File) => {
    if (!file) return;
    const kind = kindOf(file);
    if (!kind) {
      setResult({ error: `${file.name} is neither an image nor an audio clip` });
      return;
    }
    setResult({});
    setPicked({ kind, file, dataUrl: await readDataUrl(file) });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!picked && !text.trim()) {
      setResult({ error: "Type a text or choose an image or audio clip first." });
      return;
    }
    setResult({ busy: true });
    const input: Input = picked ? fileInput(picked) : text;
    try {
      const body = await api<{ predictions: Answered[] }>(`v1/heads/${seg(head)}/predict`, {
        method: "POST",
        body: { inputs: [input], neighbors: NEIGHBORS },
      });
      setResult({ answer: body.predictions[0], input });
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
          value={text}
          disabled={!!picked}
          onInput={(e) => setText(e.currentTarget.value)}
          placeholder="What a great movie!"
        />
        <FilePicker picked={picked} onPick={pick} onClear={() => setPicked(undefined)} />
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
        {result.answer && <Answer p={result.answer} of={props.heads.find((h) => h.head === head)} />}
      </div>
      {result.answer && result.input !== undefined && (
        <Feedback key={result.answer.predictionId} head={head} p={result.answer} input={result.input} />
      )}
    </>
  );
}

/** A file input inside a drop zone: drop an image or clip on it, or pick one (keyboard: the input). */
function FilePicker(props: { picked?: Picked; onPick: (f?: File) => void; onClear: () => void }) {
  const input = useRef<HTMLInputElement>(null);
  // The file input shows only what was picked with it: cleared when a drop or "remove" replaces it.
  const forget = () => {
    if (input.current) input.current.value = "";
  };
  const { over, handlers } = useDrop((data) => {
    forget();
    props.onPick(data.files[0]);
  });
  return (
    // Dropping is a pointer shortcut; the file input inside is the keyboard's way.
    <div class={over ? "drop over" : "drop"} {...handlers}>
      <label for="try-image">
        Or an image or audio clip (WAV, FLAC, MP3, Ogg; drop it here, or choose a file)
      </label>
      <input
        id="try-image"
        ref={input}
        type="file"
        accept={ACCEPT}
        onChange={(e) => props.onPick(e.currentTarget.files?.[0])}
      />
      {props.picked && (
        <p class="picked">
          <Preview picked={props.picked} /> {props.picked.file.name} ({num(props.picked.file.size)} bytes){" "}
          <button
            type="button"
            class="small"
            onClick={() => {
              forget();
              props.onClear();
              input.current?.focus(); // the button is gone with the file
            }}
          >
            {props.picked.kind === "image" ? "Remove image" : "Remove clip"}
          </button>
        </p>
      )}
    </div>
  );
}

/**
 * The picked file: an image as a thumbnail (its data: URL), a clip as an `<audio controls>` player
 * from an object URL made for it and revoked when it is replaced or removed.
 */
function Preview({ picked }: { picked: Picked }) {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    if (picked.kind !== "audio") return;
    const made = URL.createObjectURL(picked.file);
    setUrl(made);
    return () => URL.revokeObjectURL(made);
  }, [picked]);
  const name = `The chosen file, ${picked.file.name}`;
  if (picked.kind === "image") return <img src={picked.dataUrl} alt={name} width={48} height={48} />;
  if (!url) return null;
  // biome-ignore lint/a11y/useMediaCaption: the user's own clip, just picked: there is no transcript to caption it with.
  return <audio controls src={url} aria-label={name} preload="metadata" />;
}

/** `of`: the head asked, whose live version's dataset holds image neighbours' files. */
function Answer({ p, of }: { p: Answered; of?: HeadRecord }) {
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
      {p.neighbors && p.neighbors.length > 0 && (
        <Neighbors list={p.neighbors} dataset={of?.current?.dataset?.name} />
      )}
    </section>
  );
}

/** `dataset`: the live version's, where image neighbours' files are (fetched with the key). */
function Neighbors({ list, dataset }: { list: NonNullable<Answered["neighbors"]>; dataset?: string }) {
  return (
    <>
      <h3>Nearest training items</h3>
      <Scroll label="Nearest training items table">
        <table>
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Item</th>
              <th scope="col">Label</th>
              <th scope="col" class="n">
                Similarity
              </th>
            </tr>
          </thead>
          <tbody>
            {list.map((n) => (
              <tr key={n.id}>
                <th scope="row">{n.id}</th>
                <td class="item">
                  {n.image !== undefined && dataset !== undefined ? (
                    <Thumb dataset={dataset} path={n.image} alt={`Training item ${n.id}`} size={48} />
                  ) : n.audio !== undefined && dataset !== undefined ? (
                    <Clip dataset={dataset} path={n.audio} label={`Training item ${n.id}: ${n.audio}`} />
                  ) : (
                    (n.text ?? n.image ?? n.audio ?? "—")
                  )}
                </td>
                <td>{Array.isArray(n.label) ? n.label.join(", ") : String(n.label ?? "—")}</td>
                <td class="n">{fixed(n.similarity)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </Scroll>
    </>
  );
}

/** A training clip through the API with the key, in a player; its path beside it. */
function Clip(props: { dataset: string; path: string; label: string }) {
  const url = useFileUrl(props.dataset, props.path);
  return (
    <>
      {/* biome-ignore lint/a11y/useMediaCaption: a training clip; the dataset holds no transcript to caption it with. */}
      {url && <audio controls src={url} aria-label={props.label} preload="metadata" />} {props.path}
    </>
  );
}

/**
 * "This is wrong": the right label (a multiclass head's classes), sent as feedback with the input —
 * an image or clip too (as base64): the API keeps no file of a prediction, so its id alone cannot
 * name it.
 */
function Feedback(props: { head: string; p: Answered; input: Input }) {
  const classes = Object.keys(props.p.scores ?? {}).filter((c) => c !== props.p.label);
  const [open, setOpen] = useState(false);
  const [label, setLabel] = useState(classes[0] ?? "");
  const [state, setState] = useState<{ text?: string; error?: boolean; busy?: boolean }>({});
  const select = useRef<HTMLSelectElement>(null);
  // The button that opened the form is gone: focus moves to the form's first control.
  useEffect(() => {
    if (open) select.current?.focus();
  }, [open]);
  if (props.p.label === undefined || classes.length === 0) return null;
  const send = async (e: Event) => {
    e.preventDefault();
    setState({ busy: true });
    try {
      const fb = await api<{ id: string }>(`v1/heads/${seg(props.head)}/feedback`, {
        method: "POST",
        body: { predictionId: props.p.predictionId, label, input: props.input },
      });
      setState({
        text: `Thanks: feedback ${fb.id} stored (${label}); training with feedback will learn from it.`,
      });
    } catch (err) {
      setState({ text: (err as Error).message, error: true });
    }
  };
  return (
    <section class="feedback" aria-label="Feedback">
      {!open ? (
        <button type="button" onClick={() => setOpen(true)}>
          This is wrong
        </button>
      ) : (
        <form onSubmit={send}>
          <label for="fb-label">Correct label</label>
          <select id="fb-label" ref={select} value={label} onChange={(e) => setLabel(e.currentTarget.value)}>
            {classes.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
          <button type="submit" disabled={state.busy || !!state.text}>
            Send correction
          </button>
        </form>
      )}
      <p aria-live="polite" class={state.error ? "error" : "ok"}>
        {state.text}
      </p>
    </section>
  );
}
