/**
 * The stack `bin/app.ts` deploys: one DocumentPipeline, configured from CDK context so common settings
 * need no code change (`npx cdk deploy -c model=kimi-k2.6 -c alarmEmail=ops@example.com`, or
 * `-c provider=glm` for Zhipu GLM).
 */
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import { RetentionDays } from "aws-cdk-lib/aws-logs";
import { Bucket } from "aws-cdk-lib/aws-s3";
import type { Construct, Node } from "constructs";
import { type ModelPrice, parsePriceTable } from "../functions/core/chat/prices";
import { parseModelWindows } from "../functions/core/provider/profiles";
import type { AuthMode } from "./chat-api";
import {
  DocumentPipeline,
  type DocumentPipelineProps,
  DocumentPipelinePropsError,
} from "./document-pipeline";
import type { IndexUpgradeStep } from "./document-table";
import { PROVIDER_PROFILES, type ProviderName } from "./provider";

export interface PipelineStackProps extends StackProps {
  /**
   * Pipeline props; when given, CDK context is not read.
   * @default - read from CDK context (see pipelinePropsFromContext)
   */
  readonly pipeline?: DocumentPipelineProps;
}

/**
 * Context keys read by pipelinePropsFromContext (all optional):
 * provider (moonshot|glm), model, modelPrices (JSON), maxContextTokens, providerBaseUrl, models (glm:
 * id=tokens,...), retentionHours, highWaterMark, ingestConcurrency, janitorScheduleMinutes, authMode
 * (token|jwt), jwtIssuer, jwtAudience (comma-separated, required with jwt), jwtTenantClaim, jwtTokenUse
 * (id,access), logRetentionDays, removalPolicy (retain|destroy), alarmEmail, bucketName (ingest an
 * existing bucket), metricsNamespace, deploymentId, uploadPrefix, tableIndexUpgradeStep (1|2|3, see
 * DocumentTableProps.indexUpgradeStep).
 */
export const CONTEXT_KEYS = [
  "provider",
  "model",
  "modelPrices",
  "maxContextTokens",
  "providerBaseUrl",
  "models",
  "retentionHours",
  "highWaterMark",
  "ingestConcurrency",
  "janitorScheduleMinutes",
  "authMode",
  "jwtIssuer",
  "jwtAudience",
  "jwtTenantClaim",
  "jwtTokenUse",
  "logRetentionDays",
  "removalPolicy",
  "alarmEmail",
  "bucketName",
  "metricsNamespace",
  "deploymentId",
  "uploadPrefix",
  "tableIndexUpgradeStep",
] as const;

/** Builds DocumentPipeline props from CDK context (`-c key=value` or cdk.json "context"). */
export function pipelinePropsFromContext(scope: Construct): DocumentPipelineProps {
  const node: Node = scope.node;
  const str = (key: string): string | undefined => {
    const value = node.tryGetContext(key);
    if (value === undefined || value === null || value === "") return undefined;
    return String(value);
  };
  const num = (key: string): number | undefined => {
    const text = str(key);
    if (text === undefined) return undefined;
    const value = Number(text);
    if (!Number.isFinite(value))
      throw new DocumentPipelinePropsError(`context ${key} must be a number, got "${text}"`);
    return value;
  };

  let auth: AuthMode | undefined;
  const authMode = str("authMode");
  if (authMode === "jwt") {
    const issuer = str("jwtIssuer");
    if (!issuer)
      throw new DocumentPipelinePropsError("context authMode=jwt needs jwtIssuer (the OIDC issuer URL)");
    const audience = str("jwtAudience")
      ?.split(",")
      .map((a) => a.trim())
      .filter(Boolean);
    if (!audience?.length)
      throw new DocumentPipelinePropsError(
        "context authMode=jwt needs jwtAudience (the app client id): without it any token the issuer minted for any application would pass",
      );
    const tokenUse = str("jwtTokenUse")
      ?.split(",")
      .map((a) => a.trim())
      .filter(Boolean) as ("id" | "access")[] | undefined;
    auth = { mode: "jwt", issuer, audience, tenantClaim: str("jwtTenantClaim"), tokenUse };
  } else if (authMode === "token" || authMode === undefined) {
    auth = authMode ? { mode: "token" } : undefined;
  } else {
    throw new DocumentPipelinePropsError(`context authMode must be "token" or "jwt", got "${authMode}"`);
  }

  const removal = str("removalPolicy")?.toLowerCase();
  if (removal !== undefined && removal !== "retain" && removal !== "destroy") {
    throw new DocumentPipelinePropsError(
      `context removalPolicy must be "retain" or "destroy", got "${removal}"`,
    );
  }
  const logDays = num("logRetentionDays");
  if (logDays !== undefined && !Object.values(RetentionDays).includes(logDays as RetentionDays)) {
    throw new DocumentPipelinePropsError(
      `context logRetentionDays must be a CloudWatch retention (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, ...), got ${logDays}`,
    );
  }
  const upgradeStep = num("tableIndexUpgradeStep");
  if (upgradeStep !== undefined && ![1, 2, 3].includes(upgradeStep)) {
    throw new DocumentPipelinePropsError(
      `context tableIndexUpgradeStep must be 1, 2 or 3, got ${upgradeStep}`,
    );
  }
  const scheduleMinutes = num("janitorScheduleMinutes");
  const pricesJson = str("modelPrices");
  let modelPrices: Record<string, ModelPrice> | undefined;
  if (pricesJson !== undefined) {
    try {
      modelPrices = parsePriceTable(node.tryGetContext("modelPrices"), "context modelPrices");
    } catch (err) {
      throw new DocumentPipelinePropsError((err as Error).message);
    }
  }
  const bucketName = str("bucketName");
  const windows = str("models");
  let models: Record<string, number> | undefined;
  if (windows !== undefined) {
    try {
      models = parseModelWindows(windows);
    } catch (err) {
      throw new DocumentPipelinePropsError(`context models: ${(err as Error).message}`);
    }
  }

  return {
    // Checked with the other props (the message lists the valid providers).
    provider: str("provider")?.toLowerCase() as ProviderName | undefined,
    models,
    model: str("model"),
    modelPrices,
    maxContextTokens: num("maxContextTokens"),
    providerBaseUrl: str("providerBaseUrl"),
    retentionHours: num("retentionHours"),
    highWaterMark: num("highWaterMark"),
    ingestConcurrency: num("ingestConcurrency"),
    janitorSchedule: scheduleMinutes === undefined ? undefined : Duration.minutes(scheduleMinutes),
    auth,
    logRetention: logDays as RetentionDays | undefined,
    removalPolicy:
      removal === undefined
        ? undefined
        : removal === "destroy"
          ? RemovalPolicy.DESTROY
          : RemovalPolicy.RETAIN,
    alarmEmail: str("alarmEmail"),
    metricsNamespace: str("metricsNamespace"),
    deploymentId: str("deploymentId"),
    uploadPrefix: str("uploadPrefix"),
    tableIndexUpgradeStep: upgradeStep as IndexUpgradeStep | undefined,
    bucket: bucketName ? Bucket.fromBucketName(scope, "ExistingDocumentsBucket", bucketName) : undefined,
  };
}

