import { Stack, type StackProps, Tags } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { CustomerData } from "./customer-data.ts";

export interface HeadstartStackProps extends StackProps {
  customer: string;
}

/** Everything one customer gets, isolated from every other customer's stack. */
export class HeadstartStack extends Stack {
  readonly data: CustomerData;

  constructor(scope: Construct, id: string, props: HeadstartStackProps) {
    super(scope, id, props);
    Tags.of(this).add("headstart:customer", props.customer);
    this.data = new CustomerData(this, "Data", { customer: props.customer });
  }
}
