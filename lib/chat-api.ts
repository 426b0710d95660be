/**
 * Chat API: a REST API whose every route is proxied to one chat function with response streaming,
 * behind a Lambda authorizer.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { Annotations, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import {
  AccessLogField,
  AccessLogFormat,
  AuthorizationType,
  EndpointType,
  LambdaIntegration,
  LogGroupLogDestination,
  type Method,
  MethodLoggingLevel,
  ResponseTransferMode,
  ResponseType,
  RestApi,
  TokenAuthorizer,
} from "aws-cdk-lib/aws-apigateway";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { AttributeType, Billing, type ITable, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { MCP_SERVER_BUNDLE } from "../functions/chat/mcp/bundle";
import { DEFAULT_MAX_CONTEXT_TOKENS } from "../functions/core/chat/budget";
import type { ModelPrice } from "../functions/core/chat/prices";
import { ENV } from "../functions/core/config";
import { DEFAULT_CHAT_TIMEOUT, DEFAULT_METRICS_NAMESPACE, SERVICE_NAMES } from "./defaults";
import { houseBundleCommand, PipelineFunction, PROJECT_ROOT } from "./function";
import { acknowledge } from "./nag";
import { type ProviderConnection, profileOf } from "./provider";

/**
 * How callers authenticate. Both modes use the same Lambda authorizer (TOKEN type, identity source the
 * Authorization header, `Bearer <token>`), so every route works with curl and with the `openai`
 * client's apiKey:
 * - `token`: the bearer must equal the API token secret generated at deploy.
 * - `jwt`: the bearer must be a JWT signed by `issuer` (keys from its OIDC discovery document /
 *   JWKS), with `aud` in `audience` when given. Works with Cognito and any OIDC provider; a Cognito
 *   user-pool authorizer would tie the API to Cognito only.
 */
export type AuthMode =
  | { mode: "token" }
  | {
      mode: "jwt";
      issuer: string;
      /** Required: the app client id(s) or API audience(s) tokens must be minted for. */
      audience: string[];
      /**
       * A claim whose value is the caller's key prefix (e.g. "custom:tenant"): each user then sees only
       * that tenant's documents; a token without it is refused. Unset: every valid token sees all.
       */
      tenantClaim?: string;
      /** Accepted Cognito `token_use` values. @default ["id", "access"] */
      tokenUse?: ("id" | "access")[];
    };

