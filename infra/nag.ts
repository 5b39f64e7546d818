/**
 * cdk-nag acknowledgements. AwsSolutions-IAM5 reports each wildcard separately (as
 * `Resource::<…>` / `Action::<…>`), so each one is acknowledged by its exact finding with the
 * reason it stays confined to this customer.
 */
import { type CfnElement, Stack, Token, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

/** Acknowledges one IAM5 finding (`Resource::…` or `Action::…`) on `scope` and below. */
export function acknowledgeWildcard(scope: IConstruct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions-IAM5[${finding}]`, reason });
}

/** How cdk-nag prints `<resource ARN>/*` of a resource in this stack: `<LogicalId.Arn>/*`. */
export function attArnFinding(resource: IConstruct, suffix: string): string {
  const cfn = resource.node.defaultChild as CfnElement;
  return `Resource::<${Stack.of(resource).getLogicalId(cfn)}.Arn>${suffix}`;
}

/** How cdk-nag prints an ARN built by `Stack.formatArn`: pseudo parameters as `<AWS::…>`. */
export function formattedArnFinding(stack: Stack, service: string, resource: string): string {
  const show = (v: string, pseudo: string) => (Token.isUnresolved(v) ? `<AWS::${pseudo}>` : v);
  return `Resource::arn:<AWS::Partition>:${service}:${show(stack.region, "Region")}:${show(stack.account, "AccountId")}:${resource}`;
}
