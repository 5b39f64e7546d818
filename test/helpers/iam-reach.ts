/**
 * What a synthesized stack's policies can reach, as ARN patterns, and the ARNs another stack's
 * resources will have once deployed — so a test can show that no statement of one customer's
 * stack covers anything of another's, whatever their ids.
 *
 * Rendering: pseudo parameters become fixed values; a `Ref`/`Fn::GetAtt` of one of the stack's
 * own resources becomes `‹stack:LogicalId›`, which can only name that stack's resource (no ARN
 * contains `‹`). Resources CloudFormation names (no explicit name) get the name it would give them,
 * `<stack>-<logicalid>-<suffix>`, so a pattern such as `headstart-acme*` shows up as covering
 * `headstart-acme-eu-…`.
 */
export const ACCOUNT = "123456789012";

type Template = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

export interface Statement {
  /** Where it comes from: `<LogicalId> (<Type>)`. */
  where: string;
  /** `identity`: a role's policy; `resource`: a key, bucket, queue or topic policy; `permission`: Lambda's. */
  kind: "identity" | "resource" | "permission";
  actions: string[];
  /** Rendered resource patterns (identity) or source ARN (permission). */
  resources: string[];
  /** Rendered condition values, by operator and key. */
  conditions: Array<{ operator: string; key: string; values: string[] }>;
}

function pseudo(name: string, region: string): string | undefined {
  return {
    "AWS::Partition": "aws",
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": region,
    "AWS::URLSuffix": "amazonaws.com",
  }[name];
}

/** A CloudFormation expression as a string; throws on one it cannot render (so none is missed). */
export function render(expr: unknown, stack: string, region: string): string {
  if (typeof expr === "string") {
    return expr.replace(/\$\{(AWS::[A-Za-z]+)\}/g, (m, p: string) => pseudo(p, region) ?? m);
  }
  const e = expr as Record<string, unknown>;
  if (typeof e.Ref === "string") return pseudo(e.Ref, region) ?? `‹${stack}:${e.Ref}›`;
  if (Array.isArray(e["Fn::GetAtt"])) return `‹${stack}:${(e["Fn::GetAtt"] as string[]).join(".")}›`;
  if (Array.isArray(e["Fn::Join"])) {
    const [sep, parts] = e["Fn::Join"] as [string, unknown[]];
    return parts.map((p) => render(p, stack, region)).join(sep);
  }
  if (e["Fn::Sub"] !== undefined) return render(e["Fn::Sub"], stack, region);
  throw new Error(`cannot render ${JSON.stringify(expr)} in ${stack}`);
}

const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function documentStatements(doc: unknown): Array<Record<string, unknown>> {
  return list((doc as { Statement?: unknown } | undefined)?.Statement) as Array<Record<string, unknown>>;
}

/** Every Allow statement of every policy in the template, and every Lambda permission. */
export function statements(template: Template, stack: string, region: string): Statement[] {
  const out: Statement[] = [];
  const r = (v: unknown) => render(v, stack, region);
  for (const [id, res] of Object.entries(template.Resources)) {
    const p = res.Properties ?? {};
    const where = `${id} (${res.Type})`;
    if (res.Type === "AWS::Lambda::Permission") {
      out.push({
        where,
        kind: "permission",
        actions: [String(p.Action)],
        resources: list(p.SourceArn).map(r),
        conditions: [],
      });
      continue;
    }
    const docs: Array<[Statement["kind"], unknown]> = [];
    if (res.Type === "AWS::IAM::Policy") docs.push(["identity", p.PolicyDocument]);
    if (res.Type === "AWS::IAM::Role")
      for (const pol of list(p.Policies))
        docs.push(["identity", (pol as { PolicyDocument: unknown }).PolicyDocument]);
    if (res.Type === "AWS::KMS::Key") docs.push(["resource", p.KeyPolicy]);
    if (/^AWS::(S3::BucketPolicy|SQS::QueuePolicy|SNS::TopicPolicy)$/.test(res.Type))
      docs.push(["resource", p.PolicyDocument]);
    for (const [kind, doc] of docs) {
      for (const s of documentStatements(doc)) {
        if (s.Effect !== "Allow") continue;
        const conditions = Object.entries(
          (s.Condition ?? {}) as Record<string, Record<string, unknown>>,
        ).flatMap(([operator, byKey]) =>
          Object.entries(byKey).map(([key, v]) => ({ operator, key, values: list(v).map(r) })),
        );
        out.push({
          where,
          kind,
          actions: list(s.Action).map(String),
          resources: list(s.Resource).map(r),
          conditions,
        });
      }
    }
  }
  return out;
}

