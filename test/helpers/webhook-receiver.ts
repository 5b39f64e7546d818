/**
 * A webhook receiver as a customer would write one, on 127.0.0.1: verifies each request with the
 * Standard Webhooks library (401 on a bad signature), answers `failFirst` requests with 500, and
 * keeps each `webhook-id` once (a repeat is acknowledged, not processed again).
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import type { WebhookEvent } from "../../shared/events/types.ts";

export interface Received {
  id: string;
  event: WebhookEvent;
  at: number;
}

export class Receiver {
  readonly requests: Array<{ id: string; status: number; at: number }> = [];
  readonly events = new Map<string, Received>();
  failFirst = 0;
  hang = false;
  private server?: Server;
  url = "";

  /** `secret`: the one the endpoint was registered with (set after `add` answers it). */
  constructor(public secret = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => this.handle(Buffer.concat(chunks).toString("utf8"), req.headers, res));
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.server.unref(); // a test that fails before stop() must not keep the process alive
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  private handle(body: string, headers: Record<string, unknown>, res: ServerResponse) {
    const id = String(headers["webhook-id"]);
    const answer = (status: number) => {
      this.requests.push({ id, status, at: performance.now() });
      res.writeHead(status).end();
    };
    if (this.hang) return; // never answers: the sender's timeout must end the attempt
    if (this.requests.length < this.failFirst) return answer(500);
    let event: WebhookEvent;
    try {
      event = new Webhook(this.secret).verify(body, headers as Record<string, string>) as WebhookEvent;
    } catch {
      return answer(401);
    }
    if (!this.events.has(id)) this.events.set(id, { id, event, at: performance.now() });
    answer(204);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}
