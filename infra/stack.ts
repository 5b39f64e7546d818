/**
 * Everything one customer gets, isolated from every other customer's stack: its own key,
 * bucket, job role, functions, API and credentials. Each construct holds one concern; this
 * class only wires them together and grants each function what its entry point uses.
 */
import { ArnFormat, CfnOutput, Duration, Stack, type StackProps, Tags, Validations } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3n from "aws-cdk-lib/aws-s3-notifications";
import type * as sns from "aws-cdk-lib/aws-sns";
import type { Construct } from "constructs";
import { keys } from "../shared/layout.ts";
import { CustomerHttpApi } from "./api.ts";
import { CustomerData } from "./customer-data.ts";
import type { Customer } from "./customers.ts";
import { DRIFT_CHECK_MEMORY_MIB, DRIFT_CHECK_TIMEOUT, DriftCheckSchedule } from "./drift-check.ts";
import { EmbedJob, jobNamePrefix } from "./embed-job.ts";
import { CustomerEventBus, eventBusName } from "./event-bus.ts";
import { HeadstartFunction, type HeadstartFunctionProps } from "./functions.ts";
import { Images } from "./images.ts";
import { JobEvents } from "./job-events.ts";
import { Monitoring } from "./monitoring.ts";
import { acknowledgeWildcard, attArnFinding, formattedArnFinding } from "./nag.ts";
import { WebhookRetrySchedule } from "./webhook-retry.ts";

export interface HeadstartStackProps extends StackProps {
  customer: Customer;
}

/** Manifests the ingest Lambda reacts to: `datasets/<dataset>/manifest.jsonl|csv`. */
export const MANIFEST_PREFIX = "datasets/";
export const MANIFEST_SUFFIXES = ["manifest.jsonl", "manifest.csv"] as const;
/** Batch inputs the ingest Lambda scores: `batch/<head>/<name>.jsonl|csv` (functions/ingest/batch-upload.ts). */
export const BATCH_UPLOAD_PREFIX = "batch/";
export const BATCH_UPLOAD_SUFFIXES = [".jsonl", ".csv"] as const;

/** What every platform entry point reads (shared/config.ts). */
function platformEnvironment(
  c: Customer,
  data: CustomerData,
  embedJob: EmbedJob,
  images: Images,
): Record<string, string> {
  return {
    HEADSTART_STORE: `s3://${data.bucket.bucketName}`,
    HEADSTART_RUNNER: "sagemaker",
    HEADSTART_SAGEMAKER_ROLE_ARN: embedJob.role.roleArn,
    HEADSTART_EMBED_IMAGE_URI: images.embed.imageUri,
    HEADSTART_EMBED_INSTANCE_TYPE: c.embed.instanceType,
    HEADSTART_EMBED_INSTANCE_COUNT: String(c.embed.instanceCount),
    HEADSTART_EMBED_MAX_RUNTIME_S: String(c.embed.maxRuntimeSeconds),
    HEADSTART_EMBED_VOLUME_GB: String(c.embed.volumeSizeGb),
    HEADSTART_KMS_KEY_ID: data.key.keyArn,
    HEADSTART_MODELS_DIR: "/tmp/models",
    // Built-in backbones are published to the bucket once (`headstart backbone publish`).
    HEADSTART_BUILD_BACKBONES: "false",
    HEADSTART_SCRATCH_DIR: "/tmp",
    HEADSTART_LOG_LEVEL: c.settings.logLevel,
    HEADSTART_CUSTOMER: c.id,
    HEADSTART_EVENT_BUS_NAME: eventBusName(c.id),
    ...(c.settings.defaultBackbone ? { HEADSTART_DEFAULT_BACKBONE: c.settings.defaultBackbone } : {}),
    ...(c.settings.defaultImageBackbone
      ? { HEADSTART_DEFAULT_IMAGE_BACKBONE: c.settings.defaultImageBackbone }
      : {}),
    ...(c.settings.defaultAudioBackbone
      ? { HEADSTART_DEFAULT_AUDIO_BACKBONE: c.settings.defaultAudioBackbone }
      : {}),
    ...(c.settings.uploadBackbones ? { HEADSTART_UPLOAD_BACKBONES: c.settings.uploadBackbones } : {}),
  };
}

type Functions = HeadstartStack["functions"];

/**
 * Every `driftCheckHours` (infra/drift-check.ts): one round of the scheduled drift check. The store,
 * the bus and backbones fetched into /tmp; no job runner (it starts nothing), no default backbone
 * (a head is checked in its own).
 */
