/**
 * The customers file: one entry per customer, each deployed as its own isolated stack
 * `headstart-<id>`. Validated with zod before any construct is built, so a bad entry fails
 * synthesis with a message naming the entry and the field.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { CUSTOMER_ID, CUSTOMER_ID_RULE, tryParseBackboneList } from "../shared/config.ts";

/** CloudWatch Logs accepts only these retention periods. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

export const Customer = z
  .object({
    /** Stack `headstart-<id>`, resource names and tags; lower case so it fits every AWS name rule. */
    id: z
      .string()
      .max(32)
      // The rule HEADSTART_CUSTOMER follows: no customer's job-name prefix is another's.
      .regex(CUSTOMER_ID, CUSTOMER_ID_RULE),
    /** Target account; omitted = the account of the deploying credentials. */
    account: z
      .string()
      .regex(/^\d{12}$/, "a 12-digit AWS account id")
      .optional(),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "an AWS region such as eu-west-1"),
    embed: z
      .object({
        /** SageMaker Processing instance type for the GPU embedding stage. */
        instanceType: z
          .string()
          .regex(/^ml\.[a-z0-9]+\.[a-z0-9]+$/, "a SageMaker instance type such as ml.g5.xlarge"),
        /** Instances per job; more than one shards the stored plans across them. */
        instanceCount: z.number().int().min(1).max(100),
        maxRuntimeSeconds: z
          .number()
          .int()
          .min(60)
          .max(5 * 24 * 3600),
        volumeSizeGb: z.number().int().min(1).max(16_384).default(30),
      })
      .strict(),
    api: z
      .object({
        /** `api-key`: keys (hashed) in a Secrets Manager secret; `iam`: SigV4-signed callers. */
        auth: z.enum(["api-key", "iam"]),
        /** Stage-wide throttling (requests per second, burst). */
        rateLimit: z.number().int().min(1).max(10_000).default(50),
        burstLimit: z.number().int().min(1).max(5_000).default(100),
        /**
         * `api-key` mode: seconds API Gateway caches the authorizer's answer per `x-api-key` value
         * (0 = ask the authorizer on every request, which also accepts `Authorization: Bearer`).
         */
        authorizerCacheTtlSeconds: z.number().int().min(0).max(3600).default(300),
      })
      .strict(),
    settings: z
      .object({
        logRetentionDays: z
          .number()
          .int()
          .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
            message: `one of ${LOG_RETENTION_DAYS.join(", ")}`,
          })
          .default(90),
        logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
        /** Text datasets' backbone when a request names none. */
        defaultBackbone: z.string().min(1).optional(),
        /** Image datasets' backbone when a request names none. */
        defaultImageBackbone: z.string().min(1).optional(),
        /** Audio datasets' backbone when a request names none. */
        defaultAudioBackbone: z.string().min(1).optional(),
        /**
         * What a manifest dropped into the bucket is embedded with, in one batch job: backbone ids
         * separated by commas, or `recommended` (default: the rows' default backbone alone).
         */
        uploadBackbones: z
          .string()
          .refine(
            (v) => tryParseBackboneList(v) !== undefined,
            "1..4 distinct backbone ids separated by commas, or recommended",
          )
          .optional(),
        /** Keep the bucket and key when the stack is deleted (default true: the data is the customer's). */
        retainData: z.boolean().default(true),
        /** Days before old object versions (overwritten manifests, replaced aliases) are deleted. */
        noncurrentVersionDays: z.number().int().min(1).max(3650).default(30),
        /** Alarm notifications go to this address (an SNS email subscription to confirm). */
        alarmEmail: z.email().optional(),
        /** Hours between scheduled drift checks (infra/drift-check.ts); 0 disables the schedule. */
        driftCheckHours: z.number().int().min(0).max(168).default(6),
        /** The scheduled check reads the inputs captured in this many days (HEADSTART_DRIFT_WINDOW_DAYS). */
        driftWindowDays: z.number().int().min(1).max(365).default(7),
      })
      .strict()
      .default({
        logRetentionDays: 90,
        logLevel: "info",
        retainData: true,
        noncurrentVersionDays: 30,
        driftCheckHours: 6,
        driftWindowDays: 7,
      }),
  })
  .strict();
export type Customer = z.infer<typeof Customer>;

export const CustomersFile = z.object({ customers: z.array(z.unknown()).min(1) }).strict();

export class CustomerConfigError extends Error {
  override name = "CustomerConfigError";
}

/** Validates the parsed contents of a customers file; `source` names the file in messages. */
export function parseCustomers(raw: unknown, source = "customers file"): Customer[] {
  const file = CustomersFile.safeParse(raw);
  if (!file.success) {
    const issue = file.error.issues[0];
    throw new CustomerConfigError(
      `${source}: ${issue.path.join(".") || "(top level)"}: ${issue.message} (expected {"customers": [ … ]})`,
    );
  }
  const customers: Customer[] = [];
  file.data.customers.forEach((entry, i) => {
    const id = (entry as { id?: unknown } | null)?.id;
    const label = `customers[${i}]${typeof id === "string" ? ` (${JSON.stringify(id)})` : ""}`;
    const parsed = Customer.safeParse(entry);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = issue.path.join(".") || "(entry)";
      throw new CustomerConfigError(`${source}: ${label}: ${field}: ${issue.message}`);
    }
    const dup = customers.findIndex((c) => c.id === parsed.data.id);
    if (dup >= 0) throw new CustomerConfigError(`${source}: ${label}: id: duplicates customers[${dup}]`);
    customers.push(parsed.data);
  });
  return customers;
}

export function loadCustomers(path: string): Customer[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new CustomerConfigError(`${path}: cannot read the customers file (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CustomerConfigError(`${path}: not JSON (${(err as Error).message})`);
  }
  return parseCustomers(raw, path);
}
