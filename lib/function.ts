/**
 * The house Lambda function: a NodejsFunction with the defaults every function of the pipeline shares
 * (runtime, ARM64, X-Ray, JSON logs in a log group with retention, ESM bundle with source maps built by
 * the local esbuild) and small `bind...()` helpers that pair an environment variable with the
 * least-privilege grant behind it, so a function can never get a name without the right to use it (or
 * the reverse).
 */

import path from "node:path";
import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { type IRole, PolicyStatement, Role, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Architecture, LoggingFormat, Runtime, Tracing } from "aws-cdk-lib/aws-lambda";
import {
  type BundlingOptions,
  NodejsFunction,
  type NodejsFunctionProps,
  OutputFormat,
  SourceMapMode,
} from "aws-cdk-lib/aws-lambda-nodejs";
import { LogGroup, RetentionDays } from "aws-cdk-lib/aws-logs";
import type { IBucket } from "aws-cdk-lib/aws-s3";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { Construct } from "constructs";
import { ENV } from "../functions/core/config";
import { TABLE_KEYS } from "../functions/core/documents/table";
import { acknowledge, wildcardFindingId } from "./nag";
import { formatModelWindows, type ProviderConnection, profileOf } from "./provider";

/** Repository root (one level above lib/), so entries and the lock file resolve from any cwd. */
export const PROJECT_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The four Lambda entry points; each lives at functions/<name>/handler.ts and exports `handler`. */
export type FunctionName = "ingest" | "chat" | "authorizer" | "janitor" | "indexer";

/** Absolute path of a function's entry file. */
export const entryOf = (name: FunctionName): string =>
  path.join(PROJECT_ROOT, "functions", name, "handler.ts");

/**
 * Lambda runtime for every function: the newest Node.js managed runtime aws-cdk-lib knows. esbuild's
 * target follows it (node24), so the bundle keeps modern syntax instead of down-levelling it.
 */
export const RUNTIME = Runtime.NODEJS_24_X;

/**
 * ESM bundles cannot call `require`, but a few CommonJS dependencies bundled into them still do (for
 * example for Node built-ins); this banner gives them a working `require`.
 */
export const ESM_REQUIRE_BANNER =
  "import { createRequire as __kdpCreateRequire } from 'node:module'; const require = __kdpCreateRequire(import.meta.url);";

/**
 * Bundling shared by every function and by bench/cold-start.ts (which rebuilds the same bundles to
 * measure them). The AWS SDK is bundled rather than taken from the runtime: the versions we test are
 * the versions we ship, and tree-shaking keeps only the clients a function uses.
 */
export const HOUSE_BUNDLING = {
  format: OutputFormat.ESM,
  target: "node24",
  minify: true,
  sourceMap: true,
  sourceMapMode: SourceMapMode.DEFAULT,
  sourcesContent: false,
  mainFields: ["module", "main"],
  banner: ESM_REQUIRE_BANNER,
  bundleAwsSDK: true,
  externalModules: [] as string[],
  // Bundle on this machine with the project's esbuild; `cdk synth` must work offline and without Docker.
  forceDockerBundling: false,
} satisfies BundlingOptions;

/**
 * Shell command (for an `afterBundling` hook) that bundles one more entry exactly as HOUSE_BUNDLING
 * bundles a handler, with the project's own esbuild, into `outfile`: a module the function imports
 * on demand instead of carrying it in its main bundle (see the chat function's MCP server).
 */
export function houseBundleCommand(inputDir: string, entry: string, outfile: string): string {
  const b = HOUSE_BUNDLING;
  const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  return [
    q(path.join(inputDir, "node_modules", ".bin", "esbuild")),
    q(entry),
    "--bundle",
    "--platform=node",
    "--format=esm",
    `--target=${b.target}`,
    ...(b.minify ? ["--minify"] : []),
    ...(b.sourceMap ? ["--sourcemap"] : []),
    `--sources-content=${b.sourcesContent}`,
    `--main-fields=${b.mainFields.join(",")}`,
    q(`--banner:js=${b.banner}`),
    ...b.externalModules.map((m) => q(`--external:${m}`)),
    q(`--outfile=${outfile}`),
    "--log-level=warning",
  ].join(" ");
}

/** Environment every function gets, whatever it does. */
const BASE_ENVIRONMENT: Record<string, string> = {
  // Stack traces point at the TypeScript sources (the bundle ships its .map file).
  NODE_OPTIONS: "--enable-source-maps",
  POWERTOOLS_LOG_LEVEL: "INFO",
  // Answers, prompts and authorizer policies must not be copied into X-Ray segments.
  POWERTOOLS_TRACER_CAPTURE_RESPONSE: "false",
};

