/**
 * The request body limit, and on the local server the JSON body itself read straight from Node.
 *
 * Behind @hono/node-server a request stays a lightweight object until something touches its WHATWG
 * body: then a full Request with a ReadableStream, an AbortSignal and their transfer machinery is
 * built around the Node stream, a sixth of a small predict's time. Hono's own `bodyLimit` touches
 * it on every request (`c.req.raw.body`), and `c.req.json()` reads through it. So here the limit is
 * checked on `content-length` when the request declares one (hono's streaming check still covers
 * chunked bodies), and a JSON body arriving through the Node adapter (`c.env.incoming`, documented
 * by @hono/node-server) is read from the Node stream into hono's body cache (`c.req.bodyCache`),
 * where `c.req.json()` and the validators find it. Elsewhere (Lambda) nothing changes.
 */
import type { IncomingMessage } from "node:http";
import type { MiddlewareHandler } from "hono";
import { bodyLimit as honoBodyLimit } from "hono/body-limit";
import { PayloadTooLargeError } from "../errors.ts";

export function bodyLimit(maxBytes: number): MiddlewareHandler {
  const tooLarge = () =>
    new PayloadTooLargeError(`request body is larger than ${maxBytes} bytes`, { field: "body" });
  const streaming = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw tooLarge();
    },
  });
  return async (c, next) => {
    const length = c.req.header("content-length");
    if (length === undefined || c.req.header("transfer-encoding") !== undefined) return streaming(c, next);
    if (Number(length) > maxBytes) throw tooLarge();
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    if (incoming && /^application\/json\b/i.test(c.req.header("content-type") ?? "")) {
      const text = readText(incoming, maxBytes, tooLarge);
      text.catch(() => {}); // a route that never reads the body must not leave a rejection unhandled
      // What hono itself keeps there: the promise of the body's text (its `Body`-typed field says string).
      (c.req.bodyCache as { text?: Promise<string> }).text = text;
    }
    return next();
  };
}

/** The whole stream as UTF-8 text, refused past `maxBytes` whatever content-length said. */
function readText(incoming: IncomingMessage, maxBytes: number, tooLarge: () => Error): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    incoming.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        incoming.destroy();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    incoming.on("end", () => resolve(Buffer.concat(chunks, size).toString("utf8")));
    incoming.on("error", reject);
  });
}
