/**
 * shared/api/body-limit.ts through the real Node adapter (@hono/node-server on a loopback port):
 * JSON bodies read from the Node stream reach `c.req.json()` intact, the limit holds for declared
 * and for chunked bodies, and what is not JSON still reads through hono's own path.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import { bodyLimit } from "../shared/api/body-limit.ts";
import { PayloadTooLargeError } from "../shared/errors.ts";

const LIMIT = 1024;

function call(
  port: number,
  body: string,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "POST", path: "/echo", headers }, (res) => {
      let text = "";
      res.on("data", (d) => {
        text += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

describe("body limit and JSON bodies on the Node adapter", () => {
  let server: ReturnType<typeof serve>;
  let port: number;
  before(async () => {
    const app = new Hono();
    app.use(bodyLimit(LIMIT));
    app.post("/echo", async (c) => {
      const type = c.req.header("content-type") ?? "";
      if (type.startsWith("application/json")) return c.json({ json: await c.req.json() });
      if (type.startsWith("multipart/form-data"))
        return c.json({ form: Object.keys(await c.req.parseBody()) });
      return c.json({ text: await c.req.text() });
    });
    app.onError((err, c) => c.json({ error: err.message }, err instanceof PayloadTooLargeError ? 413 : 400));
    server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise((r) => server.once("listening", r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test("a JSON body with its length arrives whole, multi-byte characters included", async () => {
    const body = JSON.stringify({ inputs: ["naïve café ☕", "x".repeat(500)], n: 3 });
    const r = await call(port, body, { "content-type": "application/json" });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(r.text), { json: JSON.parse(body) });
  });

  test("malformed JSON is the route's error, not a hang", async () => {
    const r = await call(port, '{"inputs": [', { "content-type": "application/json" });
    assert.equal(r.status, 400, r.text);
  });

  test("a declared length over the limit is refused before the body is read", async () => {
    const r = await call(port, JSON.stringify({ x: "y".repeat(2 * LIMIT) }), {
      "content-type": "application/json",
    });
    assert.equal(r.status, 413, r.text);
  });

  test("a chunked body over the limit is refused while it streams; one under it is read", async () => {
    const chunked = { "content-type": "application/json", "transfer-encoding": "chunked" };
    const big = await call(port, JSON.stringify({ x: "y".repeat(2 * LIMIT) }), chunked);
    assert.equal(big.status, 413, big.text);
    const small = await call(port, JSON.stringify({ x: 1 }), chunked);
    assert.deepEqual(JSON.parse(small.text), { json: { x: 1 } });
  });

  test("bodies that are not JSON still read through hono (text, multipart)", async () => {
    const text = await call(port, "plain words", { "content-type": "text/plain" });
    assert.deepEqual(JSON.parse(text.text), { text: "plain words" });
    const boundary = "----b";
    const form = `--${boundary}\r\nContent-Disposition: form-data; name="version"\r\n\r\nv1\r\n--${boundary}--\r\n`;
    const multi = await call(port, form, { "content-type": `multipart/form-data; boundary=${boundary}` });
    assert.deepEqual(JSON.parse(multi.text), { form: ["version"] });
  });
});
