/**
 * `npm run bench:quality`: the data-quality tools measured on data they never saw. Each section is
 * its own module and function (`--only <section>` runs one): `drift` (scripts/bench-drift.ts),
 * `label-issues` (scripts/bench-label-issues.ts), `unknown` (scripts/bench-unknown.ts), `zero-shot`
 * (scripts/bench-zero-shot.ts).
 * Figures and the settings that produced them: docs/benchmarks.md.
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PACKAGE_ROOT } from "../shared/config.ts";
import { machine } from "./bench-common.ts";
import { driftSection } from "./bench-drift.ts";
import { labelIssuesSection } from "./bench-label-issues.ts";
import { unknownSection } from "./bench-unknown.ts";
import { zeroShotSection } from "./bench-zero-shot.ts";
import { FASHION_SOURCE } from "./fashion-dataset.ts";

const { values: args } = parseArgs({
  options: {
    only: { type: "string" },
    seed: { type: "string", default: "1" },
    "models-dir": { type: "string", default: join(PACKAGE_ROOT, ".models") },
    out: { type: "string", default: join(PACKAGE_ROOT, ".headstart-bench", "quality") },
    "drift-per-block": { type: "string", default: "1000" },
    "drift-per-side": { type: "string", default: "500" },
    "drift-trials": { type: "string", default: "20" },
    "drift-mix-in": { type: "string", default: "0.3,0.1" },
    "drift-permutations": { type: "string", default: "200" },
    "labels-per-class": { type: "string", default: "12500" },
    "labels-noise": { type: "string", default: "0.1" },
    "labels-folds": { type: "string", default: "5" },
    "labels-tasks": { type: "string", default: "imdb,fashion" },
    "labels-images": { type: "string", default: "2000" },
    "unknown-images": { type: "string", default: "2000" },
    "unknown-imdb-per-block": { type: "string", default: "500" },
    "fashion-source": { type: "string", default: FASHION_SOURCE },
    "zero-shot-imdb-per-block": { type: "string", default: "500" },
    "zero-shot-backbones": { type: "string", default: "glove-100d,use-lite-512-int8" },
    "zero-shot-shots": { type: "string", default: "10" },
    "zero-shot-seeds": { type: "string", default: "5" },
  },
});

const SECTIONS: Record<string, () => Promise<unknown>> = {
  drift: () =>
    driftSection({
      perBlock: Number(args["drift-per-block"]),
      perSide: Number(args["drift-per-side"]),
      trials: Number(args["drift-trials"]),
      mixIn: args["drift-mix-in"]!.split(",").map(Number),
      permutations: Number(args["drift-permutations"]),
      seed: Number(args.seed),
      modelsDir: args["models-dir"]!,
      outDir: args.out!,
    }),
  "label-issues": () =>
    labelIssuesSection({
      perClass: Number(args["labels-per-class"]),
      noise: Number(args["labels-noise"]),
      folds: Number(args["labels-folds"]),
      tasks: args["labels-tasks"]!.split(","),
      images: Number(args["labels-images"]),
      source: args["fashion-source"]!,
      seed: Number(args.seed),
      modelsDir: args["models-dir"]!,
      outDir: args.out!,
    }),
  unknown: () =>
    unknownSection({
      images: Number(args["unknown-images"]),
      imdbPerBlock: Number(args["unknown-imdb-per-block"]),
      seed: Number(args.seed),
      modelsDir: args["models-dir"]!,
      outDir: args.out!,
      source: args["fashion-source"]!,
    }),
  "zero-shot": () =>
    zeroShotSection({
      imdbPerBlock: Number(args["zero-shot-imdb-per-block"]),
      backbones: args["zero-shot-backbones"]!.split(","),
      shots: Number(args["zero-shot-shots"]),
      seeds: Number(args["zero-shot-seeds"]),
      seed: Number(args.seed),
      modelsDir: args["models-dir"]!,
      outDir: args.out!,
    }),
};

const m = await machine();
console.log(
  `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, onnxruntime ${m.onnxruntime}`,
);
for (const [name, run] of Object.entries(SECTIONS)) {
  if (args.only === undefined || args.only === name) await run();
}
