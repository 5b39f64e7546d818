import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { App, Validations } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as s3 from "aws-cdk-lib/aws-s3";
import { AwsSolutionsChecks } from "cdk-nag";
import { buildApp } from "../infra/app.ts";
import { HeadstartStack } from "../infra/stack.ts";

function synth(customer: string) {
  const app = buildApp(new App({ context: { customer } }));
  const stack = app.node.findChild(`headstart-${customer}`) as HeadstartStack;
  return { app, stack, template: Template.fromStack(stack) };
}

describe("per-customer stack", () => {
  test("the customer's bucket is KMS-encrypted with its own rotating key, private, TLS-only and versioned", () => {
    const { template } = synth("acme");
    template.resourceCountIs("AWS::KMS::Key", 1);
    template.hasResourceProperties("AWS::KMS::Key", { EnableKeyRotation: true });
    template.hasResourceProperties("AWS::S3::Bucket", {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: "aws:kms", KMSMasterKeyID: Match.anyValue() },
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
    });
    // Every bucket denies plain HTTP.
    const policies = template.findResources("AWS::S3::BucketPolicy");
    assert.equal(Object.keys(policies).length, 2);
    for (const policy of Object.values(policies)) {
      assert.ok(
        JSON.stringify(policy).includes('"aws:SecureTransport":"false"'),
        "bucket policy denies requests without TLS",
      );
    }
    // Data is the customer's: it survives stack deletion.
    template.hasResource("AWS::S3::Bucket", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
  });

  test("resources are tagged with their customer and stacks are named per customer", () => {
    const a = synth("acme");
    const b = synth("globex");
    assert.equal(a.stack.stackName, "headstart-acme");
    assert.equal(b.stack.stackName, "headstart-globex");
    a.template.hasResourceProperties("AWS::S3::Bucket", {
      Tags: Match.arrayWith([{ Key: "headstart:customer", Value: "acme" }]),
    });
  });

  test("cdk-nag AwsSolutions finds nothing unacknowledged, and every acknowledgement has a reason", () => {
    const { app } = synth("acme");
    const report = new AwsSolutionsChecks(app).validateScope(app);
    assert.deepEqual(
      report.violations.map(
        (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.resourceLogicalId).join(", ")}`,
      ),
      [],
    );
    assert.equal(report.success, true);
  });

  test("cdk-nag is live: an unencrypted, public bucket is reported", () => {
    const app = new App();
    const stack = new HeadstartStack(app, "probe", { customer: "probe" });
    new s3.Bucket(stack, "Leaky", { blockPublicAccess: s3.BlockPublicAccess.BLOCK_ACLS_ONLY });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const report = new AwsSolutionsChecks(app).validateScope(app);
    assert.equal(report.success, false);
    assert.ok(report.violations.some((v) => v.ruleName.startsWith("AwsSolutions-S")));
  });

  test("a missing or invalid customer id fails synthesis with a message naming it", () => {
    assert.throws(() => buildApp(new App()), /context "customer" is missing or invalid/);
    assert.throws(() => buildApp(new App({ context: { customer: "Bad/Id" } })), /context "customer"/);
  });
});
