/**
 * SQS-shaped envelopes around S3 event records, exactly as Lambda receives them from an SQS event
 * source in AWS (body = the S3 notification JSON, one notification per message). Local mode, tests
 * and benchmarks feed the ingest handler through these, so it runs the same code path as in AWS.
 */
import { randomUUID } from "node:crypto";
import type { S3EventRecord, SQSEvent, SQSRecord } from "aws-lambda";

export interface SqsMessageOptions {
  /** ApproximateReceiveCount: 1 on first delivery, incremented on each redelivery. */
  receiveCount?: number;
  messageId?: string;
  queueArn?: string;
}

export const LOCAL_QUEUE_ARN = "arn:aws:sqs:us-east-1:000000000000:local-ingest";

/** One SQS message whose body is an S3 notification holding `records`. */
export function sqsMessageFor(records: S3EventRecord[], opts: SqsMessageOptions = {}): SQSRecord {
  const now = Date.now();
  const body = JSON.stringify({ Records: records });
  return {
    messageId: opts.messageId ?? randomUUID(),
    receiptHandle: randomUUID(),
    body,
    attributes: {
      ApproximateReceiveCount: String(opts.receiveCount ?? 1),
      SentTimestamp: String(now),
      SenderId: "AIDAS3NOTIFICATIONS",
      ApproximateFirstReceiveTimestamp: String(now),
    },
    messageAttributes: {},
    md5OfBody: "",
    eventSource: "aws:sqs",
    eventSourceARN: opts.queueArn ?? LOCAL_QUEUE_ARN,
    awsRegion: "us-east-1",
  };
}

/** The s3:TestEvent S3 sends to a queue when notifications are first configured. */
export function s3TestEventMessage(bucket: string): SQSRecord {
  const msg = sqsMessageFor([]);
  msg.body = JSON.stringify({
    Service: "Amazon S3",
    Event: "s3:TestEvent",
    Time: new Date().toISOString(),
    Bucket: bucket,
    RequestId: randomUUID(),
    HostId: "local",
  });
  return msg;
}

/** An SQS event (a Lambda batch) of the given messages. */
export function sqsEvent(messages: SQSRecord[]): SQSEvent {
  return { Records: messages };
}
