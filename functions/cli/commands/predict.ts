import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { MAX_EMBEDDINGS_BATCH, MAX_PREDICT_BATCH } from "../../../shared/api/schemas.ts";
import { decodeNpy } from "../../../shared/cache/npy.ts";
import { ValidationError } from "../../../shared/errors.ts";
import type { PredictInput, Prediction } from "../../../shared/heads/predict.ts";
import type { Platform } from "../../../shared/platform.ts";
import { context, intOption, output } from "../context.ts";

/** The flags as commander parses them. */
interface PredictFlags {
  text?: string[];
  image?: string[];
  audio?: string[];
  input?: string;
  embeddings?: string;
  version?: string;
  neighbors?: number;
  rejectUnknown?: boolean;
}

/** What to predict: `texts` label the output lines (file names for files, `#i` for vectors). */
interface PredictInputs {
  texts: string[];
  embeddings?: number[][];
  /** `--image`, `--audio`: the files' bytes. */
  files?: PredictInput[];
}

export function registerPredict(program: Command): void {
  program
    .command("predict")
    .description(
      "predict with a head (head, head@version or head:alias) from texts, images, audio or ready embeddings",
    )
    .argument("<head>", "head, head@version or head:alias")
    .option("--text <text...>", "one or more texts")
    .option("--image <file...>", "one or more image files (JPEG, PNG, WebP, GIF) for an image head")
    .option("--audio <file...>", "one or more audio files (WAV, FLAC, MP3, Ogg Vorbis) for an audio head")
    .option("--input <file.jsonl>", 'a JSONL file with one {"text": …} per line')
    .option(
      "--embeddings <file>",
      "ready vectors from the head's backbone: a float32 .npy matrix, or JSONL with one array per line",
    )
    .option("--version <version>", "a specific head version instead of the live one")
    .option("--neighbors <k>", "also show the k most similar training items", intOption("neighbors"))
    .option(
      "--reject-unknown",
      "answer the label unknown for inputs above the head's unknown-input threshold",
    )
    .action(async (head: string, opts: PredictFlags, cmd: Command) => {
      const { platform, json } = context(cmd);
      const inputs = await readInputs(opts);
      const r = await predictInBatches(platform, head, inputs, opts);
      output(json, r, predictionLines(r.predictions, inputs.texts));
    });
}

async function readInputs(opts: PredictFlags): Promise<PredictInputs> {
  const given = [opts.text, opts.image, opts.audio, opts.input, opts.embeddings].filter(
    (o) => o !== undefined,
  ).length;
  if (given !== 1) {
    throw new ValidationError("give exactly one of --text, --image, --audio, --input, --embeddings", {
      field: "text",
    });
  }
  // The file names stand in for the texts in the output.
  if (opts.image) return { texts: opts.image, files: await readFiles(opts.image, "image") };
  if (opts.audio) return { texts: opts.audio, files: await readFiles(opts.audio, "audio") };
  if (opts.embeddings) {
    const embeddings = await readEmbeddingsFile(opts.embeddings);
    return { texts: embeddings.map((_, i) => `#${i}`), embeddings };
  }
  if (opts.input) return { texts: await readTextsFile(opts.input) };
  return { texts: opts.text ?? [] };
}

function readFiles(paths: string[], kind: "image" | "audio"): Promise<PredictInput[]> {
  return Promise.all(
    paths.map(async (path) => {
      try {
        const bytes = new Uint8Array(await readFile(path));
        return kind === "audio" ? { audio: bytes } : { image: bytes };
      } catch (err) {
        throw new ValidationError(`--${kind} ${path}: ${(err as Error).message}`, { field: kind });
      }
    }),
  );
}

/** Texts for `predict --input`: JSONL with one `{"text": …}` per line. */
async function readTextsFile(path: string): Promise<string[]> {
  const texts: string[] = [];
  const lines = (await readFile(path, "utf8")).split("\n");
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new ValidationError(`${path} line ${i + 1} is not valid JSON`, {
        field: `line ${i + 1}`,
      });
    }
    const text = (row as { text?: unknown })?.text;
    if (typeof text !== "string" || !text.trim()) {
      throw new ValidationError(`${path} line ${i + 1} has no "text" string`, {
        field: `line ${i + 1}`,
      });
    }
    texts.push(text);
  });
  return texts;
}

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

/** One request per batch the API takes at most, so any number of inputs works. */
async function predictInBatches(platform: Platform, head: string, inputs: PredictInputs, opts: PredictFlags) {
  const { texts, embeddings, files } = inputs;
  const predictions: Prediction[] = [];
  let version = "";
  let headName = head;
  const batchSize = embeddings ? MAX_EMBEDDINGS_BATCH : MAX_PREDICT_BATCH;
  for (let i = 0; i < texts.length; i += batchSize) {
    const r = await platform.predict(head, {
      ...(embeddings
        ? { embeddings: embeddings.slice(i, i + batchSize) }
        : files
          ? { inputs: files.slice(i, i + batchSize) }
          : { inputs: texts.slice(i, i + batchSize) }),
      version: opts.version,
      neighbors: opts.neighbors,
      rejectUnknown: opts.rejectUnknown,
    });
    version = r.version;
    headName = r.head;
    predictions.push(...r.predictions);
  }
  return { head: headName, version, predictions };
}

/** One line per prediction (then its neighbours, indented), tab-separated. */
function predictionLines(predictions: Prediction[], texts: string[]): string {
  return predictions
    .map((p, i) =>
      [
        `${describePrediction(p)}\t${texts[i].slice(0, 80)}`,
        ...(p.neighbors ?? []).map(
          (n) => `  ~ ${n.similarity.toFixed(3)}\t${n.id}\t${String(n.label ?? "")}`,
        ),
      ].join("\n"),
    )
    .join("\n");
}

/** One prediction as a short tab-separated cell, by task. */
function describePrediction(p: Prediction): string {
  if (p.value !== undefined) return String(p.value);
  if (p.labels !== undefined) return p.labels.join(",") || "(none)";
  const unknown = p.unknown ? "\t(unknown input)" : "";
  return `${p.label}\t${(p.score ?? 0).toFixed(4)}${unknown}`;
}
