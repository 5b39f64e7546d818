/**
 * Shard leases: `cache/<b>/<d>/_lease-NNNNN.json` says which runner is embedding a shard and
 * until when. They keep concurrent runners of one job (two CLI runs, a retried SageMaker
 * attempt beside a live one, duplicated events) from embedding the same shard twice, and let a
 * crashed runner's shard be taken over once its lease has expired. Everything goes through the
 * ObjectStore's conditional writes, so FsStore and S3 behave alike:
 *
 * - acquire: create-only (`If-None-Match: *`), or replace an expired lease with `If-Match` on
 *   the ETag that was read, so of several runners taking over exactly one wins;
 * - renew: `If-Match` on the holder's last ETag; failing means someone took the lease over;
 * - release: delete after the commit marker is written (an expired leftover is harmless).
 *
 * Leases only avoid duplicate work: correctness rests on create-only commit markers and on a
 * shard's bytes being a function of its plan and the backbone (see docs/architecture.md).
 */
import { randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { hostname } from "node:os";
import { z } from "zod";
import { PreconditionFailedError } from "../errors.ts";
import { keys, parseKey } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";

export const DEFAULT_LEASE_TTL_MS = 60_000;

/** Enough to tell, on the same machine, that the process holding a lease has died. */
export const ProcessIdentity = z.object({
  host: z.string(),
  /** Kernel boot id and pid namespace: a pid only means something within both. */
  boot: z.string(),
  pidns: z.string(),
  pid: z.number().int(),
  /** Start time in clock ticks since boot, so a reused pid is not mistaken for the holder. */
  start: z.string(),
});
export type ProcessIdentity = z.infer<typeof ProcessIdentity>;

export const ShardLease = z.object({
  /** The runner holding it (one id per `runEmbedShards` call). */
  owner: z.string(),
  job: z.string(),
  shard: z.number().int(),
  expiresAt: z.string(),
  renewals: z.number().int(),
  /**
   * Random per write: the ETag changes on every renewal (S3's is the body's MD5), and a writer
   * answered 412 by a retried request can tell whether its own write is the one in place.
   */
  token: z.string(),
  process: ProcessIdentity.optional(),
});
export type ShardLease = z.infer<typeof ShardLease>;

export interface LeaseOptions {
  /** Who is asking; a fresh id per runner (`newLeaseOwner`). */
  owner: string;
  ttlMs?: number;
}

export function newLeaseOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
}

export type AcquireResult = { held: true; lease: HeldLease } | { held: false; current?: ShardLease };

/** Takes the shard's lease when nobody holds it, or when its holder's lease expired or died. */
export async function acquireLease(
  store: ObjectStore,
  target: { backbone: string; dataset: string; shard: number; job: string },
  opts: LeaseOptions,
): Promise<AcquireResult> {
  const ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const key = keys.shardLease(target.backbone, target.dataset, target.shard);
  let current: ShardLease | undefined;
  // Each retry follows a lost race (created, deleted or taken over meanwhile); a few suffice.
  for (let attempt = 0; attempt < 5; attempt++) {
    const value = leaseValue(opts.owner, target.job, target.shard, ttlMs, 0);
    try {
      // Optimistic: a free shard (the common case) costs one request.
      const info = await putJson(store, key, value, { ifNoneMatch: "*" });
      return { held: true, lease: new HeldLease(store, key, value, info.etag, ttlMs) };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
    const found = await getJson(store, key, ShardLease);
    if (!found) continue; // released meanwhile: create again
    current = found.value;
    // Ours already: an S3 client retrying our own successful create gets a 412.
    if (current.owner === opts.owner && !isStale(current)) {
      return { held: true, lease: new HeldLease(store, key, current, found.etag, ttlMs) };
    }
    if (!isStale(current)) return { held: false, current };
    try {
      const info = await putJson(store, key, value, { ifMatch: found.etag });
      return { held: true, lease: new HeldLease(store, key, value, info.etag, ttlMs) };
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  }
  return { held: false, current };
}

/** Expired by the reader's clock, or held by a process on this machine that no longer exists. */
export function isStale(lease: ShardLease, now = Date.now()): boolean {
  return Date.parse(lease.expiresAt) <= now || (lease.process !== undefined && isDeadHere(lease.process));
}

/**
 * Leases of `job` that another runner may still be working under: neither stale nor on a
 * committed shard. A runner that fails checks this before calling the job failed.
 */
export async function liveLeases(
  store: ObjectStore,
  target: { backbone: string; dataset: string; job: string },
): Promise<ShardLease[]> {
  const objects = await store.list(keys.cachePrefix(target.backbone, target.dataset));
  const committed = new Set<number>();
  const leased: string[] = [];
  for (const o of objects) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "shardCommit") committed.add(parsed.shard);
    if (parsed?.kind === "shardLease") leased.push(o.key);
  }
  const out: ShardLease[] = [];
  for (const key of leased) {
    const lease = (await getJson(store, key, ShardLease))?.value;
    if (lease && lease.job === target.job && !committed.has(lease.shard) && !isStale(lease)) out.push(lease);
  }
  return out;
}

/**
 * Deletes leases left on committed shards (a holder that died between its commit and its
 * release): no runner leases a committed shard, so nothing can depend on them.
 */
