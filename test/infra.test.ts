/**
 * The per-customer stacks, asserted on intent. The sample customers file (infra/customers.json)
 * is synthesized once for the whole file: acme uses API keys, globex IAM auth and 4 instances.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { App, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as s3 from "aws-cdk-lib/aws-s3";
import type * as s3assets from "aws-cdk-lib/aws-s3-assets";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { API_KEY_IDENTITY_SOURCE } from "../infra/api.ts";
import { buildApp } from "../infra/app.ts";
import { bundleDir, FUNCTION_BUNDLES, LAMBDA_NAMES } from "../infra/bundles.ts";
import { loadCustomers } from "../infra/customers.ts";
import { DRIFT_CHECK_ACCESS } from "../infra/drift-check.ts";
import { HeadstartStack } from "../infra/stack.ts";
import { EMBED_CONTAINER_ENTRYPOINT } from "../shared/aws/sagemaker-runner.ts";
import { buildLambdaBundles } from "./helpers/bundles.ts";

const bundles = await buildLambdaBundles();

// Asset staging copies the Docker build context; assertions need only the template. cdk-nag
// runs in its own test below rather than failing every template read.
const app = buildApp(new App({ context: { "aws:cdk:disable-asset-staging": true } }), { nag: false });
const stacks = {
  acme: app.node.findChild("headstart-acme") as HeadstartStack,
  globex: app.node.findChild("headstart-globex") as HeadstartStack,
};
const t = { acme: Template.fromStack(stacks.acme), globex: Template.fromStack(stacks.globex) };
const json = { acme: t.acme.toJSON(), globex: t.globex.toJSON() };
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = (name: keyof typeof json): [string, Resource][] =>
  Object.entries(json[name].Resources as Record<string, Resource>);
const logicalId = (stack: HeadstartStack, c: IConstruct) =>
  stack.resolve((c.node.defaultChild as unknown as { logicalId: string }).logicalId) as string;

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: Record<string, unknown>;
}
/** Statements of every identity policy (inline policies and roles' policies) in a template. */
function identityStatements(name: keyof typeof json): { policy: string; statement: Statement }[] {
  const out: { policy: string; statement: Statement }[] = [];
  for (const [id, r] of resources(name)) {
    const docs: unknown[] = [];
    if (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy")
      docs.push(r.Properties.PolicyDocument);
    if (r.Type === "AWS::IAM::Role")
      for (const p of (r.Properties.Policies as { PolicyDocument: unknown }[] | undefined) ?? [])
        docs.push(p.PolicyDocument);
    for (const doc of docs)
      for (const statement of (doc as { Statement: Statement[] }).Statement)
        out.push({ policy: id, statement });
  }
  return out;
}
/** The identity statements attached to one of acme's roles. */
function byRole(fnRole: IConstruct): Statement[] {
  const role = JSON.stringify({ Ref: logicalId(stacks.acme, fnRole) });
  return identityStatements("acme")
    .filter(({ policy }) => JSON.stringify(json.acme.Resources[policy].Properties.Roles ?? []).includes(role))
    .map(({ statement }) => statement);
}
const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const resourcesOf = (s: Statement) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]);

describe("customers file → stacks", () => {
  test("one stack per sample customer, named per customer, in the customer's account and region", () => {
    const customers = loadCustomers("infra/customers.json");
    assert.ok(customers.length >= 2);
    assert.deepEqual(
      app.node.children
        .filter((c) => c instanceof HeadstartStack)
        .map((s) => (s as HeadstartStack).stackName),
      customers.map((c) => `headstart-${c.id}`),
    );
    assert.equal(stacks.globex.account, "123456789012");
    assert.equal(stacks.globex.region, "us-east-1");
    assert.equal(stacks.acme.region, "eu-west-1");
    t.acme.hasResourceProperties("AWS::S3::Bucket", {
      Tags: Match.arrayWith([{ Key: "headstart:customer", Value: "acme" }]),
    });
  });

  test("-c customer=<id> synthesizes that customer only", () => {
    const one = buildApp(
      new App({ context: { customer: "globex", "aws:cdk:disable-asset-staging": true } }),
      {
        nag: false,
      },
    );
    assert.deepEqual(
      one.node.children.filter((c) => c instanceof HeadstartStack).map((c) => c.node.id),
      ["headstart-globex"],
    );
    assert.throws(
      () => buildApp(new App({ context: { customer: "nobody" } })),
      /no customer "nobody" in .*customers\.json \(known: acme, globex\)/,
    );
  });
});

