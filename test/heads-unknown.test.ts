/**
 * Unknown inputs end to end on a real FsStore and the real HTTP stack: a head trained on classes A
 * and B stores a scorer and a threshold; inputs from a cluster C it never saw score high and come
 * back `unknown`, held-out A/B items mostly do not (≈ 95% kept), `rejectUnknown` answers the
 * label `unknown`, and a version stored before detectors existed still predicts.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { encodeNpy } from "../shared/cache/npy.ts";
import type { DatasetRow } from "../shared/datasets/manifest.ts";
import { renderReportHtml } from "../shared/heads/report-html.ts";
import { readHeadVersion } from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import { gaussian, mulberry32 } from "../shared/learn/split.ts";
import { makeLogger } from "../shared/log.ts";
import { predictionLine } from "../shared/predictions/output.ts";
import { putJson } from "../shared/store/json.ts";
import { tinyPlatform } from "./helpers/platform.ts";

const DIM = 8;
const read = (res: Response): Promise<ReturnType<typeof JSON.parse>> => res.json();

/** One point of a cluster: 3 units along `axis` (−1: between A and B), unit noise. */
function point(axis: number, rand: () => number): number[] {
  const x = Array.from({ length: DIM }, () => gaussian(rand));
  if (axis >= 0) x[axis] += 3;
  return x;
}

/** 600 rows of A (axis 0) and B (axis 1); every third row is a test row when `withTest`. */
function dataset(withTest: boolean) {
  const rand = mulberry32(11);
  const vectors = new Float32Array(600 * DIM);
  const rows = Array.from({ length: 600 }, (_, i) => {
    const label = i % 2 === 0 ? "A" : "B";
    vectors.set(point(label === "A" ? 0 : 1, rand), i * DIM);
    const split = withTest && i % 3 === 0 ? "test" : "train";
    return { id: `r${i}`, label, split, text: `item ${i}` };
  });
  return { vectors, rows };
}

