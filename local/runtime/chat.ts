/**
 * The chat API for local mode: the same Hono app the Lambda serves (functions/chat/app.ts), built from
 * the same environment (TABLE_NAME, BUCKET_NAME, MODEL, MOONSHOT_*, API_TOKEN) with the same adapters
 * (DynamoDocumentStore, the Moonshot client, S3 deletes) and the same bearer check the Lambda
 * authorizer uses. Imported only after `startStack` has set the environment, like a cold start.
 */
import { DeleteObjectCommand } from "@aws-sdk/client-s3";
import { DEFAULT_MODEL, ENV } from "../../functions/core/config";

/** A fetch handler serving the chat API. */
export async function loadChatFetch(): Promise<(request: Request) => Response | Promise<Response>> {
  const [
    { createChatApp },
    { DynamoDocumentStore },
    { moonshotFromEnv },
    clients,
    { bearerAuthenticator },
    secrets,
  ] = await Promise.all([
    import("../../functions/chat/app"),
    import("../../functions/core/documents/dynamo-store"),
    import("../../functions/core/moonshot/index"),
    import("../../functions/core/runtime/clients"),
    import("../../functions/core/auth/token"),
    import("../../functions/core/runtime/secrets"),
  ]);
  const tableName = process.env[ENV.TABLE_NAME];
  if (!tableName) throw new Error(`${ENV.TABLE_NAME} is not set`);
  const app = createChatApp({
    store: new DynamoDocumentStore({ client: clients.documents, tableName }),
    moonshot: moonshotFromEnv(),
    objects: {
      async deleteObject(bucket, key) {
        await clients.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      },
    },
    defaultModel: process.env[ENV.MODEL]?.trim() || DEFAULT_MODEL,
    authenticate: bearerAuthenticator(secrets.getApiToken),
  });
  return (request) => app.fetch(request);
}
