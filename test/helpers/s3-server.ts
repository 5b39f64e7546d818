/**
 * A real S3 server for tests: a single-node Ceph radosgw on loopback (scripts/radosgw.sh), with
 * real conditional writes and bucket notifications. Startup takes ~15 s (plus ~30 s the first
 * time, when the script apt-installs Ceph), so start one per test file in `before`:
 *
 *   let s3: S3Server;
 *   before(async () => { s3 = await startS3Server(); }, { timeout: 240_000 });
 *   after(() => s3?.stop());
 *   const store = await createS3TestStore(s3);            // S3Store over a fresh bucket
 *   spawn("npx", ["headstart", …], { env: { ...process.env, ...s3Env(s3, bucket) } });
 */

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  CreateBucketCommand,
  ListBucketsCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { CreateTopicCommand, DeleteTopicCommand, SNSClient } from "@aws-sdk/client-sns";
import { S3Store, type S3StoreOptions } from "../../shared/aws/s3-store.ts";
import { type Config, loadConfig } from "../../shared/config.ts";
import { Platform } from "../../shared/platform.ts";
import { writeTinyBackbone } from "./tiny-backbone.ts";

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL("../../scripts/radosgw.sh", import.meta.url));
const ACCESS_KEY_ID = "HEADSTARTTESTKEY0001";
const SECRET_ACCESS_KEY = "headstart-test-secret-key-0000000000000001";
const REGION = "us-east-1";

