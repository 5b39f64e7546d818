/**
 * The platform's use cases over one store. CLI commands, HTTP routes and Lambda handlers are
 * thin adapters over these methods; nothing here knows how it was called.
 */
import { assertBackboneFits, defaultBackboneFor, recommendedBackbonesFor } from "./backbone/defaults.ts";
import {
  BUILT_IN_BACKBONES,
  listBackbones,
  loadEmbedder,
  publishBackbone,
  publishBuiltIn,
  resolveBackbone,
} from "./backbone/registry.ts";
import type { BackboneSpec } from "./backbone/spec.ts";
import { cachedFailures, listCommits } from "./cache/shards.ts";
import { type Config, configToEnv, RECOMMENDED, RECOMMENDED_BACKBONES } from "./config.ts";
import type { SkippedEntry } from "./datasets/folder-manifest.ts";
import { ingestDataset, putManifest, readDatasetStatus, uploadDataset } from "./datasets/ingest.ts";
import type { DatasetStatus } from "./datasets/status.ts";
import { isCompositeRef, parseBackboneRef, partsOf } from "./embed/composite.ts";
import { exportDataset } from "./embed/export.ts";
import { type ImportInput, type ImportResult, importEmbeddings } from "./embed/import-embeddings.ts";
import { type EmbedJob, readJob } from "./embed/job.ts";
import { embedJobId, planEmbedJob } from "./embed/plan.ts";
import type { EmbedProgress, RunShardsResult } from "./embed/run.ts";
import { NotFoundError, ValidationError } from "./errors.ts";
import {
  batchJobEvent,
  driftDetectedEvent,
  embedJobEvent,
  headPromotedEvent,
  headTrainedEvent,
} from "./events/builders.ts";
import { Notifier, type NotifierOptions } from "./events/notifier.ts";
import type { FeedbackInputBody } from "./feedback/files.ts";
import type { StoredExport } from "./heads/export-store.ts";
import type { PredictInput, Prediction } from "./heads/predict.ts";
import type { TrainResult } from "./heads/train.ts";
import type { TrainDispatcher, TrainRequest } from "./heads/train-dispatch.ts";
import type { TrainOptions } from "./heads/train-request.ts";
import {
  type HeadDocument,
  listVersions,
  parseHeadRef,
  readAlias,
  readHeadVersion,
  resolveHeadRef,
  resolveHeadRefCached,
  rollbackAlias,
  setAlias,
} from "./heads/version.ts";
import { type JobRunner, LocalJobRunner } from "./jobs/runner.ts";
import { assertName, assertUserDatasetName } from "./layout.ts";
import type { BatchDispatcher } from "./predictions/dispatch.ts";
import type { BatchJob } from "./predictions/job.ts";
import type { BatchStart } from "./predictions/start.ts";
import { randomHex } from "./random-hex.ts";
import type { ObjectStore } from "./store/types.ts";

/**
 * Heads (training, predict, export) run onnxruntime and sharp: they are loaded on first use, so an
 * entry point that never trains or predicts (the ingest and job-complete Lambdas) never loads
 * them, and its bundle keeps them in chunks it does not read.
 */
const trainModule = () => import("./heads/train.ts");
const trainValidateModule = () => import("./heads/train-validate.ts");
const trainZeroShotModule = () => import("./heads/train-zero-shot.ts");
const backboneCandidatesModule = () => import("./heads/backbone-candidates.ts");
/**
 * Memoized: under a module loader with hooks (tsx, the local server), every `import()` call pays a
 * round trip to the hooks' thread even for a module already loaded (≈ 1 ms of a predict request).
 */
let predictModulePromise: Promise<typeof import("./heads/predict.ts")> | undefined;
const predictModule = () => (predictModulePromise ??= import("./heads/predict.ts"));
/** Label issues cross-validate heads: loaded on first use like training. */
const labelIssuesModule = () => import("./quality/label-issues.ts");
/** Batch predictions score with the heads' modules: loaded on first use for the same reason. */
const predictionsModule = async () => ({
  ...(await import("./predictions/job.ts")),
  ...(await import("./predictions/start.ts")),
  ...(await import("./predictions/run.ts")),
});

export interface PlatformOptions {
  /** Where `submit`ted embedding jobs run; the local worker by default. */
  runner?: JobRunner;
  onProgress?: (event: EmbedProgress) => void;
  onJobError?: (job: string, err: unknown) => void;
  /** Hands training requests elsewhere (the train Lambda) instead of training in this process. */
  trainDispatcher?: TrainDispatcher;
  /** Hands started batch-prediction jobs to another process (a Lambda) instead of this one's background. */
  batchDispatcher?: BatchDispatcher;
  /** How submitted jobs run when no runner is given: in this process, or in a worker process. */
  worker?: "inline" | "process";
  /** How events reach the registered webhooks (events/notifier.ts): by default awaited, within 5 s. */
  notifications?: NotifierOptions;
}

/** How one training runs: cancelled by `signal` (a client that went away), within `maxSeconds`. */
export interface TrainRun {
  signal?: AbortSignal;
  maxSeconds?: number;
}

export interface PredictRequest {
  /** Texts (a string or `{ text }`), images (`{ image }` base64 or bytes) or `{ imageKey }` in this store. */
  inputs?: PredictInput[];
  embeddings?: number[][];
  version?: string;
  alias?: string;
  /** Also return the k most similar training items per input. */
  neighbors?: number;
  /** Answer the label `unknown` for inputs above the version's unknown-input threshold. */
  rejectUnknown?: boolean;
}

/** What the retrain policy did: the new version, and whether it went live (else why not). */
export interface RetrainOutcome {
  version: string;
  promoted: boolean;
  reason?: string;
  heldOut?: import("./feedback/policy.ts").HeldOutComparison;
  feedback?: TrainResult["feedback"];
}

