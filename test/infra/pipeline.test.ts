import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Bucket } from "aws-cdk-lib/aws-s3";
import type { Construct } from "constructs";
import { beforeAll, describe, expect, it } from "vitest";
import {
  DocumentPipeline,
  type DocumentPipelineProps,
  DocumentPipelinePropsError,
  DocumentTable,
} from "../../lib";
import type { PipelineStack } from "../../lib/pipeline-stack";
import {
  grantsOf,
  logicalId,
  type Resources,
  statementsOfFunction,
  synthPipeline,
  TEST_ENV,
  testApp,
} from "./synth";

let template: Template;
let stack: PipelineStack;
let resources: Resources;

beforeAll(() => {
  ({ template, stack } = synthPipeline({}));
  resources = template.toJSON().Resources;
});

const policyOf = (r: Resources, id: string) => ({
  deletion: (r[id] as unknown as { DeletionPolicy?: string }).DeletionPolicy,
  update: (r[id] as unknown as { UpdateReplacePolicy?: string }).UpdateReplacePolicy,
});

describe("removal policies", () => {
  it("retain the documents, their text, the secrets and the logs by default", () => {
    const p = stack.pipeline;
    const retained = [
      p.ingestion.bucket,
      p.ingestion.accessLogsBucket!,
      p.table,
      p.secrets.providerApiKey,
      p.secrets.apiToken!,
      p.ingestion.function.logs,
      p.chatApi.function.logs,
      p.chatApi.accessLogs,
      p.janitor.function.logs,
    ];
    for (const c of retained)
      expect(policyOf(resources, logicalId(c)), c.node.path).toEqual({
        deletion: "Retain",
        update: "Retain",
      });
    template.resourcePropertiesCountIs("Custom::S3AutoDeleteObjects", {}, 0);
  });

  it("with DESTROY delete everything, emptying the buckets first, and drop deletion protection", () => {
    const destroyed = synthPipeline({ removalPolicy: RemovalPolicy.DESTROY });
    const r = destroyed.template.toJSON().Resources as Resources;
    const p = destroyed.stack.pipeline;
    for (const c of [p.ingestion.bucket, p.table, p.secrets.providerApiKey, p.janitor.function.logs]) {
      expect(policyOf(r, logicalId(c)).deletion, c.node.path).toBe("Delete");
    }
    expect(policyOf(r, logicalId(p.searchIndex.bucket)).deletion).toBe("Delete");
    destroyed.template.resourceCountIs("Custom::S3AutoDeleteObjects", 3);
    destroyed.template.hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      Replicas: [Match.objectLike({ DeletionProtectionEnabled: false })],
    });
  });
});

describe("outputs", () => {
  it("give the API URL, the bucket and the secrets to fill in", () => {
    const outputs = template.toJSON().Outputs;
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        "ApiUrl",
        "BucketName",
        "MoonshotApiKeySecretName",
        "FillMoonshotApiKeyCommand",
        "ApiTokenSecretName",
        "GetApiTokenCommand",
        "AlarmTopicArn",
        "DashboardName",
        "DeploymentId",
      ]),
    );
    expect(JSON.stringify(outputs.DeploymentId.Value)).toContain("AWS::StackId");
    expect(outputs.BucketName.Value).toEqual({ Ref: logicalId(stack.pipeline.ingestion.bucket) });
    expect(JSON.stringify(outputs.FillMoonshotApiKeyCommand.Value)).toContain("put-secret-value");
  });
});

