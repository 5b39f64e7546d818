import { type Command, Option } from "commander";
import { ValidationError } from "../../../shared/errors.ts";
import { type SearchMatrix, searchMatrix } from "../../../shared/heads/search-matrix.ts";
import type { TrainResult } from "../../../shared/heads/train.ts";
import {
  type TrainOptions,
  UNKNOWN_SCORERS,
  type UnknownScorerChoice,
} from "../../../shared/heads/train-request.ts";
import type { HeadTask } from "../../../shared/learn/estimator.ts";
import { HEAD_KINDS } from "../../../shared/learn/registry.ts";
import { TASKS } from "../../../shared/learn/task.ts";
import { context, DEFAULT_BACKBONE_HELP, intOption, output, pct } from "../context.ts";

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description("train a head on a dataset's cached embeddings")
    .argument("<dataset>")
    .requiredOption("--head <name>", "head name")
    .option(
      "--type <type>",
      `head type: ${Object.keys(HEAD_KINDS).join(", ")}, auto (default by task) or zero-shot (from --labels alone)`,
    )
    .option(
      "--labels <name: description>",
      'zero-shot: a class and its short description (repeatable), e.g. --labels "pos: a positive review"',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option(
      "--param <name=value>",
      "a hyper-parameter of the head type (repeatable), e.g. --param C=0.5",
      param,
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
      `backbone whose cache to use (default: ${DEFAULT_BACKBONE_HELP}; an imported dataset's own), or a+b to train on several side by side (each embedded first)`,
    )
    .option(
      "--backbones <refs>",
      "comma-separated backbones (or a+b sets) --type auto may choose from (default: every backbone cached for the dataset, and their a+b sets)",
    )
    .option(
      "--budget-seconds <s>",
      "--type auto: stop starting new candidates after this many seconds and fit the best scored",
      numberOption("budget-seconds", "budgetSeconds"),
    )
    .option("--no-promote", "do not move the live alias to the new version")
    .option(
      "--with-feedback",
      "also train on the head's feedback (headstart feedback); the report scores it before/after",
    )
    .addOption(
      new Option(
        "--capture <mode>",
        "which online predictions' inputs the new version keeps (default none)",
      ).choices(["none", "uncertain", "all"]),
    )
    .option(
      "--unknown-rate <r>",
      "multiclass: share of held-out in-distribution rows the unknown-input threshold flags (default 0.05)",
      numberOption("unknown-rate", "unknownRate"),
    )
    .addOption(
      new Option(
        "--unknown-scorer <method>",
        "multiclass: the unknown-input scorer; auto (default) picks one per head at training",
      ).choices([...UNKNOWN_SCORERS]),
    )
    .action(async (dataset: string, opts, cmd: Command) => {
      const { platform, json } = context(cmd);
      const r = await platform.train(trainRequest(dataset, opts));
      output(json, r, trainLines(r).join("\n"));
    });
}

/** `--param name=value`, repeatable: the values gathered by name. */
function param(v: string, prev: Record<string, string> = {}): Record<string, string> {
  const eq = v.indexOf("=");
  if (eq < 1)
    throw new ValidationError(`--param takes name=value, got ${JSON.stringify(v)}`, { field: "param" });
  return { ...prev, [v.slice(0, eq)]: v.slice(eq + 1) };
}

/** A flag that takes a number (`--unknown-rate`, `--budget-seconds`), its range checked by the platform. */
function numberOption(flag: string, field: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n))
      throw new ValidationError(`--${flag} takes a number, got ${JSON.stringify(v)}`, { field });
    return n;
  };
}

/** The flags as commander parses them. */
interface TrainFlags {
  head: string;
  type?: string;
  labels?: string[];
  param?: Record<string, string>;
  classWeight?: string;
  task?: HeadTask;
  candidates?: string;
  cv?: number;
  seed?: number;
  calibrate: boolean;
  backbone?: string;
  backbones?: string;
  budgetSeconds?: number;
  promote: boolean;
  withFeedback?: boolean;
  capture?: "none" | "uncertain" | "all";
  unknownRate?: number;
  unknownScorer?: UnknownScorerChoice;
}

function trainRequest(dataset: string, opts: TrainFlags): TrainOptions {
  const params: Record<string, unknown> = { ...(opts.param ?? {}) };
  if (opts.classWeight !== undefined) params.classWeight = opts.classWeight;
  return {
    dataset,
    head: opts.head,
    type: opts.type,
    labels: opts.labels,
    task: opts.task,
    params,
    candidates: opts.candidates?.split(",").map((t) => t.trim()),
    cv: opts.cv,
    seed: opts.seed,
    calibrate: opts.calibrate,
    backbone: opts.backbone,
    backbones: opts.backbones?.split(",").map((b) => b.trim()),
    budgetSeconds: opts.budgetSeconds,
    promote: opts.promote,
    withFeedback: opts.withFeedback,
    capture: opts.capture,
    unknownRate: opts.unknownRate,
    unknownScorer: opts.unknownScorer,
  };
}

