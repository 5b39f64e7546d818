/**
 * What every `headstart` command shares: the platform opened from the global options, output
 * (`--json` prints exactly one JSON document on stdout; logs go to stderr), option parsers, and
 * the exit codes: 0 ok, 2 bad input, 1 failure.
 */
import { type Command, CommanderError } from "commander";
import {
  type Config,
  DEFAULT_BACKBONES,
  loadConfig,
  parseBackboneList,
  type RECOMMENDED,
} from "../../shared/config.ts";
import type { EmbedJob } from "../../shared/embed/job.ts";
import type { RunShardsResult } from "../../shared/embed/run.ts";
import { HeadstartError, isUserError, ValidationError } from "../../shared/errors.ts";
import { type LogLevel, makeLogger } from "../../shared/log.ts";
import { openStore } from "../../shared/open-store.ts";
import { Platform } from "../../shared/platform.ts";
import { embedProgress } from "./progress.ts";

/** How the `--backbone` options describe their default (the built-in defaults; env can change them). */
export const DEFAULT_BACKBONE_HELP = `the dataset's modality's: ${DEFAULT_BACKBONES.text} for text, ${DEFAULT_BACKBONES.image} for images, ${DEFAULT_BACKBONES.audio} for audio`;

interface GlobalOptions {
  store?: string;
  endpoint?: string;
  json?: boolean;
  logLevel?: LogLevel;
}

/** Set once the command's configuration is loaded; failures print stacks at `debug`. */
let activeLogLevel: LogLevel = "info";

/** The platform on the store the global options (or the environment) name, with its logger. */
export function context(cmd: Command, worker: "inline" | "process" = "inline") {
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
    // The server (`process` workers) delivers events after answering; a command, before it exits.
    notifications: { mode: worker === "process" ? "background" : "await", log },
  });
  return { config, log, platform, progress, json: Boolean(g.json) };
}

export function output(json: boolean, value: unknown, human: string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${human}\n`);
}

export function intOption(name: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n))
      throw new ValidationError(`--${name} must be an integer, got ${JSON.stringify(value)}`, {
        field: name,
      });
    return n;
  };
}

/** For a repeatable option: every value given, in order. */
export const collect = (value: string, previous: string[]) => [...previous, value];

export const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** Items the stage could not embed, one line each: they are left out of training. */
export function failureLines(result: RunShardsResult): string[] {
  if (result.itemsFailed === 0) return [];
  return [
    `${result.itemsFailed} items could not be embedded (left out of training):`,
    ...result.failures.slice(0, 20).map((f) => `  ${f.id}: ${f.reason}: ${f.message}`),
    ...(result.itemsFailed > 20
      ? [`  … and ${result.itemsFailed - 20} more (\`headstart status\` lists them)`]
      : []),
  ];
}

export const BACKBONES_HELP =
  "embed with several backbones in one batch run: ids separated by commas, or `recommended` (the set for the rows' modality, docs/heads.md); `train --type auto` then chooses among them and their a+b sets";

/** `--backbones`: ids separated by commas, or `recommended`. */
export function backbonesOption(v: string): string[] | typeof RECOMMENDED {
  return parseBackboneList(v);
}

/** `--backbone` and `--backbones` together are ambiguous. */
export function refuseBoth(opts: { backbone?: string; backbones?: unknown }): void {
  if (opts.backbone !== undefined && opts.backbones !== undefined)
    throw new ValidationError("use --backbone or --backbones, not both", { field: "backbones" });
}

/** One embedding's outcome, as `embed` and `ingest` print it. */
export interface Embedded {
  job: EmbedJob;
  result: RunShardsResult;
}

export function embeddedLine(job: EmbedJob, result: RunShardsResult): string {
  return (
    `job ${job.job} (${job.backbone}) ${job.state}: ${result.itemsEmbedded} items embedded into ${result.shardsCommitted} shards, ` +
    `${result.shardsSkipped} shards already committed, ${job.items.cached} rows already cached`
  );
}

/** Runs the program; answers the exit code after reporting a failure (as JSON too under `--json`). */
/** Program options that take a value (`--store <dir>`): their value is not a command name. */
const GLOBAL_VALUE_OPTIONS = new Set(["--store", "--endpoint", "--log-level"]);

/**
 * Whether the arguments (after `node main.ts`) name a command (`predict …`) rather than ask the
 * program itself (`--version`, `help`). Commander lets a program option win anywhere on the line,
 * so the program's `-V, --version` would swallow a command's own `--version <v>` (a head version,
 * for predict and batch-predict); main.ts gives the program that flag only when this is false.
 */
export function namesCommand(args: readonly string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (GLOBAL_VALUE_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith("-")) return arg !== "help";
  }
  return false;
}

export async function runCli(program: Command, argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors are bad input.
      return err.exitCode === 0 ? 0 : 2;
    }
    return reportFailure(err, argv.includes("--json"));
  }
}

function reportFailure(err: unknown, json: boolean): number {
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
