/**
 * Running a batch-prediction job: make sure every row is in the cache of the head's backbone(s)
 * (embedding only what is missing, through the platform's embedding job), then score the cached
 * vectors with the head exactly as online predict does (`predictVectors`: the type's predict,
 * calibration, the task's decision), part by part. A row that cannot be scored (a file the
 * backbone could not embed, another modality) goes to the errors with its reason; it never fails
 * the job. `_summary.json` is written after every part, and only then is the job finished.
 *
 * Where the embedding stage runs elsewhere (`BatchEnv.remote`: SageMaker in AWS) the run does not
 * wait for it: it submits the embedding jobs, records them in `waitingFor` (phase
 * `waiting-for-embedding`, status still `running`) with a marker per job (`waits.ts`), and
 * returns. When the last of them ends, `runBatchJob` called again (the job-complete Lambda)
 * continues the job from the embedding stage, which then finds every row cached; one that failed
 * fails the job. A continuation claims the job by compare-and-swap, so a duplicate runs nothing.
 */
import type { BackboneSpec } from "../backbone/spec.ts";
import { readDatasetRows, readDatasetStatus } from "../datasets/ingest.ts";
import { type DatasetRow, modalityOf } from "../datasets/manifest.ts";
import { loadBackboneSetDataset, partsOf } from "../embed/composite.ts";
import type { EmbeddedDataset } from "../embed/embedded-dataset.ts";
import { type EmbedJob, readJob } from "../embed/job.ts";
import { ConflictError, HeadstartError, NotFoundError } from "../errors.ts";
import { type LoadedHead, loadHead, predictVectors } from "../heads/predict.ts";
import type { ObjectStore } from "../store/types.ts";
import {
  type BatchCounts,
  type BatchJob,
  HEARTBEAT_MS,
  isStale,
  isWaiting,
  readBatchJob,
  updateBatchJob,
} from "./job.ts";
import { type ErrorLine, type PredictionLine, predictionLine, writePart, writeSummary } from "./output.ts";
import { addWaiter } from "./waits.ts";

/** What a run needs from the platform: backbones by id, and the embedding stage. */
export interface BatchEnv {
  store: ObjectStore;
  backbone: (id: string) => Promise<BackboneSpec>;
  /** Puts the dataset's current rows into the backbone's cache (plans the missing items, runs the job). */
  embed: (dataset: string, backbone: BackboneSpec) => Promise<void>;
  /**
   * Set where embedding jobs run elsewhere (SageMaker): plans the job of the items not cached yet,
   * and submits it without waiting; the run then parks until it ends (see above).
   */
  remote?: {
    plan: (dataset: string, backbone: BackboneSpec) => Promise<EmbedJob>;
    submit: (job: EmbedJob) => Promise<EmbedJob>;
  };
}

/**
 * Runs the job if it is `queued`, `running` in a process that stopped beating, or parked on
 * embedding jobs that have all succeeded (the caller that moves it to `running` by
 * compare-and-swap owns it), and answers its record when done or parked; a parked job whose
 * embedding job failed is failed; a job running elsewhere or finished is answered as it is. A run
 * taken over starts again from the embedding stage, which resumes from the committed shards;
 * parts are rewritten whole.
 */
export async function runBatchJob(env: BatchEnv, jobId: string): Promise<BatchJob> {
  const found = await readBatchJob(env.store, jobId);
  if (!found) throw new NotFoundError(`batch job ${jobId}`, { field: "job" });
  const parked = isWaiting(found.value) ? found.value : undefined;
  const wait = parked ? await embeddingOutcome(env.store, parked) : undefined;
  if (wait?.failed !== undefined) return failParked(env.store, parked!, wait.failed);
  if (wait && !wait.ended) return found.value;
  const now = new Date().toISOString();
  const claim = await updateBatchJob(env.store, jobId, (j) =>
    j.status === "queued" || isStale(j) || (parked && isWaiting(j) && j.startedAt === parked.startedAt)
      ? {
          status: "running",
          startedAt: now,
          heartbeatAt: now,
          waitingFor: undefined,
          progress: { ...j.progress, phase: "embedding", rowsDone: 0 },
        }
      : undefined,
  );
  if (!claim.changed) return claim.job;
  const beat = setInterval(() => heartbeat(env.store, jobId, claim.job.startedAt!), HEARTBEAT_MS);
  try {
    return await execute(env, claim.job);
  } catch (err) {
    const { job } = await updateBatchJob(env.store, jobId, (j) =>
      j.status === "running" && j.startedAt === now
        ? { status: "failed", error: (err as Error).message, finishedAt: new Date().toISOString() }
        : undefined,
    );
    return job;
  } finally {
    clearInterval(beat);
  }
}