describe("data plane", () => {
  test("the bucket is KMS-encrypted with the customer's rotating key, private, versioned, logged, retained", () => {
    const { acme } = t;
    acme.resourceCountIs("AWS::KMS::Key", 1);
    acme.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    acme.hasResource("AWS::S3::Bucket", {
      DeletionPolicy: "Retain",
      Properties: Match.objectLike({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            {
              BucketKeyEnabled: true,
              ServerSideEncryptionByDefault: {
                SSEAlgorithm: "aws:kms",
                KMSMasterKeyID: { "Fn::GetAtt": [logicalId(stacks.acme, stacks.acme.data.key), "Arn"] },
              },
            },
          ],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        VersioningConfiguration: { Status: "Enabled" },
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: "data/" }),
        LifecycleConfiguration: {
          Rules: [
            Match.objectLike({
              Status: "Enabled",
              NoncurrentVersionExpiration: { NoncurrentDays: 30 },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 7 },
            }),
          ],
        },
      }),
    });
  });

  test("every bucket, queue and topic refuses plain HTTP", () => {
    for (const name of ["acme", "globex"] as const) {
      const policies = resources(name).filter(([, r]) =>
        ["AWS::S3::BucketPolicy", "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"].includes(r.Type),
      );
      const count = (type: string) => resources(name).filter(([, r]) => r.Type === type).length;
      assert.equal(
        policies.length,
        count("AWS::S3::Bucket") + count("AWS::SQS::Queue") + count("AWS::SNS::Topic"),
      );
      for (const [id, p] of policies) {
        const denies = (p.Properties.PolicyDocument as { Statement: Statement[] }).Statement.filter(
          (s) =>
            s.Effect === "Deny" && JSON.stringify(s.Condition) === '{"Bool":{"aws:SecureTransport":"false"}}',
        );
        assert.equal(denies.length, 1, `${name}/${id} denies requests without TLS`);
      }
    }
  });

  test("queues, topic and log groups use the customer's key; environments hold no secrets", () => {
    const key = { "Fn::GetAtt": [logicalId(stacks.acme, stacks.acme.data.key), "Arn"] };
    const { acme } = t;
    acme.allResourcesProperties("AWS::SQS::Queue", { KmsMasterKeyId: key });
    acme.allResourcesProperties("AWS::SNS::Topic", { KmsMasterKeyId: key });
    // API keys are hashes in the customer's bucket (_system/api-keys.json), not a secret.
    acme.resourceCountIs("AWS::SecretsManager::Secret", 0);
    acme.allResourcesProperties("AWS::Logs::LogGroup", { KmsKeyId: key });
    // Lambda decrypts a customer-key environment as the execution role, which would need an
    // unscoped kms:Decrypt: the environments are left to Lambda's own key and hold no secrets.
    for (const [id, r] of resources("acme").filter(([, r]) => r.Type === "AWS::Lambda::Function")) {
      assert.equal(r.Properties.KmsKeyArn, undefined, id);
      const env = JSON.stringify(r.Properties.Environment ?? {});
      assert.ok(!/SECRET_KEY|PASSWORD|"hs_/.test(env), `${id} environment holds no secret`);
    }
  });
});

describe("upload door", () => {
  test("manifest uploads under datasets/ and batch inputs under batch/ (jsonl and csv) notify the ingest Lambda, nothing else does", () => {
    const ingest = { "Fn::GetAtt": [logicalId(stacks.acme, stacks.acme.functions.ingest.fn), "Arn"] };
    const notif = resources("acme").filter(([, r]) => r.Type === "Custom::S3BucketNotifications");
    assert.equal(notif.length, 1);
    const config = notif[0][1].Properties.NotificationConfiguration as Record<string, unknown>;
    assert.deepEqual(Object.keys(config), ["LambdaFunctionConfigurations"]);
    const rules = (config.LambdaFunctionConfigurations as Record<string, unknown>[]).map((c) => {
      assert.deepEqual(c.Events, ["s3:ObjectCreated:*"]);
      assert.deepEqual(c.LambdaFunctionArn, ingest);
      const f = (c.Filter as { Key: { FilterRules: { Name: string; Value: string }[] } }).Key.FilterRules;
      return Object.fromEntries(f.map((r) => [r.Name, r.Value]));
    });
    assert.deepEqual(
      rules.sort((a, b) => `${a.prefix}${a.suffix}`.localeCompare(`${b.prefix}${b.suffix}`)),
      [
        { prefix: "batch/", suffix: ".csv" },
        { prefix: "batch/", suffix: ".jsonl" },
        { prefix: "datasets/", suffix: "manifest.csv" },
        { prefix: "datasets/", suffix: "manifest.jsonl" },
      ],
    );
    assert.deepEqual(notif[0][1].Properties.BucketName, {
      Ref: logicalId(stacks.acme, stacks.acme.data.bucket),
    });
  });
});

