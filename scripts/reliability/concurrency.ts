/** `concurrency`: N trainings, then N promotions at once on one head (test/helpers/concurrency.ts). */
import { type ConcurrencyResult, headConcurrency } from "../../test/helpers/concurrency.ts";
import { fuzzFixture } from "../../test/helpers/fuzz-fixture.ts";
import type { Section } from "./section.ts";

export const concurrencySection: Section<ConcurrencyResult> = {
  key: "concurrency",
  title: "concurrency (trainings and promotions at once on one head)",
  async run(opts) {
    opts.say(`concurrency: ${opts.concurrency} trainings, then ${opts.concurrency} promotions at once`);
    const fx = await fuzzFixture();
    try {
      return await headConcurrency(fx.send, {
        head: "racing",
        dataset: "films",
        trainings: opts.concurrency,
        dim: fx.names.dim,
      });
    } finally {
      await fx.cleanup();
    }
  },
  table: (r) => [
    `trainings ${r.trainings}: ${r.trained} answered, ${r.versionsKept} versions kept (listed, loadable, predicting)`,
    `promotions ${r.promotions} answered 200, ${r.promotionsInHistory} in the alias's history; alias ends on one of them: ${r.aliasEndsOnOne}`,
    ...r.problems.slice(0, 5).map((p) => `problem: ${p}`),
  ],
  ok: (r) =>
    r.versionsKept === r.trainings &&
    r.promotions === r.trainings &&
    r.promotionsInHistory === r.trainings &&
    r.aliasEndsOnOne,
};
