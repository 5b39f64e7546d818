/**
 * Data-quality tools over the cached embeddings of datasets and heads (`shared/quality/`).
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { NotFoundError } from "../../errors.ts";
import { readAlias } from "../../heads/version.ts";
import type { Platform } from "../../platform.ts";
import { readDriftState } from "../../quality/drift-state.ts";
import { DEFAULT_LABEL_ISSUE_FOLDS, MAX_LABEL_ISSUE_FOLDS, RANK_BY } from "../../quality/label-issues.ts";
import { DEFAULT_STRATEGY, DEFAULT_SUGGEST_K, MAX_SUGGEST_K, STRATEGIES } from "../../quality/suggest.ts";
import type { AppEnv } from "../env.ts";
import { errorResponses, jsonBody } from "../responses.ts";
import { DatasetParams, HeadParams } from "../schemas.ts";

/**
 * `POST /v1/datasets/{dataset}/label-issues`: the labelled rows that are probably labelled wrong
 * (`headstart label-issues`); `train` scope. It fits the default head type once per grid point and
 * fold in the request, so in AWS (API Gateway answers after 29 s) it stops after 25 s with a 422
 * naming HEADSTART_TRAIN_MAX_SECONDS; judge a large dataset from a machine with the CLI.
 */
/** Under API Gateway's 29 s, with room to answer. */
export const LABEL_ISSUES_LAMBDA_SECONDS = 25;

const LabelIssuesBody = z
  .object({
    backbone: z.string().min(1).optional().openapi({
      description:
        "Backbone id or `a+b` set whose cached vectors are read (default: the dataset's, as training picks it)",
      example: "glove-100d",
    }),
    folds: z
      .number()
      .int()
      .min(2)
      .max(MAX_LABEL_ISSUE_FOLDS)
      .optional()
      .openapi({
        description: `Cross-validation folds (default ${DEFAULT_LABEL_ISSUE_FOLDS}, at most one per labelled row)`,
        example: DEFAULT_LABEL_ISSUE_FOLDS,
      }),
    rankBy: z.enum(RANK_BY).optional().openapi({
      description: "Order of the issues: the given label's probability (default) or its normalized margin",
    }),
    seed: z.number().int().optional().openapi({ description: "Seeds the folds and fits (default 0)" }),
  })
  .strict()
  .openapi("LabelIssuesRequest");

const LabelIssue = z
  .object({
    id: z.string().openapi({ example: "r1042" }),
    text: z.string().optional().openapi({
      description: "The row's text (text rows): what a reviewer reads to judge the label",
      example: "a dull film with a brilliant ending",
    }),
    image: z.string().optional().openapi({
      description:
        "The row's image (image rows): its path below `datasets/<dataset>/files/` (`GET /v1/datasets/{dataset}/files?path=`)",
      example: "cat/1.jpg",
    }),
    givenLabel: z.string().openapi({ example: "pos" }),
    suggestedLabel: z
      .string()
      .openapi({ description: "The out-of-fold model's most probable class", example: "neg" }),
    score: z.number().openapi({
      description: "1 − the label's quality under `rankBy`, in [0, 1]: higher is more suspect",
      example: 0.97,
    }),
  })
  .openapi("LabelIssue");

const LabelIssuesResponse = z
  .object({
    dataset: z.string(),
    backbone: z.string(),
    type: z
      .string()
      .openapi({ description: "The head type whose out-of-fold probabilities judged the labels" }),
    params: z
      .record(z.string(), z.union([z.number(), z.string(), z.boolean()]))
      .openapi({ description: "Its parameters: the `auto` grid's with the lowest out-of-fold log-loss" }),
    folds: z.number().int(),
    rankBy: z.enum(RANK_BY),
    rows: z.number().int().openapi({ description: "Labelled rows examined" }),
    classes: z.array(z.string()),
    issues: z.array(LabelIssue).openapi({ description: "Flagged rows, most suspect first" }),
    estimatedNoiseRate: z.number().openapi({
      description:
        "Confident learning's estimate of the share of wrong labels (off-diagonal mass of its joint)",
      example: 0.08,
    }),
  })
  .openapi("LabelIssues");