/** How the embedding jobs a parked job waits for stand: all succeeded, one failed (why), or not yet. */
async function embeddingOutcome(
  store: ObjectStore,
  job: BatchJob,
): Promise<{ ended: boolean; failed?: string }> {
  const ids = job.waitingFor ?? [];
  const records = await Promise.all(ids.map((id) => readJob(store, id)));
  for (const [i, r] of records.entries()) {
    if (!r) return { ended: true, failed: `embedding job ${ids[i]} is gone` };
    if (r.value.state === "failed") {
      return {
        ended: true,
        failed: `embedding job ${ids[i]} failed: ${r.value.error ?? "no reason recorded"}`,
      };
    }
  }
  return { ended: records.every((r) => r!.value.state === "succeeded") };
}

async function failParked(store: ObjectStore, parked: BatchJob, error: string): Promise<BatchJob> {
  const { job } = await updateBatchJob(store, parked.job, (j) =>
    isWaiting(j) && j.startedAt === parked.startedAt
      ? { status: "failed", error, finishedAt: new Date().toISOString() }
      : undefined,
  );
  return job;
}

/** Only this run's beat: a run taken over (another `startedAt`) stops moving the heartbeat. */
function heartbeat(store: ObjectStore, job: string, startedAt: string): void {
  updateBatchJob(store, job, (j) =>
    j.status === "running" && j.startedAt === startedAt
      ? { heartbeatAt: new Date().toISOString() }
      : undefined,
  ).catch(() => undefined); // a missed beat is retried by the next one
}

async function execute(env: BatchEnv, job: BatchJob): Promise<BatchJob> {
  const started = Date.now();
  const head = await loadHead(env.store, job.head, job.version);
  const specs = await headBackbones(env, head);
  const waits = await embedStage(env, job, specs);
  if (waits.length > 0) return park(env, job, waits);
  const embedded = Date.now();
  if (await cancelled(env.store, job.job)) return (await readBatchJob(env.store, job.job))!.value;
  const { dataset, datasetVersion } = job.input;
  const data = await loadBackboneSetDataset(env.store, dataset, specs, datasetVersion);
  const all = await readDatasetRows(env.store, dataset, datasetVersion);
  if (!all) throw new HeadstartError("internal", `dataset ${dataset} version ${datasetVersion} is gone`);
  const rejected = job.input.source === "manifest" ? await rejectedRows(env.store, job, all.rows) : [];
  const scored = await scoreParts(env.store, job, head, all.rows, data, rejected);
  if (!scored) return (await readBatchJob(env.store, job.job))!.value;
  const finishedAt = new Date().toISOString();
  await writeSummary(env.store, {
    job: job.job,
    head: job.head,
    version: job.version,
    input: job.input,
    ...scored,
    timings: {
      startedAt: job.startedAt ?? new Date(started).toISOString(),
      finishedAt,
      embedSeconds: (embedded - started) / 1000,
      scoreSeconds: (Date.now() - embedded) / 1000,
      totalSeconds: (Date.now() - started) / 1000,
    },
  });
  const status = scored.counts.failed > 0 ? "succeeded-with-errors" : "succeeded";
  const done = await updateBatchJob(env.store, job.job, (j) =>
    j.status === "running" && j.startedAt === job.startedAt
      ? { status, ...scored, finishedAt, progress: { ...j.progress, phase: "done" } }
      : undefined,
  );
  return done.job;
}

/**
 * Puts the rows into each backbone's cache: here (`env.embed`), or by submitting the jobs of what
 * is missing to the remote runner; answers the ids of submitted jobs that have not ended. The
 * waiter marker goes first, so the job's end always finds this batch job.
 */
async function embedStage(env: BatchEnv, job: BatchJob, specs: BackboneSpec[]): Promise<string[]> {
  const waits: string[] = [];
  for (const spec of specs) {
    // Imported (external) embeddings cannot be computed here: their rows are in the cache or not.
    if (spec.kind === "external") continue;
    if (!env.remote) {
      await env.embed(job.input.dataset, spec);
      continue;
    }
    const planned = await env.remote.plan(job.input.dataset, spec);
    if (planned.state === "succeeded") continue;
    await addWaiter(env.store, planned.job, job.job);
    const submitted = await env.remote.submit(planned);
    if (submitted.state !== "succeeded") waits.push(submitted.job);
  }
  return waits;
}

/**
 * Records that the run waits for `waits` and returns, unless an embedding job ended before the
 * park (its continuation then found the job still embedding): looking again closes that race.
 */
async function park(env: BatchEnv, job: BatchJob, waits: string[]): Promise<BatchJob> {
  const parked = await updateBatchJob(env.store, job.job, (j) =>
    j.status === "running" && j.startedAt === job.startedAt
      ? { waitingFor: waits, progress: { ...j.progress, phase: "waiting-for-embedding" } }
      : undefined,
  );
  if (!parked.changed) return parked.job; // cancelled, or taken over
  return runBatchJob(env, job.job);
}

