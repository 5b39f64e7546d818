/**
 * The customer's own EventBridge bus, `headstart-<customer>`: the platform's events (the webhook
 * payload as `detail`, its type as `detail-type`, source `headstart`) are put on it by the
 * functions that cause them (shared/aws/eventbridge-publisher.ts), so the customer's rules can
 * route them to queues, Step Functions or other accounts without a webhook endpoint.
 */
import * as events from "aws-cdk-lib/aws-events";
import type * as iam from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

export const eventBusName = (customer: string) => `headstart-${customer}`;

export class CustomerEventBus extends Construct {
  readonly bus: events.EventBus;

  constructor(scope: Construct, id: string, props: { customer: string }) {
    super(scope, id);
    this.bus = new events.EventBus(this, "Bus", {
      eventBusName: eventBusName(props.customer),
      description: `headstart events of customer ${props.customer} (dataset.*, head.*, batch.*)`,
    });
  }

  /** `events:PutEvents` on this bus only. */
  grantPut(role: iam.IGrantable): void {
    this.bus.grantPutEventsTo(role);
  }
}
