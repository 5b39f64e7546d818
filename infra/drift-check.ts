/**
 * The scheduled drift check in AWS: an EventBridge schedule runs the drift-check Lambda
 * (functions/drift-check/handler.ts) every `settings.driftCheckHours` (6 by default; 0 disables
 * the rule), which checks every head capturing all its inputs against its training data and emits
 * `drift.detected` when drift is news. Its role reaches only what a round touches, key patterns of
 * shared/layout.ts: it reads heads, datasets, the cache and backbones, writes each head's drift
 * record and webhook deliveries, and puts events on this customer's bus.
 */
import { Duration, Validations } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";
import { keys, listPrefixes } from "../shared/layout.ts";
import type { CustomerData } from "./customer-data.ts";
import type { CustomerEventBus } from "./event-bus.ts";
import { attArnFinding } from "./nag.ts";

/** A round: every capturing head's captured texts (≤ 1,000 each) embedded, a permutation test each. */
export const DRIFT_CHECK_MEMORY_MIB = 2048;
export const DRIFT_CHECK_TIMEOUT = Duration.minutes(15);

const pending = `${keys.webhookPendingPrefix()}*`;
const deliveries = `${keys.webhookDeliveriesPrefix()}*`;
const readable = [listPrefixes.heads, listPrefixes.datasets, listPrefixes.cache, listPrefixes.backbones];

/**
 * What one round does to the bucket, as IAM key patterns (`*` spans `/`): the prefixes it lists,
 * the keys it reads, writes and deletes. The handler test holds a real round to them.
 */
export const DRIFT_CHECK_ACCESS = {
  list: readable.map((p) => `${p}*`),
  read: [...readable.map((p) => `${p}*`), keys.webhooks(), deliveries],
  // keys.headDriftState(<any head>)
  write: ["heads/*/drift-state.json", deliveries, pending],
  delete: [pending],
} as const;

export interface DriftCheckProps {
  customer: string;
  handler: lambda.IFunction;
  role: iam.IRole;
  data: CustomerData;
  bus: CustomerEventBus;
  /** Hours between rounds; 0 keeps the rule disabled. */
  everyHours: number;
}

export class DriftCheckSchedule extends Construct {
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: DriftCheckProps) {
    super(scope, id);
    this.rule = new events.Rule(this, "Schedule", {
      description: `headstart ${props.customer}: check heads capturing their inputs for drift`,
      schedule: events.Schedule.rate(Duration.hours(Math.max(1, props.everyHours))),
      enabled: props.everyHours > 0,
      // A failed round is made up by the next one: no retries of the schedule itself (Lambda's
      // own may still run one event twice; the per-head record's CAS lets one of them emit).
      targets: [new targets.LambdaFunction(props.handler, { retryAttempts: 0 })],
    });
    grantRound(props.role, props.data);
    props.bus.grantPut(props.role);
    const objects = attArnFinding(props.data.bucket, "/");
    for (const pattern of new Set(
      Object.values(DRIFT_CHECK_ACCESS)
        .flat()
        .filter((p) => p.includes("*")),
    )) {
      Validations.of(props.role).acknowledge({
        id: `AwsSolutions-IAM5[${objects}${pattern}]`,
        reason:
          "Keys under these prefixes are data (heads, datasets, cache shards, backbones, webhook deliveries) named at run time; only this customer's bucket.",
      });
    }
  }
}

/** The bucket and key, only as far as `DRIFT_CHECK_ACCESS` reaches. */
function grantRound(role: iam.IRole, data: CustomerData): void {
  const objects = (patterns: readonly string[]) => patterns.map((p) => data.bucket.arnForObjects(p));
  const statements = [
    new iam.PolicyStatement({
      actions: ["s3:ListBucket"],
      resources: [data.bucket.bucketArn],
      conditions: { StringLike: { "s3:prefix": [...DRIFT_CHECK_ACCESS.list] } },
    }),
    new iam.PolicyStatement({ actions: ["s3:GetObject"], resources: objects(DRIFT_CHECK_ACCESS.read) }),
    new iam.PolicyStatement({ actions: ["s3:PutObject"], resources: objects(DRIFT_CHECK_ACCESS.write) }),
    new iam.PolicyStatement({ actions: ["s3:DeleteObject"], resources: objects(DRIFT_CHECK_ACCESS.delete) }),
    new iam.PolicyStatement({
      actions: ["kms:Decrypt", "kms:GenerateDataKey"],
      resources: [data.key.keyArn],
      conditions: { StringEquals: { "kms:ViaService": `s3.${data.bucket.stack.region}.amazonaws.com` } },
    }),
  ];
  for (const s of statements) role.addToPrincipalPolicy(s);
}