export interface ChatApiProps {
  /** The documents table (read only). */
  readonly table: ITable;
  /** The documents bucket (DELETE /documents/{id} deletes the object; uploads are presigned PUTs). */
  readonly bucket: IBucket;
  /** The model provider: which one, its key secret, its endpoint and (GLM) its model windows. */
  readonly provider: ProviderConnection;
  /** Bearer-token secret; required in token mode. */
  readonly apiToken?: ISecret;
  /**
   * Authentication mode.
   * @default { mode: "token" }
   */
  readonly auth?: AuthMode;
  /**
   * Default chat model.
   * @default - the provider's (kimi-k2.6 for Moonshot, glm-4.6 for GLM)
   */
  readonly model?: string;
  /**
   * Prices per model id (USD per million tokens) for the cost of each answer (`usage.costUsd`, the
   * ChatCostUsd metric), over the published defaults; a model without a price reports cost null.
   * @default - the published prices of kimi-k2.5 and kimi-k2.6
   */
  readonly modelPrices?: Record<string, ModelPrice>;
  /**
   * Most tokens of document text per answer when a request sets none; requests may ask for more
   * (`maxContextTokens`), and the model's window caps both.
   * @default 32768
   */
  readonly maxContextTokens?: number;
  /**
   * Stage throttling: steady requests per second and burst, for the whole API.
   * @default { rateLimit: 25, burstLimit: 50 }
   */
  readonly throttle?: { readonly rateLimit?: number; readonly burstLimit?: number };
  /**
   * Key prefix presigned uploads (`POST /uploads`, the web console) are confined to, e.g. "uploads/":
   * the chat function gets s3:PutObject only there. Scoped API keys then upload under
   * `<uploadPrefix><their prefix>` only if their prefix lies inside it.
   * @default "" (the whole bucket)
   */
  readonly uploadPrefix?: string;
  /**
   * Chat function timeout, also the integration timeout (streamed responses may run up to 15 min).
   * @default Duration.minutes(10)
   */
  readonly timeout?: Duration;
  /**
   * Chat function memory (MB); context assembly ranks many chunks in memory.
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * How long an authorizer decision is cached per token.
   * @default Duration.minutes(5)
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * Stage name (the first path segment of the URL).
   * @default "prod"
   */
  readonly stageName?: string;
  /**
   * Serve the web console (functions/chat/routes/console.ts): `GET /` and `GET /assets/{proxy+}` are
   * public (the page is a sign-in form and holds no data; every data route stays behind the
   * authorizer), and the built console (web/dist, `npm run build:web`) is copied into the chat bundle.
   * When false, every method requires the authorizer.
   * @default true
   */
  readonly webConsole?: boolean;
  /**
   * Create the account-level role that lets API Gateway write logs (AWS::ApiGateway::Account). Access
   * and execution logs need it. Set false when the account already has one configured (it is one
   * setting per account and region; the last stack to set it wins).
   * @default true
   */
  readonly cloudWatchRole?: boolean;
  /**
   * Log retention of the functions and the access log group.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Removal policy of the log groups.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Powertools metrics namespace.
   * @default "KimiDocPipeline"
   */
  readonly metricsNamespace?: string;
}

/** Built web console (vite build web): copied to <bundle>/console, where the chat function looks. */
export const WEB_CONSOLE_DIST = path.join(PROJECT_ROOT, "web", "dist");

const copyWebConsole = (inputDir: string, outputDir: string): string[] => [
  `if [ -f "${inputDir}/web/dist/index.html" ]; then cp -R "${inputDir}/web/dist" "${outputDir}/console"; fi`,
];

/** Source of the MCP server module, bundled on its own next to the chat bundle. */
export const MCP_SERVER_ENTRY = path.join("functions", "chat", "mcp", "server.ts");

/**
 * The MCP server and its SDK as a second file of the chat function (functions/chat/mcp/bundle.ts):
 * imported on the first POST /mcp, so the chat function's cold start does not parse the SDK.
 */
export const bundleMcpServer = (inputDir: string, outputDir: string): string[] => [
  houseBundleCommand(
    inputDir,
    path.join(inputDir, MCP_SERVER_ENTRY),
    path.join(outputDir, MCP_SERVER_BUNDLE),
  ),
];

/** The REST API, its chat and authorizer functions, and the API's access log group. */
export class ChatApi extends Construct {
  /** The REST API (regional endpoint; idle timeout of a stream is 5 minutes there, 30 s on edge). */
  public readonly api: RestApi;
  /** The function behind every route (Hono app, streamed responses). */
  public readonly function: PipelineFunction;
  /** The Lambda authorizer's function. */
  public readonly authorizerFunction: PipelineFunction;
  /** The authorizer attached to every method. */
  public readonly authorizer: TokenAuthorizer;
  /** JSON access log of the stage. */
  public readonly accessLogs: LogGroup;
  /**
   * Scoped API keys (token mode): id, prefix, name, SHA-256 of the secret, dates. Managed through the
   * API's admin routes (`kdp keys`); read by the authorizer.
   */
  public readonly keysTable?: TableV2;
  /** Methods deliberately served without the authorizer (GET /openapi.json, web console page and assets). */
  public readonly publicMethods: Method[];
  /** Alarms: 5xx answers from the API. */
  public readonly alarms: Alarm[];

