/**
 * Integration harness for ingestion: local S3 + DynamoDB (test/support/local-stack.ts), the provider
 * emulator in the test provider's profile (TEST_PROVIDER, test/support/provider.ts), that provider's
 * real client, and IngestService (with the provider's file rules) fed with SQS-shaped batches built
 * from the S3 server's own event records, exactly as the Lambda receives them.
 */
import { DeleteObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3EventRecord, SQSBatchResponse, SQSRecord } from "aws-lambda";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { S3ObjectSource } from "../../functions/core/ingest/objects";
import { DEFAULT_INGEST_CONFIG, type IngestDeps, IngestService } from "../../functions/core/ingest/service";
import type { ProviderClient, ProviderClientOptions } from "../../functions/core/provider/client";
import { RecordingMetrics } from "../../functions/core/runtime/telemetry";
import { sqsMessageFor } from "../../local/aws/sqs";
import { type EmulatorOptions, type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { type LocalStack, startLocalStack } from "../support/local-stack";
import { TEST_PROFILE, TEST_PROVIDER, testClient } from "../support/provider";

export interface IngestHarness {
  stack: LocalStack;
  emulator: RunningEmulator;
  store: DynamoDocumentStore;
  client: ProviderClient;
  metrics: RecordingMetrics;
  /** A service over the harness's servers; `overrides` replace any dependency or config field. */
  service(overrides?: Partial<IngestDeps>): IngestService;
  /** Puts an object and returns the S3 event record it produced. */
  put(key: string, body: string | Uint8Array): Promise<S3EventRecord>;
  /** The latest S3 event record for `key`. */
  eventFor(key: string): Promise<S3EventRecord>;
  /** Deletes an object and returns the S3 event record it produced. */
  remove(key: string): Promise<S3EventRecord>;
  /**
   * Delivers messages like SQS + Lambda would: one batch, then the failed messages again (same
   * message id, receive count + 1) until none fail or `maxReceiveCount` is reached. Returns the
   * message ids still failing at the end (the DLQ).
   */
  deliver(
    messages: SQSRecord[],
    opts?: { service?: IngestService; maxReceiveCount?: number },
  ): Promise<string[]>;
  close(): Promise<void>;
}

/** A test-speed retry policy (the client still honours Retry-After). */
/** The deployment id every harness ingest service uploads under. */
export const INGEST_DEPLOYMENT = "ingesttest";

export const FAST_RETRY: ProviderClientOptions["retry"] = {
  maxAttempts: 4,
  baseDelayMs: 20,
  maxDelayMs: 2_000,
  maxElapsedMs: 10_000,
};

export async function startIngestHarness(opts: { emulator?: EmulatorOptions } = {}): Promise<IngestHarness> {
  const [stack, emulator] = await Promise.all([
    startLocalStack({ prefix: "ingest" }),
    startEmulator({ profile: TEST_PROVIDER, ...opts.emulator }),
  ]);
  const events: S3EventRecord[] = [];
  const off = stack.onS3Event((r) => events.push(r));
  const store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  const client = testClient({
    baseURL: emulator.baseURL,
    apiKey: async () => "test",
    retry: FAST_RETRY,
    requestTimeoutMs: 10_000,
    uploadTimeoutMs: 20_000,
  });
  const metrics = new RecordingMetrics();
  const objects = new S3ObjectSource(stack.s3Client);
  // The provider's file rules, as the ingest handler configures them (ingest/config.ts).
  const config = {
    ...DEFAULT_INGEST_CONFIG,
    files: TEST_PROFILE.files,
    maxFileBytes: TEST_PROFILE.files.maxFileBytes,
  };
  const service = (overrides: Partial<IngestDeps> = {}) =>
    new IngestService({
      deploymentId: INGEST_DEPLOYMENT,
      store,
      provider: client,
      objects,
      metrics,
      ...overrides,
      config: { ...config, ...overrides.config },
    });
  const lastEventFor = (key: string): S3EventRecord => {
    for (let i = events.length - 1; i >= 0; i--) {
      const r = events[i]!;
      if (decodeURIComponent(r.s3.object.key.replace(/\+/g, " ")) === key) return r;
    }
    throw new Error(`no S3 event for ${key}`);
  };
  return {
    stack,
    emulator,
    store,
    client,
    metrics,
    service,
    async put(key, body) {
      await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: body }));
      return lastEventFor(key);
    },
    eventFor: async (key) => lastEventFor(key),
    async remove(key) {
      await stack.s3Client.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: key }));
      return lastEventFor(key);
    },
    async deliver(messages, o = {}) {
      const svc = o.service ?? service();
      const max = o.maxReceiveCount ?? svc.config.maxReceiveCount;
      const dead: string[] = [];
      let pending = messages;
      while (pending.length > 0) {
        const result: SQSBatchResponse = await svc.processBatch(pending);
        const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
        const next: SQSRecord[] = [];
        for (const m of pending) {
          if (!failed.has(m.messageId)) continue;
          const count = Number(m.attributes.ApproximateReceiveCount) + 1;
          if (count > max) dead.push(m.messageId);
          else next.push({ ...m, attributes: { ...m.attributes, ApproximateReceiveCount: String(count) } });
        }
        pending = next;
      }
      return dead;
    },
    async close() {
      off();
      await Promise.all([stack.close(), emulator.close()]);
    },
  };
}

/** One SQS message per S3 record (how S3 -> SQS delivers). */
export const messagesFor = (records: S3EventRecord[]): SQSRecord[] => records.map((r) => sqsMessageFor([r]));
