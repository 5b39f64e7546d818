/**
 * The SageMaker Processing side of the embedding stage: the job's execution role (this
 * customer's bucket and key, pulling the embed image, writing the job's logs) and the
 * permissions a function needs to start, watch and stop this customer's jobs.
 */
import { ArnFormat, Stack } from "aws-cdk-lib";
import type { DockerImageAsset } from "aws-cdk-lib/aws-ecr-assets";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import { Construct } from "constructs";
import type { CustomerData } from "./customer-data.ts";

/** Job names the runner creates (shared/embed/plan.ts `embedJobId`). */
export const EMBED_JOB_NAME_PREFIX = "embed-";

/**
 * `embed-<customer>--`: every processing job of a customer is named so (HEADSTART_CUSTOMER, see
 * `embedJobId`), which scopes SageMaker actions, job log streams and job events to that customer
 * even when several customers share an account. Customer ids never hold `--` nor end in `-`, so
 * no customer's prefix is a prefix of another's (`embed-acme--` vs `embed-acme-eu--`).
 */
export function jobNamePrefix(customer: string): string {
  return `${EMBED_JOB_NAME_PREFIX}${customer}--`;
}
/** Set on every processing job by `SageMakerJobRunner` (HEADSTART_CUSTOMER). */
export const CUSTOMER_TAG = "headstart:customer";

export interface EmbedJobProps {
  customer: string;
  data: CustomerData;
  image: DockerImageAsset;
}

export class EmbedJob extends Construct {
  readonly role: iam.Role;
  /** ARN pattern of the processing jobs the platform creates. */
  readonly jobArnPattern: string;
  readonly customer: string;

  constructor(scope: Construct, id: string, props: EmbedJobProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.customer = props.customer;
    this.jobArnPattern = stack.formatArn({
      service: "sagemaker",
      resource: "processing-job",
      resourceName: `${jobNamePrefix(props.customer)}*`,
    });
    this.role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("sagemaker.amazonaws.com", {
        conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
      }),
      description: `headstart ${props.customer} SageMaker Processing (embedding) jobs`,
    });
    // Plans in, shards and commit markers out: this customer's bucket and key only.
    props.data.grantObjects(this.role);
    // Volumes and outputs encrypted with the customer's key.
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:GenerateDataKey",
          "kms:GenerateDataKeyWithoutPlaintext",
          "kms:DescribeKey",
        ],
        resources: [props.data.key.keyArn],
      }),
    );
    this.role.addToPolicy(createGrantForAwsResources(props.data.key));
    props.image.repository.grantPull(this.role);
    // SageMaker writes every processing job's logs to this one group; streams are `<job>/<host>`.
    const logGroup = stack.formatArn({
      service: "logs",
      resource: "log-group",
      resourceName: "/aws/sagemaker/ProcessingJobs",
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
        resources: [`${logGroup}:*`],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [`${logGroup}:log-stream:${jobNamePrefix(props.customer)}*`],
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["cloudwatch:PutMetricData"],
        resources: ["*"],
        conditions: { StringLike: { "cloudwatch:namespace": "/aws/sagemaker/ProcessingJobs" } },
      }),
    );
  }

  /** Start, describe and stop embedding jobs that run as this customer's job role. */
  grantSubmit(grantee: iam.IGrantable, key: kms.IKey): void {
    // Job names carry the customer (`embed-<customer>--*`): that scopes every action. New jobs
    // must also carry the customer tag.
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["sagemaker:CreateProcessingJob", "sagemaker:AddTags"],
        resources: [this.jobArnPattern],
        conditions: { StringEquals: { [`aws:RequestTag/${CUSTOMER_TAG}`]: this.customer } },
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"],
        resources: [this.jobArnPattern],
      }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["iam:PassRole"],
        resources: [this.role.roleArn],
        conditions: { StringEquals: { "iam:PassedToService": "sagemaker.amazonaws.com" } },
      }),
    );
    // The job's volumes are encrypted with the customer's key: SageMaker needs a grant on it.
    grantee.grantPrincipal.addToPrincipalPolicy(createGrantForAwsResources(key));
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ["kms:DescribeKey"], resources: [key.keyArn] }),
    );
  }
}

/** kms:CreateGrant on the customer's key, only for grants an AWS service makes on our behalf. */
function createGrantForAwsResources(key: kms.IKey): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ["kms:CreateGrant"],
    resources: [key.keyArn],
    conditions: { Bool: { "kms:GrantIsForAWSResource": "true" } },
  });
}
