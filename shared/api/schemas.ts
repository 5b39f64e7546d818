import { z } from "@hono/zod-openapi";
import { TrainRequestBody } from "../heads/train-request.ts";
import { NAME_PATTERN, NAME_RULE } from "../layout.ts";

export const MAX_PREDICT_BATCH = 256;
export const MAX_EMBEDDINGS_BATCH = 1_024;
export const MAX_INPUT_CHARS = 100_000;

const Name = z.string().regex(NAME_PATTERN, NAME_RULE);

export const DatasetParams = z.object({
  dataset: Name.openapi({ param: { name: "dataset", in: "path" }, example: "imdb" }),
});
export const HeadParams = z.object({
  head: Name.openapi({ param: { name: "head", in: "path" }, example: "imdb-sentiment" }),
});
export const HeadAliasParams = HeadParams.extend({
  alias: Name.openapi({ param: { name: "alias", in: "path" }, example: "live" }),
});
export const HeadVersionParams = HeadParams.extend({
  version: Name.openapi({ param: { name: "version", in: "path" } }),
});
export const JobParams = z.object({ job: Name.openapi({ param: { name: "job", in: "path" } }) });

export const HeadJobParams = HeadParams.extend({
  job: Name.openapi({
    param: { name: "job", in: "path" },
    example: "bp-imdb-sentiment-3f2a9c0d1e4b5a6c7d8e",
  }),
});
export const HeadJobFileParams = HeadJobParams.extend({
  name: Name.openapi({ param: { name: "name", in: "path" }, example: "part-00000.jsonl" }),
});

export const BatchPredictionBody = z
  .object({
    dataset: Name.optional().openapi({
      description: "Score this dataset's current rows (send this or `manifestKey`)",
      example: "imdb-test",
    }),
    manifestKey: z
      .string()
      .max(1024)
      .optional()
      .openapi({
        description:
          "Score the rows of a manifest (`.jsonl` or `.csv`) already in the store, under `batch/` or `datasets/` " +
          "(send this or `dataset`); it is ingested as a dataset named after its content, `bp-input-<hash>`",
        example: "batch/imdb-sentiment/tonight.jsonl",
      }),
    version: Name.optional().openapi({ description: "A head version instead of the live one" }),
    alias: Name.optional().openapi({ description: "The version an alias points to instead of the live one" }),
  })
  .openapi("BatchPredictionRequest");

export const DatasetInfoQuery = z.object({
  backbone: Name.optional().openapi({
    description: "Whose cache to report on (default: the default backbone of the dataset's modality)",
  }),
});

export const IngestQuery = z.object({
  embed: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "Start embedding after ingest (default true)" }),
  backbone: Name.optional(),
  backbones: z.string().max(1024).optional().openapi({
    description:
      "Embed with several backbones in one batch job: ids separated by commas, or `recommended` (the set for the rows' modality). Not with `backbone`",
    example: "recommended",
  }),
});

export const ImportEmbeddingsBody = z
  .strictObject({
    backbone: Name.openapi({
      description: "A name for the model that made the vectors; train with `backbone` set to it",
      example: "openai-3-small",
    }),
    rows: z
      .array(z.record(z.string(), z.unknown()))
      .min(1)
      .openapi({
        description:
          "One object per vector, in the same order: `id` (required, unique), `label`, `split` (`train` | `test`), `text` (kept, never embedded)",
        example: [{ id: "r1", label: "pos", text: "What a great movie!" }],
      }),
    embeddings: z
      .array(z.array(z.number()).min(1))
      .min(1)
      .openapi({
        description: "The vectors, one number array per row, all the same length",
        example: [[0.1, -0.2]],
      }),
  })
  .openapi("ImportEmbeddingsRequest");

/**
 * The train request (`heads/train-request.ts`) with its OpenAPI descriptions. Its fields are
 * cloned before `.openapi()`: zod 4 gives a schema that method only when it is built after
 * @hono/zod-openapi loaded, and whether the request's module was built first depends on the
 * entry point's import order (see responses.ts).
 */