describe("used from another app's stack with an existing bucket", () => {
  /** A team's own stack: it already has a bucket and adds the pipeline on top of it. */
  class TeamStack extends Stack {
    readonly bucket: Bucket;
    readonly docs: DocumentPipeline;
    constructor(scope: Construct, id: string) {
      super(scope, id, { env: TEST_ENV });
      this.bucket = new Bucket(this, "TeamDocuments", { enforceSSL: true, versioned: true });
      this.docs = new DocumentPipeline(this, "Docs", { bucket: this.bucket, model: "kimi-k2.5" });
    }
  }
  let team: TeamStack;
  let consumer: Template;

  beforeAll(() => {
    team = new TeamStack(testApp(), "Team");
    consumer = Template.fromStack(team);
  });

  it("creates no bucket of its own and wires the existing one", () => {
    // The team's bucket and the search index's own.
    consumer.resourceCountIs("AWS::S3::Bucket", 2);
    expect(team.docs.ingestion.bucket).toBe(team.bucket);
    expect(team.docs.ingestion.accessLogsBucket).toBeUndefined();
    consumer.hasResourceProperties("Custom::S3BucketNotifications", {
      BucketName: { Ref: logicalId(team.bucket) },
      NotificationConfiguration: {
        QueueConfigurations: Match.arrayWith([
          Match.objectLike({ Events: ["s3:ObjectCreated:*"] }),
          Match.objectLike({ Events: ["s3:ObjectRemoved:*"] }),
        ]),
      },
    });
  });

  it("grants object reads on that bucket to ingest and passes its name to chat", () => {
    const r = consumer.toJSON().Resources as Resources;
    const reads = grantsOf(
      statementsOfFunction(consumer, logicalId(team.docs.ingestion.function)),
      "s3:GetObject",
    );
    expect(reads.map((s) => s.Resource)).toEqual([
      { "Fn::Join": ["", [{ "Fn::GetAtt": [logicalId(team.bucket), "Arn"] }, "/*"]] },
    ]);
    expect(r[logicalId(team.docs.chatApi.function)].Properties.Environment.Variables.BUCKET_NAME).toEqual({
      Ref: logicalId(team.bucket),
    });
  });

  it("still builds the whole pipeline around it", () => {
    consumer.resourceCountIs("AWS::SQS::Queue", 4);
    consumer.resourceCountIs("AWS::ApiGateway::RestApi", 1);
    consumer.resourceCountIs("AWS::Events::Rule", 2);
    consumer.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    // The documents table and the API keys table.
    consumer.resourceCountIs("AWS::DynamoDB::GlobalTable", 2);
  });

  it("passes webConsole and browserUploadOrigins through", () => {
    const s = new Stack(testApp(), "Options", { env: TEST_ENV });
    const docs = new DocumentPipeline(s, "Docs", {
      webConsole: false,
      browserUploadOrigins: ["https://docs.example.com"],
    });
    const t = Template.fromStack(s);
    expect(docs.chatApi.publicMethods).toHaveLength(1); // GET /openapi.json
    t.hasResourceProperties("AWS::S3::Bucket", {
      CorsConfiguration: { CorsRules: [Match.objectLike({ AllowedOrigins: ["https://docs.example.com"] })] },
    });
  });

  it("also takes an existing documents table (no table of its own, grants and TABLE_NAME on that one)", () => {
    const s = new Stack(testApp(), "SharedTable", { env: TEST_ENV });
    const table = new DocumentTable(s, "Existing").table;
    const docs = new DocumentPipeline(s, "Docs", { table });
    const t = Template.fromStack(s);
    // The existing documents table, and the API keys table of the chat API.
    t.resourceCountIs("AWS::DynamoDB::GlobalTable", 2);
    expect(docs.table).toBe(table);
    const r = t.toJSON().Resources as Resources;
    expect(r[logicalId(docs.janitor.function)].Properties.Environment.Variables.TABLE_NAME).toEqual({
      Ref: logicalId(table),
    });
  });

  it("also takes a bucket imported by name (e.g. owned by another stack or account team)", () => {
    const s = new Stack(testApp(), "Imported", { env: TEST_ENV });
    const docs = new DocumentPipeline(s, "Docs", {
      bucket: Bucket.fromBucketName(s, "Ext", "shared-documents"),
    });
    const t = Template.fromStack(s);
    t.resourceCountIs("AWS::S3::Bucket", 1); // the search index's own
    t.hasResourceProperties("Custom::S3BucketNotifications", {
      BucketName: "shared-documents",
      Managed: false,
    });
    const reads = grantsOf(statementsOfFunction(t, logicalId(docs.ingestion.function)), "s3:GetObject");
    expect(JSON.stringify(reads[0].Resource)).toContain(":s3:::shared-documents/*");
  });
});