/** An online prediction: every one has an id, which a correction may name. */
export type IdentifiedPrediction = Prediction & { predictionId: string };

/** A correction (`POST /v1/heads/{head}/feedback`): the prediction or its input, and the right label. */
export interface FeedbackRequest {
  predictionId?: string;
  input?: FeedbackInputBody;
  label: unknown;
}

/** A batch job as the API starts it: the rows of a dataset, or of a manifest already in the store. */
export type BatchRequest = Omit<BatchStart, "dataset" | "source"> & {
  dataset?: string;
  manifestKey?: string;
};

export class Platform {
  /** Runs jobs on this machine: `embed()` always, and submitted jobs unless a `runner` is given. */
  readonly local: LocalJobRunner;
  readonly runner: JobRunner;
  readonly trainDispatcher?: TrainDispatcher;
  readonly batchDispatcher?: BatchDispatcher;
  /** Delivers the platform's events to the webhooks registered in this store. */
  readonly notifier: Notifier;
  private predictLoaded = false;
  private readonly onJobError?: (job: string, err: unknown) => void;
  private readonly batchRuns = new Set<Promise<unknown>>();
  private readonly captureWrites = new Set<Promise<unknown>>();
  /** Where a failed capture is told: the notifications' logger (bootstrap gives one; the CLI none). */
  private readonly captureLog?: NotifierOptions["log"];

  constructor(
    readonly store: ObjectStore,
    readonly config: Config,
    opts: PlatformOptions = {},
  ) {
    this.notifier = new Notifier(store, opts.notifications);
    this.captureLog = opts.notifications?.log;
    // One local runner, so every job of this process shares one queue and one in-flight map.
    this.local = new LocalJobRunner(store, {
      onFinished: (job) => this.notifyJobEnded(job),
      embedderFor: (id) => loadEmbedder(store, id, config),
      mode: opts.worker ?? "inline",
      workerEnv: { ...process.env, ...configToEnv(config) },
      onProgress: opts.onProgress,
      onError: opts.onJobError,
      leaseTtlMs: config.leaseTtlSeconds * 1000,
    });
    this.runner = opts.runner ?? this.local;
    this.trainDispatcher = opts.trainDispatcher;
    this.batchDispatcher = opts.batchDispatcher;
    this.onJobError = opts.onJobError;
  }

  backbone(id = this.config.defaultBackbone): Promise<BackboneSpec> {
    return resolveBackbone(this.store, id, this.config);
  }

  listBackbones(): Promise<BackboneSpec[]> {
    return listBackbones(this.store);
  }

  addBackbone(dir: string): Promise<BackboneSpec> {
    return publishBackbone(this.store, dir);
  }

  /**
   * Builds built-in backbones on this machine and publishes them to the store (all by default):
   * how a deployed customer's bucket gets them, since its Lambdas never build.
   */
  async publishBuiltIns(ids: readonly string[] = BUILT_IN_BACKBONES): Promise<BackboneSpec[]> {
    const out: BackboneSpec[] = [];
    for (const id of ids) out.push(await publishBuiltIn(this.store, id, this.config.modelsDir));
    return out;
  }

  /** Uploads a local manifest (or directory) like a bucket upload would, then ingests it. */
  /**
   * Uploads a manifest, a directory with a manifest and `files/`, or a labelled folder of images
   * or audio files (`<label>/<file>`), then ingests it. `skipped` lists folder entries that were not uploaded.
   */
  async upload(dataset: string, localPath: string): Promise<DatasetStatus & { skipped?: SkippedEntry[] }> {
    assertUserDatasetName(dataset);
    return this.uploadAs(dataset, localPath);
  }

  /** `upload` under any valid name: also the platform's own (`bp-input-…`, see `uploadBatchInput`). */
  private async uploadAs(dataset: string, localPath: string) {
    assertName("dataset", dataset, "dataset");
    const { manifestKey, skipped } = await uploadDataset(this.store, dataset, localPath);
    const status = await ingestDataset(this.store, dataset, { manifestKey });
    return skipped ? { ...status, skipped } : status;
  }

  /** Puts manifest bytes into the store (the API's upload path), then ingests them. */
  async putManifest(
    dataset: string,
    format: "jsonl" | "csv",
    body: Uint8Array | string,
  ): Promise<DatasetStatus> {
    assertUserDatasetName(dataset);
    const manifestKey = await putManifest(this.store, dataset, format, body);
    return ingestDataset(this.store, dataset, { manifestKey });
  }

  ingest(dataset: string, manifestKey?: string): Promise<DatasetStatus> {
    return ingestDataset(this.store, dataset, { manifestKey });
  }

  /**
   * Vectors computed elsewhere become the dataset's rows and its cache under the external
   * backbone `input.backbone`; train on them with `backbone: input.backbone`.
   */
  async importEmbeddings(dataset: string, input: ImportInput): Promise<ImportResult> {
    assertUserDatasetName(dataset);
    return importEmbeddings(this.store, dataset, input);
  }

  /**
   * The backbone an embedding of `dataset`'s current rows would use: the named one or the
   * default of the rows' modality, runnable here and fitting those rows (checked before a job is
   * planned).
   */
  async embeddingBackbone(dataset: string, ref?: string): Promise<BackboneSpec> {
    const status = await readDatasetStatus(this.store, dataset);
    const spec = await this.embeddable(dataset, ref ?? defaultBackboneFor(status, this.config));
    assertBackboneFits(status, spec, this.config);
    return spec;
  }

  /**
   * What can be checked of a named backbone before new rows are ingested (an upload): that it
   * exists and headstart can run it. Whether it fits the rows' modality, and the default when
   * none is named, follow from the rows, so `embeddingBackbone` decides those after ingest.
   */
  async checkEmbeddable(dataset: string, ref: string | undefined): Promise<void> {
    if (ref !== undefined) await this.embeddable(dataset, ref);
  }

