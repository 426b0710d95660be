/**
 * DocumentPipeline: the whole product as one construct another CDK app can use:
 * `new DocumentPipeline(this, "Docs", { model: "kimi-k2.6", alarmEmail: "ops@example.com" })`, or with
 * Zhipu GLM as the provider: `{ provider: "glm" }`.
 */
import { type Duration, RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import { Construct } from "constructs";
import { parseMaxContextTokens } from "../functions/core/chat/budget";
import { type ModelPrice, parsePriceTable } from "../functions/core/chat/prices";
import { DEPLOYMENT_ID_PATTERN } from "../functions/core/janitor/ownership";
import { type AuthMode, ChatApi } from "./chat-api";
import {
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_INGEST_CONCURRENCY,
  DEFAULT_JANITOR_SCHEDULE,
  DEFAULT_METRICS_NAMESPACE,
  DEFAULT_RETENTION_HOURS,
} from "./defaults";
import { defaultDeploymentId } from "./deployment-id";
import { DocumentTable, type IndexUpgradeStep } from "./document-table";
import { Ingestion } from "./ingestion";
import { Janitor } from "./janitor";
import { Observability } from "./observability";
import { PROVIDER_NAMES, PROVIDER_PROFILES, type ProviderConnection, type ProviderName } from "./provider";
import { SearchIndex } from "./search-index";
import { PipelineSecrets } from "./secrets";

export interface DocumentPipelineProps {
  /**
   * The model provider: Moonshot (Kimi) or Zhipu GLM. Its key secret, endpoint, default model, account
   * quotas (the janitor's and ingestion's file cap: 1,000 vs 100 files), file rules and error
   * vocabulary all follow.
   * @default "moonshot"
   */
  readonly provider?: ProviderName;
  /**
   * Default chat model (callers may ask for another per request).
   * @default - the provider's: "kimi-k2.6" (Moonshot), "glm-4.6" (GLM)
   */
  readonly model?: string;
  /**
   * Prices per model id, USD per million tokens `{ input, cachedInput, output }`, over the published
   * defaults (kimi-k2.5, kimi-k2.6): the cost of each answer and the ChatCostUsd metric use them.
   * @default - the published prices
   */
  readonly modelPrices?: Record<string, ModelPrice>;
  /**
   * Most tokens of document text per answer when a request sets none (whole number >= 1000; the
   * model's window caps it). The README's "What an answer costs" explains the default.
   * @default 32768
   */
  readonly maxContextTokens?: number;
  /**
   * Provider API base URL (https). Moonshot: https://api.moonshot.cn/v1 for the China platform; GLM:
   * https://api.z.ai/api/paas/v4 for the international one.
   * @default - the provider's: "https://api.moonshot.ai/v1", "https://open.bigmodel.cn/api/paas/v4"
   */
  readonly providerBaseUrl?: string;
  /**
   * Context windows (tokens) of the models the chat API offers, for GLM, which publishes no model list
   * (Moonshot's come from its API: not allowed with provider moonshot).
   * @default - glm-4.6 200,000; glm-4.5, glm-4.5-air, glm-4.5-x, glm-4.5-airx, glm-4.5-flash and glm-4-32b-0414-128k 128,000
   */
  readonly models?: Readonly<Record<string, number>>;
  /**
   * An existing bucket to ingest (its ObjectCreated/ObjectRemoved notifications are added).
   * @default - a new bucket: public access blocked, SSL only, SSE-S3, versioned, access-logged
   */
  readonly bucket?: IBucket;
  /**
   * An existing documents table with the layout of functions/core/documents/table.ts.
   * @default - a new on-demand table with point-in-time recovery
   */
  readonly table?: ITable;
  /**
   * Upgrade step of a table deployed with the unsharded indexes (see DocumentTableProps.indexUpgradeStep;
   * ignored with `table`).
   * @default - no upgrade in progress
   */
  readonly tableIndexUpgradeStep?: IndexUpgradeStep;
  /**
   * Hours a ready document's remote file is kept before the janitor deletes it (1..8760).
   * @default 24
   */
  readonly retentionHours?: number;
  /**
   * Fraction of the provider's file-count and byte quotas to stay under, in (0, 1].
   * @default 0.9
   */
  readonly highWaterMark?: number;
  /**
   * Most concurrent ingest invocations (2..1000, the SQS event source limits); match it to the provider
   * account's concurrency tier.
   * @default 2
   */
  readonly ingestConcurrency?: number;
  /**
   * How often the janitor sweeps (whole minutes, 1 minute..1 day).
   * @default Duration.hours(1)
   */
  readonly janitorSchedule?: Duration;
  /**
   * Authentication of the chat API.
   * @default { mode: "token" } (a bearer token generated at deploy, in Secrets Manager)
   */
  readonly auth?: AuthMode;
  /**
   * Chat API stage throttling for the whole API.
   * @default { rateLimit: 25, burstLimit: 50 }
   */
  readonly throttle?: { readonly rateLimit?: number; readonly burstLimit?: number };
  /**
   * Names this deployment's remote files at the provider (`kdp-<deploymentId>-...`): the janitor and
   * the quota room maker delete only files so named (or known to the table), so other applications or
   * stacks sharing the Moonshot API key keep theirs. 4-24 lower-case letters and digits; set it only
   * to keep a fixed id (e.g. when replacing a stack that keeps its table), and never share it.
   * @default - derived from the stack's id and this construct's path (lib/deployment-id.ts)
   */
  readonly deploymentId?: string;
  /**
   * Retention of every log group (functions and API access log).
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Removal policy of the stateful resources (bucket, table, secrets, log groups). RETAIN keeps the
   * documents and their text when the stack is deleted; DESTROY deletes them (buckets are emptied).
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * E-mail address subscribed to the alarm topic.
   * @default - no subscription
   */
  readonly alarmEmail?: string;
  /**
   * CloudWatch namespace of the functions' metrics.
   * @default "KimiDocPipeline"
   */
  readonly metricsNamespace?: string;
  /**
   * Serve the web console from the chat API (public GET / and /assets/*; data routes stay
   * authenticated). See ChatApiProps.webConsole.
   * @default true
   */
  readonly webConsole?: boolean;
  /**
   * Key prefix presigned uploads (POST /uploads, the web console) are confined to, e.g. "uploads/";
   * the chat function may write objects only there. Folders joined by "/", ending in "/".
   * @default "" (the whole bucket)
   */
  readonly uploadPrefix?: string;
  /**
   * Origins allowed to PUT presigned uploads from a browser into a bucket this construct creates (CORS).
   * @default - the region's API Gateway origins (https://*.execute-api.<region>.amazonaws.com)
   */
  readonly browserUploadOrigins?: string[];
  /**
   * Create the account-level API Gateway logging role (see ChatApiProps.cloudWatchRole).
   * @default true
   */
  readonly apiGatewayCloudWatchRole?: boolean;
}

/** Thrown at synth for props that cannot work; the message says which prop and why. */
export class DocumentPipelinePropsError extends Error {
  override name = "DocumentPipelinePropsError";
}

function isHttpsUrl(text: unknown): boolean {
  if (typeof text !== "string") return false;
  try {
    return new URL(text).protocol === "https:";
  } catch {
    return false;
  }
}

/** Checks props before anything is created. Exported for tests and for apps that validate early. */
export function validateDocumentPipelineProps(props: DocumentPipelineProps): void {
  const fail = (message: string): never => {
    throw new DocumentPipelinePropsError(`DocumentPipeline: ${message}`);
  };
  const { model, providerBaseUrl, retentionHours, highWaterMark, ingestConcurrency, janitorSchedule, auth } =
    props;
  const provider = props.provider ?? "moonshot";
  if (!(PROVIDER_NAMES as readonly string[]).includes(provider)) {
    fail(
      `provider must be one of ${PROVIDER_NAMES.map((n) => `"${n}"`).join(", ")}, got ${JSON.stringify(provider)}`,
    );
  }
  const profile = PROVIDER_PROFILES[provider] ?? PROVIDER_PROFILES.moonshot;
  const modelId = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
  if (model !== undefined && !modelId.test(model)) {
    fail(`model must be a model id such as "${profile.defaultModel}", got ${JSON.stringify(model)}`);
  }
  if (props.maxContextTokens !== undefined) {
    try {
      parseMaxContextTokens(props.maxContextTokens, "maxContextTokens");
    } catch (err) {
      fail((err as Error).message);
    }
  }
  if (props.modelPrices !== undefined) {
    try {
      parsePriceTable(props.modelPrices, "modelPrices");
    } catch (err) {
      fail((err as Error).message);
    }
  }
  if (providerBaseUrl !== undefined && !isHttpsUrl(providerBaseUrl)) {
    fail(
      `providerBaseUrl must be an https URL such as "${profile.defaultBaseUrl}", got ${JSON.stringify(providerBaseUrl)}`,
    );
  }
  if (props.models !== undefined) {
    if (provider !== "glm") {
      fail("models is for provider glm (Moonshot lists its models and their windows itself)");
    }
    const entries = Object.entries(props.models);
    if (entries.length === 0) fail("models must name at least one model");
    for (const [id, tokens] of entries) {
      if (!modelId.test(id)) fail(`models: ${JSON.stringify(id)} is not a model id`);
      if (!(Number.isInteger(tokens) && tokens >= 1024)) {
        fail(`models: the window of ${id} must be a whole number of tokens (at least 1024), got ${tokens}`);
      }
    }
    const windows = { ...profile.models, ...props.models };
    if (model !== undefined && !(model in props.models) && !(model in windows)) {
      fail(`model ${JSON.stringify(model)} is not among models (${entries.map(([id]) => id).join(", ")})`);
    }
  }
  if (
    retentionHours !== undefined &&
    !(Number.isFinite(retentionHours) && retentionHours >= 1 && retentionHours <= 8760)
  ) {
    fail(`retentionHours must be a number of hours from 1 to 8760, got ${retentionHours}`);
  }
  if (
    highWaterMark !== undefined &&
    !(Number.isFinite(highWaterMark) && highWaterMark > 0 && highWaterMark <= 1)
  ) {
    fail(
      `highWaterMark must be a fraction in (0, 1] of the provider quotas (e.g. 0.9), got ${highWaterMark}`,
    );
  }
  if (
    ingestConcurrency !== undefined &&
    !(Number.isInteger(ingestConcurrency) && ingestConcurrency >= 2 && ingestConcurrency <= 1000)
  ) {
    fail(
      `ingestConcurrency must be an integer from 2 to 1000 (SQS event source maxConcurrency), got ${ingestConcurrency}`,
    );
  }
  if (janitorSchedule !== undefined) {
    const seconds = janitorSchedule.toSeconds();
    if (!(seconds >= 60 && seconds <= 86_400 && seconds % 60 === 0)) {
      fail(
        `janitorSchedule must be whole minutes from 1 minute to 1 day, got ${janitorSchedule.toHumanString()}`,
      );
    }
  }
  if (auth !== undefined) {
    if (auth.mode === "jwt") {
      if (!isHttpsUrl(auth.issuer)) {
        fail(`auth.issuer must be the https URL of an OIDC issuer, got ${JSON.stringify(auth.issuer)}`);
      }
      if (!auth.audience?.length) {
        fail(
          "auth.audience is required in JWT mode (the app client id, or the API's audience): without it any token the issuer minted for any application would pass",
        );
      }
      if (auth.audience?.some((a) => a.trim() === "" || a.includes(","))) {
        fail("auth.audience entries must be non-empty and contain no commas");
      }
      if (auth.tenantClaim !== undefined && !/^[A-Za-z0-9_:.-]{1,128}$/.test(auth.tenantClaim)) {
        fail(
          `auth.tenantClaim must be a claim name such as "custom:tenant", got ${JSON.stringify(auth.tenantClaim)}`,
        );
      }
      if (auth.tokenUse?.some((u) => u !== "id" && u !== "access") || auth.tokenUse?.length === 0) {
        fail(`auth.tokenUse must list "id" and/or "access", got ${JSON.stringify(auth.tokenUse)}`);
      }
    } else if (auth.mode !== "token") {
      fail(`auth.mode must be "token" or "jwt", got ${JSON.stringify((auth as { mode: unknown }).mode)}`);
    }
  }
  for (const origin of props.browserUploadOrigins ?? []) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin) || (origin.match(/\*/g) ?? []).length > 1) {
      fail(
        `browserUploadOrigins entries must be origins like "https://docs.example.com" (at most one *), got ${JSON.stringify(origin)}`,
      );
    }
  }
  if (
    props.uploadPrefix !== undefined &&
    props.uploadPrefix !== "" &&
    !/^([A-Za-z0-9!_.*'()-]+\/)+$/.test(props.uploadPrefix)
  ) {
    fail(
      `uploadPrefix must be folders ending in "/" (letters, digits, !_.*'()-), such as "uploads/", got ${JSON.stringify(props.uploadPrefix)}`,
    );
  }
  if (props.uploadPrefix?.split("/").some((s) => s === "." || s === "..")) {
    fail(`uploadPrefix must not contain "." or ".." segments, got ${JSON.stringify(props.uploadPrefix)}`);
  }
  if (props.deploymentId !== undefined && !DEPLOYMENT_ID_PATTERN.test(props.deploymentId)) {
    fail(
      `deploymentId must be 4-24 lower-case letters and digits, got ${JSON.stringify(props.deploymentId)}`,
    );
  }
  if (props.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.alarmEmail)) {
    fail(`alarmEmail must be an e-mail address, got ${JSON.stringify(props.alarmEmail)}`);
  }
}

