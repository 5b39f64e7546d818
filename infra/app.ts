/**
 * `npx cdk synth -c customer=<id>`: one isolated stack per customer. The compute parts
 * (ingest, SageMaker embedding, train and API Lambdas) are added by the cloud issue; today's
 * stack is the customer's encrypted data plane.
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { NAME_PATTERN, NAME_RULE } from "../shared/layout.ts";
import { HeadstartStack } from "./stack.ts";

export function buildApp(app = new App()): App {
  const customer = app.node.tryGetContext("customer");
  if (typeof customer !== "string" || !NAME_PATTERN.test(customer)) {
    throw new Error(
      `context "customer" is missing or invalid (${NAME_RULE}): npx cdk synth -c customer=<id>`,
    );
  }
  new HeadstartStack(app, `headstart-${customer}`, { customer });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) buildApp().synth();
