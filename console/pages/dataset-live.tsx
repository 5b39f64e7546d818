/**
 * A dataset's status, followed live: `GET /v1/datasets/{dataset}` again every POLL_MS while its
 * embedding job is planned or running (polling: a Lambda-hosted API cannot hold a stream open),
 * with a progress bar of committed shards and an ETA from the rate so far.
 */
import { useEffect, useState } from "preact/hooks";
import { api, type DatasetInfo, seg } from "../api.ts";
import { eta, num } from "../format.ts";
import type { Loaded } from "../load.tsx";

export const POLL_MS = 700;

export interface EmbedJobView {
  job: string;
  state: "planned" | "running" | "succeeded" | "failed";
  shards: number[];
  shardsCommitted: number;
  items: { toEmbed: number; cached: number };
  error?: string;
  createdAt: string;
  startedAt?: string;
}

export const jobOf = (info: DatasetInfo) =>
  (info.embedding as DatasetInfo["embedding"] & { job?: EmbedJobView }).job;

export const isEmbedding = (info: DatasetInfo) => {
  const job = jobOf(info);
  return job?.state === "planned" || job?.state === "running";
};

/** Like useApi, but keeps showing the last answer while it polls. */
export function useLiveDataset(name: string): Loaded<DatasetInfo> {
  const [state, setState] = useState<{ data?: DatasetInfo; error?: Error }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = () =>
      api<DatasetInfo>(`v1/datasets/${seg(name)}`).then(
        (data) => {
          if (!live) return;
          setState({ data });
          if (isEmbedding(data)) timer = setTimeout(load, POLL_MS);
        },
        (error: Error) => live && setState({ error }),
      );
    setState({});
    load();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [name, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** The embedding job's progress bar while it runs; its error if it failed. */
export function EmbeddingProgress({ info }: { info: DatasetInfo }) {
  const job = jobOf(info);
  if (!job) return null;
  if (job.state === "failed") {
    return (
      <p class="error" role="alert">
        Embedding failed: {job.error ?? "see the job"} ({job.job})
      </p>
    );
  }
  if (job.state === "succeeded") return null;
  const of = Math.max(1, job.shards.length);
  const done = job.shardsCommitted;
  const since = Date.parse(job.startedAt ?? job.createdAt);
  const elapsed = (Date.now() - since) / 1000;
  const left = done > 0 ? eta((elapsed * (of - done)) / done) : "estimating…";
  return (
    <div class="progress" aria-live="polite">
      <label for="embed-progress">Embedding with {info.embedding.backbone}</label>
      <progress id="embed-progress" max={of} value={done} />
      <p>
        {num(done)} of {num(of)} shards ({num(job.items.toEmbed)} items to embed, {num(job.items.cached)}{" "}
        already cached) · {job.state === "planned" ? "waiting to start" : left}
      </p>
    </div>
  );
}
