/**
 * The customer's HTTP API: the Hono app (one Lambda) behind API Gateway HTTP API. Every route
 * but `GET /health` and the docs requires authentication — this customer's API keys (checked by
 * the authorizer Lambda against the hashes in the bucket's key file, `_system/api-keys.json`;
 * their scopes are checked per route by the app) or IAM (SigV4).
 */
import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import { AccessLogFormat } from "aws-cdk-lib/aws-apigateway";
import * as apigw from "aws-cdk-lib/aws-apigatewayv2";
import * as authorizers from "aws-cdk-lib/aws-apigatewayv2-authorizers";
import * as integrations from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";

export interface HttpApiProps {
  customer: string;
  handler: lambda.IFunction;
  auth: "api-key" | "iam";
  key: kms.IKey;
  logRetentionDays: number;
  /** Keep the access-log group when the stack is deleted (the customer's `retainData`). */
  retainLogs: boolean;
  rateLimit: number;
  burstLimit: number;
  /** Authorizer result cache per `x-api-key` value; 0 turns it off (and admits Bearer keys). */
  authorizerCacheTtlSeconds: number;
}

/**
 * Routes that need no credentials: the health check, the API's own documentation and the web
 * console's page and files (which hold no data: the console signs in with a key and reads through
 * the API like any client).
 */
export const PUBLIC_GET_PATHS = [
  "/health",
  "/openapi.json",
  "/docs",
  "/docs/{proxy+}",
  "/",
  "/console/assets/{proxy+}",
] as const;

export const API_KEY_IDENTITY_SOURCE = "$request.header.x-api-key";

export class CustomerHttpApi extends Construct {
  readonly api: apigw.HttpApi;
  readonly stage: apigw.HttpStage;

  constructor(scope: Construct, id: string, props: HttpApiProps & { authorizer?: lambda.IFunction }) {
    super(scope, id);
    let defaultAuthorizer: apigw.IHttpRouteAuthorizer;
    if (props.auth === "iam") {
      defaultAuthorizer = new authorizers.HttpIamAuthorizer();
    } else {
      if (!props.authorizer) throw new Error("api-key auth needs the authorizer function");
      defaultAuthorizer = new authorizers.HttpLambdaAuthorizer("ApiKeys", props.authorizer, {
        authorizerName: `headstart-${props.customer}-api-keys`,
        responseTypes: [authorizers.HttpLambdaResponseType.SIMPLE],
        // Cached per key header value, so a warm client costs no authorizer call. The answer is
        // the same for every route (the key's scopes travel in its context and the app checks
        // them per route), so a cached answer is never reused for a route it does not fit. API Gateway
        // answers 401 itself when a cached identity source is missing, so with caching the key
        // must come in `x-api-key`; with the cache off (TTL 0) there is no identity source and
        // the authorizer also reads `Authorization: Bearer`.
        identitySource: props.authorizerCacheTtlSeconds > 0 ? [API_KEY_IDENTITY_SOURCE] : [],
        resultsCacheTtl: Duration.seconds(props.authorizerCacheTtlSeconds),
      });
    }
    this.api = new apigw.HttpApi(this, "Api", {
      apiName: `headstart-${props.customer}`,
      description: `headstart inference and training API for customer ${props.customer}`,
      createDefaultStage: false,
      defaultAuthorizer,
    });
    const integration = new integrations.HttpLambdaIntegration("App", props.handler, {
      payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
    });
    // Public: the health check, the API's own description (the OpenAPI document and the Swagger
    // UI page with its assets) and the console's page and assets, which a browser cannot fetch
    // with a key header.
    for (const path of PUBLIC_GET_PATHS) {
      this.api.addRoutes({
        path,
        methods: [apigw.HttpMethod.GET],
        integration,
        authorizer: new apigw.HttpNoneAuthorizer(),
      });
    }
    this.api.addRoutes({ path: "/{proxy+}", methods: [apigw.HttpMethod.ANY], integration });

    const accessLogs = new logs.LogGroup(this, "AccessLogs", {
      logGroupName: `/headstart/${props.customer}/api-access`,
      retention: props.logRetentionDays as logs.RetentionDays,
      encryptionKey: props.key,
      removalPolicy: props.retainLogs ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.stage = new apigw.HttpStage(this, "Stage", {
      httpApi: this.api,
      stageName: "$default",
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit, burstLimit: props.burstLimit },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            time: "$context.requestTime",
            method: "$context.httpMethod",
            path: "$context.path",
            routeKey: "$context.routeKey",
            status: "$context.status",
            latencyMs: "$context.responseLatency",
            integrationError: "$context.integrationErrorMessage",
            authorizerError: "$context.authorizer.error",
            apiKeyId: "$context.authorizer.apiKeyId",
            caller: "$context.identity.caller",
          }),
        ),
      },
    });
    Validations.of(this.api).acknowledge({
      id: "AwsSolutions-APIG4",
      reason:
        "Anonymous GET routes are deliberate and return no customer data: /health (load balancer and uptime checks) and the API's description (/openapi.json, /docs and its static assets) and the web console's page and static assets (/, /console/assets/), which read data only through the API with a key; every other route has the default authorizer.",
    });
  }

  get url(): string {
    return this.api.apiEndpoint;
  }
}
