/**
 * The object store on S3 or any S3-compatible server (radosgw, MinIO…). Conditional writes map
 * to `If-None-Match: *` / `If-Match`, which S3 enforces atomically on the server, so the same
 * create-only and compare-and-swap guarantees hold as with FsStore.
 *
 * Failures are retried a bounded number of times (`maxAttempts`, the SDK's standard strategy),
 * and a connection that goes quiet for `socketTimeoutMs` is dropped and retried, so a stalled
 * server costs time, never a hang. Bodies are checked against their Content-Length and re-read
 * when cut short. A conditional write whose retry meets 412 checks whether the object holds
 * its own bytes (the first try got through before the connection failed). What still fails is
 * a `StoreUnavailableError` (503). `stats()` counts requests and retries.
 */
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { PreconditionFailedError, StoreUnavailableError, ValidationError } from "../errors.ts";
import { storageKeyProblem } from "../layout.ts";
import { fileSha256, type LocalFile } from "../store/local-file.ts";
import type { ObjectInfo, ObjectStore, PutOptions, StoredObject } from "../store/types.ts";

export interface S3StoreOptions {
  bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/`. */
  prefix?: string;
  /** S3-compatible endpoint (e.g. `http://127.0.0.1:7480`); unset means AWS itself. */
  endpoint?: string;
  region?: string;
  /** Where `localPath` keeps downloaded objects; defaults to the OS temp dir. */
  scratchDir?: string;
  /** A ready client (shared connection pool, or a mock in tests); endpoint/region/credentials are then ignored. */
  client?: S3Client;
  credentials?: S3ClientConfig["credentials"];
  /** Page size for `list` (S3's own maximum is 1000); smaller values exercise pagination in tests. */
  listPageSize?: number;
  /**
   * Send `If-Match` without the ETag's quotes. radosgw 16 compares the header verbatim against its
   * unquoted ETag, so a quoted ETag never matches there; AWS gets the ETag exactly as it sent it.
   * Defaults to true when `endpoint` is set.
   */
  unquotedIfMatch?: boolean;
  /** Tries per request, the first included (`HEADSTART_S3_MAX_ATTEMPTS`). */
  maxAttempts?: number;
  /** A connection idle this long (no headers, no body bytes) is dropped and retried (`HEADSTART_S3_SOCKET_TIMEOUT_MS`). */
  socketTimeoutMs?: number;
  /** Connecting longer than this fails the attempt (`HEADSTART_S3_CONNECT_TIMEOUT_MS`). */
  connectTimeoutMs?: number;
}

/** Bounded retries and timeouts; `config.ts` reads overrides from the environment. */
export const S3_DEFAULTS = { maxAttempts: 5, socketTimeoutMs: 30_000, connectTimeoutMs: 5_000 } as const;

/** What this store's requests cost: a benchmark reports `retries` under injected faults. */
export interface S3Stats {
  /** Store-level requests (a `get` whose body was cut short and re-read counts once). */
  requests: number;
  /** Extra tries: the SDK's retries plus re-reads of cut-short bodies. */
  retries: number;
  /** Requests that failed even so (as `StoreUnavailableError`). */
  unavailable: number;
}

