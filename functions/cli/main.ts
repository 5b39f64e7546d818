/**
 * `headstart` — the command line. Each command (one file in commands/) is a thin adapter over
 * `Platform`; `--json` prints exactly one JSON document on stdout. Exit codes: 0 ok, 2 bad input,
 * 1 failure.
 */
import { Command, Option } from "commander";
import { VERSION } from "../../shared/version.ts";
import { registerBackbone } from "./commands/backbone.ts";
import { registerBatchPredict } from "./commands/batch-predict.ts";
import { registerDemo } from "./commands/demo.ts";
import { registerDoctor } from "./commands/doctor.ts";
import { registerDrift } from "./commands/drift.ts";
import { registerEmbed } from "./commands/embed.ts";
import { registerExport } from "./commands/export.ts";
import { registerExportHead } from "./commands/export-head.ts";
import { registerExportPredictions } from "./commands/export-predictions.ts";
import { registerFeedback } from "./commands/feedback.ts";
import { registerGc } from "./commands/gc.ts";
import { registerImportEmbeddings } from "./commands/import-embeddings.ts";
import { registerIngest } from "./commands/ingest.ts";
import { registerKeys } from "./commands/keys.ts";
import { registerLabelIssues } from "./commands/label-issues.ts";
import { registerLs } from "./commands/ls.ts";
import { registerPredict } from "./commands/predict.ts";
import { registerPromote } from "./commands/promote.ts";
import { registerReport } from "./commands/report.ts";
import { registerRm } from "./commands/rm.ts";
import { registerRollback } from "./commands/rollback.ts";
import { registerServe } from "./commands/serve.ts";
import { registerStart } from "./commands/start.ts";
import { registerStatus } from "./commands/status.ts";
import { registerSuggest } from "./commands/suggest.ts";
import { registerTrain } from "./commands/train.ts";
import { registerWebhooks } from "./commands/webhooks.ts";
import { namesCommand, runCli } from "./context.ts";

/** In the order `--help` lists them. */
const COMMANDS = [
  registerIngest,
  registerEmbed,
  registerTrain,
  registerPredict,
  registerBatchPredict,
  registerExportPredictions,
  registerFeedback,
  registerPromote,
  registerRollback,
  registerExportHead,
  registerReport,
  registerLabelIssues,
  registerSuggest,
  registerDrift,
  registerImportEmbeddings,
  registerExport,
  registerLs,
  registerRm,
  registerGc,
  registerDoctor,
  registerStatus,
  registerBackbone,
  registerKeys,
  registerWebhooks,
  registerServe,
  registerDemo,
  registerStart,
];

const program = new Command("headstart").description(
  "Transfer learning the cheap way: embed once, train small heads in seconds, serve them.",
);
// A command's own `--version <v>` (a head version) must reach the command (see namesCommand).
if (!namesCommand(process.argv.slice(2)))
  program.version(VERSION, "-V, --version", "print the headstart version");
program
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
for (const register of COMMANDS) register(program);

const code = await runCli(program, process.argv);
// `serve` and `start` keep the event loop alive; everything else exits with its code.
if (code !== 0) process.exit(code);
// A command may have set its own (doctor: 1 while problems remain).
process.exitCode ??= code;