/** The specs of the head's backbone parts, refusing any replaced since the head was trained. */
async function headBackbones(env: BatchEnv, head: LoadedHead): Promise<BackboneSpec[]> {
  const parts = partsOf(head.doc.backbone);
  const specs = await Promise.all(parts.map((p) => env.backbone(p.id)));
  specs.forEach((spec, i) => {
    if (spec.sha256 !== parts[i].sha256) {
      throw new ConflictError(
        `head ${head.doc.head} was trained on backbone ${spec.id}@${parts[i].sha256.slice(0, 12)}, ` +
          `which has since been replaced (${spec.sha256.slice(0, 12)}); retrain the head`,
        { field: "head" },
      );
    }
  });
  return specs;
}

async function cancelled(store: ObjectStore, job: string): Promise<boolean> {
  return (await readBatchJob(store, job))?.value.status === "cancelled";
}

interface Scored {
  counts: BatchCounts;
  outputs: string[];
  errors: string[];
}

/** Every row in input order, `job.partRows` at a time; undefined when the job was cancelled. */
async function scoreParts(
  store: ObjectStore,
  job: BatchJob,
  head: LoadedHead,
  rows: readonly DatasetRow[],
  data: EmbeddedDataset,
  /** Lines of the input that never became rows: reported with the first part. */
  rejected: readonly ErrorLine[],
): Promise<Scored | undefined> {
  const index = new Map(data.rows.map((r, i) => [r.id, i]));
  const failures = new Map(data.failed.map((f) => [f.id, f]));
  const total = rows.length + rejected.length;
  const out: Scored = { counts: { total, succeeded: 0, failed: 0 }, outputs: [], errors: [] };
  await setProgress(store, job.job, "scoring", 0, total);
  for (let part = 0, start = 0; part === 0 || start < rows.length; part++, start += job.partRows) {
    const chunk = rows.slice(start, start + job.partRows);
    const ok = chunk.filter((r) => index.has(r.id));
    const lines = await predictRows(head, ok, index, data, job);
    const errors: ErrorLine[] = [
      ...(part === 0 ? rejected : []),
      ...chunk
        .filter((r) => !index.has(r.id))
        .map((r) => ({ id: r.id, line: r.line, reason: whyNotScored(r, failures, head) })),
    ];
    const written = await writePart(store, job.job, part, lines, errors);
    out.outputs.push(written.output);
    out.errors.push(written.errors);
    out.counts.succeeded += lines.length;
    out.counts.failed += errors.length;
    if (await cancelled(store, job.job)) return undefined;
    await setProgress(store, job.job, "scoring", rejected.length + start + chunk.length, total);
  }
  return out;
}

async function predictRows(
  head: LoadedHead,
  rows: readonly DatasetRow[],
  index: Map<string, number>,
  data: EmbeddedDataset,
  job: BatchJob,
): Promise<PredictionLine[]> {
  if (rows.length === 0) return [];
  const dim = data.dim;
  if (dim !== head.doc.backbone.dim) {
    throw new HeadstartError(
      "internal",
      `cached vectors have ${dim} values; the head expects ${head.doc.backbone.dim}`,
    );
  }
  const vectors = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => {
    const at = index.get(r.id)! * dim;
    vectors.set(data.vectors.subarray(at, at + dim), i * dim);
  });
  const predictions = await predictVectors(head, vectors, rows.length);
  return rows.map((r, i) => predictionLine(job.job, r, predictions[i], job.version));
}

/**
 * The input's lines that ingest refused (a blank text, a bad file path…) as error rows: named by
 * their id, or `line-<n>` when they had none or repeated an accepted row's id (as ingest names
 * rows without one), so every line of the input is reported once. Ingest lists the first 1,000.
 */
async function rejectedRows(
  store: ObjectStore,
  job: BatchJob,
  rows: readonly DatasetRow[],
): Promise<ErrorLine[]> {
  const status = await readDatasetStatus(store, job.input.dataset);
  if (status?.version !== job.input.datasetVersion) return [];
  const ids = new Set(rows.map((r) => r.id));
  return status.rejected.map((r) => ({
    id: r.id !== undefined && !ids.has(r.id) ? r.id : `line-${r.line}`,
    line: r.line,
    reason: r.reason,
  }));
}

function whyNotScored(
  row: DatasetRow,
  failures: Map<string, { reason: string; message: string }>,
  head: LoadedHead,
): string {
  const failure = failures.get(row.id);
  if (failure) return `${failure.reason}: ${failure.message}`;
  return `the row is ${modalityOf(row)}; head ${head.doc.head} (backbone ${head.doc.backbone.id}) cannot embed it`;
}

async function setProgress(store: ObjectStore, job: string, phase: "scoring", done: number, total: number) {
  await updateBatchJob(store, job, (j) =>
    j.status === "running" ? { progress: { phase, rowsDone: done, rowsTotal: total } } : undefined,
  );
}
