/**
 * The customer's EventBridge bus: the publisher through the real AWS SDK against a local
 * EventBridge stand-in (PutEvents over HTTP, as the service speaks it), the notifier's use of it,
 * and the bus, its grants and the functions' variable in the synthesized template.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { buildApp } from "../infra/app.ts";
import type { HeadstartStack } from "../infra/stack.ts";
import { EVENT_SOURCE, EventBridgePublisher } from "../shared/aws/eventbridge-publisher.ts";
import { Notifier } from "../shared/events/notifier.ts";
import { makeEvent } from "../shared/events/types.ts";
import { FsStore } from "../shared/store/fs.ts";
import { buildLambdaBundles } from "./helpers/bundles.ts";
import { tempDir } from "./helpers/platform.ts";

/** Answers PutEvents like EventBridge: every entry accepted, or each refused while `refuse` is set. */
class EventBridgeStandIn {
  readonly calls: Array<{ headers: IncomingHttpHeaders; body: { Entries: Array<Record<string, string>> } }> =
    [];
  refuse = false;
  private server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      const parsed = JSON.parse(body);
      this.calls.push({ headers: req.headers, body: parsed });
      const entries = parsed.Entries.map((_: unknown, i: number) =>
        this.refuse ? { ErrorCode: "InternalFailure", ErrorMessage: "try later" } : { EventId: `e-${i}` },
      );
      res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      res.end(JSON.stringify({ FailedEntryCount: this.refuse ? entries.length : 0, Entries: entries }));
    });
  });
  url = "";

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  stop(): Promise<unknown> {
    return new Promise((r) => this.server.close(r));
  }
}

const event = makeEvent("head.promoted", ["h", "live", "v1", "2026-12-07T02:00:00.000Z"], {
  head: "h",
  alias: "live",
  version: "v1",
  previous: null,
  by: "promote",
  at: "2026-12-07T02:00:00.000Z",
});

describe("the EventBridge publisher", () => {
  let standIn: EventBridgeStandIn;
  let publisher: EventBridgePublisher;
  before(async () => {
    standIn = await new EventBridgeStandIn().start();
    const client = new EventBridgeClient({
      region: "eu-west-1",
      endpoint: standIn.url,
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
      maxAttempts: 1,
    });
    publisher = new EventBridgePublisher("headstart-acme", { client });
  });
  after(() => standIn.stop());

  test("puts one entry: source headstart, detail-type the event's type, detail the webhook payload", async () => {
    standIn.calls.length = 0;
    await publisher.publish(event);
    assert.equal(standIn.calls.length, 1);
    assert.equal(standIn.calls[0].headers["x-amz-target"], "AWSEvents.PutEvents");
    const [entry] = standIn.calls[0].body.Entries;
    assert.equal(entry.EventBusName, "headstart-acme");
    assert.equal(entry.Source, EVENT_SOURCE);
    assert.equal(entry.DetailType, "head.promoted");
    assert.deepEqual(JSON.parse(entry.Detail), event);
  });

  test("a refused entry is an error for the publisher, and only a log line for the notifier", async () => {
    standIn.refuse = true;
    try {
      await assert.rejects(
        publisher.publish(event),
        /not put on bus headstart-acme: InternalFailure try later/,
      );
      const warnings: string[] = [];
      const log = { warn: (msg: string) => warnings.push(msg), info: () => {} };
      const store = new FsStore(`${await tempDir()}/store`);
      const notifier = new Notifier(store, { publisher, log: log as never });
      await notifier.emit(event); // no webhooks registered: the bus is the only channel
      assert.deepEqual(warnings, ["event not published"]);
    } finally {
      standIn.refuse = false;
    }
    standIn.calls.length = 0;
    await new Notifier(new FsStore(`${await tempDir()}/store`), { publisher }).emit(event);
    assert.equal(standIn.calls.length, 1);
  });
});

describe("the bus in the template", async () => {
  await buildLambdaBundles();
  const app = buildApp(new App({ context: { "aws:cdk:disable-asset-staging": true } }), { nag: false });
  const stack = app.node.findChild("headstart-acme") as HeadstartStack;
  const template = Template.fromStack(stack);
  type Statement = { Action: string | string[]; Resource: unknown };
  const resources = template.toJSON().Resources as Record<
    string,
    {
      Type: string;
      Properties: {
        Environment: { Variables: Record<string, string> };
        PolicyDocument: { Statement: Statement[] };
      };
    }
  >;
  const busId = stack.resolve(
    (stack.eventBus.bus.node.defaultChild as unknown as { logicalId: string }).logicalId,
  );

  test("one bus per customer, named headstart-<customer>, in the outputs", () => {
    template.resourceCountIs("AWS::Events::EventBus", 1);
    template.hasResourceProperties("AWS::Events::EventBus", { Name: "headstart-acme" });
    template.hasOutput("EventBusName", { Value: { Ref: busId } });
  });

  test("the functions that cause events name the bus and may put events on it, on it only", () => {
    const { ingest, jobComplete, train, api, driftCheck, authorizer } = stack.functions;
    const functionId = (f: typeof ingest) =>
      stack.resolve((f.fn.node.defaultChild as unknown as { logicalId: string }).logicalId) as string;
    for (const f of [ingest, jobComplete, train, api, driftCheck]) {
      const vars = resources[functionId(f)].Properties.Environment.Variables;
      assert.equal(vars.HEADSTART_EVENT_BUS_NAME, "headstart-acme", functionId(f));
    }
    assert.ok(authorizer, "acme uses API keys");
    assert.equal(
      resources[functionId(authorizer)].Properties.Environment.Variables.HEADSTART_EVENT_BUS_NAME,
      undefined,
    );
    const puts = Object.values(resources)
      .filter((r) => r.Type === "AWS::IAM::Policy")
      .flatMap((r) => r.Properties.PolicyDocument.Statement)
      .filter((s) => [s.Action].flat().includes("events:PutEvents"));
    assert.equal(puts.length, 5);
    for (const s of puts) assert.deepEqual(s.Resource, { "Fn::GetAtt": [busId, "Arn"] });
  });
});