describe("HTTP API", () => {
  const routes = (name: keyof typeof json) =>
    resources(name)
      .filter(([, r]) => r.Type === "AWS::ApiGatewayV2::Route")
      .map(
        ([, r]) => r.Properties as { RouteKey: string; AuthorizationType: string; AuthorizerId?: unknown },
      );

  const PUBLIC = [
    "GET /health",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/{proxy+}",
    "GET /",
    "GET /console/assets/{proxy+}",
  ];

  test("api-key customers: every route but the health check, the API docs and the console's files goes through the authorizer", () => {
    const all = routes("acme");
    assert.deepEqual(
      all
        .filter((r) => r.AuthorizationType === "NONE")
        .map((r) => r.RouteKey)
        .sort(),
      [...PUBLIC].sort(),
    );
    for (const r of all) {
      if (PUBLIC.includes(r.RouteKey)) assert.equal(r.AuthorizationType, "NONE");
      else {
        assert.equal(r.AuthorizationType, "CUSTOM", r.RouteKey);
        assert.ok(r.AuthorizerId, r.RouteKey);
      }
    }
    assert.ok(all.some((r) => r.RouteKey === "ANY /{proxy+}"));
    assert.ok(!all.some((r) => r.RouteKey === "$default"), "no catch-all route without auth");
    t.acme.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerType: "REQUEST",
      EnableSimpleResponses: true,
      AuthorizerPayloadFormatVersion: "2.0",
      // Cached per key for the default 300 s, so a warm client costs no authorizer call.
      AuthorizerResultTtlInSeconds: 300,
      IdentitySource: [API_KEY_IDENTITY_SOURCE],
      AuthorizerUri: Match.objectLike({
        "Fn::Join": Match.arrayWith([
          Match.arrayWith([
            { "Fn::GetAtt": [logicalId(stacks.acme, stacks.acme.functions.authorizer!.fn), "Arn"] },
          ]),
        ]),
      }),
    });
    // The authorizer reads this customer's key file in its bucket, and nothing else of it.
    const bucket = logicalId(stacks.acme, stacks.acme.data.bucket);
    t.acme.hasResourceProperties("AWS::Lambda::Function", {
      FunctionName: "headstart-acme-authorizer",
      Environment: {
        Variables: Match.objectLike({
          HEADSTART_STORE: { "Fn::Join": ["", ["s3://", { Ref: bucket }]] },
          HEADSTART_CUSTOMER: "acme",
        }),
      },
    });
    const role = JSON.stringify({ Ref: logicalId(stacks.acme, stacks.acme.functions.authorizer!.role) });
    const granted = identityStatements("acme")
      .filter(({ policy }) =>
        JSON.stringify(json.acme.Resources[policy].Properties.Roles ?? []).includes(role),
      )
      .map(({ statement }) => statement)
      .filter((st) => actionsOf(st).some((a) => a.startsWith("s3:") || a.startsWith("kms:")));
    assert.deepEqual(
      granted.map((st) => [actionsOf(st), resourcesOf(st)]),
      [
        [
          ["s3:GetObject"],
          [{ "Fn::Join": ["", [{ "Fn::GetAtt": [bucket, "Arn"] }, "/_system/api-keys.json"]] }],
        ],
        [["kms:Decrypt"], [{ "Fn::GetAtt": [logicalId(stacks.acme, stacks.acme.data.key), "Arn"] }]],
      ],
    );
  });

  test("the sample API events in events/ carry route keys the stack deploys", () => {
    const deployed = new Set(routes("acme").map((r) => r.RouteKey));
    const samples = readdirSync("events").filter((f) => f.startsWith("api-"));
    assert.ok(samples.length >= 3, samples.join(", "));
    for (const file of samples) {
      const e = JSON.parse(readFileSync(join("events", file), "utf8"));
      assert.ok(deployed.has(e.routeKey), `${file}: ${e.routeKey} is not one of ${[...deployed].join(", ")}`);
      assert.equal(e.requestContext.routeKey, e.routeKey, file);
      if (e.routeKey === "ANY /{proxy+}") assert.equal(e.pathParameters?.proxy, e.rawPath.slice(1), file);
      // The authorizer's cached identity is the x-api-key header.
      if (e.type === "REQUEST") assert.deepEqual(e.identitySource, [e.headers["x-api-key"]], file);
    }
  });

  test("authorizerCacheTtlSeconds: 0 turns the cache off and asks the authorizer for every request", () => {
    const dir = mkdtempSync(join(tmpdir(), "headstart-ttl-"));
    const file = join(dir, "customers.json");
    const acme = JSON.parse(readFileSync("infra/customers.json", "utf8")).customers[0];
    acme.api.authorizerCacheTtlSeconds = 0;
    writeFileSync(file, JSON.stringify({ customers: [acme] }));
    const other = buildApp(new App({ context: { customers: file, "aws:cdk:disable-asset-staging": true } }), {
      nag: false,
    });
    const tmpl = Template.fromStack(other.node.findChild("headstart-acme") as HeadstartStack);
    tmpl.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      AuthorizerResultTtlInSeconds: 0,
      IdentitySource: [],
    });
    tmpl.hasResourceProperties("AWS::ApiGatewayV2::Authorizer", {
      Name: "headstart-acme-api-keys",
    });
  });

  test("IAM customers: every route but GET /health requires SigV4, and no key secret exists", () => {
    const all = routes("globex");
    for (const r of all)
      assert.equal(r.AuthorizationType, PUBLIC.includes(r.RouteKey) ? "NONE" : "AWS_IAM", r.RouteKey);
    t.globex.resourceCountIs("AWS::SecretsManager::Secret", 0);
    t.globex.resourceCountIs("AWS::ApiGatewayV2::Authorizer", 0);
  });

  test("the stage is throttled and writes access logs", () => {
    t.globex.hasResourceProperties("AWS::ApiGatewayV2::Stage", {
      StageName: "$default",
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp("requestId") },
    });
  });
});