export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly cacheDir: string;
  private readonly listPageSize?: number;
  private readonly unquotedIfMatch: boolean;
  private readonly maxAttempts: number;
  private readonly counters: S3Stats = { requests: 0, retries: 0, unavailable: 0 };

  constructor(opts: S3StoreOptions) {
    if (!opts.bucket) throw new ValidationError("S3 store needs a bucket name", { field: "bucket" });
    this.bucket = opts.bucket;
    this.prefix = (opts.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.url = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ""}`;
    this.cacheDir = join(opts.scratchDir ?? tmpdir(), "headstart-s3-cache");
    this.listPageSize = opts.listPageSize;
    this.unquotedIfMatch = opts.unquotedIfMatch ?? Boolean(opts.endpoint);
    this.maxAttempts = opts.maxAttempts ?? S3_DEFAULTS.maxAttempts;
    this.client = opts.client ?? new S3Client(clientConfig(opts));
  }

  stats(): S3Stats {
    return { ...this.counters };
  }

  /**
   * Every SDK call goes through here: it counts the SDK's retries (`$metadata.attempts`) and
   * turns what is still a server or network failure after them into `StoreUnavailableError`.
   */
  private async send<T extends { $metadata?: { attempts?: number } }>(
    what: string,
    call: () => Promise<T>,
  ): Promise<T> {
    this.counters.requests++;
    try {
      const res = await call();
      this.countAttempts(res.$metadata?.attempts);
      return res;
    } catch (err) {
      this.countAttempts((err as AwsLikeError)?.$metadata?.attempts);
      if (isTransient(err)) throw this.unavailable(what, err);
      throw err;
    }
  }

  private countAttempts(attempts: number | undefined): void {
    if (attempts && attempts > 1) this.counters.retries += attempts - 1;
  }

  private unavailable(what: string, err: unknown, attempts?: number): StoreUnavailableError {
    this.counters.unavailable++;
    const e = err as AwsLikeError & Error;
    const status = statusOf(err);
    const reason =
      e?.name && e.name !== "Error" && e.name !== "Unknown"
        ? e.name
        : status
          ? `HTTP ${status}`
          : (e?.message ?? String(err));
    const tries = attempts ?? e?.$metadata?.attempts ?? 1;
    // No bucket, endpoint or key in the message: it may reach an API response.
    return new StoreUnavailableError(
      `the object store is unavailable (${what}: ${reason}, after ${tries} attempt${tries === 1 ? "" : "s"}); retry later`,
      { cause: err },
    );
  }

  private fullKey(key: string): string {
    const problem = storageKeyProblem(key);
    if (problem)
      throw new ValidationError(`invalid storage key ${JSON.stringify(key)}: it ${problem}`, {
        field: "key",
      });
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const fullKey = this.fullKey(key);
      const res = await this.send("HEAD", () =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: fullKey })),
      );
      return { key, size: res.ContentLength ?? 0, etag: requireEtag(res.ETag, key) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * The SDK retries until a response's headers arrive; a body cut short or stalled after that
   * is this method's to retry, within the same bound.
   */
  async get(key: string): Promise<StoredObject | undefined> {
    const fullKey = this.fullKey(key);
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.send("GET", () =>
          this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: fullKey })),
        );
        const body = await readBody(res.Body, res.ContentLength).catch((err) => {
          throw new BodyReadError(err);
        });
        return { key, size: body.byteLength, etag: requireEtag(res.ETag, key), body };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (!(err instanceof BodyReadError)) throw err;
        if (attempt >= this.maxAttempts) throw this.unavailable("GET", err.cause, attempt);
        this.counters.retries++;
        this.counters.requests--; // the same request, tried again
        await backoff(attempt);
      }
    }
  }

  async put(key: string, body: Uint8Array | string, opts: PutOptions = {}): Promise<ObjectInfo> {
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const fullKey = this.fullKey(key);
    try {
      const res = await this.send("PUT", () =>
        this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: fullKey,
            Body: bytes,
            ContentLength: bytes.byteLength,
            ContentType: opts.contentType,
            IfNoneMatch: opts.ifNoneMatch,
            IfMatch: this.ifMatchHeader(opts.ifMatch),
          }),
        ),
      );
      if (res.ETag) return { key, size: bytes.byteLength, etag: res.ETag };
    } catch (err) {
      const conditional = opts.ifNoneMatch !== undefined || opts.ifMatch !== undefined;
      if (conditional && isPreconditionFailure(err, opts.ifMatch !== undefined)) {
        const own = await this.ownRetriedWrite(key, bytes, err);
        if (own) return own;
        throw new PreconditionFailedError(key);
      }
      throw err;
    }
    // Some S3-compatible servers omit the ETag on PUT; ask once rather than return a made-up one.
    const info = await this.head(key);
    if (!info) throw new Error(`object vanished right after write: ${key}`);
    return info;
  }

  /**
   * A retried conditional PUT answered 412 may have been refused by its own first try, which
   * got through before its connection failed. Our exact bytes in place mean just that (every
   * conditional body the platform writes holds a fresh timestamp or token), so it succeeded.
   */
  private async ownRetriedWrite(
    key: string,
    bytes: Uint8Array,
    err: unknown,
  ): Promise<ObjectInfo | undefined> {
    const attempts = (err as AwsLikeError)?.$metadata?.attempts ?? 1;
    if (attempts < 2) return undefined;
    const current = await this.get(key);
    if (!current || Buffer.compare(Buffer.from(current.body), Buffer.from(bytes)) !== 0) return undefined;
    return { key, size: current.size, etag: current.etag };
  }

  /** `put` of a local file as a stream of known length, never whole in memory. */
  async putFile(key: string, file: string, opts: Pick<PutOptions, "contentType"> = {}): Promise<ObjectInfo> {
    const { size } = await fs.stat(file);
    const res = await this.send("PUT", () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.fullKey(key),
          Body: createReadStream(file),
          ContentLength: size,
          ContentType: opts.contentType,
        }),
      ),
    );
    if (res.ETag) return { key, size, etag: res.ETag };
    const info = await this.head(key);
    if (!info) throw new Error(`object vanished right after write: ${key}`);
    return info;
  }

  /** A presigned GET (signed locally, no request): the response saves as `filename`. */
  async downloadUrl(key: string, opts: { expiresInSeconds: number; filename: string }): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: this.fullKey(key),
      ResponseContentDisposition: `attachment; filename="${opts.filename.replace(/["\\\r\n]/g, "_")}"`,
    });
    return getSignedUrl(this.client, command, { expiresIn: opts.expiresInSeconds });
  }

  async list(prefix: string): Promise<ObjectInfo[]> {
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    do {
      const continuation = token;
      const res = await this.send("LIST", () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix ? `${this.prefix}/${prefix}` : prefix,
            ContinuationToken: continuation,
            MaxKeys: this.listPageSize,
          }),
        ),
      );
      for (const o of res.Contents ?? []) {
        if (!o.Key) continue;
        out.push({
          key: o.Key.slice(strip),
          size: o.Size ?? 0,
          etag: o.ETag ?? "",
          ...(o.LastModified ? { modifiedMs: o.LastModified.getTime() } : {}),
        });
      }
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    // S3 orders by UTF-8 bytes; sort the same way FsStore does so both adapters agree exactly.
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    try {
      const fullKey = this.fullKey(key);
      await this.send("DELETE", () =>
        this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey })),
      );
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
  }

  /**
   * Downloads into `<scratch>/headstart-s3-cache/<sha(bucket, key)>-<etag>` and reuses that file
   * while the ETag is unchanged. The body streams straight to disk: models are hundreds of MB.
   */
  async localPath(key: string): Promise<string | undefined> {
    return (await this.localFile(key, false))?.path;
  }

  /** Downloaded files' sha256, computed while they were written (a cached file is hashed once). */
  private readonly hashes = new Map<string, string>();

  async localFile(key: string, hash = true): Promise<LocalFile | undefined> {
    const fullKey = this.fullKey(key);
    const base = createHash("sha256").update(`${this.bucket}\0${fullKey}`).digest("hex").slice(0, 32);
    await fs.mkdir(this.cacheDir, { recursive: true });
    // The object may change between HEAD and GET; the GET's If-Match catches that and we retry.
    for (let attempt = 0; attempt < 5; attempt++) {
      const info = await this.head(key);
      if (!info) return undefined;
      const path = join(this.cacheDir, `${base}-${sanitizeEtag(info.etag)}`);
      const st = await fs.stat(path).catch(() => undefined);
      if (st?.isFile() && st.size === info.size) return this.withSha256(path, hash);

      const tmp = `${path}.~tmp-${randomBytes(6).toString("hex")}`;
      try {
        const res = await this.send("GET", () =>
          this.client.send(
            new GetObjectCommand({
              Bucket: this.bucket,
              Key: fullKey,
              IfMatch: this.ifMatchHeader(info.etag),
            }),
          ),
        );
        if (!res.Body) throw new Error(`S3 returned no body for ${key}`);
        const sha = createHash("sha256");
        const tee = new Transform({
          transform(chunk, _enc, done) {
            sha.update(chunk);
            done(null, chunk);
          },
        });
        await pipeline(res.Body as Readable, tee, createWriteStream(tmp, { flags: "wx" }));
        this.hashes.set(path, sha.digest("hex"));
        const written = (await fs.stat(tmp)).size;
        if (written !== info.size)
          throw new Error(`short download of ${key}: ${written} of ${info.size} bytes`);
        await fs.rename(tmp, path);
      } catch (err) {
        await fs.rm(tmp, { force: true });
        if (isNotFound(err)) return undefined;
        if (isPreconditionFailure(err, false)) continue;
        // A download cut short or stalled mid-body: the loop's bound covers it too.
        if (!(err instanceof StoreUnavailableError) && isTransient(err) && attempt < 4) {
          this.counters.retries++;
          await backoff(attempt + 1);
          continue;
        }
        if (isTransient(err)) throw this.unavailable("GET", err, attempt + 1);
        throw err;
      }
      await this.evictOtherVersions(base, path);
      return this.withSha256(path, hash);
    }
    throw new PreconditionFailedError(key);
  }

  private async withSha256(path: string, hash: boolean): Promise<LocalFile> {
    let sha256 = this.hashes.get(path);
    if (sha256 === undefined && hash) {
      sha256 = await fileSha256(path);
      this.hashes.set(path, sha256);
    }
    return { path, sha256: sha256 ?? "" };
  }

  private ifMatchHeader(etag: string | undefined): string | undefined {
    if (etag === undefined || !this.unquotedIfMatch) return etag;
    return etag.replace(/^(W\/)?"(.*)"$/, "$2");
  }

  /** Older downloads of the same key are dead weight once a newer ETag is on disk. */
  private async evictOtherVersions(base: string, keep: string): Promise<void> {
    const names = await fs.readdir(this.cacheDir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.startsWith(`${base}-`) && !n.includes(".~tmp-") && join(this.cacheDir, n) !== keep)
        .map((n) => fs.rm(join(this.cacheDir, n), { force: true }).catch(() => undefined)),
    );
  }
}

