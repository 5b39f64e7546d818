/**
 * Drift checks over the cache (shared/quality/drift.ts) on a real FsStore with the tiny ONNX
 * backbone: datasets against datasets, a head against its captured inputs, the label shift, the
 * `drift.detected` event at a real webhook receiver, and the refusals.
 */
import assert from "node:assert/strict";
import { mkdir, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createApp } from "../shared/api/app.ts";
import { WebhookRegistry } from "../shared/events/registrations.ts";
import { keys } from "../shared/layout.ts";
import { makeLogger } from "../shared/log.ts";
import { every } from "../shared/quality/drift-schedule.ts";
import { readDriftState, recordDriftCheck } from "../shared/quality/drift-state.ts";
import { cli } from "./helpers/cli.ts";
import { tinyPlatform } from "./helpers/platform.ts";
import {
  NEUTRAL,
  tinySentimentRows,
  tinySquare,
  toJsonlText,
  writeTinyImageBackbone,
} from "./helpers/tiny-backbone.ts";
import { Receiver } from "./helpers/webhook-receiver.ts";

/** `n` texts of neutral words only: items of "another task" for the sentiment head. */
function neutralRows(n: number, prefix: string) {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    text: `${NEUTRAL[i % NEUTRAL.length]} ${NEUTRAL[(i * 3 + 1) % NEUTRAL.length]} ${NEUTRAL[(i * 7 + 2) % NEUTRAL.length]} #${i}`,
  }));
}

