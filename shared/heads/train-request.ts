/**
 * The train request as the platform receives it, below the API: the HTTP body
 * (`shared/api/schemas.ts` adds the OpenAPI descriptions on top) and the train Lambda's event
 * (`train-dispatch.ts`) are both built from this one schema.
 */
import { z } from "zod";
import { BACKBONE_REF_PATTERN, BACKBONE_REF_RULE } from "../embed/composite.ts";
import { NAME_PATTERN, NAME_RULE } from "../layout.ts";
import type { TrainOptions } from "./train.ts";
import { HeadTask } from "./version.ts";

/** A backbone id, or several joined by `+` (parts and repeats are checked by the platform). */
const BackboneRef = z.string().max(255).regex(BACKBONE_REF_PATTERN, BACKBONE_REF_RULE);

export const TrainRequestBody = z.strictObject({
  dataset: z.string().regex(NAME_PATTERN, NAME_RULE),
  type: z.string().max(64).optional(),
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).optional(),
  task: HeadTask.optional(),
  candidates: z.array(z.string().max(64)).min(1).max(20).optional(),
  backbone: BackboneRef.optional(),
  backbones: z.array(BackboneRef).min(1).max(8).optional(),
  cv: z.number().int().min(2).max(50).optional(),
  seed: z.number().int().min(0).optional(),
  calibrate: z.boolean().optional(),
  promote: z.boolean().default(true),
});
export type TrainRequestBody = z.infer<typeof TrainRequestBody>;

// A parsed request is a valid `TrainOptions` once the head is added (checked by the compiler).
// `TrainOptions` stays a separate interface for now: its `params` take any value (the CLI's
// parsed flags), narrower here because JSON bodies are checked.
type Assignable<T extends U, U> = T;
export type _TrainRequestFitsOptions = Assignable<TrainRequestBody & { head: string }, TrainOptions>;