describe("isolation: each customer's grants reach only its own resources", () => {
  for (const [name, other] of [
    ["acme", "globex"],
    ["globex", "acme"],
  ] as const) {
    test(`${name}: S3 and KMS actions name ${name}'s bucket and key only; nothing mentions ${other}`, () => {
      const stack = stacks[name];
      const bucket = logicalId(stack, stack.data.bucket);
      const key = logicalId(stack, stack.data.key);
      const allowedS3 = [
        JSON.stringify({ "Fn::GetAtt": [bucket, "Arn"] }),
        JSON.stringify({ "Fn::Join": ["", [{ "Fn::GetAtt": [bucket, "Arn"] }, "/*"]] }),
        // The authorizer's one object: the key file.
        JSON.stringify({ "Fn::Join": ["", [{ "Fn::GetAtt": [bucket, "Arn"] }, "/_system/api-keys.json"]] }),
        // The drift check's key patterns (infra/drift-check.ts).
        ...Object.values(DRIFT_CHECK_ACCESS)
          .flat()
          .map((k) => JSON.stringify({ "Fn::Join": ["", [{ "Fn::GetAtt": [bucket, "Arn"] }, `/${k}`]] })),
      ];
      const allowedKms = [JSON.stringify({ "Fn::GetAtt": [key, "Arn"] })];
      let s3Statements = 0;
      for (const { policy, statement } of identityStatements(name)) {
        const actions = actionsOf(statement);
        assert.ok(!actions.some((a) => a === "*" || a.endsWith(":*")), `${policy}: no service-wide action`);
        for (const prefix of ["s3:", "kms:"]) {
          if (!actions.some((a) => a.startsWith(prefix))) continue;
          if (prefix === "s3:") s3Statements++;
          for (const r of resourcesOf(statement)) {
            assert.notEqual(r, "*", `${policy}: ${actions} on *`);
            assert.ok(
              (prefix === "s3:" ? allowedS3 : allowedKms).includes(JSON.stringify(r)),
              `${policy}: ${actions} on ${JSON.stringify(r)}`,
            );
          }
        }
        if (actions.includes("iam:PassRole")) {
          assert.deepEqual(statement.Resource, {
            "Fn::GetAtt": [logicalId(stack, stack.embedJob.role), "Arn"],
          });
          assert.deepEqual(statement.Condition, {
            StringEquals: { "iam:PassedToService": "sagemaker.amazonaws.com" },
          });
        }
      }
      assert.ok(s3Statements >= 5, "the four platform functions and the job role have bucket grants");
      const text = JSON.stringify(json[name]);
      assert.ok(!text.includes(other), `${name}'s template never mentions ${other}`);
      assert.ok(!text.includes("Fn::ImportValue"), "no cross-stack references");
    });
  }
});