describe("drift", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;
  let receiver: Receiver;
  // The same generator with other seeds: the same distribution; then 30% of another kind of text.
  const same = tinySentimentRows(120, { seed: 11 }).map((r) => ({ ...r, id: `s${r.id}` }));
  const mixed = [...tinySentimentRows(84, { seed: 12 }), ...neutralRows(36, "n")];

  before(async () => {
    ctx = await tinyPlatform();
    const { platform } = ctx;
    receiver = await new Receiver().start();
    receiver.secret = (await new WebhookRegistry(ctx.store).add(receiver.url, ["drift.detected"])).secret;
    await platform.putManifest("films", "jsonl", toJsonlText(tinySentimentRows(200, { seed: 1 })));
    await platform.putManifest("same", "jsonl", toJsonlText(same));
    await platform.putManifest("mixed", "jsonl", toJsonlText(mixed));
    for (const d of ["films", "same", "mixed"]) await platform.embed(d);
    await platform.train({ dataset: "films", head: "mood", type: "logreg", capture: "all" });
  });
  after(async () => {
    await receiver.stop();
    await ctx.cleanup();
  });

  test("a sample of the same distribution is no drift; p-values lie in (0, 1]", async () => {
    const r = await ctx.platform.checkDrift({ reference: "films", current: "same", permutations: 100 });
    assert.equal(r.drift, false, `p = ${r.pValue}`);
    assert.ok(r.pValue > 0.05 && r.pValue <= 1);
    assert.equal(r.method, "mmd-rbf-permutation");
    assert.deepEqual(r.n, { reference: 200, current: 120 });
    assert.equal(r.backbone, "tiny-text");
    assert.equal(r.labelShift, undefined, "no head, no label shift");
    assert.deepEqual(r.reference, { kind: "dataset", name: "films", version: r.reference.version });
  });

  test("a 30% mix-in of other texts is drift, deterministic for a seed", async () => {
    const a = await ctx.platform.checkDrift({
      reference: "films",
      current: "mixed",
      permutations: 100,
      seed: 4,
    });
    const b = await ctx.platform.checkDrift({
      reference: "films",
      current: "mixed",
      permutations: 100,
      seed: 4,
    });
    assert.equal(a.drift, true, `p = ${a.pValue}`);
    assert.ok(a.pValue < 0.05 && a.pValue > 0);
    assert.ok(a.score > 0);
    const { checkedAt: _a, ...ra } = a;
    const { checkedAt: _b, ...rb } = b;
    assert.deepEqual(ra, rb);
    const subsampled = await ctx.platform.checkDrift({ reference: "films", current: "mixed", maxItems: 50 });
    assert.deepEqual(subsampled.used, { reference: 50, current: 50 });
    assert.deepEqual(subsampled.n, { reference: 200, current: 120 });
  });

  test("a head against its captured inputs: drift, the predicted-label shift, and a drift.detected event", async () => {
    const { platform } = ctx;
    // Production sends mostly positive reviews: the predicted mix moves from 50/50 towards pos.
    const texts = tinySentimentRows(120, { seed: 21 })
      .filter((r) => r.label === "pos")
      .map((r) => r.text);
    await platform.predict("mood", { inputs: texts });
    await platform.captureIdle();
    const r = await platform.checkDrift({ reference: "mood", current: "capture:mood", permutations: 100 });
    assert.equal(r.drift, true, `p = ${r.pValue}`);
    assert.deepEqual(r.n, { reference: 200, current: 60 });
    assert.equal(r.reference.kind, "head");
    assert.equal(r.current.kind, "capture");
    const shift = r.labelShift!;
    assert.ok(Math.abs(shift.reference.pos - 0.5) < 0.1, `reference pos share ${shift.reference.pos}`);
    assert.ok(shift.current.pos > 0.9, `current pos share ${shift.current.pos}`);
    assert.ok(shift.distance > 0.35 && shift.distance <= 1);
    await platform.notifier.idle();
    const events = [...receiver.events.values()].map((e) => e.event);
    const drift = events.find((e) => e.type === "drift.detected");
    assert.ok(drift, `events: ${events.map((e) => e.type)}`);
    assert.equal(drift.data.head, "mood");
    assert.equal(drift.data.version, r.head!.version);
    assert.equal(drift.data.current, "capture:mood");
    assert.equal(drift.data.pValue, r.pValue);
    assert.equal(drift.data.labelShiftDistance, shift.distance);
    // The label mix is read from at most maxItems rows a side too.
    const small = await platform.checkDrift({
      reference: "mood",
      current: "capture:mood",
      maxItems: 20,
      permutations: 20,
    });
    for (const share of Object.values(small.labelShift!.reference))
      assert.ok(Math.abs(share * 20 - Math.round(share * 20)) < 1e-9, `share ${share} of 20 rows`);
    await platform.notifier.idle();
  });

  test("the scheduled round checks heads capturing all inputs once they have enough, and emits for drift", async () => {
    const { platform } = ctx;
    const eventsBefore = receiver.events.size;
    const round = await platform.checkCapturingHeads({ minCaptures: 10 });
    assert.deepEqual(
      round.map((c) => c.head),
      ["mood"],
    );
    assert.equal(round[0].result?.drift, true);
    assert.equal(round[0].result?.current.kind, "capture");
    assert.equal(round[0].emitted, true);
    await platform.notifier.idle();
    assert.equal(receiver.events.size, eventsBefore + 1, "drift after none is news: one drift.detected");
    const state = (await readDriftState(ctx.store, "mood"))!;
    assert.equal(state.drift, true);
    assert.equal(state.version, round[0].result?.head?.version);
    assert.equal(state.emittedAt, state.checkedAt);
    assert.equal(state.driftSince, state.checkedAt);
    const tooFew = await platform.checkCapturingHeads({ minCaptures: 1000 });
    assert.match(tooFew[0].skipped ?? "", /60 inputs captured in the last 7 days, fewer than 1000/);
  });

  test("a drift that persists is not news on every tick: again only a day after the last event", async () => {
    const { platform } = ctx;
    const eventsBefore = receiver.events.size;
    const first = (await readDriftState(ctx.store, "mood"))!;
    const again = await platform.checkCapturingHeads({ minCaptures: 10 });
    assert.equal(again[0].result?.drift, true);
    assert.equal(again[0].emitted, false);
    const kept = (await readDriftState(ctx.store, "mood"))!;
    assert.equal(kept.driftSince, first.driftSince, "the same drift, still going");
    assert.equal(kept.emittedAt, first.emittedAt);
    assert.ok(kept.checkedAt > first.checkedAt);
    const dayLater = new Date(Date.parse(first.emittedAt!) + 25 * 3_600_000);
    const reminder = await platform.checkCapturingHeads({ minCaptures: 10, now: () => dayLater });
    assert.equal(reminder[0].emitted, true, "still drifting a day later: a reminder");
    await platform.notifier.idle();
    assert.equal(receiver.events.size, eventsBefore + 1);
  });

  test("two rounds at once (a duplicate invocation) emit one event: the record's compare-and-swap decides", async () => {
    const { platform } = ctx;
    await ctx.store.delete(keys.headDriftState("mood"));
    const eventsBefore = receiver.events.size;
    const rounds = await Promise.all([1, 2, 3].map(() => platform.checkCapturingHeads({ minCaptures: 10 })));
    assert.deepEqual(
      rounds.map((r) => r[0].result?.drift),
      [true, true, true],
    );
    assert.equal(rounds.filter((r) => r[0].emitted).length, 1, "one round won the record");
    await platform.notifier.idle();
    assert.equal(receiver.events.size, eventsBefore + 1);
  });

  test("the record: both writers read it absent, one create wins and emits; no drift ends the episode", async () => {
    const head = "nobody";
    const finding = (drift: boolean) => ({
      drift,
      pValue: drift ? 0.01 : 0.4,
      score: 0.1,
      n: { reference: 10, current: 10 },
      head: { head, version: "v1" },
    });
    const at = new Date("2026-01-01T00:00:00Z");
    const both = await Promise.all([1, 2].map(() => recordDriftCheck(ctx.store, head, finding(true), at)));
    assert.deepEqual(both.map((b) => b.emit).sort(), [false, true], "the loser of the create emits nothing");
    const later = (h: number) => new Date(at.getTime() + h * 3_600_000);
    assert.equal((await recordDriftCheck(ctx.store, head, finding(false), later(1))).emit, false);
    assert.equal((await readDriftState(ctx.store, head))!.driftSince, undefined);
    const back = await recordDriftCheck(ctx.store, head, finding(true), later(2));
    assert.equal(back.emit, true, "drift after none is news again, within the day");
    assert.equal(back.state.driftSince, later(2).toISOString());
    const otherVersion = { ...finding(true), head: { head, version: "v2" } };
    assert.equal(
      (await recordDriftCheck(ctx.store, head, otherVersion, later(3))).emit,
      true,
      "a new live version",
    );
    await ctx.store.delete(keys.headDriftState(head));
  });

  test("only inputs captured within the window count (their stored time)", async () => {
    const { platform } = ctx;
    const captures = await ctx.store.list(keys.headCapturePrefix("mood"));
    const tenDaysAgo = new Date(Date.now() - 10 * 86_400_000);
    for (const c of captures) await utimes(join(ctx.store.root, c.key), tenDaysAgo, tenDaysAgo);
    const week = await platform.checkCapturingHeads({ minCaptures: 10 });
    assert.match(week[0].skipped ?? "", /^0 inputs captured in the last 7 days/);
    const month = await platform.checkCapturingHeads({ minCaptures: 10, windowDays: 30 });
    assert.equal(month[0].result?.n.current, 60);
    for (const c of captures) await utimes(join(ctx.store.root, c.key), new Date(), new Date());
  });

  test("every() runs rounds one after another until stopped", async () => {
    let rounds = 0;
    let running = 0;
    const stop = every(5, async () => {
      assert.equal(running++, 0, "rounds never overlap");
      rounds++;
      await new Promise((r) => setTimeout(r, 10));
      running--;
    });
    await new Promise((r) => setTimeout(r, 120));
    stop();
    const seen = rounds;
    assert.ok(seen >= 2, `${seen} rounds`);
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(rounds <= seen + 1, "no round starts after stop");
  });

  test("no event for a check without drift or without a head", async () => {
    const before = receiver.events.size;
    await ctx.platform.checkDrift({ reference: "films", current: "mixed", permutations: 20 });
    await ctx.platform.checkDrift({ reference: "mood", current: "same", permutations: 50 });
    await ctx.platform.notifier.idle();
    assert.equal(receiver.events.size, before);
  });

  test("headstart drift --json prints the check; a bad --alpha exits 2 naming it", async () => {
    const env = { HEADSTART_STORE: ctx.store.root };
    const args = ["drift", "--reference", "mood", "--current", "mixed", "--permutations", "50", "--json"];
    const out = await cli(args, env);
    assert.equal(out.code, 0, out.stderr);
    const r = JSON.parse(out.stdout);
    assert.equal(r.drift, true);
    assert.equal(r.method, "mmd-rbf-permutation");
    assert.deepEqual(r.n, { reference: 200, current: 120 });
    assert.ok(r.pValue > 0 && r.pValue < 0.05);
    assert.equal(typeof r.score, "number");
    assert.ok(r.labelShift.distance >= 0, "a head as the reference: the predicted-label shift");
    const human = await cli(
      ["drift", "--reference", "dataset:films", "--current", "same", "--backbone", "tiny-text"],
      env,
    );
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^no drift: p = /);
    const bad = await cli(["drift", "--reference", "films", "--current", "same", "--alpha", "5"], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--alpha must be in \(0, 1\)/);
  });

  test("serve refuses a drift window under a day, and a bad HEADSTART_DRIFT_WINDOW_DAYS, naming them", async () => {
    const env = { HEADSTART_STORE: ctx.store.root };
    const flag = await cli(
      ["serve", "--port", "0", "--drift-check-minutes", "5", "--drift-window-days", "0"],
      env,
    );
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--drift-window-days must be 1 or more/);
    const variable = await cli(["serve", "--port", "0"], { ...env, HEADSTART_DRIFT_WINDOW_DAYS: "soon" });
    assert.equal(variable.code, 2);
    assert.match(variable.stderr, /HEADSTART_DRIFT_WINDOW_DAYS/);
  });

  test("POST /v1/drift answers the check; bad bodies are 400 naming the field, an unknown head 404", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const send = (body: unknown) => ({
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const res = await app.request(
      "/v1/drift",
      send({ reference: "films", current: "mixed", permutations: 50 }),
    );
    assert.equal(res.status, 200);
    const r = (await res.json()) as { drift: boolean; n: unknown; reference: { kind: string } };
    assert.equal(r.drift, true);
    assert.deepEqual(r.n, { reference: 200, current: 120 });
    assert.equal(r.reference.kind, "dataset");
    const extra = await app.request("/v1/drift", send({ reference: "films", current: "same", window: 3 }));
    assert.equal(extra.status, 400);
    const alpha = await app.request("/v1/drift", send({ reference: "films", current: "same", alpha: 1 }));
    assert.equal(alpha.status, 400);
    assert.equal(((await alpha.json()) as { error: { field: string } }).error.field, "alpha");
    const gone = await app.request("/v1/drift", send({ reference: "head:nobody", current: "same" }));
    assert.equal(gone.status, 404);
  });

  test("GET /v1/heads/{head}/drift-state answers the scheduled check's record, null before one, 404 for no head", async () => {
    const app = createApp(ctx.platform, makeLogger("test", "silent"));
    const res = await app.request("/v1/heads/mood/drift-state");
    assert.equal(res.status, 200);
    const body = (await res.json()) as { head: string; state: { drift: boolean; version: string } | null };
    assert.equal(body.head, "mood");
    assert.deepEqual(body.state, await readDriftState(ctx.store, "mood"), "the stored record as it is");
    await ctx.platform.train({ dataset: "same", head: "unwatched", type: "logreg" });
    const none = await app.request("/v1/heads/unwatched/drift-state");
    assert.deepEqual(await none.json(), { head: "unwatched", state: null });
    assert.equal((await app.request("/v1/heads/nobody/drift-state")).status, 404);
  });

  test("refuses what cannot be compared, naming the field", async () => {
    const { platform } = ctx;
    await assert.rejects(platform.checkDrift({ reference: "capture:mood", current: "same" }), {
      field: "reference",
    });
    await assert.rejects(platform.checkDrift({ reference: "films", current: "head:mood" }), {
      field: "current",
    });
    await assert.rejects(platform.checkDrift({ reference: "films", current: "capture:films" }), {
      field: "current",
    });
    await assert.rejects(platform.checkDrift({ reference: "nope", current: "same" }), /nope/);
    await assert.rejects(platform.checkDrift({ reference: "mood", current: "same", backbone: "other" }), {
      field: "backbone",
    });
    await assert.rejects(platform.checkDrift({ reference: "films", current: "same", alpha: 2 }), {
      field: "alpha",
    });
  });
});

