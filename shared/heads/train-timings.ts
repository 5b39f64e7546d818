/**
 * Where a training's wall time goes, phase by phase, so `train --json` can answer "why did it take
 * that long" without a profiler. Each `lap` charges the time since the previous one to a phase;
 * a phase reached twice (evaluation around calibration) adds up.
 */
import { z } from "zod";

export const TRAIN_PHASES = ["load", "fit", "calibrate", "evaluate", "unknown", "report", "write"] as const;
export type TrainPhase = (typeof TRAIN_PHASES)[number];

/** Seconds per phase; a phase the training did not run is 0. */
export const TrainTimings = z.object({
  /** Reading the dataset's rows and cached vectors (and feedback), building the training set. */
  load: z.number(),
  /** Choosing the estimator (`auto`'s cross-validated search) and fitting it on every training row. */
  fit: z.number(),
  /** Temperature scaling: the out-of-fold fits it needs beyond evaluation, and the fit of T. */
  calibrate: z.number(),
  /** Scoring: on the test split, else by cross-validation; label issues over the out-of-fold rows. */
  evaluate: z.number(),
  /** Fitting and choosing the unknown-input scorer and its threshold. */
  unknown: z.number(),
  /** Building the version's documents, scoring feedback rows. */
  report: z.number(),
  /** Storing the version and moving the `live` alias. */
  write: z.number(),
});
export type TrainTimings = z.infer<typeof TrainTimings>;

export class PhaseClock {
  #last = performance.now();
  readonly #seconds: TrainTimings = Object.fromEntries(TRAIN_PHASES.map((p) => [p, 0])) as TrainTimings;

  /** Charges the time since the last lap (or the clock's start) to `phase`. */
  lap(phase: TrainPhase): void {
    const now = performance.now();
    this.#seconds[phase] += (now - this.#last) / 1000;
    this.#last = now;
  }

  get timings(): TrainTimings {
    return { ...this.#seconds };
  }
}
