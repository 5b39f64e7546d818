/**
 * Batch predictions: score a dataset with a head (`POST /v1/heads/{head}/batch-predictions`),
 * follow the job (`GET …/batch-predictions/{job}`, polled) and download its parts (`GET …/files`).
 * A part's URL is this server's `files/{name}` route locally — fetched with the key and saved from
 * a blob — or, in AWS, a presigned S3 URL that needs no key, offered as a plain link. The job's id
 * is in the page's hash (`#/work/batch/<head>/<job>`), so a reload follows the same job.
 */
import { useEffect, useState } from "preact/hooks";
import { api, apiKey, seg } from "../api.ts";
import { num } from "../format.ts";
import { href } from "../route.ts";
import { Scroll } from "../scroll.tsx";
import { type Choice, Failure, Pick, useOutcome } from "./pick.tsx";

interface BatchJob {
  job: string;
  head: string;
  version: string;
  status: "queued" | "running" | "succeeded" | "succeeded-with-errors" | "failed" | "cancelled";
  progress: { phase: string; rowsDone: number; rowsTotal: number };
  input: { dataset: string };
  counts?: { total: number; succeeded: number; failed: number };
  error?: { message?: string } | string;
}

interface BatchFile {
  kind: "predictions" | "errors";
  part: number;
  key: string;
  bytes: number;
  url: string;
  expiresAt?: string;
}

const FINAL = ["succeeded", "succeeded-with-errors", "failed", "cancelled"];
const POLL_MS = 1000;

export function BatchPage(props: { head?: string; job?: string }) {
  return (
    <>
      <h1>Batch predictions</h1>
      {props.head && props.job ? (
        <>
          <p>
            <a href={href("work", "batch")}>Start another</a>
          </p>
          <Job head={props.head} job={props.job} />
        </>
      ) : (
        <Pick idPrefix="batch">{(choice) => <Start {...choice} />}</Pick>
      )}
    </>
  );
}

function Start(props: Choice) {
  const { outcome, run } = useOutcome<BatchJob>();
  const start = async (e: Event) => {
    e.preventDefault();
    const job = await run(() =>
      api<BatchJob>(`v1/heads/${seg(props.head)}/batch-predictions`, {
        method: "POST",
        body: { dataset: props.dataset },
      }),
    );
    if (job) location.hash = href("work", "batch", job.head, job.job);
  };
  return (
    <form class="inline" onSubmit={start}>
      <button type="submit" disabled={outcome.state === "busy"}>
        Score {props.dataset} with {props.head}
      </button>
      <div aria-live="polite">{outcome.state === "error" && <Failure message={outcome.message} />}</div>
    </form>
  );
}

/** The job, polled until it ends; then its files. */
function Job(props: { head: string; job: string }) {
  const [job, setJob] = useState<BatchJob>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const j = await api<BatchJob>(`v1/heads/${seg(props.head)}/batch-predictions/${seg(props.job)}`);
        if (!live) return;
        setJob(j);
        if (!FINAL.includes(j.status)) timer = setTimeout(poll, POLL_MS);
      } catch (err) {
        if (live) setError((err as Error).message);
      }
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [props.head, props.job]);
  if (error) return <Failure message={error} />;
  if (!job) return <p aria-live="polite">Loading the job…</p>;
  const { rowsDone, rowsTotal, phase } = job.progress;
  const ended = FINAL.includes(job.status);
  return (
    <section class="job" aria-labelledby="job-h">
      <h2 id="job-h">
        Job <code>{job.job}</code>
      </h2>
      <p>
        {job.head} (version {job.version}) on {job.input.dataset}
      </p>
      <p aria-live="polite">
        Status: <strong class={`job-status ${job.status}`}>{job.status}</strong>
        {!ended && ` (${phase})`} · {num(rowsDone)} of {num(rowsTotal)} rows
      </p>
      <progress aria-label="Rows scored" max={Math.max(1, rowsTotal)} value={rowsDone} />
      {job.counts && (
        <p>
          {num(job.counts.succeeded)} scored, {num(job.counts.failed)} not scored.
        </p>
      )}
      {job.status.startsWith("succeeded") && <Files head={props.head} job={props.job} />}
    </section>
  );
}

function Files(props: { head: string; job: string }) {
  const { outcome, run } = useOutcome<{ files: BatchFile[] }>();
  useEffect(() => {
    void run(() =>
      api<{ files: BatchFile[] }>(`v1/heads/${seg(props.head)}/batch-predictions/${seg(props.job)}/files`),
    );
  }, [props.head, props.job]);
  if (outcome.state === "error") return <Failure message={outcome.message} />;
  if (outcome.state !== "done") return <p>Listing the files…</p>;
  return (
    <Scroll label="Result files">
      <table>
        <caption class="sr-only">The job's output parts</caption>
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col">Kind</th>
            <th scope="col" class="n">
              Bytes
            </th>
            <th scope="col">Download</th>
          </tr>
        </thead>
        <tbody>
          {outcome.value.files.map((f) => (
            <FileRow key={f.key} file={f} />
          ))}
        </tbody>
      </table>
    </Scroll>
  );
}

const fileName = (f: BatchFile) => f.key.split("/").at(-1) ?? f.key;
const sameOrigin = (url: string) => new URL(url, location.href).origin === location.origin;

/** A part of this origin is fetched with the key and saved from a blob: a plain link would send no key. */
async function saveWithKey(url: string, name: string): Promise<void> {
  const key = apiKey.get();
  const res = await fetch(url, { headers: key ? { "x-api-key": key } : {} });
  if (!res.ok) throw new Error(`download failed: ${res.status} ${res.statusText}`);
  const blob = new Blob([await res.arrayBuffer()], { type: "application/x-ndjson" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

function FileRow({ file }: { file: BatchFile }) {
  const [error, setError] = useState<string>();
  const name = fileName(file);
  return (
    <tr>
      <th scope="row">{name}</th>
      <td>{file.kind}</td>
      <td class="n">{num(file.bytes)}</td>
      <td>
        {sameOrigin(file.url) ? (
          <button
            type="button"
            onClick={() => saveWithKey(file.url, name).catch((e: Error) => setError(e.message))}
          >
            Download {name}
          </button>
        ) : (
          <a href={file.url} download={name}>
            Download {name}
          </a>
        )}
        {error && <Failure message={error} />}
      </td>
    </tr>
  );
}
