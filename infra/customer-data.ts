/**
 * One customer's data plane: a KMS key and the bucket that holds that customer's datasets,
 * embedding cache and heads. Nothing is shared between customers, so a grant can never reach
 * another customer's data.
 */
import { Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import * as s3 from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";

export interface CustomerDataProps {
  customer: string;
  /** Keep data when the stack is deleted (default true: datasets are the customer's). */
  retain?: boolean;
  /** Days before noncurrent object versions are deleted (default 30). */
  noncurrentVersionDays?: number;
}

export class CustomerData extends Construct {
  readonly key: kms.Key;
  readonly bucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: CustomerDataProps) {
    super(scope, id);
    const removalPolicy = props.retain === false ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    this.key = new kms.Key(this, "Key", {
      description: `headstart data key for customer ${props.customer}`,
      enableKeyRotation: true,
      removalPolicy,
    });
    // Access logs cannot go to a KMS-encrypted bucket, so they get their own S3-managed one.
    this.accessLogs = new s3.Bucket(this, "AccessLogs", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy,
    });
    Validations.of(this.accessLogs).acknowledge({
      id: "AwsSolutions-S1",
      reason: "This is the access-log bucket; logging it into itself would loop.",
    });
    this.bucket = new s3.Bucket(this, "Bucket", {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: "data/",
      // The layout has no scratch prefix (plans and job state are records, see
      // docs/architecture.md); what accumulates is old versions of replaced objects and
      // abandoned multipart uploads.
      lifecycleRules: [
        {
          id: "expire-old-versions-and-abandoned-uploads",
          noncurrentVersionExpiration: Duration.days(props.noncurrentVersionDays ?? 30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy,
    });
  }

  /** Read one object (and only it) of this bucket: the authorizer reads the key file, nothing else. */
  grantReadObject(grantee: iam.IGrantable, objectKey: string): void {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        resources: [this.bucket.arnForObjects(objectKey)],
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["kms:Decrypt"],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }

  /**
   * What the object store (shared/aws/s3-store.ts) does, on this bucket and key only: list, read,
   * (conditionally) write and delete objects. Narrower than `grantReadWrite` (no `s3:*Object*`
   * or `kms:ReEncrypt*` families).
   */
  grantObjects(grantee: iam.IGrantable): void {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["s3:ListBucket", "s3:GetBucketLocation"],
        resources: [this.bucket.bucketArn],
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
        resources: [this.bucket.arnForObjects("*")],
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["kms:Decrypt", "kms:GenerateDataKey"],
        resources: [this.key.keyArn],
        conditions: { StringEquals: { "kms:ViaService": `s3.${Stack.of(this).region}.amazonaws.com` } },
      }),
    );
  }
}
