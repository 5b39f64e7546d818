/**
 * A headstart Lambda: a zip-deployed Node.js 22 function running one bundle built by
 * `npm run build` (dist/functions/<entry>/index.mjs, see infra/bundles.ts), with its own role (no managed policies), its own encrypted log
 * group with the customer's retention, an encrypted dead-letter queue when invoked
 * asynchronously, and an alarm on errors.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Duration, RemovalPolicy, Size, Stack, Validations } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cwActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as sns from "aws-cdk-lib/aws-sns";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { bundleDir, type FunctionName } from "./bundles.ts";

export interface HeadstartFunctionProps {
  customer: string;
  /** The function's bundle (`api`, `ingest`, …): dist/functions/<entry>/, handler `index.handler`. */
  entry: Exclude<FunctionName, "embed-batch">;
  key: kms.IKey;
  alarmTopic: sns.ITopic;
  logRetentionDays: number;
  /** Keep the log group when the stack is deleted (then delete it before re-creating the customer). */
  retainLogs?: boolean;
  environment: Record<string, string>;
  memoryMiB: number;
  timeout: Duration;
  /** /tmp size (backbone models fetched from the store live there). */
  ephemeralMiB?: number;
  /** Invoked asynchronously (S3, EventBridge, Lambda Event): failed events go to a DLQ. */
  async?: boolean;
  description: string;
}

export class HeadstartFunction extends Construct {
  readonly fn: lambda.Function;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;
  readonly dlq?: sqs.Queue;
  readonly errorsAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: HeadstartFunctionProps) {
    super(scope, id);
    const name = `headstart-${props.customer}-${props.entry}`;
    this.logGroup = new logs.LogGroup(this, "Logs", {
      logGroupName: `/headstart/${props.customer}/${props.entry}`,
      retention: props.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.key,
      removalPolicy: props.retainLogs === false ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    this.role = this.createRole(name);
    if (props.async) this.dlq = this.createDeadLetterQueue(props.key);
    this.fn = this.createFunction(name, props);
    // deadLetterQueue grants sqs:SendMessage only; the queue's key is needed too.
    if (this.dlq) props.key.grant(this.role, "kms:GenerateDataKey", "kms:Decrypt");
    this.errorsAlarm = this.createAlarms(name, props.alarmTopic);
  }

  /** The execution role: no managed policies, and of CloudWatch Logs only its own log group. */
  private createRole(name: string): iam.Role {
    const role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: `${name} Lambda`,
    });
    // Only its own log group (streams are `<group>:log-stream:*`).
    role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    return role;
  }

  private createDeadLetterQueue(key: kms.IKey): sqs.Queue {
    const dlq = new sqs.Queue(this, "Dlq", {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(dlq).acknowledge({
      id: "AwsSolutions-SQS3",
      reason: "This queue is itself the dead-letter queue of an asynchronously invoked Lambda.",
    });
    return dlq;
  }

  private createFunction(name: string, props: HeadstartFunctionProps): lambda.Function {
    const fn = new lambda.Function(this, "Function", {
      functionName: name,
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: "index.handler",
      code: lambda.Code.fromAsset(builtBundle(props.entry)),
      // The bundled natives (onnxruntime-node, sharp) are their linux-x64 glibc builds.
      architecture: lambda.Architecture.X86_64,
      role: this.role,
      memorySize: props.memoryMiB,
      timeout: props.timeout,
      ephemeralStorageSize: Size.mebibytes(props.ephemeralMiB ?? 512),
      // No customer-key environment encryption: Lambda would decrypt it as the execution role,
      // which then needs an unscoped kms:Decrypt; the variables hold names and ARNs, no secrets.
      environment: {
        ...props.environment,
        // Stack traces through the bundle's source maps (shipped beside it).
        NODE_OPTIONS: "--enable-source-maps",
      },
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      deadLetterQueueEnabled: props.async ? true : undefined,
      deadLetterQueue: this.dlq,
      retryAttempts: props.async ? 2 : undefined,
      maxEventAge: props.async ? Duration.hours(6) : undefined,
    });
    Validations.of(fn).acknowledge({
      id: "AwsSolutions-L1",
      reason:
        "Node.js 22 (LTS) is the runtime the bundles are built for (esbuild target node22) and the one their " +
        "native packages are tested on; moving to a newer runtime is a deliberate upgrade, not a default.",
    });
    return fn;
  }

  /** Alarms on failed invocations and, when asynchronous, on dead-lettered events; returns the first. */
  private createAlarms(name: string, alarmTopic: sns.ITopic): cloudwatch.Alarm {
    const actions = new cwActions.SnsAction(alarmTopic);
    const errorsAlarm = this.alarmAtLeastOne(
      "Errors",
      `${name}: invocations failed`,
      this.fn.metricErrors({ period: Duration.minutes(5), statistic: "Sum" }),
    );
    errorsAlarm.addAlarmAction(actions);
    if (this.dlq) {
      const dlqAlarm = this.alarmAtLeastOne(
        "DeadLetters",
        `${name}: events dead-lettered after retries (inspect ${Stack.of(this).stackName} DLQ)`,
        this.dlq.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: "Maximum",
        }),
      );
      dlqAlarm.addAlarmAction(actions);
    }
    return errorsAlarm;
  }

  /** An alarm when `metric` reaches 1 in one period (no data: all is well). */
  private alarmAtLeastOne(
    id: string,
    alarmDescription: string,
    metric: cloudwatch.IMetric,
  ): cloudwatch.Alarm {
    return new cloudwatch.Alarm(this, id, {
      alarmDescription,
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}

/** The bundle directory, which `npm run build` must have made (`npm run synth` builds first). */
export function builtBundle(entry: FunctionName): string {
  const dir = bundleDir(entry);
  if (!existsSync(join(dir, "index.mjs"))) {
    throw new Error(`${dir}/index.mjs is missing: run \`npm run build\` before synthesizing`);
  }
  return dir;
}
