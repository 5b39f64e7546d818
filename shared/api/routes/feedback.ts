/**
 * `/v1/heads/{head}/feedback`: corrections of a head's predictions (`feedback/`), the same code
 * paths as `headstart feedback`. Sending and reading them needs `predict` or `train`; deleting one
 * needs `train` (auth/scopes.ts).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Platform } from "../../platform.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";
import { HeadParams, MAX_FILE_BASE64_CHARS } from "../schemas.ts";

const tags = ["heads"];

const FeedbackLabel = z.union([z.string(), z.number(), z.array(z.string())]).openapi({
  description:
    "The right answer: one of the head's classes (multiclass), a list of its labels (multilabel) or a number (regression)",
  example: "neg",
});

const FeedbackBody = z
  .object({
    predictionId: z.string().max(400).optional().openapi({
      description:
        "The prediction corrected: `p-<24 hex>` from predict (resolves only if the head keeps its inputs: capture) or `<job>:<row id>` from a batch job's output (always resolves)",
      example: "bp-films-3f9a0c51d2e847b6a1c2:r17",
    }),
    input: z
      .union(
        [
          z.string(),
          z.strictObject({ text: z.string() }),
          z.strictObject({
            image: z.string().min(1).max(MAX_FILE_BASE64_CHARS).openapi({
              description: "Image bytes (JPEG, PNG, WebP or GIF) as standard base64, no data: prefix",
              format: "byte",
            }),
          }),
          z.strictObject({
            imageKey: z.string().min(1).max(1024).openapi({
              description: "Key of an image under `datasets/` in this bucket (no `..`)",
              example: "datasets/pets/files/cat/1.jpg",
            }),
          }),
          z.strictObject({
            audio: z.string().min(1).max(MAX_FILE_BASE64_CHARS).openapi({
              description: "Audio bytes (WAV, FLAC, MP3 or Ogg Vorbis) as standard base64, no data: prefix",
              format: "byte",
            }),
          }),
          z.strictObject({
            audioKey: z.string().min(1).max(1024).openapi({
              description: "Key of an audio file under `datasets/` in this bucket (no `..`)",
              example: "datasets/commands/files/yes/en-m1.wav",
            }),
          }),
        ],
        {
          error: "must be a text string, {text}, {image: base64}, {imageKey}, {audio: base64} or {audioKey}",
        },
      )
      .optional()
      .openapi({
        description:
          "The input the label belongs to: a text for a text head, an image for an image head, audio for an audio " +
          "head (a file inline as base64 or a bucket key; another kind than the head's is a 400 naming the field). " +
          "Needed for online predictions of a head that keeps no inputs, and always for an image or audio prediction " +
          "(files are never kept): send it with the predictionId",
        example: "a dull film with a brilliant ending",
      }),
    label: FeedbackLabel,
  })
  .strict()
  .openapi("FeedbackRequest");

const Feedback = z
  .object({
    id: z.string().openapi({ example: "fb-20261207034512345-9c1d2e3f" }),
    head: z.string(),
    predictionId: z.string().optional(),
    text: z.string().optional().openapi({ description: "The input, when it is a text" }),
    image: z.string().optional().openapi({
      description:
        "The input, when it is an image: `<sha256>.<ext>` under `heads/<head>/feedback-images/` (the same image is stored once)",
      example: "9f2c0b6e4d1a7c3b8e5f2a9d6c4b1e7f3a8d5c2b9e6f4a1d7c3b8e5f2a9d6c4b.png",
    }),
    audio: z.string().optional().openapi({
      description:
        "The input, when it is audio: `<sha256>.<wav|flac|mp3|ogg>` under `heads/<head>/feedback-audio/` (the same file is stored once)",
      example: "3b8e5f2a9d6c4b1e7f3a8d5c2b9e6f4a1d7c3b8e5f2a9d6c4b9f2c0b6e4d1a7c.wav",
    }),
    label: FeedbackLabel,
    createdAt: z.string(),
  })
  .openapi("Feedback");

const FeedbackParams = HeadParams.extend({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: "fb-20261207034512345-9c1d2e3f" }),
});

const add = createRoute({
  method: "post",
  path: "/{head}/feedback",
  operationId: "addFeedback",
  tags,
  summary: "Correct a prediction: the prediction (or its input) and the label it should have had",
  description:
    "Stored as a labelled row of the head's feedback (`heads/<head>/feedback/<id>.json`; an image input's bytes " +
    "once under `heads/<head>/feedback-images/<sha256>.<ext>`, an audio input's under " +
    "`heads/<head>/feedback-audio/<sha256>.<ext>`); `POST …/train` with " +
    "`withFeedback: true` trains on it (for the same input the newest label wins) and the version's report " +
    "scores the previous and the new version on the feedback rows.",
  request: {
    params: HeadParams,
    body: { required: true, content: { "application/json": { schema: FeedbackBody } } },
  },
  responses: {
    201: jsonBody(Feedback, "The stored correction"),
    ...errorResponses({
      400: "A label that is not one of the head's classes, neither predictionId nor input, an online prediction whose input the head did not keep (an image or audio prediction's, always), an input of another kind than the head's (audio for a text or image head, an image for a text or audio head, a text for an image or audio head), an image that is not valid base64 or not a JPEG, PNG, WebP or GIF, audio that is not valid base64 or not WAV, FLAC, MP3 or Ogg Vorbis, an imageKey or audioKey outside datasets/",
      404: "Unknown head, batch job, row, or imageKey or audioKey object",
      413: true,
      415: true,
    }),
  },
});

const list = createRoute({
  method: "get",
  path: "/{head}/feedback",
  operationId: "listFeedback",
  tags,
  summary: "The head's corrections, oldest first",
  request: { params: HeadParams },
  responses: {
    200: jsonBody(z.object({ feedback: z.array(Feedback) }).openapi("FeedbackList"), "Every correction"),
    ...errorResponses({ 400: true }),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/{head}/feedback/{id}",
  operationId: "deleteFeedback",
  tags,
  summary: "Delete one correction (the next training with feedback leaves it out)",
  request: { params: FeedbackParams },
  responses: {
    200: jsonBody(Feedback, "The correction deleted"),
    ...errorResponses({ 400: true, 404: "Unknown feedback id" }),
  },
});

export function feedbackRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(add, async (c) => {
    const { head } = c.req.valid("param");
    return c.json(await platform.addFeedback(head, c.req.valid("json")), 201);
  });
  app.openapi(list, async (c) =>
    c.json({ feedback: await platform.listFeedback(c.req.valid("param").head) }, 200),
  );
  app.openapi(remove, async (c) => {
    const { head, id } = c.req.valid("param");
    return c.json(await platform.deleteFeedback(head, id), 200);
  });
  return app;
}
