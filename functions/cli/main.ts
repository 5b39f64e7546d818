/**
 * `headstart` — the command line. Each command is a thin adapter over `Platform`; `--json`
 * prints exactly one JSON document on stdout. Exit codes: 0 ok, 2 bad input, 1 failure.
 */
import { readFile, writeFile } from "node:fs/promises";
import { Command, CommanderError, Option } from "commander";
import { MAX_EMBEDDINGS_BATCH, MAX_PREDICT_BATCH } from "../../shared/api/schemas.ts";
import { LOCAL_CUSTOMER, parseScopes, SCOPES } from "../../shared/auth/api-keys.ts";
import { type KeyInfo, KeyStore } from "../../shared/auth/key-store.ts";
import { decodeNpy } from "../../shared/cache/npy.ts";
import { type Config, loadConfig } from "../../shared/config.ts";
import { DEMO_DATASET, DEMO_HEAD, runDemo } from "../../shared/demo.ts";
import type { DoctorReport } from "../../shared/doctor/report.ts";
import type { RunShardsResult } from "../../shared/embed/run.ts";
import { HeadstartError, isUserError, ValidationError } from "../../shared/errors.ts";
import type { Prediction } from "../../shared/heads/predict.ts";
import { renderReportHtml } from "../../shared/heads/report-html.ts";
import { TASKS, type TrainResult } from "../../shared/heads/train.ts";
import { HEAD_KINDS } from "../../shared/learn/registry.ts";
import { type LogLevel, makeLogger } from "../../shared/log.ts";
import { openStore } from "../../shared/open-store.ts";
import { Platform } from "../../shared/platform.ts";
import { VERSION } from "../../shared/version.ts";
import { embedProgress } from "./progress.ts";
import { serveApi } from "./serve.ts";

interface GlobalOptions {
  store?: string;
  endpoint?: string;
  json?: boolean;
  logLevel?: LogLevel;
}

const program = new Command("headstart")
  .description("Transfer learning the cheap way: embed once, train small heads in seconds, serve them.")
  .version(VERSION, "-V, --version", "print the headstart version")
  .option(
    "--store <dir|s3://bucket>",
    "where datasets, cache and heads live (env HEADSTART_STORE; default ./.headstart)",
  )
  .option("--endpoint <url>", "S3-compatible endpoint for a non-AWS S3 store (env HEADSTART_S3_ENDPOINT)")
  .option("--json", "print one JSON document on stdout")
  .addOption(
    new Option("--log-level <level>", "log level").choices(["debug", "info", "warn", "error", "silent"]),
  )
  .showHelpAfterError()
  .exitOverride();

/** Set once the command's configuration is loaded; failures print stacks at `debug`. */
let activeLogLevel: LogLevel = "info";

function context(cmd: Command, worker: "inline" | "process" = "inline") {
  const g = cmd.optsWithGlobals() as GlobalOptions;
  const config: Config = loadConfig(process.env, {
    store: g.store,
    s3Endpoint: g.endpoint,
    logLevel: g.logLevel,
  });
  activeLogLevel = config.logLevel;
  const log = makeLogger("headstart-cli", config.logLevel);
  const progress = embedProgress(
    log,
    Boolean(process.stderr.isTTY) && !g.json && config.logLevel !== "silent",
  );
  const platform = new Platform(openStore(config), config, {
    onProgress: progress.onProgress,
    onJobError: (job, err) => log.error("embedding job failed", { job, error: (err as Error).message }),
    worker,
  });
  return { config, log, platform, progress, json: Boolean(g.json) };
}

function output(json: boolean, value: unknown, human: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
}