const labelIssues = createRoute({
  method: "post",
  path: "/datasets/{dataset}/label-issues",
  operationId: "findLabelIssues",
  tags: ["datasets"],
  summary: "Labelled rows that are probably labelled wrong (confident learning)",
  description:
    "Out-of-fold probabilities of the default head type (logreg) over every labelled row, then confident " +
    "learning (per-class thresholds, the confident joint, pruned by noise rate). Single-class labels only. " +
    `Runs in the request: in AWS it stops after ${LABEL_ISSUES_LAMBDA_SECONDS} s (API Gateway answers at 29 s); ` +
    "judge larger datasets with `headstart label-issues`.",
  request: {
    params: DatasetParams,
    body: { required: false, content: { "application/json": { schema: LabelIssuesBody } } },
  },
  responses: {
    200: jsonBody(LabelIssuesResponse, "The flagged rows and the estimated noise rate"),
    ...errorResponses({
      400: "Invalid body (`folds`, `rankBy`), a bad backbone reference, or fewer than 2 classes",
      404: "Unknown dataset or backbone",
      415: "Not application/json",
      422:
        "Labels that are not single classes (`field: label`: regression or multi-label), or over the time budget " +
        "(`field: HEADSTART_TRAIN_MAX_SECONDS`)",
    }),
  },
});

/**
 * `POST /v1/drift`: does current data still look like the reference (`headstart drift`)? A dataset
 * or a head against a dataset or a head's captured inputs; `train` scope (auth/scopes.ts). One
 * about a head that finds drift emits `drift.detected`.
 */
const DriftSide = z.object({
  kind: z.enum(["dataset", "head", "capture"]),
  name: z.string().openapi({ example: "mood" }),
  version: z.string().optional().openapi({ description: "The dataset version read" }),
});

const DriftBody = z
  .object({
    reference: z
      .string()
      .min(1)
      .max(200)
      .openapi({
        description:
          "`dataset:<d>` (its current rows), `head:<h>` (the rows of the dataset version it was trained on, in its " +
          "backbones; `h@version` or `h:alias` too), or a bare name: a head if one has it, else a dataset",
        example: "head:mood",
      }),
    current: z.string().min(1).max(200).openapi({
      description:
        "A dataset (`dataset:<d>` or its name) or `capture:<head>`: the head's captured online inputs",
      example: "capture:mood",
    }),
    backbone: z.string().min(1).optional().openapi({
      description:
        "For a dataset reference: backbone id or `a+b` (default: the dataset's); a head uses its own",
      example: "glove-100d",
    }),
    alpha: z.number().gt(0).lt(1).optional().openapi({ description: "Drift when p < alpha (default 0.05)" }),
    permutations: z.number().int().min(1).max(10_000).optional().openapi({ description: "Default 200" }),
    maxItems: z
      .number()
      .int()
      .min(2)
      .max(5000)
      .optional()
      .openapi({ description: "Rows drawn (seeded) from each side at most (default 1000)" }),
    seed: z
      .number()
      .int()
      .optional()
      .openapi({ description: "Seeds the subsample and the permutations (default 0)" }),
  })
  .strict()
  .openapi("DriftRequest");

const DriftResponse = z
  .object({
    drift: z.boolean().openapi({ description: "Whether pValue < alpha" }),
    score: z
      .number()
      .openapi({ description: "Unbiased MMD² of the two samples (≈ 0 without drift)", example: 0.021 }),
    pValue: z.number().openapi({ description: "Permutation p-value, in (0, 1]", example: 0.005 }),
    method: z.literal("mmd-rbf-permutation"),
    alpha: z.number().openapi({ example: 0.05 }),
    n: z
      .object({ reference: z.number().int(), current: z.number().int() })
      .openapi({ description: "Rows of each side" }),
    used: z
      .object({ reference: z.number().int(), current: z.number().int() })
      .openapi({ description: "Rows the test used after subsampling" }),
    backbone: z.string(),
    reference: DriftSide,
    current: DriftSide,
    bandwidth: z.number().openapi({ description: "σ of the RBF kernel: the median pairwise distance" }),
    permutations: z.number().int(),
    seed: z.number().int(),
    labelShift: z
      .object({
        reference: z.record(z.string(), z.number()),
        current: z.record(z.string(), z.number()),
        distance: z.number().openapi({ description: "Total variation distance ½·Σ|p − q|, in [0, 1]" }),
      })
      .optional()
      .openapi({
        description: "A multiclass head as the reference: the shares of its predicted labels on each side",
      }),
    head: z.object({ head: z.string(), version: z.string() }).optional(),
    checkedAt: z.string(),
  })
  .openapi("Drift");

