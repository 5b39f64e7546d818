/**
 * Webhook deliveries left pending (an endpoint down while a Lambda emitted, within its 5 s) are
 * retried without anyone: an EventBridge schedule runs the webhook-retry Lambda every minute,
 * which continues the due ones (functions/webhook-retry/handler.ts).
 */
import { Duration } from "aws-cdk-lib";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import { Construct } from "constructs";

export const WEBHOOK_RETRY_RATE = Duration.minutes(1);

export class WebhookRetrySchedule extends Construct {
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: { customer: string; handler: lambda.IFunction }) {
    super(scope, id);
    this.rule = new events.Rule(this, "Schedule", {
      description: `headstart ${props.customer}: retry pending webhook deliveries`,
      schedule: events.Schedule.rate(WEBHOOK_RETRY_RATE),
      // A missed run is made up by the next one a minute later: no retries of the schedule itself.
      targets: [new targets.LambdaFunction(props.handler, { retryAttempts: 0 })],
    });
  }
}
