/**
 * The CDK app: one isolated stack `headstart-<id>` per customer in the customers file.
 *
 *   npx cdk synth                         # every customer (offline: no Docker engine needed)
 *   npx cdk synth -c customer=acme        # one customer
 *   npx cdk deploy -c customer=acme       # one customer (needs credentials + bootstrap)
 *   npx cdk deploy --all                  # every customer
 *   -c customers=path/to/customers.json   # another customers file (default infra/customers.json)
 */
import { fileURLToPath } from "node:url";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { CustomerConfigError, loadCustomers } from "./customers.ts";
import { HeadstartStack } from "./stack.ts";

export const DEFAULT_CUSTOMERS_FILE = fileURLToPath(new URL("customers.json", import.meta.url));

export interface BuildOptions {
  /** Run cdk-nag's AwsSolutions checks at synthesis (default true; tests run them explicitly). */
  nag?: boolean;
}

export function buildApp(app = new App(), options: BuildOptions = {}): App {
  const file = app.node.tryGetContext("customers") ?? DEFAULT_CUSTOMERS_FILE;
  const only = app.node.tryGetContext("customer");
  const customers = loadCustomers(String(file));
  const selected = only === undefined ? customers : customers.filter((c) => c.id === String(only));
  if (selected.length === 0) {
    throw new CustomerConfigError(
      `context "customer": no customer ${JSON.stringify(only)} in ${file} (known: ${customers.map((c) => c.id).join(", ")})`,
    );
  }
  for (const customer of selected) new HeadstartStack(app, `headstart-${customer.id}`, { customer });
  if (options.nag !== false) Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return app;
}

if (import.meta.url === `file://${process.argv[1]}`) buildApp().synth();