describe("drift on images", () => {
  let ctx: Awaited<ReturnType<typeof tinyPlatform>>;

  const COLOURS: Record<string, [number, number, number]> = {
    red: [210, 20, 20],
    blue: [20, 30, 210],
    green: [20, 200, 40],
  };

  /** A labelled folder: `count[label]` squares of each colour, `i` from `from`. */
  async function folder(name: string, count: Record<string, number>, from: number): Promise<string> {
    const dir = join(ctx.dir, name);
    for (const [label, n] of Object.entries(count)) {
      await mkdir(join(dir, label), { recursive: true });
      for (let i = from; i < from + n; i++)
        await writeFile(join(dir, label, `${i}.png`), await tinySquare(COLOURS[label], i));
    }
    return dir;
  }

  before(async () => {
    ctx = await tinyPlatform();
    await writeTinyImageBackbone(join(ctx.dir, "image-backbone"));
    await ctx.platform.addBackbone(join(ctx.dir, "image-backbone"));
    const sets = {
      photos: await folder("photos", { red: 30, blue: 30 }, 0),
      later: await folder("later", { red: 30, blue: 30 }, 30),
      greener: await folder("greener", { red: 21, blue: 21, green: 18 }, 60),
    };
    for (const [name, dir] of Object.entries(sets)) {
      await ctx.platform.upload(name, dir);
      await ctx.platform.embed(name, { backbone: "tiny-image" });
    }
    await ctx.platform.train({ dataset: "photos", head: "colours", backbone: "tiny-image", cv: 2 });
  });
  after(() => ctx.cleanup());

  test("the same pictures later are no drift; 30% of another colour is, and the head's label mix moves", async () => {
    const { platform } = ctx;
    const same = await platform.checkDrift({ reference: "photos", current: "later", backbone: "tiny-image" });
    assert.equal(same.drift, false, `p = ${same.pValue}`);
    const greener = await platform.checkDrift({
      reference: "colours",
      current: "greener",
      permutations: 100,
    });
    assert.equal(greener.drift, true, `p = ${greener.pValue}`);
    assert.equal(greener.backbone, "tiny-image");
    assert.deepEqual(greener.n, { reference: 60, current: 60 });
    // Green squares are none of the head's classes: they land in one of them, so the mix moves.
    assert.ok(greener.labelShift!.distance > 0.1, JSON.stringify(greener.labelShift));
    await assert.rejects(platform.checkDrift({ reference: "colours", current: "capture:colours" }), {
      field: "current",
    });
  });
});
