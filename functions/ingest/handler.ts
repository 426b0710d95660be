/**
 * Ingest Lambda: an SQS batch of S3 notifications in, `{ batchItemFailures }` out. Everything else
 * lives in IngestService (functions/core/ingest/service.ts), which local mode drives the same way.
 *
 * Environment (checked once at cold start): TABLE_NAME; DEPLOYMENT_ID; PROVIDER (moonshot or glm), its
 * base URL and key (MOONSHOT_BASE_URL and MOONSHOT_API_KEY_SECRET in AWS / MOONSHOT_API_KEY locally, or
 * the GLM_* ones); MAX_RECEIVE_COUNT (the queue's redrive limit, default 5); optional INGEST_CONCURRENCY,
 * INGEST_MAX_FILE_BYTES, INGEST_MAX_TEXT_BYTES, HIGH_WATER_MARK, PROVIDER_MAX_FILES.
 */
import { SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { ENV } from "../core/config";
import { DynamoDocumentStore } from "../core/documents/dynamo-store";
import { loadIngestEnvironment, safetyMarginMs } from "../core/ingest/config";
import { S3ObjectSource } from "../core/ingest/objects";
import { IngestService } from "../core/ingest/service";
import { QuotaRoomMaker } from "../core/janitor/room-maker";
import { providerFromEnv } from "../core/provider";
import { documents, s3 } from "../core/runtime/clients";
import { logger, metrics } from "../core/runtime/observability";
import { powertoolsLogger, powertoolsMetrics } from "../core/runtime/telemetry";
import { SqsIndexWaker } from "../core/search/wake";

// Cold start: configuration and clients once per process, reused by warm invocations.
const env = loadIngestEnvironment();
const ingestMetrics = powertoolsMetrics(metrics);
const store = new DynamoDocumentStore({ client: documents, tableName: env.tableName });
const provider = providerFromEnv(
  {
    onRequest: (e) => {
      if (e.code) ingestMetrics.count("ProviderErrors", 1, { name: "code", value: e.code });
    },
  },
  env.provider,
);
const service = new IngestService({
  deploymentId: env.deploymentId,
  store,
  provider,
  objects: new S3ObjectSource(s3),
  // The room maker plans against the chosen provider's limits (GLM: 100 files, Moonshot: 1,000).
  roomMaker: new QuotaRoomMaker(provider, store, {
    deploymentId: env.deploymentId,
    policy: {
      limits: env.provider.limits,
      ...(env.highWaterMark === undefined ? {} : { highWaterMark: env.highWaterMark }),
    },
  }),
  logger: powertoolsLogger(logger),
  metrics: ingestMetrics,
  config: env.config,
  // Unset locally (the runtime polls the to-do list instead).
  indexWaker: process.env[ENV.SEARCH_INDEX_QUEUE_URL]
    ? new SqsIndexWaker(new SQSClient({}), process.env[ENV.SEARCH_INDEX_QUEUE_URL] as string)
    : undefined,
});

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  logger.addContext(context);
  const remaining = context.getRemainingTimeInMillis();
  const invocationEnd = Date.now() + remaining;
  try {
    const result = await service.processBatch(event.Records ?? [], {
      deadline: invocationEnd - safetyMarginMs(remaining),
      invocationEnd,
    });
    if (result.batchItemFailures.length > 0) {
      logger.warn("batch items to redeliver", { count: result.batchItemFailures.length });
    }
    return result;
  } finally {
    metrics.publishStoredMetrics();
  }
};