describe("invalid props fail at synth with a clear message", () => {
  const cases: [string, DocumentPipelineProps, RegExp][] = [
    ["highWaterMark 0", { highWaterMark: 0 }, /highWaterMark must be a fraction in \(0, 1\].*got 0/],
    ["highWaterMark 1.5", { highWaterMark: 1.5 }, /highWaterMark must be a fraction in \(0, 1\].*got 1.5/],
    [
      "ingestConcurrency 1",
      { ingestConcurrency: 1 },
      /ingestConcurrency must be an integer from 2 to 1000.*got 1/,
    ],
    ["ingestConcurrency 2.5", { ingestConcurrency: 2.5 }, /ingestConcurrency must be an integer/],
    ["ingestConcurrency 1001", { ingestConcurrency: 1001 }, /ingestConcurrency .*got 1001/],
    ["retentionHours 0", { retentionHours: 0 }, /retentionHours must be a number of hours from 1 to 8760/],
    [
      "janitorSchedule 30 s",
      { janitorSchedule: Duration.seconds(30) },
      /janitorSchedule must be whole minutes/,
    ],
    [
      "janitorSchedule 2 days",
      { janitorSchedule: Duration.days(2) },
      /janitorSchedule must be whole minutes/,
    ],
    [
      "providerBaseUrl http",
      { providerBaseUrl: "http://api.moonshot.ai/v1" },
      /providerBaseUrl must be an https URL/,
    ],
    ["providerBaseUrl junk", { providerBaseUrl: "moonshot" }, /providerBaseUrl must be an https URL/],
    ["model with spaces", { model: "kimi k2" }, /model must be a model id/],
    [
      "unknown provider",
      { provider: "openai" as never },
      /provider must be one of "moonshot", "glm", got "openai"/,
    ],
    ["models with moonshot", { models: { "kimi-k2.6": 262_144 } }, /models is for provider glm/],
    ["models window too small", { provider: "glm", models: { "glm-4.6": 12 } }, /window of glm-4.6 must be/],
    ["models empty", { provider: "glm", models: {} }, /models must name at least one model/],
    [
      "GLM base URL http",
      { provider: "glm", providerBaseUrl: "http://api.z.ai" },
      /such as "https:\/\/open.bigmodel.cn/,
    ],
    [
      "modelPrices with a negative price",
      { modelPrices: { "kimi-k2.6": { input: -1, cachedInput: 0.1, output: 3 } } },
      /modelPrices\.kimi-k2\.6\.input must be a number >= 0/,
    ],
    [
      "maxContextTokens 500",
      { maxContextTokens: 500 },
      /maxContextTokens must be a whole number of tokens >= 1000/,
    ],
    [
      "jwt issuer not a URL",
      { auth: { mode: "jwt", issuer: "cognito", audience: ["app"] } },
      /auth.issuer must be the https URL/,
    ],
    [
      "jwt without an audience",
      { auth: { mode: "jwt", issuer: "https://issuer.example.com", audience: [] } },
      /auth.audience is required in JWT mode/,
    ],
    [
      "jwt tenant claim not a claim name",
      { auth: { mode: "jwt", issuer: "https://issuer.example.com", audience: ["app"], tenantClaim: "a b" } },
      /auth.tenantClaim must be a claim name/,
    ],
    ["alarmEmail", { alarmEmail: "ops" }, /alarmEmail must be an e-mail address/],
    ["deploymentId", { deploymentId: "Prod-1" }, /deploymentId must be 4-24 lower-case letters and digits/],
    [
      "upload origin with a path",
      { browserUploadOrigins: ["https://x.example.com/app"] },
      /browserUploadOrigins/,
    ],
  ];
  it.each(cases)("%s", (_name, props, message) => {
    const s = new Stack(testApp(), "Invalid");
    let error: unknown;
    try {
      new DocumentPipeline(s, "Docs", props);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DocumentPipelinePropsError);
    expect((error as Error).message).toMatch(/^DocumentPipeline: /);
    expect((error as Error).message).toMatch(message);
  });
});

