/**
 * `headstart serve` as its user runs it (the real CLI, the real node server, a real store):
 * findings "accepts cross-site POSTs without a body (rollback, ingest) from any web page the
 * user visits, does not check the Host header (DNS rebinding), and binds to 0.0.0.0 without a
 * warning when asked", and the key commands.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { FsStore } from "../shared/open-store.ts";

const BIN = join(import.meta.dirname, "..", "bin", "headstart.js");
const run = promisify(execFile);

interface Answer {
  status: number;
  body: { error?: { code: string; field?: string; message: string } } & Record<string, unknown>;
}

/** node:http, because fetch will not send a Host header of our choosing. */
function call(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = "";
      res.on("data", (d) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Starts `headstart serve`; resolves with its port once it logs that it listens. */
function serve(
  store: string,
  args: string[],
): Promise<{ child: ChildProcess; port: number; log: () => string }> {
  const child = spawn(process.execPath, [BIN, "--store", store, "serve", "--port", "0", ...args], {
    env: { ...process.env, HEADSTART_LOG_LEVEL: "info" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  return new Promise((resolve, reject) => {
    child.stderr?.on("data", (d) => {
      stderr += d;
      const m = /"url":"http:\/\/[^"]+:(\d+)"/.exec(stderr);
      if (m) resolve({ child, port: Number(m[1]), log: () => stderr });
    });
    child.once("exit", (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
  });
}

const stop = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });

describe("local server safety", () => {
  let dir: string;
  let store: string;
  const children: ChildProcess[] = [];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "headstart-local-"));
    store = join(dir, "store");
  });
  after(async () => {
    await Promise.all(children.map(stop));
    await rm(dir, { recursive: true, force: true });
  });

  test("binds loopback; refuses foreign Host headers (DNS rebinding) and cross-site state changes", async () => {
    const s = await serve(store, ["--allowed-host", "headstart.lan"]);
    children.push(s.child);
    const port = s.port;
    assert.match(s.log(), new RegExp(`"url":"http://127.0.0.1:${port}"`));

    assert.equal((await call(port, "GET", "/health")).status, 200, "Host 127.0.0.1:<port>");
    assert.equal((await call(port, "GET", "/health", { host: `localhost:${port}` })).status, 200);
    assert.equal(
      (await call(port, "GET", "/health", { host: "headstart.lan:8080" })).status,
      200,
      "allowed name",
    );
    for (const host of [
      `evil.example:${port}`,
      "evil.example",
      `127.0.0.1:${port + 1}`,
      `localhost.evil.example:${port}`,
    ]) {
      const res = await call(port, "GET", "/v1/heads/x", { host });
      assert.equal(res.status, 403, host);
      assert.equal(res.body.error?.field, "host", host);
      assert.ok(!JSON.stringify(res.body).includes(dir), "no internal path in the answer");
    }

    // A bodyless cross-site POST (rollback) and ingest never reach the route.
    for (const headers of <Record<string, string>[]>[
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: "http://evil.example" },
      { origin: "null" },
      { origin: `http://localhost:${port}` }, // another origin than the one asked (127.0.0.1)
    ]) {
      for (const path of ["/v1/heads/films/aliases/live/rollback", "/v1/datasets/films/ingest"]) {
        const res = await call(port, "POST", path, headers);
        assert.equal(res.status, 403, `${path} ${JSON.stringify(headers)}`);
        assert.equal(res.body.error?.field, "origin");
      }
    }
    assert.deepEqual(await new FsStore(store).list("datasets/"), [], "nothing stored");
    // Same-origin (the /docs page) and non-browser clients (no Origin, no Sec-Fetch-Site) pass.
    const own = await call(port, "POST", "/v1/heads/films/aliases/live/rollback", {
      origin: `http://127.0.0.1:${port}`,
      "sec-fetch-site": "same-origin",
    });
    assert.equal(own.status, 404, "reaches the route: no such head");
    assert.equal((await call(port, "POST", "/v1/heads/films/aliases/live/rollback")).status, 404);
    // Reads are not state changes: a cross-site GET cannot read the answer anyway (no CORS).
    assert.equal((await call(port, "GET", "/health", { "sec-fetch-site": "cross-site" })).status, 200);
    await stop(s.child);
  });

  test("a non-loopback bind without keys is refused at start, naming how to make one", async () => {
    const res = await run(process.execPath, [
      BIN,
      "--store",
      store,
      "serve",
      "--host",
      "0.0.0.0",
      "--port",
      "0",
    ]).then(
      () => assert.fail("serve started"),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(res.code, 2);
    assert.match(
      res.stderr,
      /not a loopback address.*headstart keys create --id <name> --scope admin.*\[host\]/s,
    );
  });

  test("keys create|list|revoke; a non-loopback server then demands keys and warns at start", async () => {
    const cli = (...args: string[]) => run(process.execPath, [BIN, "--store", store, "--json", ...args]);
    const admin = JSON.parse((await cli("keys", "create", "--id", "ops", "--scope", "admin")).stdout);
    const reader = JSON.parse((await cli("keys", "create", "--id", "app", "--scope", "predict")).stdout);
    assert.match(admin.key, /^hs_ops_/);
    const listed = (await cli("keys", "list")).stdout;
    assert.deepEqual(
      JSON.parse(listed).map((k: { id: string; scopes: string[] }) => [k.id, k.scopes]),
      [
        ["ops", ["admin"]],
        ["app", ["predict"]],
      ],
    );
    assert.ok(!listed.includes(admin.key) && !/[0-9a-f]{64}/.test(listed), "no key, no hash");
    const bad = await cli("keys", "create", "--id", "x", "--scope", "everything").catch((e) => e);
    assert.equal(bad.code, 2);
    assert.match(bad.stdout, /"field": "scope"/);
    // A bucket is a deployment's: a key of customer `local` there would be refused by its authorizer.
    const { HEADSTART_CUSTOMER: _, ...noCustomer } = process.env;
    const bucket = await run(
      process.execPath,
      [BIN, "--store", "s3://some-bucket", "--json", "keys", "list"],
      {
        env: noCustomer,
      },
    ).catch((e) => e);
    assert.equal(bucket.code, 2);
    assert.match(bucket.stdout, /"field": "customer"/);

    const s = await serve(store, ["--host", "0.0.0.0"]);
    children.push(s.child);
    assert.match(s.log(), /"level":"WARN".*non-loopback address.*needs an API key/);
    const port = s.port;
    assert.equal((await call(port, "GET", "/health")).status, 200, "public");
    assert.equal((await call(port, "GET", "/v1/keys")).status, 401);
    assert.equal((await call(port, "GET", "/v1/keys", { "x-api-key": reader.key })).status, 403);
    assert.equal((await call(port, "GET", "/v1/keys", { "x-api-key": admin.key })).status, 200);
    assert.equal((await call(port, "GET", "/v1/keys", { authorization: `Bearer ${admin.key}` })).status, 200);

    await cli("keys", "revoke", "ops");
    // The server re-reads the key file within 2 s.
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await call(port, "GET", "/v1/keys", { "x-api-key": admin.key })).status;
    }
    assert.equal(status, 401, "a revoked key is refused");
    const revoked = JSON.parse((await cli("keys", "list")).stdout).find(
      (k: { id: string }) => k.id === "ops",
    );
    assert.equal(revoked.revoked, true);
    await stop(s.child);
  });
});