const drift = createRoute({
  method: "post",
  path: "/drift",
  operationId: "checkDrift",
  tags: ["heads"],
  summary: "Test whether current data drifted from the reference (MMD on the embeddings)",
  description:
    "Maximum mean discrepancy with an RBF kernel (median-heuristic bandwidth) on L2-normalized embeddings, " +
    "each side subsampled to `maxItems`, and a permutation p-value; drift when p < alpha. With a head as the " +
    "reference, also the shift of its predicted-label mix. A check about a head (its reference or its " +
    "captures) that finds drift emits `drift.detected`.",
  request: { body: { required: true, content: { "application/json": { schema: DriftBody } } } },
  responses: {
    200: jsonBody(DriftResponse, "The test's outcome"),
    ...errorResponses({
      400: "Invalid body, a reference that is captures, a current that is a head, a head with no captured inputs, rows not embedded yet",
      404: "Unknown dataset, head or backbone",
      409: "The head's backbone was replaced since it was trained",
      415: "Not application/json",
    }),
  },
});

/** `POST /v1/datasets/{dataset}/suggest`: which unlabelled rows to label next (`headstart suggest`). */
const SuggestBody = z
  .object({
    head: z
      .string()
      .min(1)
      .optional()
      .openapi({
        description:
          "`head`, `head@version` or `head:alias` whose calibrated probabilities say how unsure it is of each row; " +
          "without one, a cold start: a diverse seed set (with nothing labelled, the default gives typical rows, " +
          "the medoids of k k-means groups; with labelled rows, or strategy coreset, k-center greedy away from them)",
        example: "imdb-sentiment",
      }),
    k: z
      .number()
      .int()
      .min(1)
      .max(MAX_SUGGEST_K)
      .optional()
      .openapi({ description: `How many rows to suggest (default ${DEFAULT_SUGGEST_K})`, example: 20 }),
    strategy: z
      .string()
      .optional()
      .openapi({
        description:
          `One of ${STRATEGIES.join(", ")} (default ${DEFAULT_STRATEGY}). margin: 1 − (p₁ − p₂); entropy: normalized ` +
          "entropy; coreset: k-center greedy over the L2-normalized vectors, away from the labelled rows and the " +
          "earlier picks; hybrid: the 5·k most uncertain rows (margin; at most half of the unlabelled rows), grouped " +
          "by k-means weighted by uncertainty into k groups, and the most typical row of each (with 100 to 2,000 " +
          "labelled rows of a single-label head, the margin of a committee of 10 bootstrap heads)",
        example: "hybrid",
      }),
    backbone: z.string().min(1).optional().openapi({
      description: "Without a head only: the backbone whose cached vectors are read (default: the dataset's)",
      example: "glove-100d",
    }),
  })
  .strict()
  .openapi("SuggestRequest");

const SuggestItem = z
  .object({
    id: z.string().openapi({ example: "u3141" }),
    text: z.string().optional().openapi({
      description: "The row's text (text rows): what a person reads to label it",
      example: "not sure what to make of it",
    }),
    image: z.string().optional().openapi({
      description:
        "The row's image (image rows): its path below `datasets/<dataset>/files/` (`GET /v1/datasets/{dataset}/files?path=`)",
      example: "cat/1.jpg",
    }),
    score: z.number().openapi({
      description:
        "margin, entropy, hybrid: the head's uncertainty in [0, 1] (1: a coin toss); coreset: the L2 distance in " +
        "[0, 2] to the nearest labelled or earlier-picked row (2 for a cold start's first pick); a cold start's " +
        "hybrid: the share of the unlabelled rows its group holds, in (0, 1]",
      example: 0.96,
    }),
    reason: z.string().openapi({
      example:
        "margin: pos 0.520 vs neg 0.480; the most typical of 7 similar rows among the 100 most uncertain",
    }),
  })
  .openapi("SuggestItem");