function intOption(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n))
      throw new ValidationError(`--${name} must be an integer, got ${JSON.stringify(value)}`, {
        field: name,
      });
    return n;
  };
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** Items the stage could not embed, one line each: they are left out of training. */
function failureLines(result: RunShardsResult): string[] {
  if (result.itemsFailed === 0) return [];
  return [
    `${result.itemsFailed} items could not be embedded (left out of training):`,
    ...result.failures.slice(0, 20).map((f) => `  ${f.id}: ${f.reason}: ${f.message}`),
    ...(result.itemsFailed > 20
      ? [`  … and ${result.itemsFailed - 20} more (\`headstart status\` lists them)`]
      : []),
  ];
}

program
  .command("ingest")
  .description(
    "upload a manifest (or a directory with manifest + files/) as a dataset, validate it, and embed it",
  )
  .argument(
    "<manifest|dir>",
    "manifest.jsonl / manifest.csv, a directory holding one and files/, or a folder of images as <label>/<file> (test/<label>/<file> for the test split)",
  )
  .requiredOption("--dataset <name>", "dataset name")
  .option(
    "--backbone <id>",
    "backbone to embed with (default: the dataset's modality's, glove-100d for text, mobilenet-v2-1280 for images)",
  )
  .option("--no-embed", "only validate and store; embed later with `headstart embed`")
  .option("--shard-size <n>", "items per cache shard", intOption("shard-size"))
  .action(async (path: string, opts, cmd: Command) => {
    const { platform, progress, json } = context(cmd);
    const status = await platform.upload(opts.dataset, path);
    let embedding: unknown;
    if (opts.embed) {
      try {
        embedding = await platform.embed(opts.dataset, {
          backbone: opts.backbone,
          shardSize: opts.shardSize,
        });
      } finally {
        progress.stop();
      }
    }
    const skipped = status.skipped ?? [];
    const failures = (embedding as { result?: RunShardsResult } | undefined)?.result;
    const lines = [
      `dataset ${status.dataset}: ${status.rows.accepted} rows accepted, ${status.rows.rejected} rejected (of ${status.rows.total})`,
      ...status.rejected.slice(0, 20).map((r) => `  line ${r.line}: ${r.reason}`),
      ...(status.rows.rejected > 20
        ? [`  … and ${status.rows.rejected - 20} more in ${status.dataset}/_status.json`]
        : []),
      ...(skipped.length ? [`${skipped.length} folder entries not uploaded:`] : []),
      ...skipped.slice(0, 20).map((e) => `  ${e.path}: ${e.reason}`),
      ...(skipped.length > 20 ? [`  … and ${skipped.length - 20} more (--json lists all)`] : []),
      ...(failures ? failureLines(failures) : []),
    ];
    output(json, { status, embedding }, lines.join("\n"));
  });

program
  .command("embed")
  .description("run (or resume) the batch embedding stage for a dataset's current version")
  .argument("<dataset>")
  .option(
    "--backbone <id>",
    "backbone to embed with (default: the dataset's modality's, glove-100d for text, mobilenet-v2-1280 for images)",
  )
  .option("--shard-size <n>", "items per cache shard", intOption("shard-size"))
  .action(async (dataset: string, opts, cmd: Command) => {
    const { platform, progress, json } = context(cmd);
    try {
      const { job, result } = await platform.embed(dataset, {
        backbone: opts.backbone,
        shardSize: opts.shardSize,
      });
      output(
        json,
        { job, result },
        [
          `job ${job.job} ${job.state}: ${result.itemsEmbedded} items embedded into ${result.shardsCommitted} shards, ` +
            `${result.shardsSkipped} shards already committed, ${job.items.cached} rows already cached`,
          ...failureLines(result),
        ].join("\n"),
      );
    } finally {
      progress.stop();
    }
  });