function driftCheckProps(c: Customer, platformEnv: Record<string, string>) {
  const pick = (...names: string[]) => Object.fromEntries(names.map((n) => [n, platformEnv[n]]));
  return {
    entry: "drift-check" as const,
    description:
      "On a schedule: check heads capturing their inputs for drift; drift.detected when it is news",
    environment: {
      ...pick(
        "HEADSTART_STORE",
        "HEADSTART_MODELS_DIR",
        "HEADSTART_BUILD_BACKBONES",
        "HEADSTART_SCRATCH_DIR",
        "HEADSTART_LOG_LEVEL",
        "HEADSTART_CUSTOMER",
        "HEADSTART_EVENT_BUS_NAME",
      ),
      HEADSTART_DRIFT_WINDOW_DAYS: String(c.settings.driftWindowDays),
    },
    memoryMiB: DRIFT_CHECK_MEMORY_MIB,
    timeout: DRIFT_CHECK_TIMEOUT,
    // Backbones of the heads it checks (a transformer's ONNX file is a few hundred MB).
    ephemeralMiB: 2048,
  };
}

/** Every minute (infra/webhook-retry.ts): retries pending webhook deliveries; reads the store only. */
function webhookRetryProps(c: Customer, store: string) {
  return {
    entry: "webhook-retry" as const,
    description: "Every minute: retry the webhook deliveries that are pending and due",
    // The store only: retries deliver to webhooks, never to the bus (the first try did).
    environment: {
      HEADSTART_LOG_LEVEL: c.settings.logLevel,
      HEADSTART_STORE: store,
      HEADSTART_CUSTOMER: c.id,
    },
    memoryMiB: 512,
    timeout: Duration.seconds(90),
  };
}

export class HeadstartStack extends Stack {
  readonly data: CustomerData;
  readonly embedJob: EmbedJob;
  readonly eventBus: CustomerEventBus;
  readonly functions: Record<
    "ingest" | "jobComplete" | "train" | "api" | "webhookRetry" | "driftCheck",
    HeadstartFunction
  > & {
    authorizer?: HeadstartFunction;
  };
  readonly api: CustomerHttpApi;

  constructor(scope: Construct, id: string, props: HeadstartStackProps) {
    super(scope, id, {
      description: `headstart: customer ${props.customer.id} (data, embedding jobs, training, API)`,
      ...props,
      env: props.env ?? { account: props.customer.account, region: props.customer.region },
    });
    const c = props.customer;
    Tags.of(this).add("headstart:customer", c.id);

    this.data = new CustomerData(this, "Data", {
      customer: c.id,
      retain: c.settings.retainData,
      noncurrentVersionDays: c.settings.noncurrentVersionDays,
    });
    this.allowLogsToUseKey(c.id);
    const monitoring = new Monitoring(this, "Monitoring", {
      customer: c.id,
      key: this.data.key,
      alarmEmail: c.settings.alarmEmail,
    });
    const images = new Images(this, "Images");
    this.embedJob = new EmbedJob(this, "EmbedJob", { customer: c.id, data: this.data, image: images.embed });
    this.eventBus = new CustomerEventBus(this, "Events", { customer: c.id });
    const platformEnv = platformEnvironment(c, this.data, this.embedJob, images);
    this.functions = this.createFunctions(c, platformEnv, monitoring.topic);
    this.grantFunctions(this.functions);
    this.ingestUploadedManifests(this.functions.ingest);
    new JobEvents(this, "JobEvents", {
      customer: c.id,
      jobRole: this.embedJob.role,
      handler: this.functions.jobComplete.fn,
      alarmTopic: monitoring.topic,
    });
    new WebhookRetrySchedule(this, "WebhookRetrySchedule", {
      customer: c.id,
      handler: this.functions.webhookRetry.fn,
    });
    new DriftCheckSchedule(this, "DriftCheckSchedule", {
      customer: c.id,
      handler: this.functions.driftCheck.fn,
      role: this.functions.driftCheck.role,
      data: this.data,
      bus: this.eventBus,
      everyHours: c.settings.driftCheckHours,
    });
    this.api = this.createApi(c, this.functions);

    this.acknowledge(c.id);
    new CfnOutput(this, "ApiUrl", { value: this.api.url });
    new CfnOutput(this, "BucketName", { value: this.data.bucket.bucketName });
    new CfnOutput(this, "EventBusName", { value: this.eventBus.bus.eventBusName });
    if (c.api.auth === "iam") {
      // What a caller's IAM policy must allow (execute-api:Invoke) to call this customer's API.
      new CfnOutput(this, "ApiInvokeArn", { value: this.api.api.arnForExecuteApi() });
    }
  }