  constructor(scope: Construct, id: string, props: ChatApiProps) {
    super(scope, id);
    const auth = props.auth ?? { mode: "token" };
    const timeout = props.timeout ?? DEFAULT_CHAT_TIMEOUT;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const metricsNamespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const webConsole = props.webConsole ?? true;
    const rateLimit = props.throttle?.rateLimit ?? 25;
    const burstLimit = props.throttle?.burstLimit ?? 50;
    if (timeout.toSeconds() > 900) {
      throw new Error(
        `ChatApi: timeout must be at most 15 minutes (API Gateway streaming limit), got ${timeout.toHumanString()}`,
      );
    }
    if (!(rateLimit > 0) || !Number.isInteger(burstLimit) || burstLimit < 1) {
      throw new Error(
        `ChatApi: throttle needs rateLimit > 0 and an integer burstLimit >= 1, got ${rateLimit}/${burstLimit}`,
      );
    }
    const apiToken = props.apiToken;
    if (auth.mode === "token" && !apiToken) {
      throw new Error("ChatApi: auth mode 'token' needs the apiToken secret");
    }

    if (webConsole && !existsSync(path.join(WEB_CONSOLE_DIST, "index.html"))) {
      Annotations.of(this).addWarningV2(
        "kdp:web-console-not-built",
        "web/dist is missing: the chat function will be bundled without the web console. Run `npm run build:web` (npm run synth does) before deploying.",
      );
    }
    this.function = new PipelineFunction(this, "Function", {
      name: "chat",
      description:
        "Chat API: questions over stored documents, OpenAI-compatible completions, document routes, MCP server",
      serviceName: SERVICE_NAMES.chat,
      metricsNamespace,
      timeout,
      memorySize: props.memorySize ?? 1024,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      afterBundling: (inputDir, outputDir) => [
        ...bundleMcpServer(inputDir, outputDir),
        ...(webConsole ? copyWebConsole(inputDir, outputDir) : []),
      ],
    })
      .bindTable(props.table, "read")
      .bindBucket(props.bucket, { delete: true })
      .bindUploads(props.bucket, props.uploadPrefix ?? "")
      .bindProvider(props.provider, { models: true })
      .bindSettings({
        [ENV.MODEL]: props.model ?? profileOf(props.provider).defaultModel,
        [ENV.MAX_CONTEXT_TOKENS]: String(props.maxContextTokens ?? DEFAULT_MAX_CONTEXT_TOKENS),
        ...(props.modelPrices ? { [ENV.MODEL_PRICES]: JSON.stringify(props.modelPrices) } : {}),
      });
    if (apiToken) this.function.bindSecret(apiToken, ENV.API_TOKEN_SECRET);
    if (auth.mode === "token") {
      this.keysTable = new TableV2(this, "ApiKeys", {
        partitionKey: { name: "id", type: AttributeType.STRING },
        billing: Billing.onDemand(),
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
        removalPolicy,
      });
      this.function.bindKeysTable(this.keysTable, "manage");
    }

    this.authorizerFunction = new PipelineFunction(this, "AuthorizerFunction", {
      name: "authorizer",
      description: "Lambda authorizer of the chat API (bearer token or JWT)",
      serviceName: SERVICE_NAMES.authorizer,
      metricsNamespace,
      timeout: Duration.seconds(10),
      memorySize: 256,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
    });
    if (auth.mode === "token" && apiToken) {
      this.authorizerFunction.bindSecret(apiToken, ENV.API_TOKEN_SECRET);
      if (this.keysTable) this.authorizerFunction.bindKeysTable(this.keysTable, "check");
    } else if (auth.mode === "jwt") {
      if (!auth.audience?.length) {
        throw new Error(
          "ChatApi: auth mode 'jwt' needs an audience (the app client id): without one, any token the issuer minted for any application would pass",
        );
      }
      this.authorizerFunction.bindSettings({
        [ENV.JWT_ISSUER]: auth.issuer,
        [ENV.JWT_AUDIENCE]: auth.audience.join(","),
        ...(auth.tenantClaim ? { [ENV.JWT_TENANT_CLAIM]: auth.tenantClaim } : {}),
        ...(auth.tokenUse?.length ? { [ENV.JWT_TOKEN_USE]: auth.tokenUse.join(",") } : {}),
      });
    }
    this.authorizer = new TokenAuthorizer(this, "Authorizer", {
      handler: this.authorizerFunction,
      identitySource: "method.request.header.Authorization",
      // Malformed headers are refused by API Gateway without invoking (or paying for) the authorizer.
      // (The auth scheme is case-insensitive, RFC 9110; the token is RFC 6750's b64token: API token or JWT.)
      validationRegex: "^[Bb][Ee][Aa][Rr][Ee][Rr] [-0-9A-Za-z._~+/]+=*$",
      resultsCacheTtl: props.authorizerCacheTtl ?? Duration.minutes(5),
    });

    this.accessLogs = new LogGroup(this, "AccessLogs", {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy,
    });
    const cloudWatchRole = props.cloudWatchRole ?? true;
    this.api = new RestApi(this, "Api", {
      // Named after the stack: API Gateway metrics are keyed by this name, and "Api" would be ambiguous.
      restApiName: `${Stack.of(this).stackName}-chat`,
      description: "Kimi document pipeline chat API",
      endpointTypes: [EndpointType.REGIONAL],
      cloudWatchRole,
      cloudWatchRoleRemovalPolicy: cloudWatchRole ? removalPolicy : undefined,
      deployOptions: {
        stageName: props.stageName ?? "prod",
        accessLogDestination: new LogGroupLogDestination(this.accessLogs),
        accessLogFormat: AccessLogFormat.custom(
          JSON.stringify({
            requestId: AccessLogField.contextRequestId(),
            ip: AccessLogField.contextIdentitySourceIp(),
            userAgent: AccessLogField.contextIdentityUserAgent(),
            requestTime: AccessLogField.contextRequestTime(),
            httpMethod: AccessLogField.contextHttpMethod(),
            path: AccessLogField.contextPath(),
            status: AccessLogField.contextStatus(),
            responseLength: AccessLogField.contextResponseLength(),
            responseLatency: AccessLogField.contextResponseLatency(),
            integrationLatency: AccessLogField.contextIntegrationLatency(),
            integrationStatus: AccessLogField.contextIntegrationStatus(),
            authorizerStatus: AccessLogField.contextAuthorizerStatus(),
            authorizerError: AccessLogField.contextAuthorizerError(),
            principalId: AccessLogField.contextAuthorizerPrincipalId(),
            errorMessage: AccessLogField.contextErrorMessage(),
            xrayTraceId: AccessLogField.contextXrayTraceId(),
          }),
        ),
        throttlingRateLimit: rateLimit,
        throttlingBurstLimit: burstLimit,
        tracingEnabled: true,
        metricsEnabled: true,
        // Execution logs for errors only, and never request/response bodies (questions, answers, tokens).
        loggingLevel: MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
      },
      defaultIntegration: new LambdaIntegration(this.function, {
        proxy: true,
        responseTransferMode: ResponseTransferMode.STREAM,
        timeout,
      }),
      defaultMethodOptions: {
        authorizationType: AuthorizationType.CUSTOM,
        authorizer: this.authorizer,
      },
    });
    // One function serves every route (/chat, /v1/chat/completions, /documents..., /health, /uploads, /):
    // ANY on the root and on {proxy+}; routing and validation happen in the function.
    this.api.root.addMethod("ANY");
    this.api.root.addProxy({ anyMethod: true });
    this.publicMethods = [];
    const open = { authorizationType: AuthorizationType.NONE, authorizer: undefined };
    // The API's OpenAPI document (GET /openapi.json) is public, like the console page: it describes the
    // routes and holds no data. An explicit GET takes precedence over {proxy+}.
    const openapiMethod = this.api.root.addResource("openapi.json").addMethod("GET", undefined, open);
    this.publicMethods.push(openapiMethod);
    acknowledge(
      openapiMethod,
      "AwsSolutions-APIG4",
      "Public on purpose: the OpenAPI document of the API (route and schema descriptions, no data); every data route stays behind the Lambda authorizer.",
    );
    acknowledge(
      openapiMethod,
      "AwsSolutions-COG4",
      "Public on purpose: the OpenAPI document is served without any authorizer so tools can read it before they hold a token.",
    );
    if (webConsole) {
      // Explicit GET methods take precedence over ANY / {proxy+}; only the page and its hashed assets
      // are reachable without a token (a browser cannot send the bearer for a page load).
      const consoleMethods: Method[] = [];
      consoleMethods.push(this.api.root.addMethod("GET", undefined, open));
      consoleMethods.push(
        this.api.root.addResource("assets").addResource("{proxy+}").addMethod("GET", undefined, open),
      );
      this.publicMethods.push(...consoleMethods);
      for (const method of consoleMethods) {
        acknowledge(
          method,
          "AwsSolutions-APIG4",
          "Public on purpose: the web console's sign-in page and its content-hashed static assets (no data, no secrets); every data route (/chat, /v1/*, /documents, /uploads, /health) stays behind the Lambda authorizer.",
        );
        acknowledge(
          method,
          "AwsSolutions-COG4",
          "Public on purpose: static web console page and assets served without any authorizer (a browser cannot send the bearer token when loading the page).",
        );
      }
    }

    // Gateway-generated errors (bad token, throttling, body over 10 MB...) in the same JSON envelope as
    // the function's errors, so the openai client shows the message.
    const errorBody = {
      "application/json":
        '{"error":{"type":"$context.error.responseType","message":$context.error.messageString}}',
    };
    this.api.addGatewayResponse("Default4xx", { type: ResponseType.DEFAULT_4XX, templates: errorBody });
    this.api.addGatewayResponse("Default5xx", { type: ResponseType.DEFAULT_5XX, templates: errorBody });
    this.api.addGatewayResponse("Unauthorized", {
      type: ResponseType.UNAUTHORIZED,
      statusCode: "401",
      responseHeaders: { "WWW-Authenticate": "'Bearer'" },
      templates: errorBody,
    });

    acknowledge(
      this.api,
      "AwsSolutions-APIG2",
      "Every route is a Lambda proxy to one function that validates bodies and parameters with a zod schema and answers 4xx JSON errors saying what to fix; an API Gateway model would duplicate that schema with worse messages. Bodies are capped by API Gateway's 10 MB limit and by the function.",
    );
    acknowledge(
      this.api,
      "AwsSolutions-APIG3",
      "No WAF by default (about 5 USD/month plus per-request fees for a small private API): every route needs a bearer token checked by the authorizer and the stage is throttled. Attach a web ACL to the stage when the API is exposed widely.",
    );
    acknowledge(
      this.api,
      "AwsSolutions-COG4",
      "Authorization is a Lambda authorizer (deploy-time bearer token, or JWTs from any OIDC issuer incl. Cognito); a Cognito user-pool authorizer would not support the token mode or non-Cognito issuers.",
    );
    acknowledge(
      this.api,
      "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
      "The account-level API Gateway logging role uses the AWS-documented managed policy for pushing access and execution logs; API Gateway uses it for every API in the region.",
    );

    this.alarms = [
      new Alarm(this, "ServerErrors", {
        alarmDescription:
          "The chat API answered 5xx (function crash, timeout or provider outage); see the access log.",
        metric: this.api.metricServerError({ period: Duration.minutes(5), statistic: "Sum" }),
        threshold: 5,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    ];
  }

  /** The API's base URL (stage included), e.g. https://abc.execute-api.eu-west-1.amazonaws.com/prod/ */
  get url(): string {
    return this.api.url;
  }
}