describe("CDK context", () => {
  it("configures the stack without code changes", () => {
    const { template: t, stack: s } = synthPipeline(undefined, {
      model: "kimi-k2.5",
      ingestConcurrency: "4",
      janitorScheduleMinutes: "15",
      highWaterMark: "0.75",
      retentionHours: 6,
      logRetentionDays: "7",
      removalPolicy: "destroy",
      authMode: "jwt",
      jwtIssuer: "https://issuer.example.com",
      jwtAudience: "api, web",
      bucketName: "team-documents",
      modelPrices: '{"glm-4.6":{"input":0.5,"cachedInput":0.1,"output":2}}',
      maxContextTokens: "65536",
    });
    const r = t.toJSON().Resources as Resources;
    expect(
      JSON.parse(r[logicalId(s.pipeline.chatApi.function)].Properties.Environment.Variables.MODEL_PRICES),
    ).toEqual({ "glm-4.6": { input: 0.5, cachedInput: 0.1, output: 2 } });
    expect(
      r[logicalId(s.pipeline.chatApi.function)].Properties.Environment.Variables.MAX_CONTEXT_TOKENS,
    ).toBe("65536");
    expect(r[logicalId(s.pipeline.chatApi.function)].Properties.Environment.Variables.MODEL).toBe(
      "kimi-k2.5",
    );
    t.hasResourceProperties("AWS::Lambda::EventSourceMapping", { ScalingConfig: { MaximumConcurrency: 4 } });
    t.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(15 minutes)" });
    t.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 7 });
    expect(r[logicalId(s.pipeline.janitor.function)].Properties.Environment.Variables).toMatchObject({
      HIGH_WATER_MARK: "0.75",
      RETENTION_HOURS: "6",
    });
    expect(
      r[logicalId(s.pipeline.chatApi.authorizerFunction)].Properties.Environment.Variables,
    ).toMatchObject({
      JWT_ISSUER: "https://issuer.example.com",
      JWT_AUDIENCE: "api,web",
    });
    expect(r[logicalId(s.pipeline.chatApi.function)].Properties.Environment.Variables.BUCKET_NAME).toBe(
      "team-documents",
    );
    t.resourceCountIs("AWS::S3::Bucket", 1); // the search index's own
    expect(policyOf(r, logicalId(s.pipeline.table)).deletion).toBe("Delete");
  });

  it.each([
    [{ ingestConcurrency: "many" }, /context ingestConcurrency must be a number, got "many"/],
    [{ authMode: "basic" }, /context authMode must be "token" or "jwt"/],
    [{ authMode: "jwt" }, /authMode=jwt needs jwtIssuer/],
    [{ removalPolicy: "snapshot" }, /context removalPolicy must be "retain" or "destroy"/],
    [{ logRetentionDays: "8" }, /context logRetentionDays must be a CloudWatch retention/],
    [{ highWaterMark: "2" }, /highWaterMark must be a fraction/],
    [{ tableIndexUpgradeStep: "4" }, /context tableIndexUpgradeStep must be 1, 2 or 3, got 4/],
    [{ modelPrices: "{not json" }, /context modelPrices is not valid JSON/],
    [{ maxContextTokens: "lots" }, /context maxContextTokens must be a number/],
    [
      { modelPrices: '{"kimi-k2.6":{"input":1}}' },
      /context modelPrices\.kimi-k2\.6\.cachedInput must be a number/,
    ],
  ])("rejects bad context %o", (context, message) => {
    expect(() => synthPipeline(undefined, context)).toThrow(message);
  });
});

describe("upgrading a table from the unsharded indexes", () => {
  const indexesAt = (step?: number) => {
    const { template: t } = synthPipeline(
      undefined,
      step === undefined ? {} : { tableIndexUpgradeStep: String(step) },
    );
    const tables = Object.values(t.toJSON().Resources as Resources).filter(
      (r) => r.Type === "AWS::DynamoDB::GlobalTable",
    );
    return (tables[0]!.Properties.GlobalSecondaryIndexes as { IndexName: string }[])
      .map((i) => i.IndexName)
      .sort();
  };

  it("changes one index per deploy (CloudFormation's limit): add, add, drop, drop", () => {
    const steps = [["byKey", "holdsFiles"], indexesAt(1), indexesAt(2), indexesAt(3), indexesAt(undefined)];
    expect(steps).toEqual([
      ["byKey", "holdsFiles"],
      ["byKey", "byKeySharded", "holdsFiles"],
      ["byKey", "byKeySharded", "holdsFiles", "holdsFilesSharded"],
      ["byKeySharded", "holdsFiles", "holdsFilesSharded"],
      ["byKeySharded", "holdsFilesSharded"],
    ]);
    for (let i = 1; i < steps.length; i++) {
      const before = new Set(steps[i - 1]);
      const after = new Set(steps[i]);
      const changes =
        [...before].filter((n) => !after.has(n)).length + [...after].filter((n) => !before.has(n)).length;
      expect(changes, `step ${i}`).toBe(1);
    }
  });
});
