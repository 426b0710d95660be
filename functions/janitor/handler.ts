/**
 * Janitor Lambda: an EventBridge schedule starts one sweep (functions/core/janitor/sweep.ts) that
 * marks documents stuck in `processing` failed (functions/core/janitor/stuck.ts) and deletes stale
 * remote files at the configured provider (Moonshot or Zhipu GLM, PROVIDER) within the invocation's
 * remaining time, under that provider's account limits, then reports a summary
 * as a log line and metrics. An authentication or configuration error fails the invocation (alarm).
 *
 * Event: the scheduled event, or any object; `dryRun: true` (top level or under `detail`) reports what
 * would be deleted without deleting. Only this deployment's remote files are ever deleted
 * (functions/core/janitor/ownership.ts); others are counted and reported. Environment (checked once
 * at cold start): TABLE_NAME, DEPLOYMENT_ID,
 * RETENTION_HOURS (default 24), HIGH_WATER_MARK (default 0.9), DRY_RUN (default false),
 * STUCK_PROCESSING_MINUTES (default 150: documents still `processing` after that are marked failed),
 * PROVIDER and its base URL / key variables, PROVIDER_MAX_FILES.
 */
import { MetricUnit } from "@aws-lambda-powertools/metrics";
import type { Context } from "aws-lambda";
import { DynamoDocumentStore } from "../core/documents/dynamo-store";
import { dryRunFromEvent, loadJanitorConfig } from "../core/janitor/config";
import { JANITOR_METRICS, reportSweep } from "../core/janitor/report";
import { runSweep, SweepAbortedError, type SweepSummary } from "../core/janitor/sweep";
import { providerFromEnv } from "../core/provider";
import { documents } from "../core/runtime/clients";
import { logger, metrics } from "../core/runtime/observability";

/** Provider calls in flight during a sweep (deletes share the account's rate tier with ingestion). */
const SWEEP_CONCURRENCY = 4;

// Cold start: a bad configuration fails every invocation loudly instead of sweeping with guesses.
const config = loadJanitorConfig();
const store = new DynamoDocumentStore({ client: documents, tableName: config.tableName });
const api = providerFromEnv({}, config.provider);

/** The sweep's outcome, also returned to direct invokers (the local runtime prints `deleted`). */
export interface JanitorResult extends SweepSummary {
  deleted: number;
}

export const handler = async (event: unknown, context: Context): Promise<JanitorResult> => {
  const dryRun = dryRunFromEvent(event, config.dryRun);
  const deadline = Date.now() + context.getRemainingTimeInMillis();
  try {
    const result = await runSweep(
      { api, store },
      {
        policy: config.policy,
        dryRun,
        deadline,
        concurrency: SWEEP_CONCURRENCY,
        stuckProcessingMinutes: config.stuckProcessingMinutes,
      },
    );
    reportSweep(result.summary, result.failures, { logger, metrics });
    return { ...result.summary, deleted: dryRun ? 0 : result.deleted.length };
  } catch (err) {
    if (err instanceof SweepAbortedError) reportSweep(err.summary, [], { logger, metrics });
    else metrics.addMetric(JANITOR_METRICS.errors, MetricUnit.Count, 1);
    logger.error("janitor sweep failed", err as Error);
    throw err;
  } finally {
    metrics.publishStoredMetrics();
  }
};
