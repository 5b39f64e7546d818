import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { App, type Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { buildApp } from "../infra/app.ts";
import { CustomerConfigError, loadCustomers, parseCustomers } from "../infra/customers.ts";
import { embedJobId } from "../shared/embed/plan.ts";
import { buildLambdaBundles } from "./helpers/bundles.ts";
import { covers, reachViolations, resourceArns, statements } from "./helpers/iam-reach.ts";

const sample = JSON.parse(readFileSync("infra/customers.json", "utf8")) as {
  customers: Record<string, unknown>[];
};
/** The sample file with `path` (dotted) of entry `i` set to `value` (undefined deletes it). */
function withEntry(i: number, path: string, value: unknown) {
  const copy = structuredClone(sample);
  const keys = path.split(".");
  let obj = copy.customers[i];
  for (const k of keys.slice(0, -1)) obj = obj[k] as Record<string, unknown>;
  if (value === undefined) delete obj[keys.at(-1)!];
  else obj[keys.at(-1)!] = value;
  return copy;
}

describe("customers file", () => {
  test("the sample file is valid, with defaults filled in", () => {
    const [acme, globex] = loadCustomers("infra/customers.json");
    assert.equal(acme.id, "acme");
    assert.equal(acme.account, undefined);
    assert.equal(acme.embed.volumeSizeGb, 30);
    assert.equal(acme.api.rateLimit, 50);
    assert.equal(acme.settings.retainData, true);
    assert.equal(globex.embed.instanceCount, 4);
    assert.equal(globex.api.auth, "iam");
  });

  test("a bad field is reported with its entry (index and id) and its path", () => {
    const bad = withEntry(1, "embed.instanceCount", 0);
    assert.throws(
      () => parseCustomers(bad, "customers.json"),
      (err: Error) =>
        err instanceof CustomerConfigError &&
        /^customers\.json: customers\[1\] \("globex"\): embed\.instanceCount: /.test(err.message),
    );
    const cases: [string, unknown, RegExp][] = [
      ["id", "Bad_Id", /customers\[0\] \("Bad_Id"\): id: use lower-case letters and digits/],
      // `--` or an end hyphen would let one customer's job-name prefix cover another's jobs.
      [
        "id",
        "acme--eu",
        /\("acme--eu"\): id: use lower-case letters and digits in words joined by single hyphens/,
      ],
      ["id", "acme-", /\("acme-"\): id: /],
      [
        "settings.uploadBackbones",
        "glove-100d,glove-100d",
        /settings\.uploadBackbones: 1\.\.4 distinct backbone ids/,
      ],
      ["id", "-acme", /\("-acme"\): id: /],
      ["region", undefined, /customers\[0\] \("acme"\): region: /],
      ["account", "12345", /account: a 12-digit AWS account id/],
      ["api", { auth: "none" }, /api\.auth: /],
      ["embed.instanceType", "g5.xlarge", /embed\.instanceType: a SageMaker instance type/],
      ["embed.maxRuntimeSeconds", 10, /embed\.maxRuntimeSeconds: /],
      ["settings", { logRetentionDays: 42 }, /settings\.logRetentionDays: one of 1, 3, 5/],
      ["gpu", "yes", /customers\[0\] \("acme"\): \(entry\): Unrecognized key: "gpu"/],
    ];
    for (const [path, value, message] of cases) {
      assert.throws(() => parseCustomers(withEntry(0, path, value), "f.json"), message);
    }
  });

  test("duplicate ids, an empty list and a non-object entry are refused", () => {
    const dup = structuredClone(sample);
    dup.customers.push(structuredClone(dup.customers[0]));
    assert.throws(
      () => parseCustomers(dup, "f.json"),
      /customers\[2\] \("acme"\): id: duplicates customers\[0\]/,
    );
    assert.throws(() => parseCustomers({ customers: [] }, "f.json"), /f\.json: customers: /);
    assert.throws(
      () => parseCustomers({ customers: [42] }, "f.json"),
      /f\.json: customers\[0\]: \(entry\): /,
    );
    assert.throws(() => parseCustomers([], "f.json"), /expected \{"customers": \[ … \]\}/);
  });

  test("synthesis fails with that message when the file named by -c customers= is bad", () => {
    const dir = mkdtempSync(join(tmpdir(), "headstart-customers-"));
    const file = join(dir, "customers.json");
    writeFileSync(file, JSON.stringify(withEntry(0, "api.rateLimit", -1)));
    assert.throws(
      () => buildApp(new App({ context: { customers: file } }), { nag: false }),
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: customers\\[0\\] \\("acme"\\): api\\.rateLimit: `,
      ),
    );
    writeFileSync(file, "{ not json");
    assert.throws(() => buildApp(new App({ context: { customers: file } })), /customers\.json: not JSON/);
    assert.throws(
      () => buildApp(new App({ context: { customers: join(dir, "missing.json") } })),
      /cannot read/,
    );
  });
});

describe("customers whose ids share a prefix (acme, acme-eu)", () => {
  const templates = new Map<string, Template>();
  before(async () => {
    await buildLambdaBundles(); // the stacks deploy the bundles
    const dir = mkdtempSync(join(tmpdir(), "headstart-prefix-"));
    const file = join(dir, "customers.json");
    const acme = sample.customers[0];
    writeFileSync(file, JSON.stringify({ customers: [acme, { ...acme, id: "acme-eu" }] }));
    const app = buildApp(new App({ context: { customers: file, "aws:cdk:disable-asset-staging": true } }), {
      nag: false,
    });
    for (const id of ["acme", "acme-eu"]) {
      templates.set(id, Template.fromStack(app.node.findChild(`headstart-${id}`) as Stack));
    }
  });
  const region = String(sample.customers[0].region);
  const spec = {
    id: "glove-100d",
    sha256: "0".repeat(64),
    preprocessing: { type: "text-vocab" },
    assetSha256: {},
  } as unknown as Parameters<typeof embedJobId>[2];
  const jobOf = (customer: string) => embedJobId(`s3://${customer}`, "reviews", spec, "v1", customer);
  const pairs = [
    ["acme", "acme-eu"],
    ["acme-eu", "acme"],
  ] as const;

  test("no SageMaker grant, log-stream grant or job-event rule of one matches the other's jobs", () => {
    for (const [self, other] of pairs) {
      const json = JSON.stringify(templates.get(self)!.toJSON());
      // Every job-name pattern the stack grants or routes by: `…processing-job/<glob>`,
      // `…:log-stream:<glob>` and EventBridge `prefix` filters on ProcessingJobName.
      const globs = [
        ...[...json.matchAll(/processing-job\/([a-z0-9*-]+)/g)].map((m) => m[1]!),
        ...[...json.matchAll(/log-stream:([a-z0-9*-]+)/g)].map((m) => m[1]!),
        ...[...json.matchAll(/"prefix":"(embed-[a-z0-9-]+)"/g)].map((m) => `${m[1]}*`),
      ];
      assert.ok(globs.length >= 3, `${self}: ${globs.join(", ")}`);
      for (const glob of globs) {
        assert.ok(covers(glob, jobOf(self)), `${self}'s ${glob} covers its own job ${jobOf(self)}`);
        assert.ok(!covers(glob, jobOf(other)), `${self}'s ${glob} must not cover ${jobOf(other)}`);
      }
    }
  });

  test("no statement of one stack reaches the other's bucket, key, jobs, functions, queues or log groups", () => {
    for (const [self, other] of pairs) {
      const own = statements(templates.get(self)!.toJSON() as never, `headstart-${self}`, region);
      const theirs = resourceArns(templates.get(other)!.toJSON() as never, `headstart-${other}`, region, [
        jobOf(other),
      ]);
      assert.ok(own.length >= 20 && theirs.length >= 20, `${own.length} statements, ${theirs.length} ARNs`);
      assert.deepEqual(reachViolations(own, theirs), [], `${self} → ${other}`);
      // The check sees real grants: the stack's own job and log stream are covered by its own statements.
      const mine = resourceArns({ Resources: {} }, `headstart-${self}`, region, [jobOf(self)]);
      assert.ok(reachViolations(own, mine).length >= 2, `${self}'s grants cover its own jobs`);
    }
  });

  test("the reach check catches a grant by customer-id prefix", () => {
    const leaky = {
      Resources: {
        Role: {
          Type: "AWS::IAM::Policy",
          Properties: {
            PolicyDocument: {
              Statement: [
                {
                  Effect: "Allow",
                  Action: "sagemaker:StopProcessingJob",
                  Resource: {
                    "Fn::Join": [
                      "",
                      [
                        "arn:aws:sagemaker:",
                        region,
                        ":",
                        { Ref: "AWS::AccountId" },
                        ":processing-job/embed-acme*",
                      ],
                    ],
                  },
                },
              ],
            },
          },
        },
      },
    };
    const theirs = resourceArns({ Resources: {} }, "headstart-acme-eu", region, [jobOf("acme-eu")]);
    assert.equal(reachViolations(statements(leaky, "headstart-acme", region), theirs).length, 1);
  });

  test("tag conditions pin the customer exactly, and no stack imports another's values", () => {
    for (const [self] of pairs) {
      const own = statements(templates.get(self)!.toJSON() as never, `headstart-${self}`, region);
      const tagged = own.flatMap((s) => s.conditions).filter((c) => c.key.endsWith("headstart:customer"));
      assert.ok(tagged.length >= 1, `${self} scopes job creation by tag`);
      for (const c of tagged) {
        assert.equal(c.operator, "StringEquals", `${self}: ${c.key} must not be a pattern`);
        assert.deepEqual(c.values, [self]);
      }
      assert.ok(!JSON.stringify(templates.get(self)!.toJSON()).includes("Fn::ImportValue"));
    }
  });
});