describe("embedding jobs", () => {
  test("the job role: SageMaker only, this bucket's objects and key, the embed image, its logs", () => {
    const stack = stacks.acme;
    const role = logicalId(stack, stack.embedJob.role);
    t.acme.hasResourceProperties("AWS::IAM::Role", {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({ Principal: { Service: "sagemaker.amazonaws.com" }, Action: "sts:AssumeRole" }),
        ],
      },
    });
    const statements = identityStatements("acme")
      .filter(({ policy }) => {
        const roles = (json.acme.Resources[policy].Properties.Roles ?? []) as unknown[];
        return roles.some((r) => JSON.stringify(r) === JSON.stringify({ Ref: role }));
      })
      .map(({ statement }) => statement);
    const can = (action: string) => statements.filter((s) => actionsOf(s).includes(action));
    assert.ok(can("s3:GetObject").length && can("s3:PutObject").length && can("s3:ListBucket").length);
    assert.ok(can("ecr:BatchGetImage").length, "pulls the embed image");
    assert.match(JSON.stringify(can("ecr:BatchGetImage")[0].Resource), /container-assets/);
    assert.match(
      JSON.stringify(can("logs:PutLogEvents")[0].Resource),
      /ProcessingJobs:log-stream:embed-acme--\*/,
    );
    assert.ok(
      !can("sagemaker:CreateProcessingJob").length && !can("iam:PassRole").length,
      "cannot start jobs itself",
    );
  });

  test("ingest, the API and job-complete (batch jobs) start, watch and stop only this customer's jobs; train cannot touch jobs", () => {
    const jobs = /processing-job\/embed-acme--\*"/;
    const { ingest, api, jobComplete, train, webhookRetry } = stacks.acme.functions;
    for (const f of [ingest, api, jobComplete]) {
      const create = byRole(f.role).filter((s) => actionsOf(s).includes("sagemaker:CreateProcessingJob"));
      assert.equal(create.length, 1);
      assert.match(JSON.stringify(create[0].Resource), jobs);
      // Job names carry the customer; new jobs must carry its tag too.
      assert.deepEqual(create[0].Condition, {
        StringEquals: { "aws:RequestTag/headstart:customer": "acme" },
      });
      const watch = byRole(f.role).filter((s) => actionsOf(s).includes("sagemaker:StopProcessingJob"));
      assert.equal(watch.length, 1);
      assert.match(JSON.stringify(watch[0].Resource), jobs);
      assert.ok(!JSON.stringify(watch[0]).includes("globex"));
    }
    for (const f of [train, webhookRetry]) {
      const actions = byRole(f.role).flatMap(actionsOf);
      assert.ok(!actions.some((a) => a.startsWith("sagemaker:") || a === "iam:PassRole"), f.node.id);
    }
  });

  test("job state changes of this customer's jobs (its job role) reach job-complete; failures are alarmed", () => {
    const stack = stacks.acme;
    const target = { "Fn::GetAtt": [logicalId(stack, stack.functions.jobComplete.fn), "Arn"] };
    const pattern = (statuses: string[]) => ({
      source: ["aws.sagemaker"],
      "detail-type": ["SageMaker Processing Job State Change"],
      detail: {
        RoleArn: [{ "Fn::GetAtt": [logicalId(stack, stack.embedJob.role), "Arn"] }],
        ProcessingJobName: [{ prefix: "embed-acme--" }],
        ProcessingJobStatus: statuses,
      },
    });
    for (const statuses of [["Completed", "Stopped"], ["Failed"]]) {
      t.acme.hasResourceProperties("AWS::Events::Rule", {
        EventPattern: pattern(statuses),
        Targets: [Match.objectLike({ Arn: target, RetryPolicy: Match.anyValue() })],
      });
    }
    t.acme.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/Events",
      MetricName: "TriggeredRules",
      Threshold: 1,
      AlarmActions: [Match.anyValue()],
    });
  });

  test("the API hands batch jobs to job-complete (async invoke of that function and train only)", () => {
    const { api, jobComplete, train } = stacks.acme.functions;
    const invoke = byRole(api.role).filter((s) => actionsOf(s).includes("lambda:InvokeFunction"));
    assert.equal(invoke.length, 1);
    assert.deepEqual(
      resourcesOf(invoke[0])
        .map((r) => JSON.stringify(r))
        .sort(),
      [jobComplete.fn, train.fn]
        .map((f) => JSON.stringify({ "Fn::GetAtt": [logicalId(stacks.acme, f), "Arn"] }))
        .sort(),
    );
    const vars = json.acme.Resources[logicalId(stacks.acme, api.fn)].Properties.Environment.Variables;
    assert.equal(vars.HEADSTART_BATCH_FUNCTION_NAME, "headstart-acme-job-complete");
    const jc = json.acme.Resources[logicalId(stacks.acme, jobComplete.fn)].Properties;
    assert.equal(jc.FunctionName, "headstart-acme-job-complete");
    assert.equal(jc.Timeout, 900, "a continuation scores in it: Lambda's longest");
  });

  test("the bucket door hands its batch jobs to job-complete too (ingest may invoke that function only)", () => {
    const { ingest, jobComplete } = stacks.acme.functions;
    const invoke = byRole(ingest.role).filter((s) => actionsOf(s).includes("lambda:InvokeFunction"));
    assert.deepEqual(
      invoke.flatMap(resourcesOf).map((r) => JSON.stringify(r)),
      [JSON.stringify({ "Fn::GetAtt": [logicalId(stacks.acme, jobComplete.fn), "Arn"] })],
    );
    const vars = json.acme.Resources[logicalId(stacks.acme, ingest.fn)].Properties.Environment.Variables;
    assert.equal(vars.HEADSTART_BATCH_FUNCTION_NAME, "headstart-acme-job-complete");
  });

  test("pending webhook deliveries: a schedule every minute runs webhook-retry, which reaches this customer's bucket only", () => {
    const fn = stacks.acme.functions.webhookRetry;
    t.acme.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      State: "ENABLED",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [logicalId(stacks.acme, fn.fn), "Arn"] } })],
    });
    t.acme.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      FunctionName: { "Fn::GetAtt": [logicalId(stacks.acme, fn.fn), "Arn"] },
      Principal: "events.amazonaws.com",
    });
    const statements = byRole(fn.role);
    const actions = statements.flatMap(actionsOf);
    assert.ok(
      actions.includes("s3:GetObject") &&
        actions.includes("s3:PutObject") &&
        actions.includes("s3:DeleteObject"),
    );
    assert.ok(!actions.some((a) => /^(sagemaker|lambda|events|iam):/.test(a)), actions.join(", "));
    const bucket = logicalId(stacks.acme, stacks.acme.data.bucket);
    for (const st of statements.filter((x) => actionsOf(x).some((a) => a.startsWith("s3:")))) {
      for (const r of resourcesOf(st)) assert.ok(JSON.stringify(r).includes(bucket), JSON.stringify(r));
    }
    const vars = json.acme.Resources[logicalId(stacks.acme, fn.fn)].Properties.Environment.Variables;
    assert.equal(vars.HEADSTART_CUSTOMER, "acme");
    assert.equal(vars.HEADSTART_RUNNER, undefined, "no platform settings it does not use");
  });

  test("the drift check: a schedule every 6 hours runs drift-check, which reads this customer's data, writes its drift records and deliveries, and puts on its bus only", () => {
    const stack = stacks.acme;
    const fn = stack.functions.driftCheck;
    const arn = { "Fn::GetAtt": [logicalId(stack, fn.fn), "Arn"] };
    t.acme.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(6 hours)",
      State: "ENABLED",
      Targets: [Match.objectLike({ Arn: arn, RetryPolicy: { MaximumRetryAttempts: 0 } })],
    });
    t.acme.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      FunctionName: arn,
      Principal: "events.amazonaws.com",
    });
    const props = json.acme.Resources[logicalId(stack, fn.fn)].Properties;
    assert.equal(props.MemorySize, 2048);
    assert.equal(props.Timeout, 900);
    assert.equal(props.EphemeralStorage.Size, 2048);
    assert.equal(props.Environment.Variables.HEADSTART_DRIFT_WINDOW_DAYS, "7");
    assert.equal(props.Environment.Variables.HEADSTART_RUNNER, undefined, "it starts no job");
    const statements = byRole(fn.role);
    const bucket = logicalId(stack, stack.data.bucket);
    const on = (action: string) =>
      statements
        .filter((x) => actionsOf(x).includes(action))
        .flatMap((x) => resourcesOf(x).map((r) => JSON.stringify(r)));
    const keysOf = (action: string) => on(action).map((r) => /\/([^"]*)"\]\]\}$/.exec(r)?.[1] ?? r);
    for (const r of [
      ...on("s3:GetObject"),
      ...on("s3:PutObject"),
      ...on("s3:DeleteObject"),
      ...on("s3:ListBucket"),
    ])
      assert.ok(r.includes(bucket), r);
    assert.deepEqual(keysOf("s3:PutObject").sort(), [
      "_system/webhook-deliveries/*",
      "_system/webhook-pending/*",
      "heads/*/drift-state.json",
    ]);
    assert.deepEqual(keysOf("s3:DeleteObject"), ["_system/webhook-pending/*"]);
    assert.ok(
      !keysOf("s3:GetObject").includes("*") && !keysOf("s3:GetObject").includes("_system/api-keys.json"),
    );
    const list = statements.find((x) => actionsOf(x).includes("s3:ListBucket"))!;
    assert.deepEqual((list.Condition as { StringLike: Record<string, unknown> }).StringLike["s3:prefix"], [
      "heads/*",
      "datasets/*",
      "cache/*",
      "backbones/*",
    ]);
    const put = statements.filter((x) => actionsOf(x).includes("events:PutEvents"));
    assert.deepEqual(put.flatMap(resourcesOf), [
      { "Fn::GetAtt": [logicalId(stack, stack.eventBus.bus), "Arn"] },
    ]);
    const actions = statements.flatMap(actionsOf);
    assert.ok(!actions.some((a) => /^(sagemaker|lambda|iam):/.test(a)), actions.join(", "));
    assert.ok(!JSON.stringify(statements).includes("globex"));
    // A customer may space the rounds out (globex: daily, on 30 days of inputs) or turn them off.
    const globex = stacks.globex.functions.driftCheck;
    t.globex.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 day)",
      Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [logicalId(stacks.globex, globex.fn), "Arn"] } })],
    });
    const globexVars =
      json.globex.Resources[logicalId(stacks.globex, globex.fn)].Properties.Environment.Variables;
    assert.equal(globexVars.HEADSTART_DRIFT_WINDOW_DAYS, "30");
    const acme = loadCustomers("infra/customers.json").find((c) => c.id === "acme")!;
    const off = new HeadstartStack(new App({ context: { "aws:cdk:disable-asset-staging": true } }), "off", {
      customer: { ...acme, settings: { ...acme.settings, driftCheckHours: 0 } },
    });
    Template.fromStack(off).hasResourceProperties("AWS::Events::Rule", {
      Description: Match.stringLikeRegexp("drift"),
      State: "DISABLED",
    });
  });

  test("settings.uploadBackbones reaches the functions that start embedding jobs", () => {
    const acme = loadCustomers("infra/customers.json").find((c) => c.id === "acme")!;
    const stack = new HeadstartStack(new App({ context: { "aws:cdk:disable-asset-staging": true } }), "up", {
      customer: { ...acme, settings: { ...acme.settings, uploadBackbones: "recommended" } },
    });
    const template = Template.fromStack(stack).toJSON();
    for (const fn of [stack.functions.ingest, stack.functions.api]) {
      const vars = template.Resources[logicalId(stack, fn.fn)].Properties.Environment.Variables;
      assert.equal(vars.HEADSTART_UPLOAD_BACKBONES, "recommended");
    }
    const plain = json.acme.Resources[logicalId(stacks.acme, stacks.acme.functions.ingest.fn)];
    assert.equal(plain.Properties.Environment.Variables.HEADSTART_UPLOAD_BACKBONES, undefined);
  });

  test("functions see the customer's settings through shared/config.ts's variables", () => {
    const vars = (json.globex.Resources[logicalId(stacks.globex, stacks.globex.functions.ingest.fn)]
      .Properties.Environment.Variables ?? {}) as Record<string, unknown>;
    assert.deepEqual(vars.HEADSTART_STORE, {
      "Fn::Join": ["", ["s3://", { Ref: logicalId(stacks.globex, stacks.globex.data.bucket) }]],
    });
    assert.equal(vars.HEADSTART_RUNNER, "sagemaker");
    assert.equal(vars.HEADSTART_EMBED_INSTANCE_TYPE, "ml.g4dn.xlarge");
    assert.equal(vars.HEADSTART_EMBED_INSTANCE_COUNT, "4");
    assert.equal(vars.HEADSTART_EMBED_MAX_RUNTIME_S, "14400");
    assert.equal(vars.HEADSTART_EMBED_VOLUME_GB, "100");
    assert.equal(vars.HEADSTART_MODELS_DIR, "/tmp/models");
    assert.equal(vars.HEADSTART_SCRATCH_DIR, "/tmp");
    assert.deepEqual(vars.HEADSTART_SAGEMAKER_ROLE_ARN, {
      "Fn::GetAtt": [logicalId(stacks.globex, stacks.globex.embedJob.role), "Arn"],
    });
    assert.match(
      JSON.stringify(vars.HEADSTART_EMBED_IMAGE_URI),
      /container-assets-123456789012-us-east-1:[0-9a-f]{64}/,
    );
    assert.deepEqual(vars.HEADSTART_KMS_KEY_ID, {
      "Fn::GetAtt": [logicalId(stacks.globex, stacks.globex.data.key), "Arn"],
    });
    // Every variable a platform function gets is one shared/config.ts reads (or the customer id).
    const config = readFileSync("shared/config.ts", "utf8");
    for (const name of Object.keys(vars)) {
      // NODE_OPTIONS is Node's own (source-mapped stack traces).
      if (name !== "HEADSTART_CUSTOMER" && name !== "NODE_OPTIONS")
        assert.ok(config.includes(name), `${name} is read by shared/config.ts`);
    }
  });
});

