/**
 * The embedded store: one directory on the local filesystem. Writes go to a temporary file in
 * the same directory and are renamed into place (atomic on POSIX); create-only writes use
 * link(2), which fails if the target exists, so two writers can never both win.
 */
import { randomBytes } from "node:crypto";
import { constants, promises as fs } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { PreconditionFailedError, ValidationError } from "../errors.ts";
import { storageKeyProblem } from "../layout.ts";
import { fileSha256, type LocalFile } from "./local-file.ts";
import type { ObjectInfo, ObjectStore, PutOptions, StoredObject, Temporary } from "./types.ts";

const TEMP_MARK = ".~tmp-";
const LOCK_SUFFIX = ".~lock";

export class FsStore implements ObjectStore {
  readonly root: string;
  readonly url: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  private pathOf(key: string): string {
    const problem = storageKeyProblem(key);
    if (problem)
      throw new ValidationError(`invalid storage key ${JSON.stringify(key)}: it ${problem}`, {
        field: "key",
      });
    if (key.includes(TEMP_MARK) || key.endsWith(LOCK_SUFFIX)) {
      throw new ValidationError(`storage key uses a reserved suffix: ${key}`, { field: "key" });
    }
    return join(this.root, ...key.split("/"));
  }

  private static etagOf(st: { ino: bigint; mtimeNs: bigint; size: bigint }): string {
    // Every write renames a fresh inode into place, so inode + mtime + size changes on every put.
    return `"${st.ino.toString(36)}-${st.mtimeNs.toString(36)}-${st.size.toString(36)}"`;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.stat(key);
    if (!info) return undefined;
    const { modifiedMs: _modified, ...rest } = info;
    return rest;
  }