program
  .command("train")
  .description("train a head on a dataset's cached embeddings")
  .argument("<dataset>")
  .requiredOption("--head <name>", "head name")
  .option("--type <type>", `head type: ${Object.keys(HEAD_KINDS).join(", ")} or auto (default by task)`)
  .option(
    "--param <name=value>",
    "a hyper-parameter of the head type (repeatable), e.g. --param C=0.5",
    (v: string, prev: Record<string, string> = {}) => {
      const eq = v.indexOf("=");
      if (eq < 1)
        throw new ValidationError(`--param takes name=value, got ${JSON.stringify(v)}`, { field: "param" });
      return { ...prev, [v.slice(0, eq)]: v.slice(eq + 1) };
    },
  )
  .option("--class-weight <mode>", "shorthand for --param classWeight=<none|balanced>")
  .addOption(
    new Option("--task <task>", "what to learn (default: inferred from the labels)").choices([...TASKS]),
  )
  .option("--candidates <types>", "comma-separated head types --type auto may choose from")
  .option(
    "--cv <k>",
    "folds for cross-validation (evaluation without a test split, auto, calibration)",
    intOption("cv"),
  )
  .option("--seed <n>", "seed for folds and initialization", intOption("seed"))
  .option("--no-calibrate", "skip temperature scaling of multiclass probabilities")
  .option(
    "--backbone <id>",
    "backbone whose cache to use (default: the dataset's modality's, glove-100d for text, mobilenet-v2-1280 for images; an imported dataset's own), or a+b to train on several side by side (each embedded first)",
  )
  .option("--backbones <refs>", "comma-separated backbones (or a+b sets) --type auto may choose from")
  .option("--no-promote", "do not move the live alias to the new version")
  .action(async (dataset: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const params: Record<string, unknown> = { ...(opts.param ?? {}) };
    if (opts.classWeight !== undefined) params.classWeight = opts.classWeight;
    const r = await platform.train({
      dataset,
      head: opts.head,
      type: opts.type,
      task: opts.task,
      params,
      candidates: opts.candidates?.split(",").map((t: string) => t.trim()),
      cv: opts.cv,
      seed: opts.seed,
      calibrate: opts.calibrate,
      backbone: opts.backbone,
      backbones: opts.backbones?.split(",").map((b: string) => b.trim()),
      promote: opts.promote,
    });
    const on = r.evaluation === "cv" ? "cross-validation" : `${r.counts.test} test rows`;
    const lines = [
      `head ${r.head} version ${r.version} (${r.type}${r.promoted ? ", live" : ""}): ${summarizeScores(r)} on ${on}, ` +
        `${r.counts.train} training rows, ${r.trainSeconds.toFixed(2)} s`,
    ];
    if (r.calibration) {
      lines.push(
        `calibration: temperature ${r.calibration.temperature.toFixed(3)}, ECE ${pct(r.calibration.eceBefore)} → ${pct(r.calibration.eceAfter)}`,
      );
    }
    if (r.search) {
      lines.push(`model selection (${r.search.folds}-fold CV, ${r.search.metric}):`);
      const bbWidth = Math.max(0, ...r.search.candidates.map((c) => (c.backbone ?? "").length));
      for (const c of r.search.candidates) {
        const bb = c.backbone === undefined ? "" : `${c.backbone.padEnd(bbWidth)} `;
        lines.push(
          `  ${c.chosen ? "*" : " "} ${bb}${c.type.padEnd(10)} ${JSON.stringify(c.params).padEnd(44)} ` +
            `${c.score.toFixed(4)} ± ${c.std.toFixed(4)}  ${c.seconds.toFixed(2)} s`,
        );
      }
    }
    output(json, r, lines.join("\n"));
  });

/** Vectors for `predict --embeddings`: a 2-d .npy, or JSONL with one number array per line. */
async function readEmbeddingsFile(path: string): Promise<number[][]> {
  const bytes = new Uint8Array(await readFile(path));
  if (path.endsWith(".npy")) {
    const { data, rows, cols } = decodeNpy(bytes);
    return Array.from({ length: rows }, (_, i) => Array.from(data.subarray(i * cols, (i + 1) * cols)));
  }
  const out: number[][] = [];
  new TextDecoder()
    .decode(bytes)
    .split("\n")
    .forEach((line, i) => {
      if (!line.trim()) return;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch {
        row = undefined;
      }
      if (!Array.isArray(row) || !row.every((v) => typeof v === "number")) {
        throw new ValidationError(`${path} line ${i + 1} is not a JSON array of numbers`, {
          field: `line ${i + 1}`,
        });
      }
      out.push(row);
    });
  return out;
}