/** The new version and its scores, then calibration and the model selection table if any. */
function trainLines(r: TrainResult): string[] {
  const on = r.evaluation === "cv" ? "cross-validation" : `${r.counts.test} test rows`;
  const lines = [
    `head ${r.head} version ${r.version} (${r.type}${r.promoted ? ", live" : ""}): ${summarizeScores(r)} on ${on}, ` +
      `${r.counts.train} training rows, ${r.trainSeconds.toFixed(2)} s`,
    `time: ${timingsLine(r.timings)}`,
  ];
  if (r.calibration) {
    lines.push(
      `calibration: temperature ${r.calibration.temperature.toFixed(3)}, ECE ${pct(r.calibration.eceBefore)} → ${pct(r.calibration.eceAfter)}`,
    );
  }
  if (r.unknown) {
    lines.push(
      `unknown inputs: ${r.unknown.method} score > ${r.unknown.threshold.toPrecision(4)} ` +
        `(flags ${pct(r.unknown.rate)} of ${r.unknown.heldOut} held-out rows)`,
    );
    if (r.unknown.selection) lines.push(`  auto: ${r.unknown.selection.reason}`);
  }
  if (r.feedback) lines.push(feedbackLine(r.feedback));
  if (r.zeroShot) lines.push(zeroShotLine(r.zeroShot));
  if (r.search) lines.push(...searchLines(r.search));
  return lines;
}

/** auto's candidates, `*` on the choice; over backbones, first the backbone × head type table. */
function searchLines(search: NonNullable<TrainResult["search"]>): string[] {
  const spent = search.seconds === undefined ? "" : ` ${search.seconds.toFixed(1)} s`;
  const budget = search.budgetSeconds === undefined ? "" : ` (budget ${search.budgetSeconds} s)`;
  const lines = [`model selection (${search.folds}-fold CV, ${search.metric}):${spent}${budget}`];
  const matrix = searchMatrix(search);
  if (matrix) lines.push(...matrixLines(matrix));
  const bbWidth = Math.max(0, ...search.candidates.map((c) => (c.backbone ?? "").length));
  for (const c of search.candidates) {
    const bb = c.backbone === undefined ? "" : `${c.backbone.padEnd(bbWidth)} `;
    lines.push(
      `  ${c.chosen ? "*" : " "} ${bb}${c.type.padEnd(10)} ${JSON.stringify(c.params).padEnd(44)} ` +
        `${c.score.toFixed(4)} ± ${c.std.toFixed(4)}  ${c.seconds.toFixed(2)} s`,
    );
  }
  lines.push(...skippedLines(search.skipped ?? []));
  if (search.chosenBy) lines.push(`  chosen: ${search.chosenBy}`);
  return lines;
}

/** What the search did not score, one line per backbone set and reason: "a (mlp, knn): screened out: …". */
function skippedLines(skipped: NonNullable<NonNullable<TrainResult["search"]>["skipped"]>): string[] {
  const groups = new Map<string, string[]>();
  for (const s of skipped) {
    const key = `${s.backbone ?? ""}\0${s.reason}`;
    groups.set(key, [...(groups.get(key) ?? []), s.type]);
  }
  if (groups.size === 0) return [];
  return [
    "  not searched:",
    ...[...groups].map(([key, types]) => {
      const [backbone, reason] = key.split("\0");
      return `    ${backbone ? `${backbone} ` : ""}(${types.join(", ")}): ${reason}`;
    }),
  ];
}

/** Best score per backbone set (rows) and head type (columns), `*` on the choice, `–` untried. */
function matrixLines(m: SearchMatrix): string[] {
  const w = Math.max(8, ...m.backbones.map((b) => b.length));
  const cw = Math.max(8, ...m.types.map((t) => t.length + 1));
  const head = `  ${"".padEnd(w)} ${m.types.map((t) => t.padStart(cw)).join(" ")}`;
  const rows = m.backbones.map((b, i) => {
    const cells = m.cells[i].map((v, j) => {
      const mark = m.chosen?.backbone === i && m.chosen.type === j ? "*" : "";
      return `${v === undefined ? "–" : v.toFixed(4)}${mark}`.padStart(cw);
    });
    return `  ${b.padEnd(w)} ${cells.join(" ")}`;
  });
  return [head, ...rows];
}

/** The phases that took time, in the order they ran: "load 0.21 s · fit 1.05 s · …". */
function timingsLine(t: TrainResult["timings"]): string {
  return Object.entries(t)
    .filter(([, s]) => s >= 0.005)
    .map(([phase, s]) => `${phase} ${s.toFixed(2)} s`)
    .join(" · ");
}

/** The headline metrics of a training, by task. */
function summarizeScores(r: TrainResult): string {
  if (r.metrics) return `accuracy ${pct(r.metrics.accuracy)}, macro-F1 ${pct(r.metrics.macroF1)}`;
  if (r.multilabel) return `micro-F1 ${pct(r.multilabel.microF1)}, macro-F1 ${pct(r.multilabel.macroF1)}`;
  if (r.regression) return `RMSE ${r.regression.rmse.toPrecision(4)}, R² ${r.regression.r2.toFixed(3)}`;
  return "no metrics";
}

/** `--type zero-shot`: what the head was built from, and what its scores are on. */
function zeroShotLine(z: NonNullable<TrainResult["zeroShot"]>): string {
  const classes = z.labels.map((l) => `${l.label} = ${JSON.stringify(l.description)}`).join(", ");
  const scored =
    z.evaluatedOn > 0 ? `every labelled row (${z.evaluatedOn}) is a test row` : "no labelled rows to score";
  return `zero-shot from descriptions: ${classes}; centered on ${z.centeredOn} dataset rows; ${scored}`;
}

/** `--with-feedback`: the feedback rows scored by the version before and by this one. */
function feedbackLine(f: NonNullable<TrainResult["feedback"]>): string {
  const value = (v: number) => (f.metric === "rmse" ? v.toPrecision(4) : pct(v));
  const before = f.before ? `${value(f.before.value)} (${f.before.version})` : `— (${f.beforeSkipped})`;
  return `feedback: ${f.metric} on ${f.rows} feedback rows ${before} → ${value(f.after.value)}`;
}