  /** `head` with the time of the last write, as `list` answers it. */
  private async stat(key: string): Promise<ObjectInfo | undefined> {
    const path = this.pathOf(key);
    try {
      const st = await fs.stat(path, { bigint: true });
      if (!st.isFile()) return undefined;
      return { key, size: Number(st.size), etag: FsStore.etagOf(st), modifiedMs: Number(st.mtimeMs) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const path = this.pathOf(key);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, "r");
    } catch (err) {
      if (isMissing(err) || (err as NodeJS.ErrnoException).code === "EISDIR") return undefined;
      throw err;
    }
    try {
      // Stat and read through one handle so the ETag describes exactly the bytes returned.
      const st = await handle.stat({ bigint: true });
      if (!st.isFile()) return undefined;
      const body = new Uint8Array(await handle.readFile());
      return { key, size: body.byteLength, etag: FsStore.etagOf(st), body };
    } finally {
      await handle.close();
    }
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    await fs.mkdir(dirname(path), { recursive: true });
    const tmp = `${path}${TEMP_MARK}${randomBytes(6).toString("hex")}`;
    await fs.writeFile(tmp, body, { flag: "wx" });
    // The ETag of *this* write: link and rename keep the inode and mtime, so the temp file's
    // stat is the object's. A head() afterwards could see another writer's replacement, or
    // nothing at all when someone deleted it meanwhile (a lease released by its next holder).
    const st = await fs.stat(tmp, { bigint: true });
    const written: ObjectInfo = { key, size: Number(st.size), etag: FsStore.etagOf(st) };
    try {
      if (opts.ifNoneMatch === "*") {
        try {
          await fs.link(tmp, path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new PreconditionFailedError(key);
          throw err;
        }
      } else if (opts.ifMatch !== undefined) {
        await this.withLock(key, path, async () => {
          const current = await this.head(key);
          if (!current || current.etag !== opts.ifMatch) throw new PreconditionFailedError(key);
          await fs.rename(tmp, path);
        });
      } else {
        await fs.rename(tmp, path);
      }
    } finally {
      await fs.rm(tmp, { force: true });
    }
    return written;
  }

  /** `put` of a local file by copy and rename, so the bytes never pass through memory. */
  async putFile(key: string, file: string): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    await fs.mkdir(dirname(path), { recursive: true });
    const tmp = `${path}${TEMP_MARK}${randomBytes(6).toString("hex")}`;
    try {
      await fs.copyFile(file, tmp, constants.COPYFILE_EXCL);
      const st = await fs.stat(tmp, { bigint: true });
      await fs.rename(tmp, path);
      return { key, size: Number(st.size), etag: FsStore.etagOf(st) };
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /** Compare-and-swap needs mutual exclusion between processes: an O_EXCL lock file. */
  private async withLock<T>(key: string, path: string, fn: () => Promise<T>): Promise<T> {
    const lock = `${path}${LOCK_SUFFIX}`;
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const h = await fs.open(lock, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
        await h.close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const st = await fs.stat(lock).catch(() => undefined);
        // A lock older than the deadline belongs to a crashed writer.
        if (st && Date.now() - st.mtimeMs > 30_000) {
          // Renaming is atomic: of several waiters, exactly one takes the stale lock away.
          const stale = `${lock}.stale-${randomBytes(4).toString("hex")}`;
          if (
            await fs.rename(lock, stale).then(
              () => true,
              () => false,
            )
          )
            await fs.rm(stale, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new PreconditionFailedError(key);
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
    }
    try {
      return await fn();
    } finally {
      await fs.rm(lock, { force: true });
    }
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    // The prefix may end mid-name (`cache/b/d/shard-`), so walk from its directory part.
    const slash = prefix.lastIndexOf("/");
    const dirKey = slash >= 0 ? prefix.slice(0, slash) : "";
    const start = dirKey ? this.pathOf(dirKey) : this.root;
    const out: ObjectInfo[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: import("node:fs").Dirent[];
      try {
        entries = await fs.readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err) || (err as NodeJS.ErrnoException).code === "ENOTDIR") return;
        throw err;
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        const key = relative(this.root, full).split(sep).join("/");
        if (e.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(full);
        } else if (
          e.isFile() &&
          key.startsWith(prefix) &&
          !e.name.includes(TEMP_MARK) &&
          !e.name.endsWith(LOCK_SUFFIX)
        ) {
          const info = await this.stat(key);
          if (info) out.push(info);
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.pathOf(key), { force: true });
  }

  /**
   * Files a killed writer left: `put`'s temporary (written, not yet renamed), a compare-and-swap
   * lock, or a stale lock moved aside. Found only by this walk (`list` never shows them);
   * `headstart doctor --repair` removes the ones older than its grace period.
   */
  async temporaries(): Promise<Temporary[]> {
    const out: Temporary[] = [];
    const now = Date.now();
    const walk = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch((err) => {
        if (isMissing(err)) return [];
        throw err;
      });
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) await walk(full);
        else if (isTemporaryName(e.name)) {
          const st = await fs.stat(full).catch(() => undefined);
          if (!st) continue; // finished meanwhile
          out.push({
            key: relative(this.root, full).split(sep).join("/"),
            ageMs: now - st.mtimeMs,
            size: st.size,
          });
        }
      }
    };
    await walk(this.root);
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async removeTemporary(key: string, minAgeMs: number): Promise<boolean> {
    const name = key.slice(key.lastIndexOf("/") + 1);
    if (storageKeyProblem(key) || !isTemporaryName(name))
      throw new ValidationError(`not a temporary file: ${JSON.stringify(key)}`, { field: "key" });
    const path = join(this.root, ...key.split("/"));
    // A lock's name is reused by the next writer of its key: move it aside first (atomic), then
    // make sure what was moved is the old one, and put a young one back.
    const aside = name.endsWith(LOCK_SUFFIX) ? `${path}.stale-${randomBytes(4).toString("hex")}` : path;
    if (
      aside !== path &&
      !(await fs.rename(path, aside).then(
        () => true,
        () => false,
      ))
    )
      return false;
    const st = await fs.stat(aside).catch(() => undefined);
    if (!st) return false;
    if (Date.now() - st.mtimeMs < minAgeMs) {
      if (aside !== path) await fs.link(aside, path).catch(() => undefined);
      if (aside !== path) await fs.rm(aside, { force: true });
      return false;
    }
    await fs.rm(aside, { force: true });
    return true;
  }

  async localPath(key: string): Promise<string | undefined> {
    return (await this.head(key)) ? this.pathOf(key) : undefined;
  }

  async localFile(key: string): Promise<LocalFile | undefined> {
    const path = await this.localPath(key);
    if (!path) return undefined;
    try {
      return { path, sha256: await fileSha256(path) };
    } catch (err) {
      if (isMissing(err)) return undefined; // deleted meanwhile
      throw err;
    }
  }
}

/** A write's temporary, a lock, or a lock moved aside to be broken (`.~lock.stale-…`). */
function isTemporaryName(name: string): boolean {
  return name.includes(TEMP_MARK) || name.endsWith(LOCK_SUFFIX) || name.includes(`${LOCK_SUFFIX}.stale-`);
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === "ENOENT";
}