/** One prediction as a short tab-separated cell, by task. */
function describePrediction(p: Prediction): string {
  if (p.value !== undefined) return String(p.value);
  if (p.labels !== undefined) return p.labels.join(",") || "(none)";
  return `${p.label}\t${(p.score ?? 0).toFixed(4)}`;
}

/** The headline metrics of a training, by task. */
function summarizeScores(r: TrainResult): string {
  if (r.metrics) return `accuracy ${pct(r.metrics.accuracy)}, macro-F1 ${pct(r.metrics.macroF1)}`;
  if (r.multilabel) return `micro-F1 ${pct(r.multilabel.microF1)}, macro-F1 ${pct(r.multilabel.macroF1)}`;
  if (r.regression) return `RMSE ${r.regression.rmse.toPrecision(4)}, R² ${r.regression.r2.toFixed(3)}`;
  return "no metrics";
}

program
  .command("predict")
  .description(
    "predict with a head (head, head@version or head:alias) from texts, images or ready embeddings",
  )
  .argument("<head>", "head, head@version or head:alias")
  .option("--text <text...>", "one or more texts")
  .option("--image <file...>", "one or more image files (JPEG, PNG, WebP, GIF) for an image head")
  .option("--input <file.jsonl>", 'a JSONL file with one {"text": …} per line')
  .option(
    "--embeddings <file>",
    "ready vectors from the head's backbone: a float32 .npy matrix, or JSONL with one array per line",
  )
  .option("--version <version>", "a specific head version instead of the live one")
  .option("--neighbors <k>", "also show the k most similar training items", intOption("neighbors"))
  .action(async (head: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const given = [opts.text, opts.image, opts.input, opts.embeddings].filter((o) => o !== undefined).length;
    if (given !== 1) {
      throw new ValidationError("give exactly one of --text, --image, --input, --embeddings", {
        field: "text",
      });
    }
    let texts: string[] = [];
    let embeddings: number[][] | undefined;
    let images: Uint8Array[] | undefined;
    if (opts.image) {
      // The file names stand in for the texts in the output.
      texts = opts.image;
      images = await Promise.all(
        texts.map(async (path) => {
          try {
            return new Uint8Array(await readFile(path));
          } catch (err) {
            throw new ValidationError(`--image ${path}: ${(err as Error).message}`, { field: "image" });
          }
        }),
      );
    } else if (opts.embeddings) {
      embeddings = await readEmbeddingsFile(opts.embeddings);
      texts = embeddings.map((_, i) => `#${i}`);
    } else if (opts.input) {
      const lines = (await readFile(opts.input, "utf8")).split("\n");
      lines.forEach((line, i) => {
        if (!line.trim()) return;
        let row: unknown;
        try {
          row = JSON.parse(line);
        } catch {
          throw new ValidationError(`${opts.input} line ${i + 1} is not valid JSON`, {
            field: `line ${i + 1}`,
          });
        }
        const text = (row as { text?: unknown })?.text;
        if (typeof text !== "string" || !text.trim()) {
          throw new ValidationError(`${opts.input} line ${i + 1} has no "text" string`, {
            field: `line ${i + 1}`,
          });
        }
        texts.push(text);
      });
    } else {
      texts = opts.text;
    }
    const predictions = [];
    let version = "";
    let headName = head;
    const batchSize = embeddings ? MAX_EMBEDDINGS_BATCH : MAX_PREDICT_BATCH;
    for (let i = 0; i < texts.length; i += batchSize) {
      const r = await platform.predict(head, {
        ...(embeddings
          ? { embeddings: embeddings.slice(i, i + batchSize) }
          : images
            ? { inputs: images.slice(i, i + batchSize).map((image) => ({ image })) }
            : { inputs: texts.slice(i, i + batchSize) }),
        version: opts.version,
        neighbors: opts.neighbors,
      });
      version = r.version;
      headName = r.head;
      predictions.push(...r.predictions);
    }
    output(
      json,
      { head: headName, version, predictions },
      predictions
        .map((p, i) =>
          [
            `${describePrediction(p)}\t${texts[i].slice(0, 80)}`,
            ...(p.neighbors ?? []).map(
              (n) => `  ~ ${n.similarity.toFixed(3)}\t${n.id}\t${String(n.label ?? "")}`,
            ),
          ].join("\n"),
        )
        .join("\n"),
    );
  });

