/**
 * Where a started batch-prediction job runs when the process that started it must not keep
 * running it: a Lambda behind API Gateway answers, then may be frozen, so the API hands the run
 * to the job-complete Lambda (`functions/job-complete/handler.ts`), which runs it up to its end
 * or up to its park on the embedding jobs it submitted. The AWS implementation is
 * `aws/lambda-batch-dispatcher.ts`.
 */
import { z } from "zod";

/** The event the dispatcher sends: the id of a `queued` batch job to run. */
export const BatchRunEvent = z.object({ batchJob: z.string().min(1) }).strict();
export type BatchRunEvent = z.infer<typeof BatchRunEvent>;

export interface BatchDispatcher {
  readonly name: string;
  dispatch(job: string): Promise<void>;
}
