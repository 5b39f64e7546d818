/**
 * `npm run bench:serve -- --ceiling` starts this beside `headstart serve`: the predict path on a
 * bare `node:http` server, without hono, the local guard or API keys, but with the work no real
 * server can drop: the body read and parsed, validated by the same zod schema (`PredictBody`), the
 * request ids in `AsyncLocalStorage`, the request's log line, and `Platform.predict` itself. What it
 * reaches is the ceiling a predict path beside the framework could reach on the same machine; it
 * is a measuring device, not a server to run (errors are answered plainly, nothing is checked).
 *
 *   node --import tsx scripts/serve-ceiling.ts --store <dir> --port <n>
 */
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { PredictBody } from "../shared/api/schemas.ts";
import { loadConfig } from "../shared/config.ts";
import { makeLogger, withRequestIds } from "../shared/log.ts";
import { Platform } from "../shared/platform.ts";
import { FsStore } from "../shared/store/fs.ts";

const { values: args } = parseArgs({
  options: { store: { type: "string" }, port: { type: "string", default: "0" } },
});
const config = loadConfig(process.env, { store: args.store, logLevel: "warn" });
const platform = new Platform(new FsStore(config.store), config);
const log = makeLogger("api", config.logLevel);
const PREDICT = /^\/v1\/heads\/([A-Za-z0-9._-]+)\/predict$/;

const server = createServer((req, res) => {
  const head = req.method === "POST" ? PREDICT.exec(req.url ?? "")?.[1] : undefined;
  if (!head) {
    res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "application/json" });
    res.end(req.url === "/health" ? '{"status":"ok"}' : "{}");
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", async () => {
    const started = performance.now();
    const correlationId = randomUUID();
    let status = 200;
    let body: string;
    try {
      const parsed = PredictBody.safeParse(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      if (!parsed.success) throw new Error(parsed.error.message);
      const answer = await withRequestIds({ correlationId }, () => platform.predict(head, parsed.data));
      body = JSON.stringify(answer);
    } catch (err) {
      status = 400;
      body = JSON.stringify({ error: { message: (err as Error).message } });
    }
    res.writeHead(status, { "content-type": "application/json", "x-correlation-id": correlationId });
    res.end(body);
    log.info("request", {
      correlation_id: correlationId,
      method: req.method,
      path: req.url,
      status,
      duration_ms: Math.round(performance.now() - started),
    });
  });
});
server.listen(Number(args.port), "127.0.0.1");