program
  .command("promote")
  .description("point an alias (default live) at a head version")
  .argument("<head>")
  .argument("<version>")
  .option("--alias <alias>", "alias to move", "live")
  .option("--expect <version>", "only if the alias currently points here (compare-and-swap)")
  .action(async (head: string, version: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    await platform.promote(head, version, opts.expect, opts.alias);
    output(json, { head, alias: opts.alias, version }, `${head}:${opts.alias} → ${version}`);
  });

program
  .command("rollback")
  .description("move an alias (default live) back to the version it pointed to before")
  .argument("<head>")
  .option("--alias <alias>", "alias to move back", "live")
  .action(async (head: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const r = await platform.rollback(head, opts.alias);
    output(json, { head, alias: opts.alias, ...r }, `${head}:${opts.alias} ${r.from} → ${r.to}`);
  });

program
  .command("export-head")
  .description("write a head version as an ONNX model (alone, or fused with its backbone)")
  .argument("<head>", "head, head@version or head:alias")
  .requiredOption("--out <file>", "output .onnx file")
  .option("--fused", "put the head's backbone in front: the model then takes token ids, not embeddings")
  .action(async (head: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const r = await platform.exportHead(head, { fused: Boolean(opts.fused) });
    await writeFile(opts.out, r.bytes);
    output(
      json,
      { head: r.head, version: r.version, fused: r.fused, out: opts.out, bytes: r.bytes.byteLength },
      `${r.head}@${r.version}${r.fused ? " (fused)" : ""} → ${opts.out} (${r.bytes.byteLength} bytes)`,
    );
  });

program
  .command("report")
  .description("write a head version's evaluation report as a self-contained HTML page (or its JSON)")
  .argument("<head>", "head, head@version or head:alias")
  .requiredOption("--out <file>", "output .html (or .json with --json-report)")
  .option("--json-report", "write report.json instead of the HTML page")
  .action(async (head: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const { head: doc, report } = await platform.headReport(head);
    await writeFile(
      opts.out,
      opts.jsonReport ? `${JSON.stringify(report, null, 2)}\n` : renderReportHtml(report, doc),
    );
    output(
      json,
      { head: doc.head, version: doc.version, out: opts.out },
      `${doc.head}@${doc.version} report → ${opts.out}`,
    );
  });

program
  .command("import-embeddings")
  .description(
    "bring your own embeddings: vectors computed elsewhere become the dataset's rows and its cache under an external backbone",
  )
  .argument("<dataset>")
  .requiredOption(
    "--npy <file.npy>",
    "float32 (or float64) [rows, dim] matrix; row i is the vector of line i",
  )
  .requiredOption(
    "--rows <rows.jsonl>",
    'one {"id", "label"?, "split"?, "text"?} per line, in the .npy\'s row order',
  )
  .requiredOption(
    "--backbone <name>",
    "a name for the model that made the vectors (train with --backbone <name>)",
  )
  .action(async (dataset: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const r = await platform.importEmbeddings(dataset, {
      backbone: opts.backbone,
      npyPath: opts.npy,
      rowsPath: opts.rows,
    });
    output(
      json,
      r,
      `dataset ${r.dataset}: ${r.rows} rows imported as ${r.dim}-d embeddings of ${r.backbone.id} ` +
        `(${r.dtype}; ${r.vectors.written} vectors written, ${r.vectors.reused} already cached); ` +
        `train with \`headstart train ${r.dataset} --head <name> --backbone ${r.backbone.id}\``,
    );
  });

