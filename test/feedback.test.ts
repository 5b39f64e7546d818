/**
 * Predictions you can correct (shared/feedback/): prediction ids online and in batch outputs,
 * corrections by prediction id or by input, labels checked against the head, `withFeedback`
 * training that changes the corrected predictions, and the report's before/after on them.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ConflictError, ValidationError } from "../shared/errors.ts";
import { capturesOf, isUncertain } from "../shared/feedback/capture.ts";
import { feedbackDatasetName } from "../shared/heads/train-feedback.ts";
import type { HeadDocument } from "../shared/heads/version.ts";
import { keys } from "../shared/layout.ts";
import { deleteHead } from "../shared/lifecycle/delete.ts";
import { decodeUtf8 } from "../shared/store/json.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import { tinySentimentRows, toJsonlText } from "./helpers/tiny-backbone.ts";

describe("capture", () => {
  const doc = (capture?: "none" | "uncertain" | "all") =>
    ({ head: "h", version: "v1", labels: ["neg", "pos"], ...(capture ? { capture } : {}) }) as HeadDocument;
  const sure = { predictionId: "p-000000000000000000000001", label: "pos", scores: { neg: 0.05, pos: 0.95 } };
  const unsure = {
    predictionId: "p-000000000000000000000002",
    label: "pos",
    scores: { neg: 0.45, pos: 0.55 },
  };

  test("none keeps nothing, all keeps every text, uncertain the close calls; regression is never uncertain", () => {
    const texts = ["a", "b"];
    assert.deepEqual(capturesOf(doc(), texts, [sure, unsure]), []);
    assert.deepEqual(capturesOf(doc("none"), texts, [sure, unsure]), []);
    assert.deepEqual(
      capturesOf(doc("all"), texts, [sure, unsure]).map((c) => c.text),
      ["a", "b"],
    );
    const kept = capturesOf(doc("uncertain"), texts, [sure, unsure]);
    assert.deepEqual(
      kept.map((c) => [c.predictionId, c.text, c.label]),
      [[unsure.predictionId, "b", "pos"]],
    );
    assert.equal(isUncertain({ value: 3 }), false);
    assert.equal(isUncertain({ labels: ["x"], scores: { x: 0.52, y: 0.1 } }), true);
    assert.deepEqual(capturesOf(doc("all"), [undefined], [sure]), [], "an image input is not kept");
  });
});

describe("feedback", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  const rows = tinySentimentRows(60, { seed: 3 });
  // Four positive rows of the dataset corrected to "neg", and a new text that is not in it.
  const corrected = [rows[0], rows[2], rows[4], rows[6]].map((r) => r.text);
  const extra = "wonderful love great fun brilliant";

  before(async () => {
    ctx = await tinyPlatform();
    await ctx.platform.putManifest("films", "jsonl", toJsonlText(rows));
    await ctx.platform.embed("films");
    await ctx.platform.train({ dataset: "films", head: "films", type: "knn", params: { k: 1 } });
  });
  after(() => ctx.cleanup());

  test("online predictions carry a prediction id; without capture it cannot be resolved", async () => {
    const { platform } = ctx;
    const out = await platform.predict("films", { inputs: [extra, corrected[0]] });
    assert.equal(out.predictions[0].label, "pos");
    for (const p of out.predictions) assert.match(p.predictionId!, /^p-[0-9a-f]{24}$/);
    assert.notEqual(out.predictions[0].predictionId, out.predictions[1].predictionId);
    await platform.captureIdle();
    await assert.rejects(
      platform.addFeedback("films", { predictionId: out.predictions[0].predictionId, label: "neg" }),
      (err: unknown) =>
        err instanceof ValidationError &&
        err.field === "predictionId" &&
        /capture none.*send the input/.test(err.message),
    );
    assert.deepEqual(await ctx.store.list(keys.headCapturePrefix("films")), [], "nothing kept");
  });

  test("labels are checked against the head's classes; a bad request stores nothing", async () => {
    const { platform } = ctx;
    await assert.rejects(
      platform.addFeedback("films", { input: extra, label: "meh" }),
      (err: unknown) => err instanceof ValidationError && err.field === "label" && /pos/.test(err.message),
    );
    await assert.rejects(
      platform.addFeedback("films", { label: "neg" }),
      (err: unknown) => err instanceof ValidationError && err.field === "input",
    );
    await assert.rejects(platform.addFeedback("films", { input: "  ", label: "neg" }), ValidationError);
    assert.deepEqual(await platform.listFeedback("films"), []);
  });

  test("batch prediction ids resolve to their rows' inputs", async () => {
    const { platform, store } = ctx;
    const { job } = await platform.startBatchPrediction({ head: "films", dataset: "films" });
    const done = await platform.runBatchPrediction(job.job);
    const lines = decodeUtf8((await store.get(done.outputs[0]))!.body)
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.equal(lines[2].predictionId, `${job.job}:${rows[2].id}`);
    const fb = await platform.addFeedback("films", { predictionId: lines[2].predictionId, label: "neg" });
    assert.equal(fb.text, rows[2].text);
    assert.equal(fb.predictionId, lines[2].predictionId);
    assert.match(fb.id, /^fb-\d{17}-[0-9a-f]{8}$/);
    await assert.rejects(
      platform.addFeedback("films", { predictionId: `${job.job}:nope`, label: "neg" }),
      /row nope/,
    );
  });

  test("retraining with feedback changes the corrected predictions; the report shows before < after", async () => {
    const { platform, store } = ctx;
    // A first, wrong correction of the same input: the newest label wins.
    await platform.addFeedback("films", { input: corrected[0], label: "pos" });
    for (const text of [...corrected, extra])
      await platform.addFeedback("films", { input: { text }, label: "neg" });
    const before = await platform.predict("films", { inputs: [...corrected, extra] });
    assert.deepEqual(
      before.predictions.map((p) => p.label),
      ["pos", "pos", "pos", "pos", "pos"],
    );
    const trained = await platform.train({
      dataset: "films",
      head: "films",
      type: "knn",
      params: { k: 1 },
      withFeedback: true,
    });
    const after = await platform.predict("films", { inputs: [...corrected, extra] });
    assert.equal(after.version, trained.version);
    assert.deepEqual(
      after.predictions.map((p) => p.label),
      ["neg", "neg", "neg", "neg", "neg"],
    );
    const { report } = await platform.headReport("films", trained.version);
    const feedback = report.feedback!;
    assert.equal(feedback.dataset, feedbackDatasetName("films"));
    assert.equal(feedback.rows, 5, "four corrected rows of the dataset and one new text, each once");
    assert.equal(feedback.metric, "accuracy");
    assert.deepEqual(feedback.before, { version: before.version, value: 0 });
    assert.deepEqual(feedback.after, { version: trained.version, value: 1 });
    assert.equal(report.counts.train, rows.length + 1, "the new text joined the training rows");
    // The untouched rows still predict their own labels.
    const others = await platform.predict("films", { inputs: [rows[1].text, rows[8].text] });
    assert.deepEqual(
      others.predictions.map((p) => p.label),
      [rows[1].label, rows[8].label],
    );
    assert.ok(await store.head(keys.datasetStatus(feedbackDatasetName("films"))));
  });

  test("list and delete a head's feedback", async () => {
    const { platform } = ctx;
    const all = await platform.listFeedback("films");
    assert.equal(all.length, 7);
    assert.deepEqual(
      all.map((f) => f.id),
      [...all.map((f) => f.id)].sort(),
    );
    const gone = await platform.deleteFeedback("films", all[0].id);
    assert.equal(gone.id, all[0].id);
    assert.equal((await platform.listFeedback("films")).length, 6);
    await assert.rejects(platform.deleteFeedback("films", all[0].id), /not found|feedback/);
  });

  test("a version trained with capture keeps its online inputs, which a correction then resolves", async () => {
    const { platform } = ctx;
    await platform.train({ dataset: "films", head: "kept", type: "knn", params: { k: 1 }, capture: "all" });
    const out = await platform.predict("kept", { inputs: [extra] });
    await platform.captureIdle();
    const id = out.predictions[0].predictionId!;
    const fb = await platform.addFeedback("kept", { predictionId: id, label: "neg" });
    assert.equal(fb.text, extra);
    await assert.rejects(
      platform.train({ dataset: "films", head: "nofb", withFeedback: true }),
      /no feedback yet/,
    );
  });

  test("a user's dataset under the feedback dataset's name is never overwritten", async () => {
    const { platform } = ctx;
    await platform.putManifest("feedback-theirs", "jsonl", toJsonlText(rows.slice(0, 5)));
    await platform.train({ dataset: "films", head: "theirs" });
    await platform.addFeedback("theirs", { input: extra, label: "neg" });
    await assert.rejects(
      platform.train({ dataset: "films", head: "theirs", withFeedback: true }),
      (err: unknown) =>
        err instanceof ConflictError && /feedback-theirs holds rows that are not feedback/.test(err.message),
    );
    assert.equal((await platform.datasetInfo("feedback-theirs")).status.rows.total, 5, "untouched");
  });

  test("deleting a head takes its feedback dataset along; a user's dataset of that name stays", async () => {
    const { store } = ctx;
    const fb = feedbackDatasetName("films");
    assert.ok(await store.head(keys.datasetStatus(fb)), "made by the retraining above");
    const gone = await deleteHead(store, "films");
    assert.ok(gone.removed.includes(keys.datasetStatus(fb)));
    assert.deepEqual(await store.list(keys.datasetPrefix(fb)), []);
    assert.deepEqual(await store.list(keys.headPrefix("films")), [], "feedback records and captures too");
    await deleteHead(store, "theirs");
    assert.ok(await store.head(keys.datasetStatus("feedback-theirs")), "not made by feedback: kept");
  });
});
