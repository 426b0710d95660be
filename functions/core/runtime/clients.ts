/**
 * One AWS SDK client per service, created once per process (reused across warm invocations) and easy
 * to replace in tests with aws-sdk-client-mock. Local mode points them at s3rver and dynalite with the
 * SDK's own endpoint variables (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB); s3rver also needs
 * path-style addressing (S3_FORCE_PATH_STYLE=true).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

export const s3 = new S3Client({
  forcePathStyle: process.env.S3_FORCE_PATH_STYLE === "true",
});

export const dynamo = new DynamoDBClient({});

/** Document client: plain JS values in and out; undefined attributes dropped rather than rejected. */
export const documents = DynamoDBDocumentClient.from(dynamo, {
  marshallOptions: { removeUndefinedValues: true },
});
