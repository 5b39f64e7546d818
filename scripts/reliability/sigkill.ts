/** `sigkill`: the CLI killed at random points of ingest/embed/train/promote (test/helpers/kill-trials.ts). */
import { type KillTrialsResult, runKillTrials } from "../../test/helpers/kill-trials.ts";
import type { Section } from "./section.ts";

export const sigkillSection: Section<KillTrialsResult> = {
  key: "sigkill",
  title: "SIGKILL at random points of ingest, embed, train and promote, then the same command again",
  async run(opts) {
    opts.say(`sigkill: ${opts.killTrials} trials`);
    return runKillTrials({ trials: opts.killTrials, seed: opts.seed, say: opts.say });
  },
  table: (r) => [
    `trials ${r.trials} (${Object.entries(r.byOp)
      .map(([op, n]) => `${op} ${n}`)
      .join(", ")}); ${r.killedMidWrite} killed after writing something`,
    `items lost ${r.lost}, duplicated ${r.duplicated}, corrupt ${r.corrupt}; doctor clean after ${r.doctorClean} of ${r.trials}`,
    `leftovers of killed writes removed by doctor --repair: ${r.strayTemporariesRepaired}`,
    ...r.failures.slice(0, 5).map((f) => `failure: ${f}`),
  ],
  ok: (r) =>
    r.trials > 0 &&
    r.lost === 0 &&
    r.duplicated === 0 &&
    r.corrupt === 0 &&
    r.doctorClean === r.trials &&
    r.failures.length === 0,
};
