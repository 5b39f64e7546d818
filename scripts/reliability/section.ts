/**
 * One part of `npm run bench:reliability`: its key in the JSON output, how to run it, and its
 * lines of the human table. A new part is one module exporting a `Section` plus one line in
 * bench-reliability.ts's `SECTIONS`.
 */
export interface BenchOptions {
  /** Generated fuzz requests (≥ 10,000 for the published figure). */
  fuzzRequests: number;
  seed: number;
  /** Seconds per load case. */
  durationS: number;
  /** Seconds of the same load before a case's start RSS is read (V8 grows its heap lazily). */
  warmupS: number;
  /**
   * NODE_OPTIONS of the load test's server, e.g. `--max-old-space-size=64`: V8 grows its heap
   * lazily under load, so without a cap RSS climbs with garbage not yet collected.
   */
  serverNodeOptions: string;
  /** Trainings (and promotions) at once. */
  concurrency: number;
  /** SIGKILL trials over ingest, embed, train and promote (≥ 50 for the published figure). */
  killTrials: number;
  /** Runs of the whole loop per S3 fault rate (5% and 20%). */
  faultRuns: number;
  say: (message: string) => void;
}

export interface Section<R = unknown> {
  /** The key in the JSON output. */
  key: string;
  title: string;
  run(opts: BenchOptions): Promise<R>;
  /** Lines of the human table. */
  table(result: R): string[];
  /** Whether the result meets the bar (lost/duplicated/corrupt/5xx/errors all 0…). */
  ok(result: R): boolean;
}
