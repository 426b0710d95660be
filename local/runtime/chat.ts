/**
 * The chat API for local mode: the same Hono app the Lambda serves (functions/chat/app.ts), built
 * exactly like functions/chat/handler.ts builds it (same store, provider client, S3 deleter, default
 * model, logger), except that authentication is the app's own bearer check (the same function the
 * API Gateway authorizer uses) instead of API Gateway's authorizer. Imported only after `startStack`
 * has set the environment, like a cold start.
 */
import { ENV } from "../../functions/core/config";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { S3IndexObjects } from "../../functions/core/search/storage";

/** A fetch handler serving the chat API. */
export async function loadChatFetch(): Promise<
  (request: Request, env?: unknown) => Response | Promise<Response>
> {
  const [
    { createChatApp },
    { priceTableFromJson },
    { parseMaxContextTokens },
    { s3ObjectDeleter },
    { DynamoDocumentStore },
    { providerFromEnv, providerSettingsFromEnv },
    clients,
    keys,
    secrets,
    obs,
    telemetry,
  ] = await Promise.all([
    import("../../functions/chat/app"),
    import("../../functions/core/chat/prices"),
    import("../../functions/core/chat/budget"),
    import("../../functions/chat/objects"),
    import("../../functions/core/documents/dynamo-store"),
    import("../../functions/core/provider/index"),
    import("../../functions/core/runtime/clients"),
    import("../../functions/core/auth/api-keys"),
    import("../../functions/core/runtime/secrets"),
    import("../../functions/core/runtime/observability"),
    import("../../functions/core/runtime/telemetry"),
  ]);
  const tableName = process.env[ENV.TABLE_NAME];
  if (!tableName) throw new Error(`${ENV.TABLE_NAME} is not set`);
  const provider = providerSettingsFromEnv();
  const keysTable = process.env[ENV.KEYS_TABLE_NAME];
  const keyStore = keysTable ? new keys.DynamoApiKeyStore(clients.documents, keysTable) : undefined;
  const indexBucket = process.env[ENV.SEARCH_INDEX_BUCKET];
  const app = createChatApp({
    store: new DynamoDocumentStore({ client: clients.documents, tableName }),
    provider: providerFromEnv({}, provider),
    objects: s3ObjectDeleter(clients.s3),
    // As in the Lambda: without an index bucket /search answers 503 and chat reads the scope itself.
    search: indexBucket
      ? new IndexSearcher({ objects: new S3IndexObjects({ client: clients.s3, bucket: indexBucket }) })
      : undefined,
    defaultModel: process.env[ENV.MODEL]?.trim() || provider.profile.defaultModel,
    prices: priceTableFromJson(process.env[ENV.MODEL_PRICES]),
    maxContextTokens: parseMaxContextTokens(process.env[ENV.MAX_CONTEXT_TOKENS]),
    logger: telemetry.powertoolsLogger(obs.logger),
    // The API token or a live scoped key, checked on every request: a revoked key stops at once.
    authenticate: keys.keyAuthenticator({ getToken: secrets.getApiToken, keys: keyStore }),
    keys: keyStore,
    // From source here; the Lambda loads the same module as a file bundled on its own.
    loadMcpServer: () => import("../../functions/chat/mcp/server"),
  });
  // The server's bindings (the raw request line) go along: the app checks the path as sent.
  return (request, env) => app.fetch(request, env as Parameters<typeof app.fetch>[1]);
}
