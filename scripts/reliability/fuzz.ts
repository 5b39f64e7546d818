/** `fuzz`: the hostile corpus plus N generated requests across every operation (test/helpers/fuzz.ts). */

import {
  type Finding,
  generate,
  operationsOf,
  RequestArbitraries,
  runRequests,
} from "../../test/helpers/fuzz.ts";
import { fuzzFixture, hostileCorpus } from "../../test/helpers/fuzz-fixture.ts";
import type { Section } from "./section.ts";

export interface FuzzResult {
  requests: number;
  status5xx: number;
  withoutField: number;
  /** Other breaks of the error contract: a non-JSON body, an unknown code. */
  malformed: number;
  seed: number;
  operations: number;
  byStatus: Record<string, number>;
  seconds: number;
  findings: Finding[];
}

export const fuzzSection: Section<FuzzResult> = {
  key: "fuzz",
  title: "fuzzing (every route, generated from the OpenAPI document)",
  async run(opts) {
    opts.say(
      `fuzz: seed ${opts.seed} (reproduce: --seed ${opts.seed}), ${opts.fuzzRequests} generated requests`,
    );
    const fx = await fuzzFixture();
    try {
      const ops = operationsOf(fx.doc);
      const arb = new RequestArbitraries(fx.doc, fx.names).all(ops);
      const started = performance.now();
      const requests = [...hostileCorpus(fx.names), ...generate(arb, opts.fuzzRequests, opts.seed)];
      const stats = await runRequests(requests, fx.send, fx.codes, 20);
      return {
        requests: stats.requests,
        status5xx: stats.status5xx,
        withoutField: stats.withoutField,
        malformed: stats.malformed,
        seed: opts.seed,
        operations: ops.length,
        byStatus: stats.byStatus,
        seconds: Math.round((performance.now() - started) / 100) / 10,
        findings: stats.findings,
      };
    } finally {
      await fx.cleanup();
    }
  },
  table: (r) => [
    `requests ${r.requests} over ${r.operations} operations in ${r.seconds} s (seed ${r.seed})`,
    `5xx ${r.status5xx}, 4xx without field ${r.withoutField}, malformed errors ${r.malformed}`,
    `statuses: ${Object.entries(r.byStatus)
      .map(([s, n]) => `${s}×${n}`)
      .join(" ")}`,
    ...r.findings.slice(0, 5).map((f) => `finding: ${f.problem}: ${f.request.slice(0, 160)}`),
  ],
  ok: (r) => r.status5xx === 0 && r.withoutField === 0 && r.malformed === 0,
};
