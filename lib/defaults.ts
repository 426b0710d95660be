/**
 * Defaults and provider facts shared by the constructs, the props validation and the tests.
 */
import { Duration } from "aws-cdk-lib";

/** SQS receives before a message moves to the dead-letter queue (the ingest handler reads it too). */
export const DEFAULT_MAX_RECEIVE_COUNT = 5;

/** CloudWatch namespace of the Powertools metrics (POWERTOOLS_METRICS_NAMESPACE). */
export const DEFAULT_METRICS_NAMESPACE = "KimiDocPipeline";

/** Powertools service names: the `service` dimension of each function's metrics. */
export const SERVICE_NAMES = {
  ingest: "ingest",
  chat: "chat",
  authorizer: "authorizer",
  janitor: "janitor",
  indexer: "indexer",
} as const;

/**
 * Custom metrics the janitor publishes after each sweep (Powertools EMF, dimension service=janitor):
 * RemoteFiles / RemoteBytes held once the sweep is done (the quota alarms use them), JanitorErrors
 * (failed deletions), JanitorDeletions per Reason. One definition, shared with the handler code.
 */
export { CHAT_METRICS } from "../functions/core/chat/metrics";
export { JANITOR_METRICS } from "../functions/core/janitor/report";

/** Custom metrics the ingest function publishes (dimension service=ingest; some split by one more). */
export const INGEST_METRICS = {
  ingested: "DocumentsIngested",
  /** Split by `reason` (the document's failure code). */
  failed: "DocumentsFailed",
  /** Split by `operation` (upload, content, delete...), milliseconds. */
  providerLatency: "ProviderLatency",
} as const;

export const DEFAULT_INGEST_CONCURRENCY = 2;
/**
 * One S3 event per invocation by default: every document gets the whole function timeout for its
 * upload and retries, and provider concurrency is simply ingestConcurrency x batchSize.
 */
export const DEFAULT_INGEST_BATCH_SIZE = 1;
export const DEFAULT_INGEST_TIMEOUT = Duration.minutes(5);
export const DEFAULT_CHAT_TIMEOUT = Duration.minutes(10);
export const DEFAULT_JANITOR_TIMEOUT = Duration.minutes(5);
export const DEFAULT_JANITOR_SCHEDULE = Duration.hours(1);
export const DEFAULT_RETENTION_HOURS = 24;
export const DEFAULT_HIGH_WATER_MARK = 0.9;
