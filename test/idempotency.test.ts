/** The store-backed idempotency records (Powertools' semantics) on a real FsStore. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { idempotencyHash, idempotent } from "../shared/idempotency.ts";
import { keys } from "../shared/layout.ts";
import { FsStore } from "../shared/store/fs.ts";
import { tempDir } from "./helpers/platform.ts";

describe("idempotent", () => {
  let dir: string;
  let store: FsStore;
  before(async () => {
    dir = await tempDir();
    store = new FsStore(join(dir, "store"));
  });
  after(async () => (await import("node:fs/promises")).rm(dir, { recursive: true, force: true }));

  test("the key is the payload's, whatever its key order", () => {
    assert.equal(
      idempotencyHash("s", { a: 1, b: [1, { c: 2, d: 3 }] }),
      idempotencyHash("s", { b: [1, { d: 3, c: 2 }], a: 1 }),
    );
    assert.notEqual(idempotencyHash("s", { a: 1 }), idempotencyHash("s", { a: 2 }));
    assert.notEqual(idempotencyHash("s", { a: 1 }), idempotencyHash("t", { a: 1 }));
  });

  test("runs once; a duplicate gets the stored result", async () => {
    let runs = 0;
    const work = async () => ({ run: ++runs });
    assert.deepEqual(await idempotent(store, "t1", { x: 1 }, work), { result: { run: 1 }, replayed: false });
    assert.deepEqual(await idempotent(store, "t1", { x: 1 }, work), { result: { run: 1 }, replayed: true });
    assert.deepEqual(await idempotent(store, "t1", { x: 2 }, work), { result: { run: 2 }, replayed: false });
    assert.equal(runs, 2);
  });

  test("a concurrent duplicate is refused while the first runs", async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const first = idempotent(store, "t2", { x: 1 }, async () => {
      await gate;
      return "done";
    });
    // Wait until the first holds its INPROGRESS record.
    const key = keys.idempotencyRecord("t2", idempotencyHash("t2", { x: 1 }));
    while (!(await store.head(key))) await new Promise((r) => setImmediate(r));
    await assert.rejects(
      idempotent(store, "t2", { x: 1 }, async () => "twice"),
      /already in progress/,
    );
    release();
    assert.equal((await first).result, "done");
    assert.deepEqual(await idempotent(store, "t2", { x: 1 }, async () => "twice"), {
      result: "done",
      replayed: true,
    });
  });

  test("work that throws leaves no record: the retry runs it", async () => {
    await assert.rejects(
      idempotent(store, "t3", { x: 1 }, async () => {
        throw new Error("boom");
      }),
      /boom/,
    );
    assert.equal(await store.head(keys.idempotencyRecord("t3", idempotencyHash("t3", { x: 1 }))), undefined);
    assert.equal((await idempotent(store, "t3", { x: 1 }, async () => "ok")).result, "ok");
  });

  test("an expired INPROGRESS record (a crashed attempt) is taken over; an expired result is redone", async () => {
    let now = 1_000_000;
    const clock = { now: () => now, inProgressSeconds: 10, expiresAfterSeconds: 60 };
    const crashed = idempotent(store, "t4", { x: 1 }, () => new Promise<string>(() => {}), clock);
    const key = keys.idempotencyRecord("t4", idempotencyHash("t4", { x: 1 }));
    while (!(await store.head(key))) await new Promise((r) => setImmediate(r));
    await assert.rejects(
      idempotent(store, "t4", { x: 1 }, async () => "b", clock),
      /already in progress/,
    );
    now += 11_000;
    assert.deepEqual(await idempotent(store, "t4", { x: 1 }, async () => "b", clock), {
      result: "b",
      replayed: false,
    });
    assert.deepEqual(await idempotent(store, "t4", { x: 1 }, async () => "c", clock), {
      result: "b",
      replayed: true,
    });
    now += 61_000;
    assert.deepEqual(await idempotent(store, "t4", { x: 1 }, async () => "c", clock), {
      result: "c",
      replayed: false,
    });
    void crashed;
  });
});
