/** Where the customer's alarms go: an encrypted SNS topic, optionally with an email subscription. */
import { Stack } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subscriptions from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";

export interface MonitoringProps {
  customer: string;
  key: kms.Key;
  alarmEmail?: string;
}

export class Monitoring extends Construct {
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, "Alarms", {
      displayName: `headstart ${props.customer} alarms`,
      masterKey: props.key,
      enforceSSL: true,
    });
    // CloudWatch publishes alarm notifications to the encrypted topic with this key, for this
    // account's alarms only.
    props.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: "CloudWatchAlarmsPublishToEncryptedTopic",
        principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
        conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
  }
}
