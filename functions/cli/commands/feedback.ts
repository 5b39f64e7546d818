import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { ValidationError } from "../../../shared/errors.ts";
import type { RetrainOutcome } from "../../../shared/platform.ts";
import { context, output } from "../context.ts";

export function registerFeedback(program: Command): void {
  program
    .command("feedback")
    .description("correct a prediction: store the label it should have had (train --with-feedback learns it)")
    .argument("<head>")
    .option("--prediction <id>", "the prediction's id (predict's p-…, or <job>:<row id> from a batch output)")
    .option(
      "--text <text>",
      "the input itself (needed for online predictions of a head that keeps no inputs)",
    )
    .option("--image <file>", "the input, an image file (JPEG, PNG, WebP or GIF) for an image head")
    .option("--audio <file>", "the input, an audio file (WAV, FLAC, MP3 or Ogg Vorbis) for an audio head")
    .requiredOption(
      "--label <label>",
      "the right label: a class, a number (regression) or a JSON list (multi-label)",
    )
    .option(
      "--retrain",
      "then retrain with all the feedback and promote the new version only if it scores at least as well on held-out rows",
    )
    .action(async (head: string, opts: InputOptions & { label: string; retrain?: boolean }, cmd: Command) => {
      const { platform, json } = context(cmd);
      const record = await platform.addFeedback(head, {
        predictionId: opts.prediction,
        input: await inputOf(opts),
        label: labelValue(opts.label),
      });
      const what =
        record.image !== undefined
          ? `image ${record.image}`
          : record.audio !== undefined
            ? `audio ${record.audio}`
            : JSON.stringify(record.text?.slice(0, 60));
      const stored = `feedback ${record.id}: ${what} → ${JSON.stringify(record.label)}`;
      if (!opts.retrain) return output(json, record, stored);
      const retrain = await platform.retrainWithFeedback(head);
      const outcome = retrain.promoted
        ? `version ${retrain.version} is live: ${heldOutLine(retrain.heldOut)}`
        : `version ${retrain.version} is stored, not live: ${retrain.reason}`;
      output(json, { ...record, retrain }, `${stored}\n${outcome}`);
    });
}

/** A number or a JSON list when it reads as one; otherwise the text (the head then checks it). */
function labelValue(label: string): unknown {
  const t = label.trim();
  if (t.startsWith("[")) {
    try {
      return JSON.parse(t);
    } catch {
      throw new ValidationError(`--label ${label} is not a JSON list`, { field: "label" });
    }
  }
  return t !== "" && Number.isFinite(Number(t)) ? Number(t) : label;
}

function heldOutLine(h: RetrainOutcome["heldOut"]): string {
  if (!h) return "";
  return `${h.metric} on ${h.rows} held-out rows ${h.candidate.value.toFixed(4)} (live was ${h.live.value.toFixed(4)})`;
}

type InputOptions = { prediction?: string; text?: string; image?: string; audio?: string };

/** The input named on the command line: a text, an image or audio file (sent as base64) or none. */
async function inputOf(opts: InputOptions) {
  const given = (["text", "image", "audio"] as const).filter((o) => opts[o] !== undefined);
  if (given.length > 1) {
    throw new ValidationError(`send at most one of --text, --image, --audio (got --${given.join(", --")})`, {
      field: given[1],
    });
  }
  if (opts.prediction === undefined && given.length === 0) {
    throw new ValidationError(
      "name the prediction (--prediction <id>) or its input (--text <t>, --image <file> or --audio <file>)",
      { field: "prediction" },
    );
  }
  const kind = opts.image !== undefined ? "image" : opts.audio !== undefined ? "audio" : undefined;
  if (kind === undefined) return opts.text;
  const path = opts[kind]!;
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new ValidationError(`--${kind} ${path}: ${err.code === "ENOENT" ? "no such file" : err.message}`, {
      field: kind,
    });
  });
  return kind === "image" ? { image: bytes.toString("base64") } : { audio: bytes.toString("base64") };
}
