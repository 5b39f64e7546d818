/**
 * What a head learns: the one definition of the task enum. The estimator contract
 * (`estimator.ts`), the head document's schema (`heads/version.ts`, `z.enum(TASKS)`), the train
 * request (`heads/train-request.ts`) and the trainer's checks all take it from here.
 */
export const TASKS = ["multiclass", "multilabel", "regression"] as const;
export type HeadTask = (typeof TASKS)[number];