describe("functions", () => {
  const functions = (name: keyof typeof json) =>
    resources(name).filter(([, r]) => r.Type === "AWS::Lambda::Function");

  test("headstart's functions are zip packages of their bundles: Node.js 22, index.handler, no TypeScript", () => {
    const deployed = functions("acme").filter(([, r]) =>
      String(r.Properties.FunctionName ?? "").startsWith("headstart-acme-"),
    );
    const entries = deployed.map(([, r]) => String(r.Properties.FunctionName).replace("headstart-acme-", ""));
    assert.deepEqual(entries.sort(), [...LAMBDA_NAMES].sort());
    const s = stacks.acme.functions;
    for (const [entry, f] of Object.entries({
      api: s.api,
      authorizer: s.authorizer!,
      ingest: s.ingest,
      "job-complete": s.jobComplete,
      train: s.train,
      "webhook-retry": s.webhookRetry,
      "drift-check": s.driftCheck,
    })) {
      const asset = f.fn.node.findChild("Code") as s3assets.Asset;
      assert.equal(asset.assetPath, bundleDir(entry as (typeof LAMBDA_NAMES)[number]), entry);
    }
    for (const [id, r] of deployed) {
      const entry = String(r.Properties.FunctionName).replace("headstart-acme-", "");
      assert.equal(r.Properties.PackageType, undefined, `${id} is a zip function`);
      assert.equal(r.Properties.Runtime, "nodejs22.x", id);
      assert.equal(r.Properties.Handler, "index.handler", id);
      assert.equal(r.Properties.Architectures?.toString(), "x86_64", id);
      const vars = (r.Properties.Environment as { Variables: Record<string, string> }).Variables;
      assert.equal(vars.NODE_OPTIONS, "--enable-source-maps", id);
      // The authorizer and webhook-retry read the store only: no platform settings.
      if (entry !== "authorizer" && entry !== "webhook-retry")
        assert.equal(vars.HEADSTART_BUILD_BACKBONES, "false", id);
    }
  });

  test("no deployed package holds TypeScript or tsx; natives only where the function embeds or trains", () => {
    for (const b of bundles) {
      const files = readdirSync(b.dir, { recursive: true }) as string[];
      assert.ok(files.includes("index.mjs"), b.name);
      assert.ok(!files.some((f) => /\.(c|m)?ts$/.test(f) && !f.endsWith(".d.ts")), `${b.name}: no .ts`);
      assert.ok(!files.some((f) => f.split("/").includes("tsx")), `${b.name}: no tsx`);
      const modules = files.filter(
        (f) => /^node_modules\/[^/]+$/.test(f) || /^node_modules\/@[^/]+\/[^/]+$/.test(f),
      );
      const has = (pkg: string) => modules.includes(`node_modules/${pkg}`);
      // job-complete scores batch-prediction jobs after their embedding job (some head types run onnxruntime).
      assert.equal(
        has("onnxruntime-node"),
        ["api", "train", "job-complete", "drift-check"].includes(b.name),
        `${b.name}: onnxruntime-node`,
      );
      assert.equal(has("sharp"), b.name === "api", `${b.name}: sharp`);
      if (["authorizer", "ingest", "webhook-retry"].includes(b.name)) assert.deepEqual(modules, [], b.name);
      // Only onnxruntime's linux-x64 CPU binary: no other platform, no CUDA provider.
      const ortBins = files.filter(
        (f) => f.includes("onnxruntime-node/bin/") && /\.(node|so[.\d]*|dll|dylib)$/.test(f),
      );
      if (has("onnxruntime-node")) {
        assert.deepEqual(ortBins.map((f) => f.replace(/^.*bin\/napi-v6\//, "")).sort(), [
          "linux/x64/libonnxruntime.so.1",
          "linux/x64/onnxruntime_binding.node",
        ]);
      }
    }
  });

  test("every package stays within its size budget", () => {
    // The budgets themselves: loosening one is a visible change to this test.
    assert.deepEqual(
      Object.fromEntries(LAMBDA_NAMES.map((n) => [n, FUNCTION_BUNDLES[n].budgetBytes / 1e6])),
      {
        authorizer: 1,
        ingest: 3,
        "job-complete": 50,
        train: 50,
        api: 75,
        "webhook-retry": 3,
        "drift-check": 50,
      },
    );
    for (const b of bundles) {
      assert.ok(b.bytes <= b.budgetBytes, `${b.name}: ${b.bytes} bytes > budget ${b.budgetBytes}`);
      // Lambda's own limit, source maps included.
      assert.ok(b.bytes + b.mapBytes < 250 * 1024 * 1024, b.name);
    }
  });

  test("async functions dead-letter to encrypted queues; every function has an error alarm; logs are kept 90 days", () => {
    const { acme } = t;
    const s = stacks.acme.functions;
    for (const f of [s.ingest, s.jobComplete, s.train]) {
      assert.ok(f.dlq);
      acme.hasResourceProperties("AWS::Lambda::Function", {
        FunctionName: `headstart-acme-${f.node.id === "JobComplete" ? "job-complete" : f.node.id.toLowerCase()}`,
        DeadLetterConfig: { TargetArn: { "Fn::GetAtt": [logicalId(stacks.acme, f.dlq), "Arn"] } },
      });
    }
    assert.equal(s.api.dlq, undefined);
    acme.resourceCountIs("AWS::SQS::Queue", 3);
    const alarms = resources("acme").filter(([, r]) => r.Type === "AWS::CloudWatch::Alarm");
    const errors = alarms.filter(([, r]) => r.Properties.MetricName === "Errors");
    const dlq = alarms.filter(([, r]) => r.Properties.MetricName === "ApproximateNumberOfMessagesVisible");
    assert.equal(errors.length, 7);
    assert.equal(dlq.length, 3);
    const topic = { Ref: resources("acme").find(([, r]) => r.Type === "AWS::SNS::Topic")![0] };
    for (const [id, a] of alarms) assert.deepEqual(a.Properties.AlarmActions, [topic], id);
    acme.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 90 });
    t.globex.allResourcesProperties("AWS::Logs::LogGroup", { RetentionInDays: 365 });
    acme.hasResourceProperties("AWS::SNS::Subscription", { Protocol: "email", Endpoint: "ops@acme.example" });
  });
});

