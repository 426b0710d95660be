/**
 * Real local AWS stand-ins for integration tests: s3rver and dynalite on random 127.0.0.1 ports, a
 * uniquely named bucket and documents table, and SDK clients pointed at them. Close in afterAll.
 */
import { randomBytes } from "node:crypto";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { S3EventRecord } from "aws-lambda";
import { ensureDocumentsTable, startLocalDynamo } from "../../local/aws/dynamo";
import { startLocalS3 } from "../../local/aws/s3";

export interface LocalStack {
  s3Endpoint: string;
  dynamoEndpoint: string;
  bucket: string;
  tableName: string;
  s3Client: S3Client;
  dynamoClient: DynamoDBClient;
  /** Document client over dynamoClient (removeUndefinedValues on, like the runtime's). */
  documentClient: DynamoDBDocumentClient;
  /** S3 event records (normalised to the AWS shape) of every change in any bucket. */
  onS3Event(listener: (record: S3EventRecord) => void): () => void;
  close(): Promise<void>;
}

export interface LocalStackOptions {
  /** Name prefix for the bucket and the table (a random suffix is added). */
  prefix?: string;
}

const LOCAL_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/** Starts local S3 + DynamoDB and creates a fresh bucket and documents table. */
export async function startLocalStack(opts: LocalStackOptions = {}): Promise<LocalStack> {
  const suffix = randomBytes(4).toString("hex");
  const prefix = (opts.prefix ?? "kdp-test").toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const bucket = `${prefix}-${suffix}`;
  const tableName = `${prefix}-documents-${suffix}`;
  const [s3, dynamo] = await Promise.all([startLocalS3({ buckets: [] }), startLocalDynamo()]);
  const s3Client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: "us-east-1",
    credentials: LOCAL_CREDENTIALS,
    // Streamed bodies would otherwise be sent aws-chunked with a trailing checksum, which s3rver
    // stores verbatim (chunk headers included).
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  const dynamoClient = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: "us-east-1",
    credentials: LOCAL_CREDENTIALS,
  });
  const documentClient = DynamoDBDocumentClient.from(dynamoClient, {
    marshallOptions: { removeUndefinedValues: true },
  });
  await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
  await ensureDocumentsTable(dynamoClient, tableName);
  return {
    s3Endpoint: s3.endpoint,
    dynamoEndpoint: dynamo.endpoint,
    bucket,
    tableName,
    s3Client,
    dynamoClient,
    documentClient,
    onS3Event: (listener) => s3.onEvent(listener),
    async close() {
      s3Client.destroy();
      dynamoClient.destroy();
      await Promise.all([s3.close(), dynamo.close()]);
    },
  };
}