export interface PipelineFunctionProps
  extends Omit<
    NodejsFunctionProps,
    | "entry"
    | "handler"
    | "runtime"
    | "architecture"
    | "tracing"
    | "logGroup"
    | "logRetention"
    | "bundling"
    | "role"
  > {
  /** Which entry point under functions/ this function runs. */
  readonly name: FunctionName;
  /** Powertools service name (the `service` dimension of the function's metrics and a log key). */
  readonly serviceName: string;
  /** Powertools metrics namespace (CloudWatch namespace of the embedded-metric-format metrics). */
  readonly metricsNamespace: string;
  /**
   * How long the function's log group keeps events.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Shell commands run after esbuild, given the project root and the bundle directory (e.g. to copy
   * static files next to index.mjs).
   * @default - none
   */
  readonly afterBundling?: (inputDir: string, outputDir: string) => string[];
}

/**
 * A pipeline Lambda function with the house defaults. Grants go through the `bind...()` helpers, which
 * also set the environment variable the handler reads (names from functions/core/config.ts).
 */
export class PipelineFunction extends NodejsFunction {
  /** The function's log group (retention set; the role may write only here). */
  public readonly logs: LogGroup;
  /** The execution role; holds only the statements the bind helpers add (no AWS managed policies). */
  public readonly executionRole: IRole;