/** One DocumentPipeline plus the outputs a user needs after deploy. */
export class PipelineStack extends Stack {
  /** The pipeline this stack deploys. */
  public readonly pipeline: DocumentPipeline;

  constructor(scope: Construct, id: string, props: PipelineStackProps = {}) {
    // The description names the provider; the props (read from context, in the stack's scope) are
    // checked by DocumentPipeline, so an unknown provider here only falls back to the default's label.
    const chosen = props.pipeline ? props.pipeline.provider : scope.node.tryGetContext("provider");
    const label = (
      PROVIDER_PROFILES[String(chosen ?? "moonshot").toLowerCase() as ProviderName] ??
      PROVIDER_PROFILES.moonshot
    ).label;
    super(scope, id, {
      description: `Document pipeline: S3 -> ${label} Files API -> DynamoDB, with a chat API`,
      ...props,
    });
    this.pipeline = new DocumentPipeline(this, "Pipeline", props.pipeline ?? pipelinePropsFromContext(this));
    const { secrets, ingestion, chatApi, observability } = this.pipeline;
    const profile = PROVIDER_PROFILES[this.pipeline.provider.name];
    // MoonshotApiKeySecretName / GlmApiKeySecretName, and the command that fills it from $MOONSHOT_API_KEY
    // or $GLM_API_KEY.
    const outputName = this.pipeline.provider.name === "glm" ? "Glm" : "Moonshot";

    new CfnOutput(this, "ApiUrl", {
      description: "Chat API base URL (openai client: baseURL = this + 'v1')",
      value: chatApi.url,
    });
    new CfnOutput(this, "DeploymentId", {
      description:
        "Names this stack's remote files at the provider (kdp-<id>-...); its janitor deletes only those",
      value: this.pipeline.deploymentId,
    });
    new CfnOutput(this, "BucketName", {
      description: "Drop documents here",
      value: ingestion.bucket.bucketName,
    });
    new CfnOutput(this, `${outputName}ApiKeySecretName`, {
      description: `Store your ${profile.label} API key in this secret after deploy`,
      value: secrets.providerApiKey.secretName,
    });
    new CfnOutput(this, `Fill${outputName}ApiKeyCommand`, {
      description: `Run once after deploy, with ${profile.env.apiKey} set in your shell`,
      value: `aws secretsmanager put-secret-value --secret-id ${secrets.providerApiKey.secretName} --secret-string "$${profile.env.apiKey}"`,
    });
    if (secrets.apiToken) {
      new CfnOutput(this, "ApiTokenSecretName", {
        description: "The chat API bearer token (generated at deploy) is in this secret",
        value: secrets.apiToken.secretName,
      });
      new CfnOutput(this, "GetApiTokenCommand", {
        description: "Prints the chat API bearer token",
        value: `aws secretsmanager get-secret-value --secret-id ${secrets.apiToken.secretName} --query SecretString --output text`,
      });
    }
    new CfnOutput(this, "AlarmTopicArn", { value: observability.alarmTopic.topicArn });
    new CfnOutput(this, "DashboardName", { value: observability.dashboard.dashboardName });
  }
}