export interface S3Server {
  /** e.g. `http://127.0.0.1:41234` */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A client configured for this server (path-style, checksums only when required). */
  client: S3Client;
  /** Creates a bucket (a random `hs-test-…` name unless given) and returns its name. */
  createBucket(name?: string): Promise<string>;
  /** Kills the daemons and deletes their directory. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startS3Server(): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), "headstart-rgw-"));
  const env = {
    ...process.env,
    HEADSTART_S3_ACCESS_KEY: ACCESS_KEY_ID,
    HEADSTART_S3_SECRET_KEY: SECRET_ACCESS_KEY,
  };
  // A crashed or interrupted test run must not leave Ceph daemons behind.
  const killOnExit = () => killDaemons(dir);
  process.once("exit", killOnExit);
  let port = 0;
  // A second try with fresh ports covers another process grabbing a port between probe and bind.
  for (let attempt = 1; ; attempt++) {
    const [rgwPort, monPort] = await freePorts(2);
    try {
      await run("bash", [SCRIPT, "start", dir, String(rgwPort), String(monPort)], {
        env,
        timeout: 300_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      port = rgwPort;
      break;
    } catch (err) {
      killDaemons(dir);
      if (attempt < 2) continue;
      process.removeListener("exit", killOnExit);
      await rm(dir, { recursive: true, force: true });
      const stderr = (err as { stderr?: string }).stderr ?? "";
      throw new Error(`could not start radosgw: ${stderr.trim() || (err as Error).message}`, { cause: err });
    }
  }

  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    forcePathStyle: true,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  // The user was just created; wait until signed requests are accepted.
  await retry(() => client.send(new ListBucketsCommand({})), 30_000);

  let stopped = false;
  return {
    endpoint,
    region: REGION,
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    client,
    async createBucket(name = `hs-test-${randomBytes(5).toString("hex")}`) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
      return name;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      client.destroy();
      process.removeListener("exit", killOnExit);
      await run("bash", [SCRIPT, "stop", dir], { timeout: 60_000 }).catch(() => killDaemons(dir));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An S3Store over a fresh bucket on `server`; `opts` may set a prefix, scratchDir or listPageSize. */
export async function createS3TestStore(
  server: S3Server,
  opts: Partial<Omit<S3StoreOptions, "bucket" | "client" | "endpoint" | "credentials">> = {},
): Promise<S3Store> {
  const bucket = await server.createBucket();
  return new S3Store({
    region: server.region,
    ...opts,
    bucket,
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

/** Environment for a child process (CLI, server) that should use `s3://bucket[/prefix]` on `server`. */
export function s3Env(server: S3Server, bucket: string, prefix?: string): Record<string, string> {
  return {
    HEADSTART_STORE: `s3://${bucket}${prefix ? `/${prefix}` : ""}`,
    HEADSTART_S3_ENDPOINT: server.endpoint,
    AWS_REGION: server.region,
    AWS_ACCESS_KEY_ID: server.accessKeyId,
    AWS_SECRET_ACCESS_KEY: server.secretAccessKey,
  };
}

function killDaemons(dir: string): void {
  for (const name of ["client.rgw", "osd.0", "mon.a"]) {
    try {
      const pid = Number(readFileSync(join(dir, "run", `${name}.pid`), "utf8").trim());
      if (pid > 0) process.kill(pid, "SIGKILL");
    } catch {
      // No pid file or already gone: nothing to clean up.
    }
  }
}

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  // Hold all sockets until every port is known so the n ports are distinct.
  const ports = servers.map((s) => (s.address() as import("node:net").AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

async function retry<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export interface S3Notification {
  Records: Array<{
    eventSource: string;
    eventName: string;
    s3: { bucket: { name: string }; object: { key: string } };
  }>;
}

export interface BucketNotifications {
  /** Every event radosgw has pushed so far. */
  readonly received: S3Notification[];
  /** Waits for the event that names `key`. */
  eventFor(key: string, timeoutMs?: number): Promise<S3Notification>;
  close(): Promise<void>;
}

/**
 * Real bucket notifications: an SNS-style topic on radosgw pushing `ObjectCreated` events under
 * `<prefix>/<under>` (by default `datasets/`) to an HTTP listener on loopback, as AWS would invoke
 * the ingest Lambda.
 */
export async function listenForBucketNotifications(
  s3: S3Server,
  bucket: string,
  prefix: string,
  under = "datasets/",
): Promise<BucketNotifications> {
  const received: S3Notification[] = [];
  const server: Server = createHttpServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      try {
        received.push(JSON.parse(body));
      } catch {
        // Not an event; radosgw sends nothing else here.
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const sns = new SNSClient({
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  const topic = await sns.send(
    new CreateTopicCommand({
      Name: `${bucket}-uploads`,
      Attributes: { "push-endpoint": `http://127.0.0.1:${(server.address() as AddressInfo).port}/` },
    }),
  );
  if (!topic.TopicArn) throw new Error("radosgw returned no topic ARN");
  await s3.client.send(
    new PutBucketNotificationConfigurationCommand({
      Bucket: bucket,
      NotificationConfiguration: {
        TopicConfigurations: [
          {
            Id: "headstart-manifest-upload",
            TopicArn: topic.TopicArn,
            Events: ["s3:ObjectCreated:*"],
            Filter: { Key: { FilterRules: [{ Name: "prefix", Value: `${prefix}/${under}` }] } },
          },
        ],
      },
    }),
  );
  const keysSeen = () => received.flatMap((e) => e.Records.map((r) => r.s3.object.key));
  return {
    received,
    async eventFor(key, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.find((e) => e.Records.some((r) => r.s3.object.key === key));
        if (found) return found;
        if (Date.now() > deadline)
          throw new Error(`no notification for ${key}; got ${JSON.stringify(keysSeen())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async close() {
      await sns.send(new DeleteTopicCommand({ TopicArn: topic.TopicArn })).catch(() => undefined);
      sns.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * A platform on a fresh bucket of the test S3 server, configured as a deployment would be
 * (endpoint, region, scratch and models folders under `dir`).
 */
export async function s3TestPlatform(
  s3: S3Server,
  opts: { dir: string; prefix: string; defaultBackbone: string },
): Promise<{ store: S3Store; config: Config; platform: Platform }> {
  const scratchDir = join(opts.dir, "scratch");
  const store = await createS3TestStore(s3, { prefix: opts.prefix, scratchDir });
  const config = loadConfig(
    {},
    {
      store: store.url,
      s3Endpoint: s3.endpoint,
      region: s3.region,
      defaultBackbone: opts.defaultBackbone,
      modelsDir: join(opts.dir, "models"),
      scratchDir,
      logLevel: "silent",
    },
  );
  return { store, config, platform: new Platform(store, config) };
}

/**
 * `s3TestPlatform` in a fresh temporary folder with the tiny backbone published (the S3 twin of
 * `tinyPlatform`), and the environment a `headstart` child process needs to reach the same store.
 */
export async function s3TinyPlatform(s3: S3Server, prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), "headstart-s3-"));
  const ctx = await s3TestPlatform(s3, { dir, prefix, defaultBackbone: "tiny-text" });
  await writeTinyBackbone(join(dir, "backbone"));
  await ctx.platform.addBackbone(join(dir, "backbone"));
  const env = s3Env(s3, ctx.store.bucket, prefix);
  return { ...ctx, dir, env, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * A `describe` block sharing one radosgw (started once, ~15 s) among the suites `body` declares;
 * `server()` is that server once the block's tests run.
 */
export function describeOnRadosgw(title: string, body: (server: () => S3Server) => void): void {
  describe(title, () => {
    let s3: S3Server | undefined;
    before(
      async () => {
        s3 = await startS3Server();
      },
      { timeout: 240_000 },
    );
    after(() => s3?.stop());
    body(() => {
      if (!s3) throw new Error("radosgw is not started yet");
      return s3;
    });
  });
}