  /** CloudWatch Logs encrypts this customer's log groups (all under /headstart/<id>/) with its key. */
  private allowLogsToUseKey(customer: string): void {
    this.data.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchLogsEncryptCustomerLogGroups",
        principals: [new iam.ServicePrincipal(`logs.${this.region}.amazonaws.com`)],
        actions: ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources: ["*"],
        conditions: {
          ArnLike: {
            "kms:EncryptionContext:aws:logs:arn": this.formatArn({
              service: "logs",
              resource: "log-group",
              resourceName: `/headstart/${customer}/*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
  }

  /** The customer's Lambdas (the authorizer only with API keys), each with its own settings. */
  private createFunctions(
    c: Customer,
    platformEnv: Record<string, string>,
    alarmTopic: sns.ITopic,
  ): Functions {
    const common = {
      customer: c.id,
      key: this.data.key,
      alarmTopic,
      logRetentionDays: c.settings.logRetentionDays,
      retainLogs: c.settings.retainData,
    };
    const fn = (id: string, p: Omit<HeadstartFunctionProps, keyof typeof common>) =>
      new HeadstartFunction(this, id, { ...common, ...p });

    const ingest = fn("Ingest", {
      entry: "ingest",
      description: "S3 upload → ingest a manifest and start its embedding, or score a batch/ input",
      // A batch/ upload's job is handed to job-complete, which has the memory and onnxruntime to score.
      environment: { ...platformEnv, HEADSTART_BATCH_FUNCTION_NAME: `headstart-${c.id}-job-complete` },
      memoryMiB: 2048,
      timeout: Duration.minutes(15),
      ephemeralMiB: 4096,
      async: true,
    });
    const jobComplete = fn("JobComplete", {
      entry: "job-complete",
      description: "SageMaker job state change → job status, parked batch jobs continued; batch job runs",
      environment: platformEnv,
      // Scores batch-prediction jobs (docs/deploy.md, "Batch predictions in AWS").
      memoryMiB: 3008,
      timeout: Duration.minutes(15),
      ephemeralMiB: 2048,
      async: true,
    });
    const train = fn("Train", {
      entry: "train",
      description: "Train a head on cached embeddings (invoked asynchronously)",
      environment: platformEnv,
      memoryMiB: 3008,
      timeout: Duration.minutes(15),
      ephemeralMiB: 2048,
      async: true,
    });
    const api = fn("Api", {
      entry: "api",
      description: "The Hono HTTP API (predict, datasets, heads, jobs)",
      environment: {
        ...platformEnv,
        HEADSTART_TRAIN_FUNCTION_NAME: `headstart-${c.id}-train`,
        HEADSTART_BATCH_FUNCTION_NAME: `headstart-${c.id}-job-complete`,
      },
      memoryMiB: 2048,
      timeout: Duration.seconds(29),
      ephemeralMiB: 2048,
    });
    let authorizer: HeadstartFunction | undefined;
    if (c.api.auth === "api-key") {
      authorizer = fn("Authorizer", {
        entry: "authorizer",
        description: "HTTP API authorizer: x-api-key / Bearer against this customer's hashed keys",
        // Reads only the key file of this customer's bucket (granted in createApi).
        environment: {
          HEADSTART_LOG_LEVEL: c.settings.logLevel,
          HEADSTART_STORE: platformEnv.HEADSTART_STORE,
          HEADSTART_CUSTOMER: c.id,
        },
        memoryMiB: 512,
        timeout: Duration.seconds(10),
      });
    }
    const webhookRetry = fn("WebhookRetry", webhookRetryProps(c, platformEnv.HEADSTART_STORE));
    const driftCheck = fn("DriftCheck", driftCheckProps(c, platformEnv));
    return { ingest, jobComplete, train, api, webhookRetry, driftCheck, authorizer };
  }

  /** Each function gets this customer's bucket and key, nothing else of S3 or KMS. */
  private grantFunctions({ ingest, jobComplete, train, api, webhookRetry }: Functions): void {
    for (const f of [ingest, jobComplete, train, api, webhookRetry]) this.data.grantObjects(f.role);
    // Each may cause an event (an embedding job ending, a version trained, an alias moved).
    for (const f of [ingest, jobComplete, train, api]) this.eventBus.grantPut(f.role);
    // job-complete submits the embedding jobs of the batch-prediction jobs it runs.
    for (const f of [ingest, api, jobComplete]) this.embedJob.grantSubmit(f.role, this.data.key);
    // POST …/train and POST …/batch-predictions hand the work to a Lambda (asynchronously).
    api.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["lambda:InvokeFunction"],
        resources: [train.fn.functionArn, jobComplete.fn.functionArn],
      }),
    );
    // A batch/ upload's job too (the bucket door).
    ingest.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ["lambda:InvokeFunction"],
        resources: [jobComplete.fn.functionArn],
      }),
    );
  }

  /**
   * Upload doors: a manifest landing under datasets/ starts ingestion, one under batch/<head>/ a
   * batch prediction, no API call needed. Our own `batch/<head>/_status/*.json` match no rule.
   */
  private ingestUploadedManifests(ingest: HeadstartFunction): void {
    const rules = [
      ...MANIFEST_SUFFIXES.map((suffix) => ({ prefix: MANIFEST_PREFIX, suffix })),
      ...BATCH_UPLOAD_SUFFIXES.map((suffix) => ({ prefix: BATCH_UPLOAD_PREFIX, suffix })),
    ];
    for (const filter of rules) {
      this.data.bucket.addEventNotification(
        s3.EventType.OBJECT_CREATED,
        new s3n.LambdaDestination(ingest.fn),
        filter,
      );
    }
  }

  /** The HTTP API in front of the api function, and its authorizer's read of the key file. */
  private createApi(c: Customer, { api, authorizer }: Functions): CustomerHttpApi {
    const http = new CustomerHttpApi(this, "Http", {
      customer: c.id,
      handler: api.fn,
      authorizer: authorizer?.fn,
      auth: c.api.auth,
      key: this.data.key,
      logRetentionDays: c.settings.logRetentionDays,
      retainLogs: c.settings.retainData,
      rateLimit: c.api.rateLimit,
      burstLimit: c.api.burstLimit,
      authorizerCacheTtlSeconds: c.api.authorizerCacheTtlSeconds,
    });
    if (authorizer) this.data.grantReadObject(authorizer.role, keys.apiKeys());
    return http;
  }

  /** cdk-nag findings that are by design, each with its reason. */
  private acknowledge(customer: string): void {
    const objects = attArnFinding(this.data.bucket, "/*");
    const objectsReason =
      "Object keys are data (datasets, cache shards, heads), so object actions apply to every key of this customer's own bucket and no other.";
    const jobs = formattedArnFinding(this, "sagemaker", `processing-job/${jobNamePrefix(customer)}*`);
    for (const f of Object.values(this.functions)) {
      if (!f) continue;
      acknowledgeWildcard(f.role, objects, objectsReason);
    }
    for (const f of [this.functions.ingest, this.functions.api, this.functions.jobComplete]) {
      acknowledgeWildcard(
        f.role,
        jobs,
        "Job names are derived at run time from dataset version and backbone (embed-<dataset>-<hash>); the jobs can run only as this customer's job role, the only role iam:PassRole allows.",
      );
    }
    const jobRole = this.embedJob.role;
    acknowledgeWildcard(jobRole, objects, objectsReason);
    acknowledgeWildcard(
      jobRole,
      "Resource::*",
      "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource-level form; PutMetricData is limited to SageMaker's namespace by condition. No S3 or KMS action has a wildcard resource.",
    );
    const sagemakerLogs = "log-group:/aws/sagemaker/ProcessingJobs";
    acknowledgeWildcard(
      jobRole,
      formattedArnFinding(this, "logs", `${sagemakerLogs}:*`),
      "SageMaker writes every processing job's logs to the fixed group /aws/sagemaker/ProcessingJobs; the role may only create it and describe its streams.",
    );
    acknowledgeWildcard(
      jobRole,
      formattedArnFinding(this, "logs", `${sagemakerLogs}:log-stream:${jobNamePrefix(customer)}*`),
      "Log streams are named <job>/<instance>; writing is limited to streams of embedding jobs.",
    );
    // The custom resource CDK adds to configure the bucket's notifications (deploy time only).
    const notifications = this.node.tryFindChild(
      "BucketNotificationsHandler050a0587b7544547bf325f094a3db834",
    );
    if (notifications) {
      Validations.of(notifications).acknowledge({
        id: "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
        reason:
          "CDK's bucket-notification custom resource (runs only during deployment) logs with the basic execution policy.",
      });
    }
  }
}
