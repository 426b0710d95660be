/**
 * S3 event notifications as SQS delivers them to a Lambda: S3 sends one notification per object
 * event, `{"Records":[<one S3EventRecord>]}`, and that JSON becomes the SQS message body.
 */
import type { S3Event, S3EventRecord } from "aws-lambda";

/** The SQS message body S3 writes for one event record. */
export function s3NotificationBody(record: S3EventRecord): string {
  const notification: S3Event = { Records: [record] };
  return JSON.stringify(notification);
}

/** `s3:ObjectCreated:Put` -> `created`, `s3:ObjectRemoved:Delete` -> `removed`, anything else -> `other`. */
export function s3EventKind(record: S3EventRecord): "created" | "removed" | "other" {
  if (record.eventName.startsWith("ObjectCreated") || record.eventName.startsWith("s3:ObjectCreated"))
    return "created";
  if (record.eventName.startsWith("ObjectRemoved") || record.eventName.startsWith("s3:ObjectRemoved"))
    return "removed";
  return "other";
}

/** The object key as written by S3 in events (`+` for spaces, percent-encoded), decoded. */
export function decodeS3EventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, " "));
}