program
  .command("export")
  .description("write a dataset's embeddings as embeddings.npy + rows.jsonl")
  .argument("<dataset>")
  .requiredOption("--out <dir>", "output directory")
  .option(
    "--backbone <id>",
    "backbone whose cache to export (default: the dataset's modality's, glove-100d for text, mobilenet-v2-1280 for images)",
  )
  .action(async (dataset: string, opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const r = await platform.export(dataset, opts.out, opts.backbone);
    output(json, r, `exported ${r.rows} × ${r.dim} to ${r.files.embeddings} and ${r.files.rows}`);
  });

/** A doctor report for a person: one line per problem, then the totals. */
function doctorLines(report: DoctorReport): string {
  const problems = Object.entries(report.checks).flatMap(([check, r]) =>
    r.problems.map((p) => `  ${check}: ${p.kind} ${p.key}: ${p.problem}${p.repaired ? " (repaired)" : ""}`),
  );
  const checked = Object.values(report.checks).reduce((n, r) => n + r.checked, 0);
  const s = report.summary;
  return [
    ...problems,
    report.ok && problems.length === 0
      ? `no problems (${checked} objects checked)`
      : `${s.corrupt} corrupt, ${s.missing} missing, ${s.duplicated} duplicated items, ${s.strayTemporaries} stray temporaries, ` +
        `${s.staleLeases} stale leases, ${s.incomplete} incomplete; ${s.repaired} repaired` +
        (report.ok ? "" : report.repair ? "" : " (--repair fixes temporaries and stale leases)"),
  ].join("\n");
}

program
  .command("doctor")
  .description(
    "verify the store (committed shards, head versions, aliases, datasets' rows, leftovers of killed writes); exit 1 while problems remain",
  )
  .option(
    "--repair",
    "remove stray temporaries older than --grace and leases on committed shards (never data)",
  )
  .option(
    "--grace <seconds>",
    "leave temporaries younger than this alone (a live writer's)",
    intOption("grace"),
    900,
  )
  .action(async (opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const report = await platform.doctor({ repair: Boolean(opts.repair), graceMs: opts.grace * 1000 });
    output(json, report, doctorLines(report));
    if (!report.ok) process.exitCode = 1;
  });

program
  .command("status")
  .description("a dataset's ingest result and embedding progress")
  .argument("<dataset>")
  .option(
    "--backbone <id>",
    "backbone (default: the dataset's modality's, glove-100d for text, mobilenet-v2-1280 for images)",
  )
  .action(async (dataset: string, opts, cmd: Command) => {
    const { platform } = context(cmd);
    const info = await platform.datasetInfo(dataset, opts.backbone);
    output(true, info, "");
  });

const backbone = program
  .command("backbone")
  .description("manage backbones (built-in or your own ONNX model)");
backbone
  .command("add")
  .description("publish a directory holding backbone.json, the ONNX model and its assets")
  .argument("<dir>")
  .action(async (dir: string, _opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const spec = await platform.addBackbone(dir);
    output(
      json,
      spec,
      `backbone ${spec.id} (${spec.modality}, ${spec.dim}-d, sha256 ${spec.sha256.slice(0, 12)}) added`,
    );
  });
backbone
  .command("publish")
  .description(
    "build built-in backbones here and publish them to the store (a deployed stack's Lambdas only read them from there)",
  )
  .argument("[ids...]", "built-in backbone ids (default: all)")
  .action(async (ids: string[], _opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const specs = await platform.publishBuiltIns(ids.length ? ids : undefined);
    output(
      json,
      specs,
      specs.map((s) => `backbone ${s.id} (${s.dim}-d, sha256 ${s.sha256.slice(0, 12)}) published`).join("\n"),
    );
  });
