/**
 * What a head learns: the one definition of the task enum. The head contract (`kind.ts`), the
 * head document (`version.ts`), the train request (`train-request.ts`) and the trainer's checks
 * (`train.ts`) all take it from here.
 */
import { z } from "zod";

export const HeadTask = z.enum(["multiclass", "multilabel", "regression"]);
export type HeadTask = z.infer<typeof HeadTask>;

/** Every task, in the enum's order. */
export const TASKS: readonly HeadTask[] = HeadTask.options;