function clientConfig(opts: S3StoreOptions): S3ClientConfig {
  const config: S3ClientConfig = {
    region: opts.region,
    credentials: opts.credentials,
    maxAttempts: opts.maxAttempts ?? S3_DEFAULTS.maxAttempts,
    // Without these the SDK waits forever on a server that accepted the connection and went quiet.
    requestHandler: {
      connectionTimeout: opts.connectTimeoutMs ?? S3_DEFAULTS.connectTimeoutMs,
      socketTimeout: opts.socketTimeoutMs ?? S3_DEFAULTS.socketTimeoutMs,
    },
  };
  if (opts.endpoint) {
    Object.assign(config, {
      endpoint: opts.endpoint,
      region: opts.region ?? "us-east-1",
      // Non-AWS servers rarely have wildcard DNS for virtual-hosted buckets.
      forcePathStyle: true,
      // The SDK's default sends streamed bodies aws-chunked with trailing checksums, which radosgw
      // rejects (411) and some emulators store corrupted.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    } satisfies S3ClientConfig);
  }
  return config;
}

interface AwsLikeError {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
}

function statusOf(err: unknown): number | undefined {
  return (err as AwsLikeError)?.$metadata?.httpStatusCode;
}

/** A body stream that failed after the response's headers arrived (cut short, stalled). */
class BodyReadError extends Error {
  constructor(override readonly cause: unknown) {
    super(`reading the response body failed: ${(cause as Error)?.message ?? cause}`);
  }
}

/** The whole body, which must be as long as the server said: a cut connection is not an object. */
async function readBody(
  body: { transformToByteArray(): Promise<Uint8Array> } | undefined,
  contentLength: number | undefined,
): Promise<Uint8Array> {
  const bytes = body ? await body.transformToByteArray() : new Uint8Array();
  if (contentLength !== undefined && bytes.byteLength !== contentLength) {
    throw new Error(`short body: ${bytes.byteLength} of ${contentLength} bytes`);
  }
  return bytes;
}

/** Full jitter, as the SDK's own strategy: up to 100 ms · 2^attempt, at most 5 s. */
function backoff(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.random() * Math.min(5_000, 100 * 2 ** attempt)));
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNABORTED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/**
 * A failure of the server or the network rather than of the request: 5xx, throttling,
 * resets, timeouts, a body cut short. Anything else (403, 404, 412…) is an answer.
 */
function isTransient(err: unknown): boolean {
  if (err instanceof BodyReadError) return true;
  const e = err as AwsLikeError & { code?: string; $retryable?: unknown; message?: string };
  const status = statusOf(err);
  if (status !== undefined) return status >= 500 || status === 429 || e?.name === "SlowDown";
  if (e?.name === "TimeoutError" || e?.name === "AbortError" || e?.name === "RequestTimeout") return true;
  if (e?.code && NETWORK_CODES.has(e.code)) return true;
  return /socket hang up|aborted|premature close|short (body|download)/i.test(e?.message ?? "");
}

function isNotFound(err: unknown): boolean {
  const name = (err as AwsLikeError)?.name;
  // A missing bucket is a configuration error, not a missing object.
  if (name === "NoSuchBucket") return false;
  return name === "NoSuchKey" || name === "NotFound" || statusOf(err) === 404;
}

/**
 * 412 is the standard answer; AWS answers 409 ConditionalRequestConflict when a concurrent
 * conditional write to the same key is in flight. For If-Match, a missing object (404) also
 * means the expected version is not there.
 */
function isPreconditionFailure(err: unknown, ifMatch: boolean): boolean {
  const e = err as AwsLikeError;
  const status = statusOf(err);
  if (e?.name === "PreconditionFailed" || status === 412) return true;
  if (e?.name === "ConditionalRequestConflict" || e?.Code === "ConditionalRequestConflict") return true;
  return ifMatch && isNotFound(err);
}

function requireEtag(etag: string | undefined, key: string): string {
  if (!etag) throw new Error(`S3 returned no ETag for ${key}`);
  return etag;
}

function sanitizeEtag(etag: string): string {
  return etag.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 80) || "noetag";
}