backbone
  .command("list")
  .description("backbones in the store")
  .action(async (_opts, cmd: Command) => {
    const { platform, json } = context(cmd);
    const specs = await platform.listBackbones();
    output(
      json,
      specs,
      specs.map((s) => `${s.id}\t${s.modality}\t${s.dim}\t${s.sha256.slice(0, 12)}`).join("\n") || "(none)",
    );
  });

const collect = (value: string, previous: string[]) => [...previous, value];

/** The customer's key file in the store (`--store s3://bucket` manages a deployment's keys). */
function keyStore(cmd: Command, customer?: string) {
  const { platform, json } = context(cmd);
  const chosen = customer ?? platform.config.customer;
  if (!chosen && platform.store.url.startsWith("s3://")) {
    // A bucket is usually a deployment's, whose authorizer refuses keys of customer `local`.
    throw new ValidationError(
      "name the customer whose keys these are: --customer <id> or HEADSTART_CUSTOMER (a deployment refuses keys of another customer; --customer local for a local server on this bucket)",
      { field: "customer" },
    );
  }
  return { keys: new KeyStore(platform.store, chosen ?? LOCAL_CUSTOMER), json };
}

const keyLine = (k: KeyInfo) =>
  `${k.id}\t${k.scopes.join(",")}\t${k.customer}\t${k.createdAt}\t${k.revoked ? `revoked ${k.revokedAt}` : "active"}`;

const ALLOWED_HOST_HELP = "a host name clients may use besides this server's addresses (repeatable)";
const serveOptions = (opts: { port: number; host: string; allowedHost: string[] }) => ({
  port: opts.port,
  host: opts.host,
  allowedHosts: opts.allowedHost,
});

const keysCommand = program
  .command("keys")
  .description("scoped API keys of this store's customer (hashes only are stored; see docs/api.md)");
keysCommand
  .command("create")
  .description("make a key; prints it once (give it to the client): only its hash is stored")
  .requiredOption("--id <id>", "key id, e.g. the client's name ([a-z0-9-], at most 32)")
  .requiredOption("--scope <scope>", `what the key may do, repeatable: ${SCOPES.join(", ")}`, collect, [])
  .option("--customer <id>", "the customer the key is bound to (default: HEADSTART_CUSTOMER, else local)")
  .action(async (opts, cmd: Command) => {
    const { keys, json } = keyStore(cmd, opts.customer);
    const made = await keys.create(opts.id, parseScopes(opts.scope, "scope"));
    output(
      json,
      made,
      `key ${made.info.id} (${made.info.scopes.join(", ")}; customer ${made.info.customer}), shown once, only its hash is stored:\n  ${made.key}`,
    );
  });
keysCommand
  .command("list")
  .description("every key: id, scopes, customer, created, revoked (never the key or its hash)")
  .action(async (_opts, cmd: Command) => {
    const { keys, json } = keyStore(cmd);
    const all = await keys.list();
    output(json, all, all.map(keyLine).join("\n") || "(no keys)");
  });
keysCommand
  .command("revoke")
  .description("refuse a key from now on (servers notice within their key cache time); its id stays reserved")
  .argument("<id>", "key id")
  .action(async (id: string, _opts, cmd: Command) => {
    const { keys, json } = keyStore(cmd);
    const info = await keys.revoke(id);
    output(json, info, `key ${info.id} revoked at ${info.revokedAt}`);
  });

program
  .command("serve")
  .description("serve the HTTP API; embedding jobs run in worker processes")
  .option("--port <n>", "port", intOption("port"), 8787)
  .option("--host <host>", "interface to bind (not loopback: API keys required)", "127.0.0.1")
  .option("--allowed-host <name>", ALLOWED_HOST_HELP, collect, [])
  .action(async (opts, cmd: Command) => {
    const { platform, log } = context(cmd, "process");
    const url = await serveApi(platform, log, serveOptions(opts));
    log.info("listening", {
      url,
      store: platform.store.url,
      openapi: `${url}/openapi.json`,
      docs: `${url}/docs`,
    });
  });

