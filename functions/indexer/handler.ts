/**
 * Search indexer Lambda: woken by messages on its FIFO queue (one message group, so never two runs at
 * once) sent by ingestion after a document's text changed, and by a one-minute schedule that catches
 * any lost wake-up. The messages are only triggers; the work list is the to-do list in the documents
 * table (functions/core/search/todos.ts). Runs until the list is empty or time runs short.
 *
 * Environment (checked at cold start): TABLE_NAME, SEARCH_INDEX_BUCKET.
 */
import type { Context } from "aws-lambda";
import { ENV } from "../core/config";
import { DynamoDocumentStore } from "../core/documents/dynamo-store";
import { documents, s3 } from "../core/runtime/clients";
import { logger, metrics } from "../core/runtime/observability";
import { powertoolsLogger, powertoolsMetrics } from "../core/runtime/telemetry";
import { type IndexRunReport, SearchIndexer } from "../core/search/indexer";
import { S3IndexObjects } from "../core/search/storage";

function requireEnv(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`${name} is not set; the indexer function's construct must set it.`);
  return value;
}

const store = new DynamoDocumentStore({ client: documents, tableName: requireEnv(ENV.TABLE_NAME) });
const indexer = new SearchIndexer({
  store,
  todos: store.searchTodos,
  objects: new S3IndexObjects({ client: s3, bucket: requireEnv(ENV.SEARCH_INDEX_BUCKET) }),
  logger: powertoolsLogger(logger),
});
const indexMetrics = powertoolsMetrics(metrics);

export interface IndexerResult {
  runs: number;
  added: number;
  removed: number;
  /** To-dos still waiting (batch limits, writes not landed yet). */
  deferred: number;
  version: number;
  maxLagMs: number;
}

export const handler = async (_event: unknown, context: Context): Promise<IndexerResult> => {
  const end = Date.now() + context.getRemainingTimeInMillis();
  const total: IndexerResult = { runs: 0, added: 0, removed: 0, deferred: 0, version: 0, maxLagMs: 0 };
  let last: IndexRunReport | undefined;
  try {
    try {
      for (;;) {
        // A bulk run sizes its batch to half the time left (less a margin): an estimate off by 2x still
        // ends before the timeout, which would otherwise retry the same oversized batch.
        last = await indexer.run({ budgetMs: Math.max(0, (end - Date.now() - 10_000) / 2) });
        total.runs++;
        total.added += last.added;
        total.removed += last.removed;
        total.deferred = last.deferred;
        total.version = last.version;
        total.maxLagMs = Math.max(total.maxLagMs, last.maxLagMs);
        const progressed = last.added + last.removed > 0 || last.todos > last.deferred;
        // Another run only when this one moved and there is time for one as long again (plus margin).
        if (last.todos === 0 || !progressed || Date.now() + last.ms * 2 + 5_000 > end) break;
      }
    } catch (err) {
      // Not rethrown: a failed FIFO batch would block the queue's only message group until its
      // visibility timeout. The to-dos are still there; the next wake-up (at most a minute away)
      // retries, and the SearchIndexFailures alarm says when that keeps failing.
      logger.error("search index run failed; retried at the next wake-up", { error: err as Error });
      indexMetrics.count("SearchIndexFailures");
    }
    if (total.added + total.removed > 0) indexMetrics.timing("SearchIndexLag", total.maxLagMs);
    indexMetrics.count("SearchIndexChanges", total.added + total.removed);
    return total;
  } finally {
    metrics.publishStoredMetrics();
  }
};