  constructor(scope: Construct, id: string, props: PipelineFunctionProps) {
    const {
      name,
      serviceName,
      metricsNamespace,
      logRetention,
      logRemovalPolicy,
      environment,
      afterBundling,
      ...rest
    } = props;
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    // Own role instead of AWSLambdaBasicExecutionRole: that managed policy lets the function write to
    // any log group in the account; this role can only write to its own.
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal("lambda.amazonaws.com"),
      description: `Execution role of the ${name} function`,
    });
    super(scope, id, {
      timeout: Duration.seconds(30),
      memorySize: 512,
      ...rest,
      entry: entryOf(name),
      handler: "handler",
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, "package-lock.json"),
      runtime: RUNTIME,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      loggingFormat: LoggingFormat.JSON,
      logGroup,
      role,
      bundling: afterBundling
        ? {
            ...HOUSE_BUNDLING,
            commandHooks: { beforeBundling: () => [], beforeInstall: () => [], afterBundling },
          }
        : HOUSE_BUNDLING,
      environment: {
        ...BASE_ENVIRONMENT,
        [ENV.POWERTOOLS_SERVICE_NAME]: serviceName,
        [ENV.POWERTOOLS_METRICS_NAMESPACE]: metricsNamespace,
        ...environment,
      },
    });
    this.logs = logGroup;
    this.executionRole = role;
    logGroup.grantWrite(role);
    acknowledge(
      role,
      "AwsSolutions-IAM5[Resource::*]",
      "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions, so AWS requires Resource '*' (added by Tracing.ACTIVE, nothing else uses it).",
    );
  }

  /**
   * TABLE_NAME plus DynamoDB item access on the table and its byKey and holdsFiles indexes, sharded
   * and legacy (named, not `index/*`).
   * "read": GetItem/BatchGetItem/Query/Scan/ConditionCheckItem; "readWrite" adds Put/Update/Delete/
   * BatchWriteItem (transactions need exactly these per-item actions).
   */
  bindTable(table: ITable, access: "read" | "readWrite"): this {
    const actions = [
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:ConditionCheckItem",
      "dynamodb:DescribeTable",
    ];
    if (access === "readWrite") {
      actions.push(
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
      );
    }
    this.addToRolePolicy(
      new PolicyStatement({
        actions,
        resources: [
          table.tableArn,
          `${table.tableArn}/index/${TABLE_KEYS.byKeyIndex.name}`,
          `${table.tableArn}/index/${TABLE_KEYS.holdsFilesIndex.name}`,
          // Read while an upgraded stack's sharded indexes are still being built (DocumentTable).
          `${table.tableArn}/index/${TABLE_KEYS.legacyIndexNames.byKey}`,
          `${table.tableArn}/index/${TABLE_KEYS.legacyIndexNames.holdsFiles}`,
        ],
      }),
    );
    if (table.encryptionKey) {
      if (access === "readWrite") table.encryptionKey.grantEncryptDecrypt(this);
      else table.encryptionKey.grantDecrypt(this);
    }
    this.addEnvironment(ENV.TABLE_NAME, table.tableName);
    return this;
  }

  /**
   * KEYS_TABLE_NAME plus the scoped API keys table's actions: `check` (the authorizer) reads one key by
   * id; `manage` (the chat function's /keys routes) also creates, lists and revokes.
   */
  bindKeysTable(table: ITable, access: "check" | "manage"): this {
    const actions =
      access === "check"
        ? ["dynamodb:GetItem"]
        : ["dynamodb:GetItem", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem"];
    this.addToRolePolicy(new PolicyStatement({ actions, resources: [table.tableArn] }));
    if (table.encryptionKey) table.encryptionKey.grantDecrypt(this);
    this.addEnvironment(ENV.KEYS_TABLE_NAME, table.tableName);
    return this;
  }

  /**
   * BUCKET_NAME plus exactly the object actions asked for, on the bucket's objects only (no bucket-level
   * rights, no List). Reads include GetObjectVersion: ingestion reads the version named in the event.
   */
  bindBucket(bucket: IBucket, access: { read?: boolean; put?: boolean; delete?: boolean }): this {
    const actions: string[] = [];
    if (access.read) actions.push("s3:GetObject", "s3:GetObjectVersion");
    if (access.put) actions.push("s3:PutObject");
    if (access.delete) actions.push("s3:DeleteObject");
    if (actions.length === 0) throw new Error(`bindBucket(${this.node.path}): ask for at least one access`);
    const objects = bucket.arnForObjects("*");
    this.addToRolePolicy(new PolicyStatement({ actions, resources: [objects] }));
    acknowledge(
      this.executionRole,
      wildcardFindingId(this, objects),
      `Object-level ${actions.join("/")} on the documents bucket's objects: users choose any key (any prefix), so the object ARN must end in /*; no bucket-level or List rights are granted.`,
    );
    if (bucket.encryptionKey) {
      if (access.read) bucket.encryptionKey.grantDecrypt(this);
      if (access.put) bucket.encryptionKey.grantEncrypt(this);
    }
    this.addEnvironment(ENV.BUCKET_NAME, bucket.bucketName);
    return this;
  }

  /**
   * The chat function's upload rights: s3:PutObject (presigned uploads are signed with these rights)
   * and s3:GetObject (HEAD: the 409 for an existing key) only on keys under `prefix` ("" = the whole
   * bucket), plus s3:ListBucket so a HEAD of a missing key answers 404 rather than 403. Sets
   * UPLOAD_PREFIX, which the route confines every upload to.
   */
  bindUploads(bucket: IBucket, prefix: string): this {
    const objects = bucket.arnForObjects(`${prefix}*`);
    this.addToRolePolicy(
      new PolicyStatement({ actions: ["s3:PutObject", "s3:GetObject"], resources: [objects] }),
    );
    this.addToRolePolicy(new PolicyStatement({ actions: ["s3:ListBucket"], resources: [bucket.bucketArn] }));
    acknowledge(
      this.executionRole,
      wildcardFindingId(this, objects),
      `Object-level s3:PutObject/s3:GetObject under the upload prefix "${prefix}": users name their files, so the object ARN must end in *; GetObject is for the HEAD that refuses overwriting an existing key.`,
    );
    if (bucket.encryptionKey) bucket.encryptionKey.grantEncryptDecrypt(this);
    if (prefix) this.addEnvironment(ENV.UPLOAD_PREFIX, prefix);
    return this;
  }

  /**
   * `envVar` = the secret's ARN (never its value) plus secretsmanager:GetSecretValue on that one secret
   * (and kms:Decrypt when it uses a customer-managed key).
   */
  bindSecret(secret: ISecret, envVar: string): this {
    this.addToRolePolicy(
      new PolicyStatement({ actions: ["secretsmanager:GetSecretValue"], resources: [secret.secretArn] }),
    );
    secret.encryptionKey?.grantDecrypt(this);
    this.addEnvironment(envVar, secret.secretArn);
    return this;
  }

  /**
   * The model provider: PROVIDER, its base URL variable and its key secret (MOONSHOT_* or GLM_*,
   * through bindSecret), and with `models` the context windows (MODEL_WINDOWS) when configured.
   */
  bindProvider(provider: ProviderConnection, opts: { models?: boolean } = {}): this {
    const profile = profileOf(provider);
    this.bindSecret(provider.apiKey, profile.env.apiKeySecret);
    this.addEnvironment(ENV.PROVIDER, provider.name);
    this.addEnvironment(profile.env.baseUrl, provider.baseUrl ?? profile.defaultBaseUrl);
    if (opts.models && provider.models)
      this.addEnvironment(ENV.MODEL_WINDOWS, formatModelWindows(provider.models));
    return this;
  }

  /**
   * SEARCH_INDEX_BUCKET plus object access on the search index bucket: "read" (GetObject) for readers,
   * "readWrite" (Get/Put/DeleteObject) for the indexer. No bucket-level or List rights.
   */
  bindSearchIndex(bucket: IBucket, access: "read" | "readWrite"): this {
    const actions =
      access === "read" ? ["s3:GetObject"] : ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"];
    const objects = bucket.arnForObjects("*");
    this.addToRolePolicy(new PolicyStatement({ actions, resources: [objects] }));
    // ListBucket: the writer sweeps objects no manifest names (a crashed run's); every reader needs it
    // too, or S3 answers a missing object (no index yet) with 403 instead of 404.
    this.addToRolePolicy(new PolicyStatement({ actions: ["s3:ListBucket"], resources: [bucket.bucketArn] }));
    acknowledge(
      this.executionRole,
      wildcardFindingId(this, objects),
      `Object-level ${actions.join("/")} on the search index bucket's objects (segment keys are generated per run); bucket-level rights: ListBucket only.`,
    );
    this.addEnvironment(ENV.SEARCH_INDEX_BUCKET, bucket.bucketName);
    return this;
  }

  /** Plain settings (model name, retention, thresholds); never a credential. */
  bindSettings(settings: Record<string, string>): this {
    for (const [key, value] of Object.entries(settings)) this.addEnvironment(key, value);
    return this;
  }
}
