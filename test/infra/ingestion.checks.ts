import { Match, type Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { TABLE_KEYS } from "../../functions/core/documents/table";
import { DEFAULT_MAX_RECEIVE_COUNT } from "../../lib/defaults";
import type { PipelineStack } from "../../lib/pipeline-stack";
import { grantsOf, logicalId, shared, sharedDefaults, statementsOfFunction } from "./synth";

let template: Template;
let stack: PipelineStack;

beforeAll(() => {
  ({ template, stack } = shared());
});

describe("ingestion queue", () => {
  it("has a dead-letter queue with a redrive policy after 5 receives", () => {
    const { queue, deadLetterQueue } = stack.pipeline.ingestion;
    template.hasResourceProperties("AWS::SQS::Queue", {
      RedrivePolicy: {
        deadLetterTargetArn: { "Fn::GetAtt": [logicalId(deadLetterQueue), "Arn"] },
        maxReceiveCount: DEFAULT_MAX_RECEIVE_COUNT,
      },
    });
    expect(DEFAULT_MAX_RECEIVE_COUNT).toBe(5);
    const props = template.toJSON().Resources[logicalId(queue)].Properties;
    expect(props.RedrivePolicy.maxReceiveCount).toBe(5);
    // Plus the search index's FIFO queue and its dead-letter queue.
    template.resourceCountIs("AWS::SQS::Queue", 4);
  });

  it("keeps messages invisible for at least 6x the ingest function timeout", () => {
    const { queue, function: fn } = stack.pipeline.ingestion;
    const resources = template.toJSON().Resources;
    const timeout = resources[logicalId(fn)].Properties.Timeout as number;
    const visibility = resources[logicalId(queue)].Properties.VisibilityTimeout as number;
    expect(timeout).toBeGreaterThan(0);
    expect(visibility).toBeGreaterThanOrEqual(6 * timeout);
  });

  it("encrypts both queues and denies non-TLS access to them", () => {
    const queues = template.findResources("AWS::SQS::Queue");
    for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = Object.values(template.findResources("AWS::SQS::QueuePolicy"));
    const sslDenied = new Set<string>();
    for (const p of policies) {
      for (const s of p.Properties.PolicyDocument.Statement) {
        if (s.Effect === "Deny" && s.Condition?.Bool?.["aws:SecureTransport"] === "false") {
          for (const q of p.Properties.Queues) sslDenied.add(q.Ref);
        }
      }
    }
    expect([...sslDenied].sort()).toEqual(Object.keys(queues).sort());
  });

  it("lets only the documents bucket send to the queue", () => {
    template.hasResourceProperties("AWS::SQS::QueuePolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Allow",
            Principal: { Service: "s3.amazonaws.com" },
            Condition: {
              ArnLike: {
                "aws:SourceArn": { "Fn::GetAtt": [logicalId(stack.pipeline.ingestion.bucket), "Arn"] },
              },
            },
          }),
        ]),
      },
    });
  });
});

describe("ingest event source", () => {
  it("reports batch item failures and caps concurrency from the prop", () => {
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [logicalId(stack.pipeline.ingestion.queue), "Arn"] },
      FunctionName: { Ref: logicalId(stack.pipeline.ingestion.function) },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      ScalingConfig: { MaximumConcurrency: 3 },
      BatchSize: Match.anyValue(),
    });
    const mapping = Object.values(template.findResources("AWS::Lambda::EventSourceMapping"))[0];
    expect(mapping.Properties.BatchSize).toBe(1);
    // The handler works a batch's records in parallel: provider concurrency = maxConcurrency x batch size.
    const env =
      template.toJSON().Resources[logicalId(stack.pipeline.ingestion.function)].Properties.Environment;
    expect(env.Variables.INGEST_CONCURRENCY).toBe(String(mapping.Properties.BatchSize));
  });

  it("defaults maxConcurrency to 2, the lowest SQS allows", () => {
    const { template: defaults } = sharedDefaults();
    defaults.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      ScalingConfig: { MaximumConcurrency: 2 },
    });
  });

  it("gives the handler the redrive limit it must compare ApproximateReceiveCount with", () => {
    template.hasResourceProperties("AWS::Lambda::Function", {
      Environment: { Variables: Match.objectLike({ MAX_RECEIVE_COUNT: String(DEFAULT_MAX_RECEIVE_COUNT) }) },
    });
  });
});

