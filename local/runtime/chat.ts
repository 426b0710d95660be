/**
 * The chat API for local mode: the same Hono app the Lambda serves (functions/chat/app.ts), built
 * exactly like functions/chat/handler.ts builds it (same store, provider client, S3 deleter, default
 * model, logger), except that authentication is the app's own bearer check (the same function the
 * API Gateway authorizer uses) instead of API Gateway's authorizer. Imported only after `startStack`
 * has set the environment, like a cold start.
 */
import { ENV } from "../../functions/core/config";

/** A fetch handler serving the chat API. */
export async function loadChatFetch(): Promise<(request: Request) => Response | Promise<Response>> {
  const [
    { createChatApp },
    { s3ObjectDeleter },
    { DynamoDocumentStore },
    { providerFromEnv, providerSettingsFromEnv },
    clients,
    auth,
    secrets,
    obs,
    telemetry,
  ] = await Promise.all([
    import("../../functions/chat/app"),
    import("../../functions/chat/objects"),
    import("../../functions/core/documents/dynamo-store"),
    import("../../functions/core/provider/index"),
    import("../../functions/core/runtime/clients"),
    import("../../functions/core/auth/token"),
    import("../../functions/core/runtime/secrets"),
    import("../../functions/core/runtime/observability"),
    import("../../functions/core/runtime/telemetry"),
  ]);
  const tableName = process.env[ENV.TABLE_NAME];
  if (!tableName) throw new Error(`${ENV.TABLE_NAME} is not set`);
  const provider = providerSettingsFromEnv();
  const app = createChatApp({
    store: new DynamoDocumentStore({ client: clients.documents, tableName }),
    provider: providerFromEnv({}, provider),
    objects: s3ObjectDeleter(clients.s3),
    defaultModel: process.env[ENV.MODEL]?.trim() || provider.profile.defaultModel,
    logger: telemetry.powertoolsLogger(obs.logger),
    authenticate: auth.bearerAuthenticator(secrets.getApiToken),
  });
  return (request) => app.fetch(request);
}