describe("images", () => {
  test("the embed image runs the runner's entry point with ORT's CUDA provider on a CUDA 12 base", () => {
    const dockerfile = readFileSync("functions/embed-batch/Dockerfile", "utf8");
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    assert.deepEqual(JSON.parse(entrypoint ?? "null"), EMBED_CONTAINER_ENTRYPOINT);
    assert.match(
      dockerfile,
      /ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci --omit=dev --onnxruntime-node-install=cuda12 --allow-scripts=onnxruntime-node/,
    );
    assert.match(
      dockerfile,
      /libonnxruntime_providers_cuda\.so/,
      "the build fails if the CUDA provider is missing",
    );
    assert.match(dockerfile, /ARG CUDA_IMAGE=nvidia\/cuda:12\.[\d.]+-cudnn-runtime/);
    assert.match(dockerfile, /ARG NODE_IMAGE=node:22/);
  });

  test("the embed image runs the bundle; the build context is the lockfile and that bundle only", () => {
    const dockerfile = readFileSync("functions/embed-batch/Dockerfile", "utf8");
    assert.match(dockerfile, /COPY dist\/functions\/embed-batch \.\/dist\/functions\/embed-batch/);
    const instructions = dockerfile.replace(/^#.*$/gm, "");
    assert.doesNotMatch(instructions, /tsx|COPY shared|COPY functions/);
    const ignore = readFileSync(".dockerignore", "utf8")
      .split("\n")
      .filter((l) => l && !l.startsWith("#"));
    assert.equal(ignore[0], "*");
    assert.deepEqual(ignore.filter((l) => l.startsWith("!")).sort(), [
      "!.npmrc",
      "!dist/functions/embed-batch/",
      "!package-lock.json",
      "!package.json",
    ]);
  });
});

describe("cdk-nag", () => {
  test("AwsSolutions finds nothing unacknowledged in any customer's stack", () => {
    const report = new AwsSolutionsChecks(app).validateScope(app);
    assert.deepEqual(
      report.violations.map(
        (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(", ")}`,
      ),
      [],
    );
    assert.equal(report.success, true);
  });

  test("every acknowledgement carries a written reason", () => {
    let count = 0;
    for (const c of app.node.findAll()) {
      for (const m of c.node.metadata) {
        if (m.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(m.data as Record<string, unknown>)) {
          count++;
          assert.ok(typeof reason === "string" && reason.length >= 40, `${c.node.path}: ${id} has a reason`);
        }
      }
    }
    assert.ok(count > 0);
  });

  test("cdk-nag is live: an unencrypted, public bucket is reported", () => {
    const probe = new App({ context: { customer: "acme", "aws:cdk:disable-asset-staging": true } });
    buildApp(probe, { nag: false });
    const stack = probe.node.findChild("headstart-acme") as HeadstartStack;
    new s3.Bucket(stack, "Leaky", { blockPublicAccess: s3.BlockPublicAccess.BLOCK_ACLS_ONLY });
    const report = new AwsSolutionsChecks(probe).validateScope(probe);
    assert.equal(report.success, false);
    assert.ok(report.violations.some((v) => v.ruleName.startsWith("AwsSolutions-S")));
  });
});
