/**
 * The Lambda entry point itself, configured only through the environment (as in AWS and local mode),
 * with the runtime's SDK clients pointed at the local servers by AWS_ENDPOINT_URL_*.
 */

import { PutObjectCommand } from "@aws-sdk/client-s3";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, expect, it } from "vitest";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { documentIdFor } from "../../functions/core/ingest/events";
import { s3TestEventMessage, sqsEvent, sqsMessageFor } from "../../local/aws/sqs";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let emulator: RunningEmulator;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
const events: import("aws-lambda").S3EventRecord[] = [];

beforeAll(async () => {
  [stack, emulator] = await Promise.all([startLocalStack({ prefix: "handler" }), startEmulator()]);
  stack.onS3Event((r) => events.push(r));
  Object.assign(process.env, {
    TABLE_NAME: stack.tableName,
    DEPLOYMENT_ID: "handlertest",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    AWS_ENDPOINT_URL_S3: stack.s3Endpoint,
    AWS_ENDPOINT_URL_DYNAMODB: stack.dynamoEndpoint,
    S3_FORCE_PATH_STYLE: "true",
    MOONSHOT_BASE_URL: emulator.baseURL,
    MOONSHOT_API_KEY: "test",
    MAX_RECEIVE_COUNT: "3",
    POWERTOOLS_METRICS_NAMESPACE: "test",
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_DISABLED: "true",
  });
  ({ handler } = await import("../../functions/ingest/handler"));
});
afterAll(async () => {
  await Promise.all([stack?.close(), emulator?.close()]);
});

const context = {
  functionName: "ingest",
  functionVersion: "$LATEST",
  invokedFunctionArn: "arn:aws:lambda:us-east-1:000000000000:function:ingest",
  memoryLimitInMB: "512",
  awsRequestId: "req-1",
  logGroupName: "/aws/lambda/ingest",
  logStreamName: "s",
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 60_000,
} as unknown as Context;

it("turns an SQS batch of S3 events into ready documents and reports only bad messages", async () => {
  await stack.s3Client.send(
    new PutObjectCommand({ Bucket: stack.bucket, Key: "h/one two.txt", Body: "handler text" }),
  );
  const created = events.at(-1)!;
  const malformed = { ...sqsMessageFor([]), body: "{oops" };
  const result = await handler(
    sqsEvent([s3TestEventMessage(stack.bucket), sqsMessageFor([created]), malformed]),
    context,
  );
  expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: malformed.messageId }] });
  const store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  const doc = await store.get(documentIdFor(stack.bucket, "h/one two.txt"));
  expect(doc?.status).toBe("ready");
  expect(await store.getText(doc!)).toBe("handler text");
});
