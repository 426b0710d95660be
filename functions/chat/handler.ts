/**
 * Lambda entry of the chat API: API Gateway REST API, Lambda proxy integration with response
 * streaming. Builds the app once per container (clients, caches and the model list are reused across
 * warm invocations); all behaviour lives in ./app.ts and functions/core/chat.
 *
 * Authentication happens in the API Gateway Lambda authorizer (functions/authorizer/handler.ts);
 * the app refuses requests that arrive without the authorizer's context (see app.ts).
 */
import { DynamoApiKeyStore } from "../core/auth/api-keys";
import { parseMaxContextTokens } from "../core/chat/budget";
import { priceTableFromJson } from "../core/chat/prices";
import { ENV } from "../core/config";
import { DynamoDocumentStore } from "../core/documents/dynamo-store";
import { providerFromEnv, providerSettingsFromEnv } from "../core/provider/index";
import { documents, s3 } from "../core/runtime/clients";
import { logger, metrics } from "../core/runtime/observability";
import { powertoolsLogger, powertoolsMetrics } from "../core/runtime/telemetry";
import { IndexSearcher } from "../core/search/searcher";
import { S3IndexObjects } from "../core/search/storage";
import { createChatApp } from "./app";
import { streamingHandler } from "./lambda-stream";
import { MCP_SERVER_BUNDLE } from "./mcp/bundle";
import { s3ObjectDeleter } from "./objects";

/**
 * The MCP server (functions/chat/mcp/server.ts and the SDK), bundled apart next to this bundle and
 * imported on the first `POST /mcp` only. A computed specifier, so esbuild leaves the import to run
 * time instead of inlining the SDK into this bundle.
 */
const mcpServerUrl = () => new URL(`./${MCP_SERVER_BUNDLE}`, import.meta.url).href;

function requireEnv(name: string): string {
  const value = process.env[name]?.trim();
  if (!value) throw new Error(`${name} is not set; the chat function's construct must set it.`);
  return value;
}

// Cold start: a bad PROVIDER (or its settings) fails every invocation loudly.
const provider = providerSettingsFromEnv();

const keysTable = process.env[ENV.KEYS_TABLE_NAME]?.trim();
const app = createChatApp({
  store: new DynamoDocumentStore({ client: documents, tableName: requireEnv(ENV.TABLE_NAME) }),
  // A person is waiting: retry a provider hiccup once, then answer (429 passes Retry-After through).
  provider: providerFromEnv({ retry: { maxAttempts: 2, maxElapsedMs: 20_000 } }, provider),
  objects: s3ObjectDeleter(s3),
  // Token mode: the admin's key-management routes (the authorizer checks the keys themselves).
  keys: keysTable ? new DynamoApiKeyStore(documents, keysTable) : undefined,
  // Without an index bucket (a stack from before the index): /search answers 503, chat reads scopes.
  search: process.env[ENV.SEARCH_INDEX_BUCKET]
    ? new IndexSearcher({
        objects: new S3IndexObjects({ client: s3, bucket: process.env[ENV.SEARCH_INDEX_BUCKET] as string }),
      })
    : undefined,
  defaultModel: process.env[ENV.MODEL]?.trim() || provider.profile.defaultModel,
  prices: priceTableFromJson(process.env[ENV.MODEL_PRICES]),
  maxContextTokens: parseMaxContextTokens(process.env[ENV.MAX_CONTEXT_TOKENS]),
  logger: powertoolsLogger(logger),
  metrics: powertoolsMetrics(metrics),
  loadMcpServer: () => import(mcpServerUrl()),
});

export const handler = streamingHandler(
  app,
  undefined,
  (err) => logger.error("chat handler failed", { error: err as Error }),
  // Once per invocation, after the (possibly streamed) answer: token counts arrive at its end.
  () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  },
);