export async function removeCommittedLeases(
  store: ObjectStore,
  backbone: string,
  dataset: string,
): Promise<number> {
  const objects = await store.list(keys.cachePrefix(backbone, dataset));
  const committed = new Set<number>();
  const leases: Array<{ key: string; shard: number }> = [];
  for (const o of objects) {
    const parsed = parseKey(o.key);
    if (parsed?.kind === "shardCommit") committed.add(parsed.shard);
    if (parsed?.kind === "shardLease") leases.push({ key: o.key, shard: parsed.shard });
  }
  const stale = leases.filter((l) => committed.has(l.shard));
  for (const l of stale) await store.delete(l.key);
  return stale.length;
}

export class HeldLease {
  /** Set once a renewal finds the lease taken over, or it ran out before a renewal got through. */
  lost = false;
  private validUntil: number;
  private chain: Promise<boolean> = Promise.resolve(true);

  constructor(
    private readonly store: ObjectStore,
    readonly key: string,
    private value: ShardLease,
    private etag: string,
    private readonly ttlMs: number,
  ) {
    // `expiresAt` was computed before the write was sent: a safe bound on our own clock.
    this.validUntil = Date.parse(value.expiresAt);
  }

  get owner(): string {
    return this.value.owner;
  }

  /**
   * Extends the lease by a full TTL; false when it is no longer ours. Renewals are serialized:
   * two concurrent `If-Match` writes on one ETag would make the second look like a lost lease.
   */
  renew(): Promise<boolean> {
    this.chain = this.chain.then(() => this.renewOnce());
    return this.chain;
  }

  private async renewOnce(): Promise<boolean> {
    if (this.lost) return false;
    const next = leaseValue(
      this.value.owner,
      this.value.job,
      this.value.shard,
      this.ttlMs,
      this.value.renewals + 1,
    );
    try {
      const info = await putJson(this.store, this.key, next, { ifMatch: this.etag });
      this.value = next;
      this.etag = info.etag;
      this.validUntil = Date.parse(next.expiresAt);
      return true;
    } catch (err) {
      if (err instanceof PreconditionFailedError) {
        // A retried request whose first try got through finds our own renewal in place.
        const found = await getJson(this.store, this.key, ShardLease).catch(() => undefined);
        if (found && found.value.token === next.token) {
          this.value = found.value;
          this.etag = found.etag;
          this.validUntil = Date.parse(next.expiresAt);
          return true;
        }
        this.lost = true;
        return false;
      }
      // A transient store error: the lease still counts until it would have run out.
      if (Date.now() >= this.validUntil) this.lost = true;
      throw err;
    }
  }

  /** Renews every TTL/3 until stopped, so a long shard keeps its lease; failures set `lost`. */
  keepAlive(): () => void {
    const timer = setInterval(
      () => {
        this.renew().catch(() => undefined); // `lost` records what matters
      },
      Math.max(50, Math.floor(this.ttlMs / 3)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  /** After the shard is committed: delete the lease if it is still ours (best effort). */
  async release(): Promise<void> {
    await this.chain.catch(() => undefined);
    if (this.lost) return;
    this.lost = true;
    // Renewed within the last half TTL: nobody can have taken it over yet. Otherwise only an
    // ETag match proves it is still ours; a lease taken over in between is left alone.
    const fresh = Date.now() < this.validUntil - this.ttlMs / 2;
    if (fresh || (await this.store.head(this.key))?.etag === this.etag) await this.store.delete(this.key);
  }

  /**
   * Gives the shard up without committing it (an error, an abort): the lease is rewritten as
   * already expired, conditionally, so whoever comes next takes it over at once.
   */
  async abandon(): Promise<void> {
    await this.chain.catch(() => undefined);
    if (this.lost) return;
    this.lost = true;
    const expired: ShardLease = {
      ...leaseValue(this.value.owner, this.value.job, this.value.shard, 0, this.value.renewals + 1),
      expiresAt: new Date(0).toISOString(),
    };
    await putJson(this.store, this.key, expired, { ifMatch: this.etag }).catch((err) => {
      if (!(err instanceof PreconditionFailedError)) throw err;
    });
  }
}

function leaseValue(owner: string, job: string, shard: number, ttlMs: number, renewals: number): ShardLease {
  const identity = processIdentity();
  return {
    owner,
    job,
    shard,
    expiresAt: new Date(Date.now() + ttlMs).toISOString(),
    renewals,
    token: randomBytes(8).toString("hex"),
    ...(identity ? { process: identity } : {}),
  };
}

let self: ProcessIdentity | null | undefined;

/** This process, where /proc tells us (Linux); elsewhere leases just wait for their expiry. */
export function processIdentity(): ProcessIdentity | undefined {
  if (self === undefined) {
    try {
      const start = procStart(process.pid);
      self = start
        ? {
            host: hostname(),
            boot: readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim(),
            pidns: readlinkSync("/proc/self/ns/pid"),
            pid: process.pid,
            start,
          }
        : null;
    } catch {
      self = null;
    }
  }
  return self ?? undefined;
}

/**
 * True only with proof: the same kernel and pid namespace as ours, and no live process with
 * that pid and start time (gone, a zombie, or the pid reused). Anything else is "maybe alive".
 */
export function isDeadHere(p: ProcessIdentity): boolean {
  const me = processIdentity();
  if (!me || p.host !== me.host || p.boot !== me.boot || p.pidns !== me.pidns) return false;
  return procStart(p.pid) !== p.start;
}

/** Field 22 of /proc/<pid>/stat (start time), or undefined for a missing or zombie process. */
function procStart(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  return fields[19];
}