describe("documents bucket", () => {
  it("blocks public access, encrypts, versions and logs access", () => {
    const bucketId = logicalId(stack.pipeline.ingestion.bucket);
    const props = template.toJSON().Resources[bucketId].Properties;
    expect(props.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(
      props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
    ).toBe("AES256");
    expect(props.VersioningConfiguration).toEqual({ Status: "Enabled" });
    expect(props.LoggingConfiguration.DestinationBucketName).toEqual({
      Ref: logicalId(stack.pipeline.ingestion.accessLogsBucket!),
    });
  });

  it("lets browsers PUT presigned uploads from the API's origin (CORS), and nothing else", () => {
    const bucketId = logicalId(stack.pipeline.ingestion.bucket);
    const cors = template.toJSON().Resources[bucketId].Properties.CorsConfiguration.CorsRules;
    expect(cors).toEqual([
      {
        AllowedMethods: ["PUT"],
        AllowedOrigins: [
          { "Fn::Join": ["", ["https://*.execute-api.", { Ref: "AWS::Region" }, ".amazonaws.com"]] },
        ],
        AllowedHeaders: ["content-type", "if-none-match", "x-amz-*"],
        MaxAge: 3000,
      },
    ]);
  });

  it("denies every request that does not use TLS 1.2+", () => {
    const bucketId = logicalId(stack.pipeline.ingestion.bucket);
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          }),
          Match.objectLike({
            Effect: "Deny",
            Action: "s3:*",
            Condition: { NumericLessThan: { "s3:TlsVersion": 1.2 } },
          }),
        ]),
      },
    });
  });

  it("sends ObjectCreated and ObjectRemoved events to the queue", () => {
    template.hasResourceProperties("Custom::S3BucketNotifications", {
      BucketName: { Ref: logicalId(stack.pipeline.ingestion.bucket) },
      NotificationConfiguration: {
        QueueConfigurations: Match.arrayWith([
          Match.objectLike({ Events: ["s3:ObjectCreated:*"] }),
          Match.objectLike({ Events: ["s3:ObjectRemoved:*"] }),
        ]),
      },
    });
  });
});

describe("documents table", () => {
  it("is on-demand with point-in-time recovery, TTL and the sharded byKey and holdsFiles indexes from TABLE_KEYS", () => {
    template.hasResourceProperties("AWS::DynamoDB::GlobalTable", {
      BillingMode: "PAY_PER_REQUEST",
      KeySchema: [
        { AttributeName: TABLE_KEYS.partitionKey, KeyType: "HASH" },
        { AttributeName: TABLE_KEYS.sortKey, KeyType: "RANGE" },
      ],
      TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true },
      GlobalSecondaryIndexes: [
        Match.objectLike({
          IndexName: TABLE_KEYS.byKeyIndex.name,
          KeySchema: [
            { AttributeName: TABLE_KEYS.byKeyIndex.partitionKey, KeyType: "HASH" },
            { AttributeName: TABLE_KEYS.byKeyIndex.sortKey, KeyType: "RANGE" },
          ],
          // Only what listing filters on: a record write that changes no status costs the index nothing.
          Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: ["status"] },
        }),
        Match.objectLike({
          IndexName: TABLE_KEYS.holdsFilesIndex.name,
          KeySchema: [{ AttributeName: TABLE_KEYS.holdsFilesIndex.partitionKey, KeyType: "HASH" }],
          Projection: { ProjectionType: "KEYS_ONLY" },
        }),
      ],
      Replicas: [
        Match.objectLike({
          PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
          DeletionProtectionEnabled: true,
        }),
      ],
    });
  });

  it("ingest reads objects (and nothing else) from the bucket and writes the table", () => {
    const statements = statementsOfFunction(template, logicalId(stack.pipeline.ingestion.function));
    const s3Actions = statements.flatMap((s) => [s.Action].flat()).filter((a) => a.startsWith("s3:"));
    expect(s3Actions.sort()).toEqual(["s3:GetObject", "s3:GetObjectVersion"]);
    expect(grantsOf(statements, "dynamodb:PutItem")).toHaveLength(1);
    expect(grantsOf(statements, "dynamodb:PutItem")[0].Resource).toEqual([
      { "Fn::GetAtt": [logicalId(stack.pipeline.table), "Arn"] },
      {
        "Fn::Join": [
          "",
          [
            { "Fn::GetAtt": [logicalId(stack.pipeline.table), "Arn"] },
            `/index/${TABLE_KEYS.byKeyIndex.name}`,
          ],
        ],
      },
      {
        "Fn::Join": [
          "",
          [
            { "Fn::GetAtt": [logicalId(stack.pipeline.table), "Arn"] },
            `/index/${TABLE_KEYS.holdsFilesIndex.name}`,
          ],
        ],
      },
      ...Object.values(TABLE_KEYS.legacyIndexNames).map((name) => ({
        "Fn::Join": ["", [{ "Fn::GetAtt": [logicalId(stack.pipeline.table), "Arn"] }, `/index/${name}`]],
      })),
    ]);
  });
});