const trainFields = TrainRequestBody.shape;
export const TrainBody = TrainRequestBody.extend({
  type: trainFields.type.clone().openapi({
    description:
      "A head type (logreg, mlp, knn, centroid, multilabel, ridge), auto, or zero-shot (a head from `labels` alone); default by task",
  }),
  labels: trainFields.labels.clone().openapi({
    description:
      "type zero-shot: the classes, each \"name: description\" (the description defaults to the name; a name given twice has both descriptions averaged). Each description is embedded with the head's (text) backbone and becomes its class's centroid; required by zero-shot, refused by other types",
    example: ["pos: a positive review", "neg: a negative review"],
  }),
  params: trainFields.params.clone().openapi({
    description: 'Hyper-parameters of the head type, e.g. {"C": 0.5, "classWeight": "balanced"}',
  }),
  candidates: trainFields.candidates.clone().openapi({
    description: "Head types `auto` may choose from (default: every type of the task)",
  }),
  backbone: trainFields.backbone.clone().openapi({
    description:
      "The backbone whose cache to train on, or several joined by + (each part L2-normalized, concatenated in order)",
    example: "glove-100d+use-lite-512",
  }),
  withFeedback: trainFields.withFeedback.clone().openapi({
    description:
      "Also train on the head's feedback: a dataset row with the same text (or, for an image, the same embedding) takes the feedback's label, the others join the training rows; the report gains a `feedback` section (before/after on those rows)",
  }),
  capture: trainFields.capture.clone().openapi({
    description:
      "Which online predictions' inputs the new version keeps under heads/<head>/captures/ (text only): none (default), uncertain (top-two margin < 0.2), all",
  }),
  backbones: trainFields.backbones.clone().openapi({
    description:
      "Backbones (or + sets) `auto` may choose from, evaluated on the rows all of them embed. `auto` with neither `backbone` nor `backbones` searches every backbone cached for the dataset's current rows and their + sets",
  }),
  budgetSeconds: trainFields.budgetSeconds.clone().openapi({
    description:
      "`auto` only: seconds the search may spend before it stops starting candidates and fits the best it scored (never more than half the training's own budget)",
    example: 120,
  }),
  unknownRate: trainFields.unknownRate.clone().openapi({
    description:
      "Multiclass heads: the share of held-out in-distribution rows the unknown-input threshold flags (default 0.05: it keeps 95%)",
    example: 0.05,
  }),
  unknownScorer: trainFields.unknownScorer.clone().openapi({
    description:
      "Multiclass heads: the unknown-input scorer: auto (default: seen classes take turns standing in for an unseen one, and a distance scorer is kept only if it tells them apart clearly better than msp), msp (1 − the top calibrated probability), mahalanobis (shared covariance) or knn (cosine distance to the 10th nearest of ≤ 2,000 training vectors)",
  }),
}).openapi("TrainRequest");

/**
 * Base64 file characters (images and audio together) per JSON predict request. A synchronous
 * Lambda takes at most 6 MiB of request payload, the JSON around the files included; 6,000,000
 * characters (4.5 MB of file bytes: about 140 s of 16 kHz 16-bit mono WAV, 25 s of CD-quality
 * stereo WAV, minutes of MP3) leaves room for the rest, so a request refused here is refused with a
 * clear error instead of API Gateway's bare 413. Longer recordings go to the bucket (`audioKey`).
 */
export const MAX_FILE_BASE64_CHARS = 6_000_000;
/**
 * File bytes (image and audio parts together) per multipart predict request: API Gateway hands
 * binary bodies to the Lambda as base64, so the same payload limit allows 3/4 of it in raw bytes.
 */
export const MAX_UPLOAD_FILE_BYTES = (MAX_FILE_BASE64_CHARS / 4) * 3;

/** A bucket key predict reads a file from: an image or audio object under `datasets/`. */
const FileKey = (kind: "image" | "audio", example: string) =>
  z
    .string()
    .min(1)
    .max(1024)
    .openapi({
      description: `Key of an ${kind} object under \`datasets/\` in this deployment's bucket; no \`..\`, leading \`/\`, backslash or control character`,
      example,
    });

const TextInput = z.string().min(1).max(MAX_INPUT_CHARS);
const PredictInput = z
  .union(
    [
      TextInput.openapi({ description: "A text" }),
      z.strictObject({ text: TextInput }).openapi({ description: "A text" }),
      z
        .strictObject({
          image: z.string().min(1).openapi({
            description:
              "Image bytes (JPEG, PNG, WebP or GIF) as standard base64 with = padding, no data: prefix",
            format: "byte",
          }),
        })
        .openapi({ description: "An image sent inline" }),
      z
        .strictObject({ imageKey: FileKey("image", "datasets/pets/files/cat/1.jpg") })
        .openapi({ description: "An image already in the bucket" }),
      z
        .strictObject({
          audio: z.string().min(1).openapi({
            description:
              "Audio file bytes (WAV, FLAC, MP3 or Ogg Vorbis) as standard base64 with = padding, no data: prefix",
            format: "byte",
          }),
        })
        .openapi({ description: "An audio clip sent inline" }),
      z
        .strictObject({ audioKey: FileKey("audio", "datasets/commands/files/yes/1.wav") })
        .openapi({ description: "An audio file already in the bucket" }),
    ],
    { error: "must be a text string, {text}, {image: base64}, {imageKey}, {audio: base64} or {audioKey}" },
  )
  .openapi("PredictInput");