const jsonl = (rows: readonly unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join("");
const rand = mulberry32(99);
/** Fresh A/B items (not trained on) and items of an unseen cluster C (axis 2, far from both). */
const heldIn = Array.from({ length: 400 }, (_, i) => point(i % 2, rand));
const unseen = Array.from({ length: 100 }, () => point(2, rand).map((v, j) => (j === 2 ? v + 3 : v)));

describe("unknown inputs", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;

  before(async () => {
    ctx = await tinyPlatform();
    for (const [name, withTest] of [
      ["ab", true],
      ["ab-cv", false],
    ] as const) {
      const { vectors, rows } = dataset(withTest);
      await writeFile(join(ctx.dir, `${name}.npy`), encodeNpy(vectors, 600, DIM));
      await writeFile(join(ctx.dir, `${name}.jsonl`), jsonl(rows));
      await ctx.platform.importEmbeddings(name, {
        backbone: "ext-ab",
        npyPath: join(ctx.dir, `${name}.npy`),
        rowsPath: join(ctx.dir, `${name}.jsonl`),
      });
    }
  });
  after(() => ctx.cleanup());

  const share = (ps: Array<{ unknown?: boolean }>) => ps.filter((p) => p.unknown).length / ps.length;

  for (const scorer of ["msp", "mahalanobis", "knn"] as const) {
    test(`${scorer}: C is unknown, held-out A/B items are kept at about the trained rate`, async () => {
      const head = `ab-${scorer}`;
      const r = await ctx.platform.train({
        dataset: "ab",
        head,
        backbone: "ext-ab",
        unknownScorer: scorer,
      });
      assert.equal(r.unknown?.method, scorer);
      assert.equal(r.unknown?.rate, 0.05);
      assert.equal(r.unknown?.heldOut, 200);
      const inPs = (await ctx.platform.predict(head, { embeddings: heldIn })).predictions;
      const outPs = (await ctx.platform.predict(head, { embeddings: unseen })).predictions;
      assert.ok(inPs.every((p) => typeof p.unknownScore === "number"));
      const kept = 1 - share(inPs);
      assert.ok(kept > 0.87 && kept <= 1, `${scorer}: kept ${kept} of held-out A/B`);
      if (scorer === "msp") return; // C lies off both classes, not between them: msp need not see it.
      assert.ok(share(outPs) >= 0.95, `${scorer}: flagged ${share(outPs)} of C`);
      const meanIn = inPs.reduce((s, p) => s + p.unknownScore!, 0) / inPs.length;
      assert.ok(outPs.every((p) => p.unknownScore! > meanIn));
    });
  }

  test("msp flags inputs between the classes; rejectUnknown answers the label unknown", async () => {
    const between = Array.from({ length: 50 }, () => {
      const x = point(-1, rand).map((v) => v * 0.1);
      x[0] += 1.5;
      x[1] += 1.5;
      return x;
    });
    const plain = (await ctx.platform.predict("ab-msp", { embeddings: between })).predictions;
    assert.ok(share(plain) >= 0.9, `flagged ${share(plain)}`);
    assert.ok(plain.every((p) => p.label === "A" || p.label === "B"));
    // A batch job's output line carries the same two fields.
    const line = predictionLine("bp-j", { id: "x", line: 1 } as DatasetRow, plain[0], "v1");
    assert.deepEqual([line.unknownScore, line.unknown], [plain[0].unknownScore, plain[0].unknown]);
    const rejected = await ctx.platform.predict("ab-msp", { embeddings: between, rejectUnknown: true });
    rejected.predictions.forEach((p, i) => {
      assert.equal(p.label, plain[i].unknown ? "unknown" : plain[i].label);
    });

    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/heads/ab-knn/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ embeddings: [...unseen.slice(0, 3), heldIn[0]], rejectUnknown: true }),
    });
    assert.equal(res.status, 200);
    const body = await read(res);
    assert.deepEqual(
      body.predictions.slice(0, 3).map((p: { label: string; unknown: boolean }) => [p.label, p.unknown]),
      [
        ["unknown", true],
        ["unknown", true],
        ["unknown", true],
      ],
    );
    assert.equal(body.predictions[3].label, "A");
    const bad = await app.request("/v1/heads/ab/train", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ dataset: "ab", unknownRate: 0.9 }),
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await read(bad)), /unknownRate/);
  });

  test("without a test split the threshold comes from a fold; --unknown-rate changes it", async () => {
    const r = await ctx.platform.train({
      dataset: "ab-cv",
      head: "cv-knn",
      unknownScorer: "knn",
      unknownRate: 0.2,
    });
    assert.match(r.unknown!.fittedOn, /first of 5 folds \(120 training rows\)/);
    assert.equal(r.unknown!.rate, 0.2);
    const kept = 1 - share((await ctx.platform.predict("cv-knn", { embeddings: heldIn })).predictions);
    assert.ok(kept > 0.7 && kept < 0.9, `kept ${kept} at rate 0.2`);
    const m = await ctx.platform.train({ dataset: "ab-cv", head: "cv-msp" });
    assert.match(m.unknown!.fittedOn, /out-of-fold probabilities of the 600 training rows/);
    const { head, report } = await readHeadVersion(ctx.store, "cv-msp");
    assert.equal(head.unknown?.method, "msp");
    assert.equal(report?.unknown?.threshold, head.unknown?.threshold);
    // The default is auto: with two classes none can stand in for an unseen one.
    assert.match(report?.unknown?.selection?.reason ?? "", /two classes/);
    await assert.rejects(
      ctx.platform.train({ dataset: "ab-cv", head: "bad", unknownScorer: "cosine" as never }),
      /unknownScorer must be one of auto, msp, mahalanobis, knn/,
    );
  });

  test("auto picks a distance scorer where stand-in classes show msp is blind; the report says why", async () => {
    // Four classes along one axis: a linear head answers far beyond either end with confidence.
    const r4 = mulberry32(5);
    const vectors = new Float32Array(800 * DIM);
    const rows = Array.from({ length: 800 }, (_, i) => {
      const c = i % 4;
      const x = point(-1, r4);
      x[0] += 8 * c;
      vectors.set(x, i * DIM);
      return { id: `q${i}`, label: `c${c}`, split: i % 5 === 0 ? "test" : "train", text: `q ${i}` };
    });
    await writeFile(join(ctx.dir, "line.npy"), encodeNpy(vectors, 800, DIM));
    await writeFile(join(ctx.dir, "line.jsonl"), jsonl(rows));
    await ctx.platform.importEmbeddings("line", {
      backbone: "ext-ab",
      npyPath: join(ctx.dir, "line.npy"),
      rowsPath: join(ctx.dir, "line.jsonl"),
    });
    const r = await ctx.platform.train({ dataset: "line", head: "line-auto" });
    assert.notEqual(r.unknown?.method, "msp", r.unknown?.selection?.reason);
    const sel = r.unknown!.selection!;
    assert.equal(sel.standIns.length, 4);
    assert.ok(sel.auroc![r.unknown!.method] > sel.auroc!.msp + 0.02);
    // Far past the last class: msp would answer c3 with confidence; the kept scorer flags it.
    const far = Array.from({ length: 20 }, () => point(-1, rand).map((v, j) => (j === 0 ? v + 48 : v)));
    const ps = (await ctx.platform.predict("line-auto", { embeddings: far })).predictions;
    assert.ok(share(ps) >= 0.95, `flagged ${share(ps)}`);
    const { report } = await readHeadVersion(ctx.store, "line-auto");
    const html = renderReportHtml(report!);
    assert.match(html, /Scorer chosen automatically: (mahalanobis|knn) separated stand-in classes best/);
    assert.match(html, /Stand-in unseen classes: c\d, c\d, c\d, c\d/);
  });

  test("a version stored before detectors existed still predicts, without unknownScore", async () => {
    const { head: doc } = await readHeadVersion(ctx.store, "ab-knn");
    const { unknown: _dropped, ...old } = doc;
    await putJson(ctx.store, keys.headFile("ab-knn", "v-old", "head.json"), { ...old, version: "v-old" });
    const r = await ctx.platform.predict("ab-knn@v-old", {
      embeddings: unseen.slice(0, 5),
      rejectUnknown: true,
    });
    assert.equal(r.version, "v-old");
    for (const p of r.predictions) {
      assert.ok(p.label === "A" || p.label === "B");
      assert.equal(p.unknownScore, undefined);
      assert.equal(p.unknown, undefined);
    }
  });
});
