/**
 * The upload form on the datasets page: a name, then a manifest (CSV or JSONL), a folder of
 * labelled images or audio files or a zip of one, dropped on the zone or chosen with the file pickers (the
 * keyboard's way in). Upload progress in bytes; then the dataset's page, which follows the
 * embedding. See upload.ts for what goes over the wire.
 */
import { useState } from "preact/hooks";
import { useDrop } from "../drop.ts";
import { bytes } from "../format.ts";
import { href } from "../route.ts";
import {
  droppedFiles,
  type Picked,
  type Plan,
  type Progress,
  planUpload,
  runUpload,
  unzip,
} from "../upload.ts";

type Phase =
  | { state: "idle" }
  | { state: "ready"; plan: Plan }
  | { state: "sending"; plan: Plan; progress?: Progress }
  | { state: "failed"; plan?: Plan; error: string };

const NAME = /^[a-z0-9][a-z0-9\-_.]{0,62}$/;

async function toPlan(picked: Picked[]): Promise<Plan> {
  if (picked.length === 1 && /\.zip$/i.test(picked[0].path)) return planUpload(await unzip(picked[0].file));
  return planUpload(picked);
}

const fromInput = (list: FileList | null): Picked[] =>
  Array.from(list ?? []).map((f) => ({ path: f.webkitRelativePath || f.name, file: f }));

export function UploadForm() {
  const [name, setName] = useState("");
  const [phase, setPhase] = useState<Phase>({ state: "idle" });
  const choose = (picked: Picked[]) =>
    toPlan(picked).then(
      (plan) => setPhase({ state: "ready", plan }),
      (err: Error) => setPhase({ state: "failed", error: `Could not read the upload: ${err.message}` }),
    );
  const plan = phase.state === "idle" ? undefined : phase.plan;
  const nameError = name && !NAME.test(name) ? "Lower-case letters, digits, - _ . (up to 63)." : undefined;
  const start = async (e: Event) => {
    e.preventDefault();
    if (!plan || !NAME.test(name)) return;
    setPhase({ state: "sending", plan });
    try {
      await runUpload(name, plan, (progress) => setPhase({ state: "sending", plan, progress }));
      location.hash = href("datasets", name);
    } catch (err) {
      setPhase({ state: "failed", plan, error: (err as Error).message });
    }
  };
  return (
    <section aria-labelledby="upload-h" class="upload">
      <h2 id="upload-h">Upload a dataset</h2>
      <form onSubmit={start}>
        <label for="upload-name">Dataset name</label>
        <input
          id="upload-name"
          value={name}
          onInput={(e) => setName((e.target as HTMLInputElement).value)}
          aria-invalid={nameError ? "true" : undefined}
          aria-describedby="upload-name-help"
          autocomplete="off"
          required
        />
        <p id="upload-name-help" class={nameError ? "error" : "note"}>
          {nameError ?? "Uploading to an existing name replaces its rows with a new version."}
        </p>
        <DropZone onPick={choose} />
        {plan && <PlanSummary plan={plan} />}
        <button type="submit" disabled={!plan || !NAME.test(name) || phase.state === "sending"}>
          Upload
        </button>
      </form>
      {phase.state === "sending" && <UploadProgress progress={phase.progress} />}
      {phase.state === "failed" && (
        <p class="error" role="alert">
          {phase.error}
        </p>
      )}
    </section>
  );
}

/** Drop a manifest, a zip or a folder, or choose one with the pickers inside. */
function DropZone({ onPick }: { onPick: (picked: Picked[]) => void }) {
  const choose = onPick;
  const { over, handlers } = useDrop((data) => void droppedFiles(data).then(choose));
  return (
    // Dropping is the mouse's shortcut; the two file inputs inside are the keyboard's way.
    <div class={over ? "upload-drop over" : "upload-drop"} {...handlers}>
      <p>
        Drop a CSV or JSONL manifest, a folder of labelled images or audio files (
        <code>&lt;label&gt;/&lt;file&gt;</code>) or a zip of one here, or choose:
      </p>
      <label for="upload-file">Manifest or zip</label>
      <input
        id="upload-file"
        type="file"
        accept=".csv,.jsonl,.ndjson,.zip"
        onChange={(e) => choose(fromInput((e.target as HTMLInputElement).files))}
      />
      <label for="upload-folder">Folder of labelled images or audio files</label>
      <input
        id="upload-folder"
        type="file"
        // @ts-expect-error: not in Preact's attribute types; every current browser has it.
        webkitdirectory={true}
        multiple
        onChange={(e) => choose(fromInput((e.target as HTMLInputElement).files))}
      />
    </div>
  );
}

/** "10 images", "6 audio files", "4 images and 2 audio files". */
function fileCounts(rows: ReadonlyArray<{ image?: string } | { audio?: string }>): string {
  const audio = rows.filter((r) => "audio" in r).length;
  const images = rows.length - audio;
  const parts = [images ? `${images} images` : "", audio ? `${audio} audio files` : ""].filter(Boolean);
  return parts.join(" and ") || "0 images";
}

function PlanSummary({ plan }: { plan: Plan }) {
  if (plan.kind === "manifest") {
    return (
      <p aria-live="polite">
        {plan.format.toUpperCase()} manifest <code>{plan.name}</code>, {bytes(plan.file.size)}.
      </p>
    );
  }
  const labels = new Set(plan.rows.map((r) => r.label));
  return (
    <div aria-live="polite">
      <p>
        {fileCounts(plan.rows)} in {labels.size} labels ({[...labels].slice(0, 8).join(", ")}).
      </p>
      {plan.skipped.length > 0 && (
        <details>
          <summary>{plan.skipped.length} files skipped</summary>
          <ul>
            {plan.skipped.slice(0, 50).map((s) => (
              <li key={s.path}>
                <code>{s.path}</code>: {s.reason}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function UploadProgress({ progress }: { progress?: Progress }) {
  const p = progress ?? { sent: 0, total: 1, files: 0, of: 0 };
  const text = `${bytes(p.sent)} of ${bytes(p.total)}${p.of > 1 ? `, ${p.files} of ${p.of} files` : ""}`;
  return (
    <div class="progress" aria-live="polite">
      <label for="upload-progress">Uploading</label>
      <progress id="upload-progress" max={p.total} value={p.sent} />
      <p>{text}</p>
    </div>
  );
}