const SuggestResponse = z
  .object({
    dataset: z.string(),
    datasetVersion: z.string().openapi({ description: "The dataset version whose rows were ranked" }),
    head: z.string().optional(),
    version: z.string().optional().openapi({ description: "The head version whose probabilities were used" }),
    backbone: z
      .string()
      .openapi({ description: "The backbone (or `a+b` set) whose cached vectors were read" }),
    strategy: z.enum(STRATEGIES).openapi({
      description:
        "The strategy that ran; a cold start runs `hybrid` (typical rows) while nothing is labelled, else `coreset`",
    }),
    coldStart: z.boolean().openapi({ description: "No head: the items are a diverse seed set" }),
    labelled: z.number().int(),
    unlabelled: z.number().int().openapi({ description: "Rows without a label, the candidates" }),
    items: z.array(SuggestItem).openapi({ description: "The rows to label next, in the order picked" }),
  })
  .openapi("Suggestions");

const suggest = createRoute({
  method: "post",
  path: "/datasets/{dataset}/suggest",
  operationId: "suggestRows",
  tags: ["datasets"],
  summary: "Which unlabelled rows to label next (active learning)",
  description:
    "Ranks the dataset's rows without a label by a head's uncertainty, by diversity, or both (the default), over " +
    "the cached vectors of the head's backbone; without a head, a diverse seed set. The dataset must be embedded " +
    "with that backbone. Reads only: nothing is written.",
  request: {
    params: DatasetParams,
    body: { required: false, content: { "application/json": { schema: SuggestBody } } },
  },
  responses: {
    200: jsonBody(SuggestResponse, "The rows to label next"),
    ...errorResponses({
      400: "Invalid body (`k`, an unknown `strategy`, head and backbone both), margin or entropy without a head, a regression head with an uncertainty strategy, or the dataset not embedded with the backbone",
      404: "Unknown dataset, head or backbone",
      409: "The head's backbone was replaced since it was trained",
      415: "Not application/json",
    }),
  },
});

/**
 * `GET /v1/heads/{head}/drift-state`: the scheduled drift check's record of a head
 * (`heads/<head>/drift-state.json`, quality/drift-state.ts); `train` scope, like `POST /v1/drift`.
 */
const DriftStateDoc = z
  .object({
    head: z.string(),
    version: z.string().openapi({ description: "The live version the check measured against" }),
    drift: z.boolean(),
    checkedAt: z.string(),
    pValue: z.number(),
    score: z.number().openapi({ description: "Unbiased MMD² of the check" }),
    n: z.object({ reference: z.number(), current: z.number() }),
    driftSince: z
      .string()
      .optional()
      .openapi({ description: "The first check of the drift that persists now; absent without drift" }),
    emittedAt: z
      .string()
      .optional()
      .openapi({ description: "When the last scheduled `drift.detected` went out" }),
  })
  .openapi("DriftState");

const driftState = createRoute({
  method: "get",
  path: "/heads/{head}/drift-state",
  operationId: "getHeadDriftState",
  tags: ["heads"],
  summary: "The scheduled drift check's last record of a head (null before its first check)",
  description:
    "What the scheduled check (`serve --drift-window-days`, the drift-check Lambda) last found for the head's " +
    "captured inputs against its training data: `state` is `heads/<head>/drift-state.json`, or null when no " +
    "scheduled check has recorded one (the head captures no inputs, or too few yet).",
  request: { params: HeadParams },
  responses: {
    200: jsonBody(
      z.object({ head: z.string(), state: DriftStateDoc.nullable() }).openapi("HeadDriftState"),
      "The record, or null",
    ),
    ...errorResponses({ 400: true, 404: "Unknown head" }),
  },
});

export function qualityRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(labelIssues, async (c) => {
    const { dataset } = c.req.valid("param");
    const body = c.req.header("content-type") ? c.req.valid("json") : {};
    const result = await platform.labelIssues(dataset, body, {
      signal: c.req.raw.signal,
      maxSeconds: platform.config.lambdaFunction ? LABEL_ISSUES_LAMBDA_SECONDS : undefined,
    });
    return c.json(result, 200);
  });
  app.openapi(drift, async (c) => c.json(await platform.checkDrift(c.req.valid("json")), 200));
  app.openapi(driftState, async (c) => {
    const { head } = c.req.valid("param");
    if (!(await readAlias(platform.store, head))) throw new NotFoundError(`head ${head}`, { field: "head" });
    return c.json({ head, state: (await readDriftState(platform.store, head)) ?? null }, 200);
  });
  app.openapi(suggest, async (c) => {
    const { dataset } = c.req.valid("param");
    const body = c.req.header("content-type") ? c.req.valid("json") : {};
    return c.json(await platform.suggest(dataset, body), 200);
  });
  return app;
}