export const PredictBody = z
  .strictObject({
    inputs: z
      .array(PredictInput)
      .min(1)
      .max(MAX_PREDICT_BATCH)
      .optional()
      .openapi({
        description:
          `Raw inputs for the head's backbone, at most ${MAX_PREDICT_BATCH}: texts for a text head, ` +
          "images for an image head, audio for an audio head " +
          `(at most ${MAX_FILE_BASE64_CHARS} base64 characters of files per request in all)`,
        example: ["What a great movie!"],
      }),
    embeddings: z
      .array(z.array(z.number()).min(1))
      .min(1)
      .max(MAX_EMBEDDINGS_BATCH)
      .optional()
      .openapi({ description: `Ready embeddings from the head's backbone, at most ${MAX_EMBEDDINGS_BATCH}` }),
    version: Name.optional().openapi({ description: "A specific head version instead of the live one" }),
    alias: Name.optional().openapi({ description: "The version another alias points to (e.g. canary)" }),
    neighbors: z.number().int().min(1).max(50).optional().openapi({
      description: "Also return the k most similar training items (id, label, cosine similarity)",
    }),
    rejectUnknown: z.boolean().optional().openapi({
      description:
        "Answer the label `unknown` for inputs above the version's unknown-input threshold (multiclass heads with a detector)",
    }),
  })
  .refine((b) => (b.inputs === undefined) !== (b.embeddings === undefined), {
    message: "send exactly one of inputs, embeddings",
    path: ["inputs"],
  })
  .refine((b) => b.version === undefined || b.alias === undefined, {
    message: "send at most one of version, alias",
    path: ["alias"],
  })
  .openapi("PredictRequest");

const FilePart = z.instanceof(File).openapi({ type: "string", format: "binary" });
const FileParts = (kind: "image" | "audio", formats: string) =>
  z
    .union([FilePart, z.array(FilePart).min(1).max(MAX_PREDICT_BATCH)], {
      error: `send one or more ${kind} file parts named ${kind}`,
    })
    .optional()
    .openapi({
      description:
        `One ${kind} file part per input (${formats}), at most ${MAX_PREDICT_BATCH}, ` +
        `${MAX_UPLOAD_FILE_BYTES} bytes of files in all; send image or audio parts, not both`,
    });

/** The multipart form of predict: image or audio files as parts, the options as text fields. */
export const PredictForm = z
  .strictObject({
    image: FileParts("image", "JPEG, PNG, WebP or GIF"),
    audio: FileParts("audio", "WAV, FLAC, MP3 or Ogg Vorbis"),
    version: Name.optional().openapi({ description: "A specific head version instead of the live one" }),
    alias: Name.optional().openapi({ description: "The version another alias points to (e.g. canary)" }),
    neighbors: z.coerce.number().int().min(1).max(50).optional().openapi({
      description: "Also return the k most similar training items",
    }),
    rejectUnknown: z.enum(["true", "false"]).optional().openapi({
      description:
        "`true`: answer the label `unknown` for inputs above the version's unknown-input threshold",
    }),
  })
  .refine((b) => (b.image === undefined) !== (b.audio === undefined), {
    message: "send one or more file parts named image, or named audio (not both)",
    path: ["image"],
  })
  .refine((b) => b.version === undefined || b.alias === undefined, {
    message: "send at most one of version, alias",
    path: ["alias"],
  })
  .openapi("PredictUpload");

export const PredictResponse = z
  .object({
    head: z.string(),
    version: z.string(),
    predictions: z.array(
      z.object({
        predictionId: z.string().openapi({
          description:
            "Names this prediction in a correction (`POST /v1/heads/{head}/feedback`); resolves to its input only if the head keeps inputs (capture)",
          example: "p-5b0e9c3a7d21f4e8a6c0b912",
        }),
        label: z.string().optional().openapi({ description: "Multiclass heads: the most probable class" }),
        labels: z
          .array(z.string())
          .optional()
          .openapi({ description: "Multilabel heads: labels at or above their threshold" }),
        value: z.number().optional().openapi({ description: "Regression heads: the predicted value" }),
        score: z.number().optional(),
        scores: z.record(z.string(), z.number()).optional(),
        unknownScore: z.number().optional().openapi({
          description:
            "Multiclass heads with a detector: how unlike the training data the input is (higher: less like it; the scale is the scorer's)",
        }),
        unknown: z.boolean().optional().openapi({
          description:
            "unknownScore is above the threshold chosen at training (with rejectUnknown the label is `unknown`)",
        }),
        neighbors: z
          .array(
            z.object({
              id: z.string(),
              label: z.union([z.string(), z.number(), z.array(z.string())]).optional(),
              text: z.string().optional().openapi({
                description: "Text rows: the training item's text, cut to 200 characters (… marks a cut)",
              }),
              image: z.string().optional().openapi({
                description:
                  "Image rows: the training item's path in the head's dataset (GET /v1/datasets/{dataset}/files?path=)",
              }),
              audio: z.string().optional().openapi({
                description:
                  "Audio rows: the training item's path in the head's dataset (GET /v1/datasets/{dataset}/files?path=)",
              }),
              similarity: z.number(),
            }),
          )
          .optional(),
      }),
    ),
  })
  .openapi("PredictResponse");

export const PromoteBody = z.strictObject({
  version: Name,
  expectedVersion: Name.nullable()
    .optional()
    .openapi({ description: "Fail with 409 unless live currently points here" }),
});