/** The ARNs (and names) the template's resources will have, deployed as stack `stack`. */
export function resourceArns(template: Template, stack: string, region: string, jobs: string[]): string[] {
  const at = `${region}:${ACCOUNT}`;
  const generated = (id: string) => `${stack}-${id.toLowerCase()}-1a2b3c4d5e6f`;
  const name = (id: string, p: Record<string, unknown>, key: string) =>
    typeof p[key] === "string" ? (p[key] as string) : generated(id);
  const out: string[] = [];
  for (const [id, res] of Object.entries(template.Resources)) {
    const p = res.Properties ?? {};
    switch (res.Type) {
      case "AWS::S3::Bucket": {
        const b = name(id, p, "BucketName");
        out.push(
          `arn:aws:s3:::${b}`,
          `arn:aws:s3:::${b}/datasets/reviews/manifest.jsonl`,
          `arn:aws:s3:::${b}/_system/api-keys.json`,
        );
        break;
      }
      case "AWS::KMS::Key":
        out.push(`arn:aws:kms:${at}:key/0c1d2e3f-${stack}`);
        break;
      case "AWS::Lambda::Function":
        out.push(`arn:aws:lambda:${at}:function:${name(id, p, "FunctionName")}`);
        break;
      case "AWS::Logs::LogGroup": {
        const g = name(id, p, "LogGroupName");
        out.push(
          `arn:aws:logs:${at}:log-group:${g}`,
          `arn:aws:logs:${at}:log-group:${g}:log-stream:2026/12/06/x`,
        );
        break;
      }
      case "AWS::SQS::Queue":
        out.push(`arn:aws:sqs:${at}:${name(id, p, "QueueName")}`);
        break;
      case "AWS::SNS::Topic":
        out.push(`arn:aws:sns:${at}:${name(id, p, "TopicName")}`);
        break;
      case "AWS::IAM::Role":
        out.push(`arn:aws:iam::${ACCOUNT}:role/${name(id, p, "RoleName")}`);
        break;
      case "AWS::Events::Rule":
        out.push(`arn:aws:events:${at}:rule/${name(id, p, "Name")}`);
        break;
      case "AWS::ApiGatewayV2::Api":
        out.push(`arn:aws:execute-api:${at}:${stack}api/$default/POST/v1/heads/h/train`);
        break;
    }
  }
  // SageMaker jobs are not resources of the stack, but its functions start them.
  for (const job of jobs) {
    out.push(
      `arn:aws:sagemaker:${at}:processing-job/${job}`,
      `arn:aws:logs:${at}:log-group:/aws/sagemaker/ProcessingJobs:log-stream:${job}/algo-1-1765000000`,
    );
  }
  return out;
}

/** IAM's wildcard matching: `*` any run of characters, `?` one. */
export function covers(pattern: string, arn: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(arn);
}

/**
 * CloudWatch Logs actions whose resource is a log group, never a stream: IAM matches them
 * against group ARNs only, so a `…:log-group:G:*` grant of them does not reach G's streams.
 */
const LOG_GROUP_ACTIONS = /^logs:(CreateLogGroup|DescribeLogStreams|DescribeLogGroups|PutRetentionPolicy)$/;

/** Actions without resource-level permissions, which IAM only grants on `*`. */
const WILDCARD_ONLY = new Set(["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"]);

/**
 * Each way one of `own` statements covers one of `theirs`: a resource pattern or source ARN of
 * an identity statement or Lambda permission, or an ARN-valued condition of a resource policy
 * (whose `*` resource means the key or bucket itself). A `*` resource in an identity statement
 * is reported unless every action is one IAM grants only on `*`.
 */
export function reachViolations(own: Statement[], theirs: string[]): string[] {
  const out: string[] = [];
  for (const s of own) {
    const patterns =
      s.kind === "resource"
        ? s.conditions.flatMap((c) => c.values).filter((v) => v.startsWith("arn:"))
        : s.resources.filter((r) => r !== "*");
    if (s.kind === "identity" && s.resources.includes("*") && !s.actions.every((a) => WILDCARD_ONLY.has(a))) {
      out.push(`${s.where}: ${s.actions.join(",")} on *`);
    }
    const groupLevel = s.actions.every((a) => LOG_GROUP_ACTIONS.test(a));
    const targets = groupLevel ? theirs.filter((arn) => !arn.includes(":log-stream:")) : theirs;
    for (const pattern of patterns) {
      for (const arn of targets) if (covers(pattern, arn)) out.push(`${s.where}: ${pattern} covers ${arn}`);
    }
  }
  return out;
}