  /** One backbone (not a `+` combination) that exists and that headstart can run. */
  private async embeddable(dataset: string, ref: string): Promise<BackboneSpec> {
    if (isCompositeRef(ref)) {
      // Each part has its own cache; a set of backbones is only combined at training.
      const parts = parseBackboneRef(ref);
      throw new ValidationError(
        `embed with one backbone at a time (${parts.map((p) => `\`headstart embed ${dataset} --backbone ${p}\``).join(", then ")}), ` +
          `then train with --backbone ${ref}`,
        { field: "backbone" },
      );
    }
    const spec = await this.backbone(ref);
    if (spec.kind === "external") {
      throw new ValidationError(
        `backbone ${spec.id} holds imported embeddings; headstart cannot compute them: ` +
          `run \`headstart import-embeddings ${dataset} --backbone ${spec.id}\` with your vectors`,
        { field: "backbone" },
      );
    }
    return spec;
  }

  /**
   * The dataset's default backbone where none is named — or, for `auto`, every backbone cached for
   * its current rows and their sets — refusing one that cannot embed its rows.
   */
  private async trainingBackbones(opts: TrainOptions): Promise<TrainOptions> {
    const status = await readDatasetStatus(this.store, opts.dataset);
    const named = opts.backbone !== undefined || opts.backbones !== undefined;
    if (!named && opts.type === "auto" && !opts.withFeedback && status) {
      const { backboneSets, cachedBackbones } = await backboneCandidatesModule();
      const sets = backboneSets(await cachedBackbones(this.store, status, this.config.customer));
      if (sets.length > 1) return { ...opts, backbones: sets };
      if (sets.length === 1) return { ...opts, backbone: sets[0] };
    }
    const backbone = named ? opts.backbone : defaultBackboneFor(status, this.config);
    const refs = opts.backbones ?? (backbone === undefined ? [] : [backbone]);
    for (const ref of refs) {
      for (const id of parseBackboneRef(ref, opts.backbones ? "backbones" : "backbone")) {
        const spec = await this.backbone(id).catch(() => undefined); // unknown ids: refused later, by name
        if (spec) assertBackboneFits(status, spec, this.config);
      }
    }
    return backbone === undefined ? opts : { ...opts, backbone };
  }

  async planEmbed(
    dataset: string,
    opts: { backbone?: string; shardSize?: number; minShards?: number } = {},
  ): Promise<EmbedJob> {
    return planEmbedJob(this.store, dataset, await this.embeddingBackbone(dataset, opts.backbone), {
      shardSize: opts.shardSize,
      minShards: opts.minShards,
      customer: this.config.customer,
    });
  }

  /** Plans the dataset's embedding job and hands it to the configured runner. */
  async submitEmbed(
    dataset: string,
    opts: { backbone?: string; shardSize?: number } = {},
  ): Promise<EmbedJob> {
    return this.runner.submit(await this.planEmbed(dataset, { ...opts, minShards: this.minShards() }));
  }

  /** Every instance of a multi-instance SageMaker job should get at least one shard. */
  private minShards(): number | undefined {
    return this.config.runner === "sagemaker" ? this.config.sagemaker?.instanceCount : undefined;
  }

  /** Plans (or resumes) and runs the embedding job in this process, returning when it is done. */
  async embed(
    dataset: string,
    opts: { backbone?: string; shardSize?: number; signal?: AbortSignal } = {},
  ): Promise<{ job: EmbedJob; result: RunShardsResult }> {
    const job = await this.planEmbed(dataset, opts);
    const result = await this.local.run(job, opts.signal);
    return { job: (await readJob(this.store, job.job))!.value, result };
  }

  /**
   * The backbones a several-backbone embedding uses: `list`'s ids, or for `recommended` the set of
   * the rows' modality (`RECOMMENDED_BACKBONES`), each checked as `embeddingBackbone` checks one.
   */
  async embeddingBackbones(dataset: string, list: string[] | typeof RECOMMENDED): Promise<BackboneSpec[]> {
    const ids =
      list === RECOMMENDED
        ? recommendedBackbonesFor(await readDatasetStatus(this.store, dataset), RECOMMENDED_BACKBONES)
        : list;
    const specs: BackboneSpec[] = [];
    // One at a time: a built-in's first use converts its weights.
    for (const id of ids) specs.push(await this.embeddingBackbone(dataset, id));
    return specs;
  }

  /** What `checkEmbeddable` checks, for each backbone of a list (`recommended` follows from the rows). */
  async checkEmbeddables(dataset: string, list: string[] | typeof RECOMMENDED): Promise<void> {
    if (list === RECOMMENDED) return;
    for (const id of list) await this.embeddable(dataset, id);
  }

  /** One embedding job per backbone of `list` for the dataset's current rows, planned (or found). */
  private async planEmbeds(
    dataset: string,
    list: string[] | typeof RECOMMENDED,
    opts: { shardSize?: number; minShards?: number },
  ): Promise<EmbedJob[]> {
    const jobs: EmbedJob[] = [];
    for (const spec of await this.embeddingBackbones(dataset, list)) {
      jobs.push(await this.planEmbed(dataset, { ...opts, backbone: spec.id }));
    }
    return jobs;
  }

  /** Several backbones' jobs handed to the configured runner as one batch job (one SageMaker job). */
  async submitEmbeds(
    dataset: string,
    list: string[] | typeof RECOMMENDED,
    opts: { shardSize?: number } = {},
  ): Promise<EmbedJob[]> {
    return this.runner.submitAll(
      await this.planEmbeds(dataset, list, { ...opts, minShards: this.minShards() }),
    );
  }

  /**
   * What an upload notification starts: the default backbone's embedding job, or with
   * `uploadBackbones` (HEADSTART_UPLOAD_BACKBONES) one job per backbone as one batch job.
   */
  async submitUploadEmbedding(dataset: string): Promise<EmbedJob[]> {
    const list = this.config.uploadBackbones;
    return list ? this.submitEmbeds(dataset, list) : [await this.submitEmbed(dataset)];
  }

  /** `embed` with several backbones: one batch run in this process, each backbone's job in turn. */
  async embedAll(
    dataset: string,
    list: string[] | typeof RECOMMENDED,
    opts: { shardSize?: number; signal?: AbortSignal } = {},
  ): Promise<Array<{ job: EmbedJob; result: RunShardsResult }>> {
    const jobs = await this.planEmbeds(dataset, list, opts);
    const results = await this.local.runAll(jobs, opts.signal);
    return Promise.all(
      jobs.map(async (job, i) => ({ job: (await readJob(this.store, job.job))!.value, result: results[i] })),
    );
  }

  /**
   * Trains now, or — with a dispatcher — checks the request can start and hands it over,
   * answering `{accepted: true}`; the version then shows up under the head when done.
   */
  async requestTraining(
    opts: TrainRequest,
    run: TrainRun = {},
  ): Promise<{ accepted: true; head: string; dataset: string } | ({ accepted: false } & TrainResult)> {
    if (!this.trainDispatcher) return { accepted: false, ...(await this.train(opts, run)) };
    assertName("head", opts.head, "head");
    // Fail here, not silently in the background, on anything checkable without the data.
    (await trainValidateModule()).validateTrainOptions(opts);
    if (!(await readDatasetStatus(this.store, opts.dataset)))
      throw new NotFoundError(`dataset ${opts.dataset}`, { field: "dataset" });
    const resolved = await this.trainingBackbones(opts);
    if (opts.type === "zero-shot") {
      // The descriptions are embedded with the backbone: an image one cannot (checked before handing over).
      const { checkZeroShotBackbones } = await import("./heads/zero-shot-labels.ts");
      checkZeroShotBackbones(await this.backboneParts(resolved.backbone));
    }
    await this.trainDispatcher.dispatch(opts);
    return { accepted: true, head: opts.head, dataset: opts.dataset };
  }

  /**
   * The specs of a backbone reference's parts in order (`a+b` → [a, b]). A part that does not
   * exist is a bad reference (400) rather than a missing resource, so the message names it.
   */
  async backboneParts(ref = this.config.defaultBackbone, field = "backbone"): Promise<BackboneSpec[]> {
    const ids = parseBackboneRef(ref, field);
    if (ids.length === 1) return [await this.backbone(ids[0])];
    const specs: BackboneSpec[] = [];
    for (const id of ids) {
      try {
        specs.push(await this.backbone(id));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        throw new ValidationError(`backbone ${ref}: part ${id} does not exist (${err.message})`, { field });
      }
    }
    return specs;
  }

  /** Trains within the configured budget (or `run.maxSeconds`, if less), stopping when `run.signal` aborts. */
  async train(request: TrainOptions, run: TrainRun = {}): Promise<TrainResult> {
    const [{ trainHead }, { validateTrainOptions }] = await Promise.all([
      trainModule(),
      trainValidateModule(),
    ]);
    validateTrainOptions(request); // before the backbone, whose first use may convert weights
    const opts = await this.trainingBackbones(request);
    const candidates = opts.backbones
      ? await Promise.all(opts.backbones.map((ref) => this.backboneParts(ref, "backbones")))
      : undefined;
    const specs = candidates ? candidates[0] : await this.backboneParts(opts.backbone);
    if (opts.withFeedback) await this.prepareFeedback(opts.head, specs);
    const limits = {
      maxSeconds: Math.min(this.config.trainMaxSeconds, run.maxSeconds ?? Number.POSITIVE_INFINITY),
      maxMemoryBytes: this.config.trainMaxMemoryMb * 2 ** 20,
      signal: run.signal,
    };
    const result =
      opts.type === "zero-shot"
        ? await (await trainZeroShotModule()).trainZeroShot(this.store, specs, opts, this.config, limits)
        : await trainHead(this.store, specs, opts, candidates, limits);
    const { head, version, type, task, promoted } = result;
    await Promise.all([
      this.notifier.emitFrom(() =>
        headTrainedEvent({ head, version, dataset: opts.dataset, type, task, promoted }),
      ),
      promoted ? this.notifyAliasMoved(head, "live", version) : undefined,
    ]);
    return result;
  }

  /**
   * The labelled rows of `dataset` that are probably labelled wrong, most suspect first: confident
   * learning over out-of-fold probabilities of the default head type, read from the cache of
   * `opts.backbone` (default: the dataset's, as training picks it), within the training budget.
   */
  async labelIssues(
    dataset: string,
    opts: import("./quality/label-issues.ts").LabelIssuesOptions & { backbone?: string } = {},
    run: TrainRun = {},
  ) {
    const status = await readDatasetStatus(this.store, dataset);
    if (!status) throw new NotFoundError(`dataset ${dataset}`, { field: "dataset" });
    const specs = await this.backboneParts(opts.backbone ?? defaultBackboneFor(status, this.config));
    const { findLabelIssues } = await labelIssuesModule();
    return findLabelIssues(this.store, dataset, specs, opts, {
      maxSeconds: Math.min(this.config.trainMaxSeconds, run.maxSeconds ?? Number.POSITIVE_INFINITY),
      maxMemoryBytes: this.config.trainMaxMemoryMb * 2 ** 20,
      signal: run.signal,
    });
  }

  /** `headRef` is `head`, `head@version` or `head:alias`; `req.version`/`req.alias` say the same. */
  async predict(
    headRef: string,
    req: PredictRequest,
  ): Promise<{ head: string; version: string; predictions: IdentifiedPrediction[] }> {
    if ((req.inputs === undefined) === (req.embeddings === undefined)) {
      throw new ValidationError("send exactly one of inputs, embeddings", { field: "inputs" });
    }
    const ref = parseHeadRef(headRef);
    const version = req.version ?? ref.version;
    const alias = req.alias ?? ref.alias;
    if (version !== undefined && alias !== undefined) {
      throw new ValidationError("name a version or an alias, not both", { field: "alias" });
    }
    const head = ref.head;
    // On a cold start the predict module (heads, numerics) loads while the head's alias and
    // version document are read; warm, it is already there and the version document cached.
    const coldStart = !this.predictLoaded;
    const module = predictModule();
    module.catch(() => {}); // awaited below unless the head does not exist
    const v = version ?? (await resolveHeadRefCached(this.store, { head, alias }));
    const prefetched = coldStart ? readHeadVersion(this.store, head, v) : undefined;
    prefetched?.catch(() => {}); // surfaced by loadHead
    const { embeddingsToVectors, embedInputs, loadHead, predictVectors, readPredictInputs } = await module;
    this.predictLoaded = true;
    const loaded = await loadHead(this.store, head, v, undefined, prefetched);
    const n = req.inputs ? req.inputs.length : req.embeddings!.length;
    const vectors = req.inputs
      ? await embedInputs(this.store, loaded, await readPredictInputs(this.store, req.inputs), this.config)
      : embeddingsToVectors(loaded, req.embeddings!);
    const predictions: IdentifiedPrediction[] = (
      await predictVectors(loaded, vectors, n, { rejectUnknown: req.rejectUnknown })
    ).map((p) => Object.assign(p, { predictionId: `p-${randomHex(12)}` }));
    if (req.inputs && loaded.doc.capture) this.capture(loaded.doc, req.inputs, predictions);
    if (req.neighbors !== undefined) {
      const { MAX_NEIGHBORS, neighborIndex } = await import("./heads/neighbors.ts");
      if (!Number.isInteger(req.neighbors) || req.neighbors < 1 || req.neighbors > MAX_NEIGHBORS) {
        throw new ValidationError(`neighbors must be an integer in 1..${MAX_NEIGHBORS}`, {
          field: "neighbors",
        });
      }
      const parts = await Promise.all(
        partsOf(loaded.doc.backbone).map((p) => resolveBackbone(this.store, p.id, this.config)),
      );
      const index = await neighborIndex(this.store, loaded.doc, parts);
      const dim = loaded.doc.backbone.dim;
      predictions.forEach((p, i) => {
        p.neighbors = index.query(vectors.subarray(i * dim, (i + 1) * dim), req.neighbors!);
      });
    }
    return { head, version: loaded.doc.version, predictions };
  }

  /**
   * Keeps the inputs of online predictions the version asks for (`capture`), after the answer:
   * a failed write is logged, never the prediction's failure, and never waited for.
   */
  private capture(doc: HeadDocument, inputs: readonly PredictInput[], predictions: readonly Prediction[]) {
    const texts = inputs.map((i) => (typeof i === "string" ? i : "text" in i ? i.text : undefined));
    const write = import("./feedback/capture.ts").then(({ capturesOf, writeCaptures }) =>
      writeCaptures(this.store, capturesOf(doc, texts, predictions)),
    );
    const log = this.captureLog;
    write.catch((err) => log?.warn("input not captured", { head: doc.head, error: (err as Error).message }));
    this.captureWrites.add(write);
    write.finally(() => this.captureWrites.delete(write)).catch(() => {});
  }

  /** Resolves when the captures of the predictions answered so far are written (or failed). */
  async captureIdle(): Promise<void> {
    while (this.captureWrites.size > 0) await Promise.allSettled([...this.captureWrites]);
  }

  /**
   * A correction of one of the head's predictions: `predictionId` (resolved to its input) or
   * `input` (a text, or an image or audio file: base64 or a bucket key), and the label it should have had, checked against the live version's task and
   * classes. Stored as a create-only record; `train --with-feedback` trains on it.
   */
  async addFeedback(head: string, req: FeedbackRequest) {
    const { checkLabel, createFeedback, newFeedbackId } = await import("./feedback/records.ts");
    assertName("head", head, "head");
    const { head: doc } = await readHeadVersion(this.store, head, await resolveHeadRef(this.store, { head }));
    const label = checkLabel(doc, req.label);
    const { assertHeadTakes, putFeedbackFile } = await import("./feedback/files.ts");
    if (req.input !== undefined) await assertHeadTakes(this.store, doc, req.input);
    const input = await this.feedbackInput(head, req);
    // Everything is checked above; only now is anything written (the file first, then the record).
    const stored = "text" in input ? { text: input.text } : await putFeedbackFile(this.store, head, input);
    const { predictionId } = req;
    const record = { id: newFeedbackId(), head, ...(predictionId ? { predictionId } : {}), ...stored, label };
    return createFeedback(this.store, { ...record, createdAt: new Date().toISOString() });
  }

  private async feedbackInput(head: string, req: FeedbackRequest) {
    const { input, predictionId } = req;
    if (input === undefined && predictionId === undefined) {
      throw new ValidationError("send predictionId or input with the label", { field: "input" });
    }
    const { readFeedbackInput } = await import("./feedback/files.ts");
    if (input === undefined) {
      const { resolvePrediction } = await import("./feedback/resolve.ts");
      return readFeedbackInput(this.store, await resolvePrediction(this.store, head, predictionId!));
    }
    return readFeedbackInput(this.store, input);
  }

  async listFeedback(head: string) {
    const { listFeedback } = await import("./feedback/records.ts");
    return listFeedback(this.store, assertName("head", head, "head"));
  }

  async deleteFeedback(head: string, id: string) {
    const { deleteFeedback } = await import("./feedback/records.ts");
    return deleteFeedback(this.store, assertName("head", head, "head"), id);
  }

  /**
   * The retrain policy: trains on the live version's settings plus the feedback without promoting,
   * then promotes the new version only if it scores at least as well as the live one on held-out
   * rows (feedback/policy.ts); otherwise the alias stays, and the answer says why.
   */
  async retrainWithFeedback(head: string): Promise<RetrainOutcome> {
    const { compareOnHeldOut, retrainRequest } = await import("./feedback/policy.ts");
    const live = (await readHeadVersion(this.store, head, await resolveHeadRef(this.store, { head }))).head;
    const trained = await this.train(retrainRequest(live));
    const { version, feedback } = trained;
    const specs = await this.backboneParts(live.backbone.id);
    const heldOut = await compareOnHeldOut(this.store, live, version, specs);
    const at = (v: number) => (heldOut?.metric === "rmse" ? v.toPrecision(4) : v.toFixed(4));
    const reason = !heldOut
      ? `dataset ${live.dataset.name} has no test rows to compare on; promote ${version} by hand if it should win`
      : !heldOut.atLeastAsGood
        ? `${heldOut.metric} on ${heldOut.rows} held-out rows: ${at(heldOut.candidate.value)} against the live version's ${at(heldOut.live.value)}`
        : undefined;
    if (reason) return { version, promoted: false, reason, heldOut, feedback };
    await this.promote(head, version, live.version);
    return { version, promoted: true, heldOut, feedback };
  }

  /** `withFeedback`: the head's feedback written as its dataset and embedded with each part. */
  private async prepareFeedback(head: string, specs: readonly BackboneSpec[]): Promise<void> {
    const { materializeFeedback } = await import("./feedback/materialize.ts");
    const { dataset } = await materializeFeedback(this.store, head);
    for (const spec of specs) await this.embed(dataset, { backbone: spec.id });
  }

  /**
   * A head version as ONNX bytes (`head`, `head@version` or `head:alias`); `fused` puts its backbone
   * in front so the model takes the backbone's inputs. See heads/export-onnx.ts for the contract.
   */
  async exportHead(
    headRef: string,
    opts: { fused?: boolean } = {},
  ): Promise<{ head: string; version: string; fused: boolean; filename: string; bytes: Uint8Array }> {
    const ref = parseHeadRef(headRef);
    const version = await resolveHeadRef(this.store, ref);
    const { head: doc } = await readHeadVersion(this.store, ref.head, version);
    const fused = opts.fused ?? false;
    const { exportFilename, fusedToOnnx, headToOnnx } = await import("./heads/export-onnx.ts");
    const bytes = fused ? await fusedToOnnx(this.store, doc, this.config) : headToOnnx(doc);
    return { head: doc.head, version: doc.version, fused, filename: exportFilename(doc, fused), bytes };
  }

  /**
   * `exportHead` for an HTTP response: a model of at most `exportInlineMaxBytes` comes back as
   * bytes; a larger one is stored (heads/export-store.ts) and comes back as that object, which a
   * repeat export finds without rebuilding the model.
   */
  async exportHeadForResponse(
    headRef: string,
    opts: { fused?: boolean } = {},
  ): Promise<
    | { head: string; version: string; fused: boolean; filename: string; bytes: Uint8Array }
    | { head: string; version: string; fused: boolean; filename: string; stored: StoredExport }
  > {
    const ref = parseHeadRef(headRef);
    const version = await resolveHeadRef(this.store, ref);
    const fused = opts.fused ?? false;
    const limit = this.config.exportInlineMaxBytes;
    const { findStoredExport, storeExport } = await import("./heads/export-store.ts");
    const found = await findStoredExport(this.store, ref.head, version, fused);
    const filename = `${ref.head}-${version}${fused ? "-fused" : ""}.onnx`;
    if (found && found.bytes > limit) return { head: ref.head, version, fused, filename, stored: found };
    const out = await this.exportHead(`${ref.head}@${version}`, { fused });
    if (out.bytes.byteLength <= limit) return out;
    const stored = await storeExport(this.store, out.head, out.version, fused, out.bytes);
    return { head: out.head, version: out.version, fused, filename: out.filename, stored };
  }

  async export(dataset: string, outDir: string, backbone?: string) {
    const status = await readDatasetStatus(this.store, dataset);
    const spec = await this.backbone(backbone ?? defaultBackboneFor(status, this.config));
    return exportDataset(this.store, dataset, spec, outDir);
  }

  async datasetInfo(dataset: string, named?: string) {
    assertName("dataset", dataset, "dataset");
    const status = await readDatasetStatus(this.store, dataset);
    if (!status) throw new NotFoundError(`dataset ${dataset}`, { field: "dataset" });
    // A dataset of text and images has no single default: report the text one's cache then.
    const backbone = named ?? defaultBackboneFor(status, this.config, { mixed: "text" });
    const commits = await listCommits(this.store, backbone, dataset);
    const spec = await this.backbone(backbone).catch(() => undefined);
    const job =
      spec && status.version
        ? (
            await readJob(
              this.store,
              embedJobId(this.store.url, dataset, spec, status.version, this.config.customer),
            )
          )?.value
        : undefined;
    const committed = job ? commits.filter((c) => job.shards.includes(c.shard)).length : 0;
    const failures = await cachedFailures(this.store, backbone, dataset);
    return {
      status,
      embedding: {
        backbone,
        cachedItems: commits.reduce((s, c) => s + c.count, 0),
        job: job && { ...job, shardsCommitted: committed },
        failedItems: failures.length,
        // Files that could not be embedded, first ones: fix or remove them and upload again.
        failures: failures.slice(0, 100).map(({ id, reason, message }) => ({ id, reason, message })),
      },
    };
  }

  async headInfo(head: string) {
    const alias = await readAlias(this.store, head);
    if (!alias) throw new NotFoundError(`head ${head}`, { field: "head" });
    const { head: doc, report } = await readHeadVersion(this.store, head, alias.value.version);
    const { model: _model, ...summary } = doc;
    return {
      head,
      live: alias.value.version,
      versions: await listVersions(this.store, head),
      current: summary,
      report,
    };
  }

  async headVersion(head: string, version: string) {
    const { head: doc, report } = await readHeadVersion(this.store, head, version);
    const { model: _model, ...summary } = doc;
    return { ...summary, report };
  }

  /**
   * A version's stored report with its head document (whose labels order the classes); `head` may be
   * `head`, `head@version` or `head:alias` when no version is given.
   */
  async headReport(head: string, version?: string) {
    const ref = version === undefined ? parseHeadRef(head) : { head, version };
    const v = await resolveHeadRef(this.store, ref);
    const { head: doc, report } = await readHeadVersion(this.store, ref.head, v);
    if (!report) throw new NotFoundError(`report of head ${ref.head} version ${v}`, { field: "version" });
    return { head: doc, report };
  }

  async promote(head: string, version: string, expectedVersion?: string | null, alias = "live") {
    await setAlias(this.store, head, version, { expectedVersion, alias });
    await this.notifyAliasMoved(head, alias, version);
  }

  async rollback(head: string, alias = "live") {
    const moved = await rollbackAlias(this.store, head, alias);
    await this.notifyAliasMoved(head, alias, moved.to);
    return moved;
  }

  /**
   * A drift check (quality/drift.ts): `reference` a dataset or a head, `current` a dataset or
   * `capture:<head>`. One about a head that finds drift emits `drift.detected`.
   */
  async checkDrift(req: import("./quality/drift.ts").DriftRequest) {
    const result = await this.measureDrift(req);
    const checkedAt = new Date().toISOString();
    await this.notifier.emitFrom(() => driftDetectedEvent(result, checkedAt));
    return { ...result, checkedAt };
  }

  private async measureDrift(req: import("./quality/drift.ts").DriftRequest) {
    const { checkDrift } = await import("./quality/drift.ts");
    return checkDrift(this.store, this.config, req, (ref, field) => this.backboneParts(ref, field));
  }

  /**
   * One round of the scheduled drift check (quality/drift-schedule.ts), as the local server's
   * timer and the drift-check Lambda run it: every head capturing all its inputs, with enough of
   * them in the window, against its training data; `drift.detected` only for drift that is news.
   */
  async checkCapturingHeads(opts: import("./quality/drift-schedule.ts").ScheduleOptions = {}) {
    const { checkCapturingHeads } = await import("./quality/drift-schedule.ts");
    const deps = {
      check: (req: import("./quality/drift.ts").DriftRequest) => this.measureDrift(req),
      emit: (result: import("./quality/drift.ts").DriftResult, checkedAt: string) =>
        this.notifier.emitFrom(() => driftDetectedEvent(result, checkedAt)),
    };
    return checkCapturingHeads(this.store, deps, { windowDays: this.config.driftWindowDays, ...opts });
  }

  /** `head.promoted` for the alias's last move to `version`, as its history records it. */
  private notifyAliasMoved(head: string, alias: string, version: string): Promise<void> {
    return this.notifier.emitFrom(async () => {
      const history = (await readAlias(this.store, head, alias))?.value.history ?? [];
      const move = history.findLast((m) => m.version === version);
      return move && headPromotedEvent(head, alias, move);
    });
  }

  /**
   * `dataset.embedded` / `dataset.failed` for an embedding job that ended (a job id, or its
   * record): the local runner calls it, and the job-complete Lambda for SageMaker jobs.
   */
  notifyJobEnded(job: string | EmbedJob): Promise<void> {
    return this.notifier.emitFrom(async () => {
      const record = typeof job === "string" ? (await readJob(this.store, job))?.value : job;
      return record && embedJobEvent(record);
    });
  }

  /**
   * Starts (or finds: the id follows from the head version and the rows' content) the batch
   * job scoring a dataset's current rows with a head; see predictions/start.ts.
   */
  async startBatchPrediction(req: BatchStart): Promise<{ job: BatchJob; created: boolean }> {
    const { startBatchJob } = await predictionsModule();
    return startBatchJob(this.store, req);
  }

  /** Runs a queued batch job here to its end; a job running elsewhere or finished is answered as it is. */
  async runBatchPrediction(job: string): Promise<BatchJob> {
    const { runBatchJob } = await predictionsModule();
    const ran = runBatchJob(
      {
        store: this.store,
        backbone: (id) => this.backbone(id),
        embed: async (dataset, spec) => {
          await this.embed(dataset, { backbone: spec.id });
        },
        // A runner other than this process's (SageMaker): submit and park, continued on the job's end.
        remote:
          this.runner === this.local
            ? undefined
            : {
                plan: (dataset, spec) =>
                  this.planEmbed(dataset, { backbone: spec.id, minShards: this.minShards() }),
                submit: (embedJob) => this.runner.submit(embedJob),
              },
      },
      job,
    );
    // batch.succeeded / batch.failed once it ended (also when it throws: its record says how).
    await ran.then(
      (done) => this.notifier.emitFrom(() => batchJobEvent(done)),
      () => this.notifier.emitFrom(async () => batchJobEvent(await this.batchPrediction(job))),
    );
    return ran;
  }

  /**
   * After embedding job `embedJob` ended (the job-complete Lambda): continues every batch job
   * parked on it (see predictions/run.ts), one after the other, and drops the markers of those
   * that no longer wait for it; a repeated call finds nothing left to do.
   */
  async continueBatchPredictions(embedJob: string): Promise<BatchJob[]> {
    const { isWaiting } = await predictionsModule();
    const { waitersOf, removeWaiter } = await import("./predictions/waits.ts");
    const out: BatchJob[] = [];
    for (const id of await waitersOf(this.store, embedJob)) {
      const job = await this.runBatchPrediction(id).catch((err) => {
        if (err instanceof NotFoundError) return undefined; // deleted since: nothing to continue
        throw err;
      });
      if (!job || !isWaiting(job) || !job.waitingFor?.includes(embedJob)) {
        await removeWaiter(this.store, embedJob, id);
      }
      if (job) out.push(job);
    }
    return out;
  }

  /**
   * The API's start: the job's record now, and a queued job handed to the batch dispatcher (the
   * job-complete Lambda, in AWS) or run in this process in the background (the local server's
   * worker; `onJobError` hears of a run that throws).
   */
  async submitBatchPrediction(req: BatchRequest): Promise<BatchJob> {
    const { job } = await this.startBatchPrediction(await this.batchStart(req));
    if (job.status === "queued" && this.batchDispatcher) {
      await this.batchDispatcher.dispatch(job.job);
    } else if (job.status === "queued") {
      const run = this.runBatchPrediction(job.job).catch((err) => this.onJobError?.(job.job, err));
      this.batchRuns.add(run);
      run.finally(() => this.batchRuns.delete(run));
    }
    return job;
  }

  /**
   * A request naming a dataset or a manifest in the store (`manifestKey`, ingested as a dataset of
   * its own: predictions/input.ts). The head is resolved first, so a request that names no usable
   * head ingests nothing.
   */
  private async batchStart(req: BatchRequest): Promise<BatchStart> {
    const { manifestKey, ...rest } = req;
    if ((req.dataset === undefined) === (manifestKey === undefined)) {
      throw new ValidationError("send exactly one of dataset, manifestKey", { field: "dataset" });
    }
    if (manifestKey === undefined) return { ...rest, dataset: req.dataset!, source: "dataset" };
    if (req.version !== undefined && req.alias !== undefined) {
      throw new ValidationError("name a version or an alias, not both", { field: "alias" });
    }
    await readHeadVersion(this.store, req.head, await resolveHeadRef(this.store, req));
    const { ingestManifestKey } = await import("./predictions/input.ts");
    return { ...rest, dataset: await ingestManifestKey(this.store, manifestKey), source: "manifest" };
  }

  /** Resolves when every batch job this process started in the background has stopped. */
  async batchIdle(): Promise<void> {
    while (this.batchRuns.size > 0) await Promise.allSettled([...this.batchRuns]);
  }

  async batchPrediction(job: string): Promise<BatchJob> {
    const { requireBatchJob } = await predictionsModule();
    return requireBatchJob(this.store, assertName("job", job, "job"));
  }

  async cancelBatchPrediction(job: string): Promise<BatchJob> {
    const { cancelBatchJob } = await predictionsModule();
    await this.batchPrediction(job);
    return cancelBatchJob(this.store, job);
  }

  /** A finished batch job's parts as `predictions.jsonl` and `errors.jsonl` in `outDir`. */
  async exportPredictions(job: string, outDir: string) {
    const { exportPredictions } = await import("./predictions/export.ts");
    return exportPredictions(this.store, assertName("job", job, "job"), outDir);
  }

  /**
   * A finished batch job's parts, each with a URL to GET it from: presigned where the store
   * issues URLs (S3), else `localUrl(name)`, the server's own route for the part (predictions/files.ts).
   */
  async batchPredictionFiles(head: string, job: string, localUrl: (name: string) => string) {
    const { listBatchFiles } = await import("./predictions/files.ts");
    return listBatchFiles(this.store, head, assertName("job", job, "job"), localUrl);
  }

  /** One part of a finished batch job of `head`, by name (`part-00000.jsonl`), streamed. */
  async openBatchPredictionFile(head: string, job: string, name: string) {
    const { openBatchFile } = await import("./predictions/files.ts");
    return openBatchFile(this.store, head, assertName("job", job, "job"), name);
  }

  /**
   * A local manifest or folder as a batch job's input: uploaded and ingested once as the dataset
   * named after its content (`bp-input-<hash>`, see predictions/input.ts); answers that name.
   */
  async uploadBatchInput(localPath: string): Promise<string> {
    const { batchInputName } = await import("./predictions/input.ts");
    const dataset = await batchInputName(localPath);
    if ((await readDatasetStatus(this.store, dataset))?.version) return dataset;
    const status = await this.uploadAs(dataset, localPath);
    if (!status.version) {
      const first = status.rejected[0];
      throw new ValidationError(
        `${localPath}: no row could be read${first ? ` (line ${first.line}: ${first.reason})` : ""}`,
        { field: "input" },
      );
    }
    return dataset;
  }

  /**
   * Which of `dataset`'s unlabelled rows to label next (quality/suggest.ts): by a head's
   * uncertainty, by diversity, or both; without a head, a diverse seed set.
   */
  async suggest(dataset: string, req: import("./quality/suggest.ts").SuggestRequest = {}) {
    const { suggest } = await import("./quality/suggest.ts");
    assertName("dataset", dataset, "dataset");
    return suggest(
      {
        store: this.store,
        backbone: (id) => this.backbone(id),
        datasetBackbones: async (name, ref) =>
          this.backboneParts(
            ref ?? defaultBackboneFor(await readDatasetStatus(this.store, name), this.config),
          ),
      },
      dataset,
      req,
    );
  }

  /** Verifies the store and, with `repair`, fixes what is safe to fix (see doctor/index.ts). */
  async doctor(opts: { repair?: boolean; graceMs?: number } = {}) {
    const { runDoctor } = await import("./doctor/index.ts");
    return runDoctor(this.store, opts);
  }
}
