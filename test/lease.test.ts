/**
 * Shard leases on both stores (FsStore in a temp dir, S3Store on a real radosgw): acquire,
 * conflict, takeover after expiry or of a dead process's lease, renewal after a loss, release
 * and abandon, and many runners racing for one expired lease.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  acquireLease,
  type HeldLease,
  isStale,
  liveLeases,
  newLeaseOwner,
  processIdentity,
  removeCommittedLeases,
  ShardLease,
} from "../shared/embed/lease.ts";
import { keys } from "../shared/layout.ts";
import { FsStore } from "../shared/store/fs.ts";
import { getJson, putJson } from "../shared/store/json.ts";
import type { ObjectStore } from "../shared/store/types.ts";
import { createS3TestStore, type S3Server, startS3Server } from "./helpers/s3-server.ts";

const B = "tiny-text";
const D = "films";
const JOB = "embed-films-0123456789abcdef";
const at = (shard: number) => ({ backbone: B, dataset: D, shard, job: JOB });

async function mustAcquire(
  store: ObjectStore,
  shard: number,
  owner: string,
  ttlMs = 60_000,
): Promise<HeldLease> {
  const got = await acquireLease(store, at(shard), { owner, ttlMs });
  assert.ok(got.held, `${owner} should get shard ${shard}`);
  return got.lease;
}

async function readLease(store: ObjectStore, shard: number): Promise<ShardLease | undefined> {
  return (await getJson(store, keys.shardLease(B, D, shard), ShardLease))?.value;
}

/** The pid of a process that has exited (and been reaped). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.on("exit", resolve));
  return child.pid!;
}

function leaseContract(makeStore: () => Promise<ObjectStore>): void {
  test("a free shard is acquired; a live lease makes others wait and names its holder", async () => {
    const store = await makeStore();
    const a = newLeaseOwner();
    const b = newLeaseOwner();
    const lease = await mustAcquire(store, 0, a);
    const other = await acquireLease(store, at(0), { owner: b });
    assert.equal(other.held, false);
    assert.equal(other.current?.owner, a);
    assert.equal(other.current?.job, JOB);
    // Another shard is independent.
    await mustAcquire(store, 1, b);
    assert.equal(await lease.renew(), true);
  });

  test("an expired lease is taken over, and its old holder's renewal then fails", async () => {
    const store = await makeStore();
    const a = await mustAcquire(store, 0, newLeaseOwner(), 300);
    await sleep(400);
    const b = await mustAcquire(store, 0, newLeaseOwner());
    assert.equal(await a.renew(), false);
    assert.equal(a.lost, true);
    assert.equal((await readLease(store, 0))?.owner, b.owner);
    assert.equal(await b.renew(), true, "the new holder is unaffected");
  });

  test("of many runners taking over one expired lease, exactly one wins", async () => {
    const store = await makeStore();
    await mustAcquire(store, 0, newLeaseOwner(), 200);
    await sleep(300);
    const owners = Array.from({ length: 8 }, () => newLeaseOwner());
    const results = await Promise.all(owners.map((owner) => acquireLease(store, at(0), { owner })));
    const winners = results.filter((r) => r.held);
    assert.equal(winners.length, 1);
    assert.equal((await readLease(store, 0))?.owner, (winners[0] as { lease: HeldLease }).lease.owner);
  });

  test("keepAlive renews, so a lease outlives its TTL while its holder works", async () => {
    const store = await makeStore();
    const a = await mustAcquire(store, 0, newLeaseOwner(), 600);
    const stop = a.keepAlive();
    try {
      await sleep(1_500);
      const other = await acquireLease(store, at(0), { owner: newLeaseOwner() });
      assert.equal(other.held, false);
      assert.ok((await readLease(store, 0))!.renewals > 0);
    } finally {
      stop();
    }
  });

  test("release deletes the holder's lease, but not one taken over meanwhile", async () => {
    const store = await makeStore();
    const a = await mustAcquire(store, 0, newLeaseOwner());
    await a.release();
    assert.equal(await readLease(store, 0), undefined);
    await mustAcquire(store, 0, newLeaseOwner());

    const old = await mustAcquire(store, 1, newLeaseOwner(), 200);
    await sleep(300);
    const taker = await mustAcquire(store, 1, newLeaseOwner());
    await old.release();
    assert.equal((await readLease(store, 1))?.owner, taker.owner);
  });

  test("an abandoned lease is free at once, though its holder is alive", async () => {
    const store = await makeStore();
    const a = await mustAcquire(store, 0, newLeaseOwner());
    await a.abandon();
    assert.ok(isStale((await readLease(store, 0))!));
    await mustAcquire(store, 0, newLeaseOwner());
    assert.equal(await a.renew(), false);
  });

  test("a dead process's lease on this machine is taken over before it expires; a live or foreign one is not", async () => {
    const store = await makeStore();
    const me = processIdentity();
    assert.ok(me, "this test runs on Linux, where /proc identifies processes");
    const lease = (shard: number, process: ShardLease["process"]): ShardLease => ({
      owner: `ghost-${shard}`,
      job: JOB,
      shard,
      renewals: 0,
      token: "t",
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      process,
    });
    await putJson(store, keys.shardLease(B, D, 0), lease(0, { ...me, pid: await deadPid() }));
    await putJson(store, keys.shardLease(B, D, 1), lease(1, me)); // this very process: alive
    await putJson(store, keys.shardLease(B, D, 2), lease(2, { ...me, boot: "another-machine" }));
    await putJson(store, keys.shardLease(B, D, 3), lease(3, { ...me, start: "1" })); // pid reused
    assert.equal((await acquireLease(store, at(0), { owner: newLeaseOwner() })).held, true);
    assert.equal((await acquireLease(store, at(1), { owner: newLeaseOwner() })).held, false);
    assert.equal((await acquireLease(store, at(2), { owner: newLeaseOwner() })).held, false);
    assert.equal((await acquireLease(store, at(3), { owner: newLeaseOwner() })).held, true);
  });

  test("acquiring a lease that is already ours (a retried create) holds it", async () => {
    const store = await makeStore();
    const owner = newLeaseOwner();
    const first = await mustAcquire(store, 0, owner);
    const again = await mustAcquire(store, 0, owner);
    assert.equal(await again.renew(), true);
    assert.equal(await first.renew(), false, "only the latest handle's ETag is current");
  });

  test("leases left on committed shards are removed; leases on uncommitted ones stay", async () => {
    const store = await makeStore();
    await mustAcquire(store, 0, newLeaseOwner());
    await mustAcquire(store, 1, newLeaseOwner());
    await store.put(keys.shardCommit(B, D, 1), "{}");
    assert.equal(await removeCommittedLeases(store, B, D), 1);
    assert.ok(await readLease(store, 0));
    assert.equal(await readLease(store, 1), undefined);
  });

  test("liveLeases lists the job's live leases on uncommitted shards only", async () => {
    const store = await makeStore();
    const a = await mustAcquire(store, 0, newLeaseOwner());
    await mustAcquire(store, 1, newLeaseOwner());
    const c = await mustAcquire(store, 2, newLeaseOwner());
    await c.abandon();
    await store.put(keys.shardCommit(B, D, 1), "{}");
    const otherJob = await acquireLease(store, { ...at(3), job: "embed-other" }, { owner: newLeaseOwner() });
    assert.ok(otherJob.held);
    const live = await liveLeases(store, { backbone: B, dataset: D, job: JOB });
    assert.deepEqual(
      live.map((l) => [l.shard, l.owner]),
      [[0, a.owner]],
    );
  });
}

describe("shard leases on FsStore", () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "headstart-lease-"));
  });
  after(() => rm(root, { recursive: true, force: true }));
  leaseContract(async () => new FsStore(join(root, `s${n++}`)));
});

describe("shard leases on S3 (radosgw)", () => {
  let s3: S3Server;
  before(
    async () => {
      s3 = await startS3Server();
    },
    { timeout: 240_000 },
  );
  after(() => s3?.stop());
  leaseContract(() => createS3TestStore(s3));
});
