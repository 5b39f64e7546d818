/**
 * The customer's API keys, kept in its own store as one object (`layout.keys.apiKeys()`). The
 * CLI (`headstart keys`), the admin API (`/v1/keys`), the local server and the authorizer all go
 * through this module. Changes are compare-and-swap writes (`If-Match` on the ETag read, or
 * create-only for the first key), retried on a lost race, so two admins never lose each other's
 * change; the file never holds a usable key.
 */
import { ConflictError, NotFoundError, PreconditionFailedError } from "../errors.ts";
import { keys } from "../layout.ts";
import { getJson, putJson } from "../store/json.ts";
import type { ObjectStore } from "../store/types.ts";
import {
  type ApiKeyEntry,
  ApiKeyFile,
  activeKeys,
  newApiKey,
  type Principal,
  presentedKey,
  type Scope,
  verifyApiKey,
} from "./api-keys.ts";

const EMPTY: ApiKeyFile = { version: 1, keys: [] };
const MAX_ATTEMPTS = 8;

/** What `list` shows of a key: never its hash, never the key. */
export interface KeyInfo {
  id: string;
  customer: string;
  scopes: Scope[];
  createdAt: string;
  revoked: boolean;
  revokedAt?: string;
}

export function keyInfo(e: ApiKeyEntry): KeyInfo {
  return {
    id: e.id,
    customer: e.customer,
    scopes: [...e.scopes],
    createdAt: e.createdAt,
    revoked: Boolean(e.revokedAt),
    ...(e.revokedAt ? { revokedAt: e.revokedAt } : {}),
  };
}

export class KeyStore {
  constructor(
    readonly store: ObjectStore,
    /** The customer new keys are bound to and verified keys must belong to. */
    readonly customer: string,
  ) {}

  async read(): Promise<{ file: ApiKeyFile; etag?: string }> {
    const got = await getJson(this.store, keys.apiKeys(), ApiKeyFile);
    return got ? { file: got.value, etag: got.etag } : { file: EMPTY };
  }

  async list(): Promise<KeyInfo[]> {
    return (await this.read()).file.keys.map(keyInfo);
  }

  /** A new key bound to this customer; the key itself is returned here once and stored nowhere. */
  async create(id: string, scopes: readonly Scope[]): Promise<{ key: string; info: KeyInfo }> {
    const made = newApiKey(id, scopes, this.customer);
    await this.update((file) => {
      if (file.keys.some((k) => k.id === id))
        throw new ConflictError(`key id ${JSON.stringify(id)} is taken (revoked ids stay reserved)`, {
          field: "id",
        });
      return { ...file, keys: [...file.keys, made.entry] };
    });
    return { key: made.key, info: keyInfo(made.entry) };
  }

  /** Marks the key revoked (kept, so its id stays reserved); revoking twice changes nothing. */
  async revoke(id: string, now = new Date()): Promise<KeyInfo> {
    let out: ApiKeyEntry | undefined;
    await this.update((file) => {
      const entry = file.keys.find((k) => k.id === id);
      if (!entry) throw new NotFoundError(`key ${JSON.stringify(id)}`, { field: "id" });
      out = entry.revokedAt ? entry : { ...entry, revokedAt: now.toISOString() };
      if (out === entry) return undefined;
      return { ...file, keys: file.keys.map((k) => (k.id === id ? (out as ApiKeyEntry) : k)) };
    });
    return keyInfo(out as ApiKeyEntry);
  }

  /** Read, change, write with a condition; a lost race re-reads and re-applies `change`. */
  private async update(change: (file: ApiKeyFile) => ApiKeyFile | undefined): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const { file, etag } = await this.read();
      const next = change(file);
      if (!next) return;
      try {
        await putJson(this.store, keys.apiKeys(), next, etag ? { ifMatch: etag } : { ifNoneMatch: "*" });
        return;
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    }
    throw new ConflictError("the key file kept changing under this update; try again", { field: "keys" });
  }
}

/**
 * A read-mostly view of the key file for servers: re-read at most every `ttlMs`, so a revoked
 * key stops working within that time (or at once after `invalidate`).
 */
export class KeyRing {
  private cached?: { at: number; file: ApiKeyFile };

  constructor(
    readonly keyStore: KeyStore,
    private readonly ttlMs: number,
  ) {}

  private async file(): Promise<ApiKeyFile> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.file;
    const { file } = await this.keyStore.read();
    this.cached = { at: Date.now(), file };
    return file;
  }

  invalidate(): void {
    this.cached = undefined;
  }

  /** Whether this customer has any active key (then every non-public request must present one). */
  async hasKeys(): Promise<boolean> {
    return activeKeys(await this.file(), this.keyStore.customer).length > 0;
  }

  async verify(headers: Record<string, string | undefined>): Promise<Principal | undefined> {
    return verifyApiKey(presentedKey(headers), await this.file(), this.keyStore.customer);
  }
}