/** The document pipeline: secrets, table, ingestion, chat API, janitor, alarms and dashboard. */
export class DocumentPipeline extends Construct {
  /** The provider key secret (fill after deploy) and the generated API token secret. */
  public readonly secrets: PipelineSecrets;
  /** The documents table. */
  public readonly table: ITable;
  /** Bucket, queue, DLQ and ingest function. */
  public readonly ingestion: Ingestion;
  /** REST API, chat and authorizer functions. */
  public readonly chatApi: ChatApi;
  /** Scheduled janitor. */
  public readonly janitor: Janitor;
  /** The search index: its bucket, wake-up queue, indexer function and schedule. */
  public readonly searchIndex: SearchIndex;
  /** Alarm topic and dashboard. */
  public readonly observability: Observability;
  /** The model provider, its key secret and endpoint, as handed to the functions. */
  public readonly provider: ProviderConnection;
  /** Names this deployment's remote files (`kdp-<id>-...`); a token resolved at deploy by default. */
  public readonly deploymentId: string;

  constructor(scope: Construct, id: string, props: DocumentPipelineProps = {}) {
    super(scope, id);
    validateDocumentPipelineProps(props);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const metricsNamespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const highWaterMark = props.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    const providerName = props.provider ?? "moonshot";
    const profile = PROVIDER_PROFILES[providerName];
    const auth = props.auth ?? { mode: "token" as const };

    this.secrets = new PipelineSecrets(this, "Secrets", {
      provider: providerName,
      createApiToken: auth.mode === "token",
      removalPolicy,
    });
    this.provider = {
      name: providerName,
      apiKey: this.secrets.providerApiKey,
      baseUrl: props.providerBaseUrl ?? profile.defaultBaseUrl,
      // Configured windows extend the profile's table (a model of the table can be resized).
      models: providerName === "glm" && props.models ? { ...profile.models, ...props.models } : undefined,
    };
    this.table =
      props.table ??
      new DocumentTable(this, "Documents", { removalPolicy, indexUpgradeStep: props.tableIndexUpgradeStep })
        .table;
    const deploymentId = props.deploymentId ?? defaultDeploymentId(this);
    this.deploymentId = deploymentId;
    this.ingestion = new Ingestion(this, "Ingestion", {
      table: this.table,
      deploymentId,
      bucket: props.bucket,
      provider: this.provider,
      highWaterMark,
      concurrency: props.ingestConcurrency ?? DEFAULT_INGEST_CONCURRENCY,
      browserUploadOrigins: props.browserUploadOrigins,
      removalPolicy,
      logRetention,
      metricsNamespace,
    });
    this.chatApi = new ChatApi(this, "ChatApi", {
      table: this.table,
      bucket: this.ingestion.bucket,
      provider: this.provider,
      apiToken: this.secrets.apiToken,
      auth,
      model: props.model ?? profile.defaultModel,
      modelPrices: props.modelPrices,
      maxContextTokens: props.maxContextTokens,
      throttle: props.throttle,
      cloudWatchRole: props.apiGatewayCloudWatchRole,
      webConsole: props.webConsole,
      uploadPrefix: props.uploadPrefix,
      removalPolicy,
      logRetention,
      metricsNamespace,
    });
    this.janitor = new Janitor(this, "Janitor", {
      table: this.table,
      deploymentId,
      provider: this.provider,
      schedule: props.janitorSchedule ?? DEFAULT_JANITOR_SCHEDULE,
      retentionHours: props.retentionHours ?? DEFAULT_RETENTION_HOURS,
      highWaterMark,
      stuckProcessingAfter: this.ingestion.processingBound,
      removalPolicy,
      logRetention,
      metricsNamespace,
    });
    this.searchIndex = new SearchIndex(this, "SearchIndex", {
      table: this.table,
      removalPolicy,
      logRetention,
      metricsNamespace,
    });
    this.searchIndex.grantWake(this.ingestion.function);
    this.searchIndex.grantRead(this.chatApi.function);
    this.observability = new Observability(this, "Observability", {
      ingestion: this.ingestion,
      searchIndex: this.searchIndex,
      chatApi: this.chatApi,
      janitor: this.janitor,
      highWaterMark,
      metricsNamespace,
      alarmEmail: props.alarmEmail,
    });
  }

  /** Base URL of the chat API (stage included). */
  get apiUrl(): string {
    return this.chatApi.url;
  }
}