function demoSummary(r: Awaited<ReturnType<typeof runDemo>>): string {
  return [
    `IMDB sentiment with ${r.trainRows} training reviews → head ${r.head} (${r.version})`,
    `test accuracy: ${pct(r.accuracy)} (macro-F1 ${pct(r.macroF1)}) on ${r.testRows} official test reviews`,
    `example: "${r.example.text}" → ${r.example.label} (${r.example.score.toFixed(3)})`,
  ].join("\n");
}

program
  .command("demo")
  .description("end to end on the IMDB sample (ingest → embed → train → predict), then exit")
  .option("--limit <n>", "reviews per split and label (default 12500: the full dataset)", intOption("limit"))
  .option("--retrain", "train a new head version even if one exists", false)
  .action(async (opts, cmd: Command) => {
    const { platform, log, progress, json } = context(cmd);
    try {
      const r = await runDemo(platform, { perBlock: opts.limit, retrain: opts.retrain, log });
      output(json, r, demoSummary(r));
    } finally {
      progress.stop();
    }
  });

program
  .command("start")
  .description(
    "the local platform: API + worker on the embedded store, seeded with the IMDB sample on first run",
  )
  .option("--port <n>", "port", intOption("port"), 8787)
  .option("--host <host>", "interface to bind (not loopback: API keys required)", "127.0.0.1")
  .option("--allowed-host <name>", ALLOWED_HOST_HELP, collect, [])
  .action(async (opts, cmd: Command) => {
    const { platform, log, progress } = context(cmd, "process");
    const url = await serveApi(platform, log, serveOptions(opts));
    log.info("listening", { url, store: platform.store.url });
    let r: Awaited<ReturnType<typeof runDemo>>;
    try {
      r = await runDemo(platform, { log });
    } finally {
      progress.stop();
    }
    // Once the store has keys the server demands one: show where it goes instead of a 401.
    const customer = platform.config.customer ?? LOCAL_CUSTOMER;
    const keyed = (await new KeyStore(platform.store, customer).list()).some((k) => !k.revoked);
    const keyHeader = keyed ? ` -H "x-api-key: $HEADSTART_API_KEY"` : "";
    const curl = `curl -s -X POST ${url}/v1/heads/${DEMO_HEAD}/predict -H 'content-type: application/json'${keyHeader} -d '{"inputs": ["An absolute masterpiece, I loved it.", "Dull, predictable and far too long."]}'`;
    const keyNote = keyed
      ? "\n(this store has API keys: set HEADSTART_API_KEY to one with the predict scope)"
      : "";
    process.stdout.write(
      `\n${demoSummary(r)}\n\nheadstart is running at ${url} (dataset ${DEMO_DATASET}, head ${DEMO_HEAD}); API docs at ${url}/docs\ntry:\n  ${curl}${keyNote}\n\nCtrl-C to stop.\n`,
    );
  });

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors are bad input.
      return err.exitCode === 0 ? 0 : 2;
    }
    const json = argv.includes("--json");
    const user = isUserError(err);
    if (json) {
      const body =
        err instanceof HeadstartError ? err.toJSON() : { code: "internal", message: (err as Error).message };
      process.stdout.write(`${JSON.stringify({ error: body }, null, 2)}\n`);
    }
    const field = err instanceof HeadstartError && err.field ? ` [${err.field}]` : "";
    process.stderr.write(`headstart: ${(err as Error).message}${field}\n`);
    if (!user && activeLogLevel === "debug") process.stderr.write(`${(err as Error).stack}\n`);
    return user ? 2 : 1;
  }
}

const code = await main(process.argv);
// `serve` and `start` keep the event loop alive; everything else exits with its code.
if (code !== 0) process.exit(code);
// A command may have set its own (doctor: 1 while problems remain).
process.exitCode ??= code;
