/**
 * SageMaker Processing job state changes of this customer's embedding jobs → the job-complete
 * Lambda. Jobs are matched by this customer's job role (jobs of other customers in the same
 * account run as other roles) and the runner's name prefix. Failures get a rule of their own
 * so they can be alarmed on (EventBridge counts each rule's matches).
 */
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as cwActions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import type * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import type * as sns from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { jobNamePrefix } from "./embed-job.ts";

export interface JobEventsProps {
  customer: string;
  jobRole: iam.IRole;
  handler: lambda.IFunction;
  alarmTopic: sns.ITopic;
}

export class JobEvents extends Construct {
  readonly finished: events.Rule;
  readonly failed: events.Rule;
  readonly failedAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: JobEventsProps) {
    super(scope, id);
    const pattern = (statuses: string[]): events.EventPattern => ({
      source: ["aws.sagemaker"],
      detailType: ["SageMaker Processing Job State Change"],
      detail: {
        RoleArn: [props.jobRole.roleArn],
        ProcessingJobName: [{ prefix: jobNamePrefix(props.customer) }],
        ProcessingJobStatus: statuses,
      },
    });
    const target = new targets.LambdaFunction(props.handler, {
      retryAttempts: 8,
      maxEventAge: Duration.hours(2),
    });
    this.finished = new events.Rule(this, "Finished", {
      description: `headstart ${props.customer}: embedding job completed or stopped`,
      eventPattern: pattern(["Completed", "Stopped"]),
      targets: [target],
    });
    this.failed = new events.Rule(this, "Failed", {
      description: `headstart ${props.customer}: embedding job failed`,
      eventPattern: pattern(["Failed"]),
      targets: [target],
    });
    this.failedAlarm = new cloudwatch.Alarm(this, "FailedAlarm", {
      alarmDescription: `headstart ${props.customer}: an embedding job failed (see the dataset's job state and the job's logs)`,
      metric: new cloudwatch.Metric({
        namespace: "AWS/Events",
        metricName: "TriggeredRules",
        dimensionsMap: { RuleName: this.failed.ruleName },
        statistic: "Sum",
        period: Duration.minutes(5),
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.failedAlarm.addAlarmAction(new cwActions.SnsAction(props.alarmTopic));
  }
}
