/**
 * The whole pipeline in one process, on 127.0.0.1: local S3 (s3rver) holding the bucket, local
 * DynamoDB (dynalite) with the stack's table design, the provider emulator (Moonshot or GLM, PROVIDER;
 * unless a real key is configured), S3 events -> LocalQueue (SQS semantics) -> the ingest Lambda handler, the janitor
 * handler on an interval, and the chat app (same code, same bearer auth) on PORT, plus the drop
 * folder. The handlers are the Lambda modules themselves, imported after the environment they read
 * at cold start has been set.
 */
import { readFile, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { PutBucketCorsCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3EventRecord, SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { DocumentRecord } from "../../functions/core/documents/model";
import { PROVIDER_PROFILES } from "../../functions/core/provider/profiles";
import { ensureApiKeysTable, ensureDocumentsTable, startLocalDynamo } from "../aws/dynamo";
import { startLocalS3 } from "../aws/s3";
import { createAdminApp } from "./admin";
import { loadChatFetch } from "./chat";
import {
  ConfigError,
  dataPaths,
  ensureDirs,
  LOCAL_CREDENTIALS,
  type LocalConfig,
  persistentDeploymentId,
  persistentSecret,
  type RuntimeInfo,
  writeFileAtomic,
} from "./config";
import { DropFolder } from "./drop-folder";
import { createLambdaContext } from "./lambda-context";
import { withPortHint } from "./ports";
import { dim, green, type Printer } from "./print";
import { LocalQueue, type QueueEvent, type QueueSnapshot } from "./queue";
import { decodeS3EventKey, s3NotificationBody } from "./s3-events";
import { uploadFile } from "./upload";

/** The local bucket holding the search index (AWS: the SearchIndex construct's own bucket). */
export const LOCAL_SEARCH_INDEX_BUCKET = "kdp-search-index";
/** How often the local runtime runs the indexer (AWS: woken by ingestion, plus a 1-minute schedule). */
const INDEX_POLL_MS = 1000;

/** The emulator's key in local mode (it is only ever reachable on 127.0.0.1). */
const EMULATOR_API_KEY = "sk-local-emulator";

export interface RunningStack {
  info: RuntimeInfo;
  tokenSource: "API_TOKEN" | "generated" | "file";
  queue: LocalQueue;
  /** Stops everything; safe to call twice. */
  close(): Promise<void>;
}

/** Starts the local pipeline described by `config`, printing pipeline events through `out`. */
export async function startStack(config: LocalConfig, out: Printer): Promise<RunningStack> {
  const paths = dataPaths(config.dataDir);
  const emulatorDir = config.provider === "glm" ? paths.emulatorGlm : paths.emulator;
  await ensureDirs(config.dataDir, paths.s3, paths.dynamo, emulatorDir);
  if (config.dropDir) await ensureDirs(config.dropDir);
  await refuseSecondInstance(paths.runtime, config.dataDir);

  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        out.warn(`shutdown: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };

  try {
    const token = config.apiToken
      ? { value: config.apiToken, source: "API_TOKEN" as const }
      : await persistentSecret(paths.token, "kdp_");
    const deploymentId = config.deploymentId ?? (await persistentDeploymentId(paths.deploymentId));

    const s3 = await withPortHint("The local S3 server", "S3_PORT", config.s3Port, () =>
      startLocalS3({
        port: config.s3Port,
        dataDir: paths.s3,
        buckets: [config.bucket, LOCAL_SEARCH_INDEX_BUCKET],
      }),
    );
    closers.push(() => s3.close());
    await allowBrowserUploads(s3.endpoint, config.bucket, config.region);
    const dynamo = await withPortHint("The local DynamoDB server", "DYNAMO_PORT", config.dynamoPort, () =>
      startLocalDynamo({ port: config.dynamoPort, dataDir: paths.dynamo }),
    );
    closers.push(() => dynamo.close());
    const admin = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: config.region,
      credentials: LOCAL_CREDENTIALS,
    });
    closers.push(async () => admin.destroy());
    const { migrated } = await ensureDocumentsTable(admin, config.tableName);
    const keysTableName = `${config.tableName}-keys`;
    await ensureApiKeysTable(admin, keysTableName);
    if (migrated) out.info("dynamodb: the documents table gained its holdsFiles index (data migrated)");

    const profile = PROVIDER_PROFILES[config.provider];
    let providerBaseUrl: string;
    let providerApiKey: string;
    if (config.providerApiKey) {
      providerBaseUrl = config.providerBaseUrl ?? profile.defaultBaseUrl;
      providerApiKey = config.providerApiKey;
    } else {
      const { startEmulator } = await import("../emulator/server");
      const emulator = await withPortHint(
        `The ${profile.label} emulator`,
        "EMULATOR_PORT",
        config.emulatorPort,
        () =>
          startEmulator({
            profile: config.provider,
            port: config.emulatorPort,
            apiKey: EMULATOR_API_KEY,
            dataDir: emulatorDir,
          }),
      );
      closers.push(() => emulator.close());
      providerBaseUrl = emulator.baseURL;
      providerApiKey = EMULATOR_API_KEY;
    }

    // The handlers read these at import time (cold start), exactly as in Lambda.
    Object.assign(process.env, {
      TABLE_NAME: config.tableName,
      DEPLOYMENT_ID: deploymentId,
      KEYS_TABLE_NAME: keysTableName,
      BUCKET_NAME: config.bucket,
      SEARCH_INDEX_BUCKET: LOCAL_SEARCH_INDEX_BUCKET,
      AWS_REGION: config.region,
      AWS_DEFAULT_REGION: config.region,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      PROVIDER: config.provider,
      [profile.env.baseUrl]: providerBaseUrl,
      [profile.env.apiKey]: providerApiKey,
      API_TOKEN: token.value,
      MAX_RECEIVE_COUNT: String(config.ingest.maxReceiveCount),
      POWERTOOLS_SERVICE_NAME: process.env.POWERTOOLS_SERVICE_NAME ?? "kimi-doc-pipeline-local",
      // The handlers' JSON logs: errors only by default (the runtime prints a line per document);
      // LOG_LEVEL=WARN or INFO shows more.
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? process.env.LOG_LEVEL ?? "ERROR",
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? "true",
      POWERTOOLS_TRACE_ENABLED: "false",
    });
    // A user's profile or session must never leak into local mode (and never reach real AWS).
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;

    // Ingest: S3 events -> queue -> the ingest Lambda handler.
    const ingest = (await import("../../functions/ingest/handler")) as unknown as {
      handler: (event: SQSEvent, context: unknown) => Promise<SQSBatchResponse | undefined>;
    };
    const statusReader = await documentStatusReader(config.tableName);
    const queueState = await readJson<QueueSnapshot>(paths.queue);
    let persistTimer: NodeJS.Timeout | undefined;
    let persisting: Promise<void> = Promise.resolve();
    const persistQueue = () => {
      persisting = persisting
        .then(() => writeFileAtomic(paths.queue, JSON.stringify(queue.snapshot())))
        .catch((err) => out.warn(`could not save the queue to ${paths.queue}: ${String(err)}`));
      return persisting;
    };
    const queue: LocalQueue = new LocalQueue({
      name: "kdp-local-ingest",
      functionName: "kdp-local-ingest",
      region: config.region,
      handler: async (event, context) => {
        const response = await ingest.handler(event, context);
        void reportDocuments(event, response, statusReader, out);
        return response;
      },
      batchSize: config.ingest.batchSize,
      batchWindowMs: config.ingest.batchWindowMs,
      maxConcurrency: config.ingest.maxConcurrency,
      functionTimeoutMs: config.ingest.functionTimeoutMs,
      maxReceiveCount: config.ingest.maxReceiveCount,
      retryDelayMs: (n) => Math.min(30_000, 1000 * 2 ** (n - 1)),
      restore: queueState,
      onEvent: (event) => printQueueEvent(event, out),
      onChange: () => {
        clearTimeout(persistTimer);
        persistTimer = setTimeout(() => void persistQueue(), 50);
        persistTimer.unref();
      },
    });
    const restored = queueState?.messages?.length ?? 0;
    if (restored) out.info(`ingest: resuming ${restored} message(s) left in the queue by the last run`);
    const unsubscribe = s3.onEvent((record: S3EventRecord) => {
      if (record.s3.bucket.name !== config.bucket || queue.isClosed) return;
      const key = decodeS3EventKey(record.s3.object.key);
      const verb = record.eventName.startsWith("ObjectRemoved") ? "removed" : "created";
      out.info(
        `s3: ${verb} ${key}${record.s3.object.size !== undefined ? ` (${formatBytes(record.s3.object.size)})` : ""}`,
      );
      queue.send(s3NotificationBody(record));
    });
    closers.push(async () => {
      clearTimeout(persistTimer);
      await queue.close({ drainMs: 15_000 });
      await persistQueue();
    });
    closers.push(async () => unsubscribe());

    // Janitor on an interval, one sweep at a time (like the stack's schedule).
    if (config.janitorIntervalSeconds > 0) {
      const janitor = (await import("../../functions/janitor/handler")) as unknown as {
        handler: (event: { dryRun?: boolean }, context: unknown) => Promise<unknown>;
      };
      let sweeping: Promise<void> | undefined;
      const sweep = () => {
        if (sweeping) return;
        const context = createLambdaContext({
          functionName: "kdp-local-janitor",
          timeoutMs: 120_000,
          region: config.region,
        });
        sweeping = janitor
          .handler({}, context)
          .then((result) => printJanitor(result, out))
          .catch((err) => out.warn(`janitor: ${err instanceof Error ? err.message : String(err)}`))
          .finally(() => {
            sweeping = undefined;
          });
      };
      const timer = setInterval(sweep, config.janitorIntervalSeconds * 1000);
      timer.unref();
      closers.push(async () => {
        clearInterval(timer);
        await sweeping;
      });
    }

    // Search indexer: the Lambda handler, one run at a time, polling the to-do list every second.
    const indexerModule = (await import("../../functions/indexer/handler")) as unknown as {
      handler: (event: unknown, context: unknown) => Promise<{ added: number; removed: number }>;
    };
    let indexing: Promise<void> | undefined;
    const indexTimer = setInterval(() => {
      if (indexing) return;
      const context = createLambdaContext({
        functionName: "kdp-local-indexer",
        timeoutMs: 300_000,
        region: config.region,
      });
      indexing = indexerModule
        .handler({}, context)
        .then((r) => {
          if (r.added || r.removed)
            out.info(dim(`search: indexed ${r.added}, removed ${r.removed} document(s)`));
        })
        .catch((err) => out.warn(`search indexer: ${err instanceof Error ? err.message : String(err)}`))
        .finally(() => {
          indexing = undefined;
        });
    }, INDEX_POLL_MS);
    indexTimer.unref();
    closers.push(async () => {
      clearInterval(indexTimer);
      await indexing;
    });

    // Chat API (same app as the Lambda, same bearer auth) plus the local admin routes.
    const chatFetch = await loadChatFetch();
    const adminApp = createAdminApp({ token: token.value, queue, bucket: config.bucket });
    const { serve } = await import("@hono/node-server");
    const server = await withPortHint("The chat API", "PORT", config.port, () =>
      listen(serve, config.port, (request: Request, env?: unknown) =>
        new URL(request.url).pathname.startsWith("/_local/")
          ? adminApp.fetch(request)
          : chatFetch(request, env),
      ),
    );
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const consoleUrl = await webConsoleUrl(apiUrl);

    // Drop folder -> local bucket.
    if (config.dropDir) {
      const s3Client = new S3Client({
        endpoint: s3.endpoint,
        forcePathStyle: true,
        region: config.region,
        credentials: LOCAL_CREDENTIALS,
      });
      const drop = new DropFolder({
        dir: config.dropDir,
        ledgerPath: paths.dropLedger,
        upload: ({ path, key }) => uploadFile({ s3: s3Client, bucket: config.bucket, key, path }),
        onEvent: (event) => {
          if (event.type === "uploaded")
            out.info(`drop: uploaded ${event.key} -> s3://${config.bucket}/${event.key}`);
          else if (event.type === "failed")
            out.warn(`drop: could not upload ${event.key}: ${event.error} (will retry)`);
          else out.warn(`drop: ${event.error}`);
        },
      });
      await drop.start();
      closers.push(async () => {
        await drop.close();
        s3Client.destroy();
      });
    }

    const info: RuntimeInfo = {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      apiUrl,
      token: token.value,
      s3Endpoint: s3.endpoint,
      bucket: config.bucket,
      region: config.region,
      ...(config.dropDir ? { dropDir: config.dropDir } : {}),
      provider: config.provider,
      providerBaseUrl,
      emulator: !config.providerApiKey,
      ...(consoleUrl ? { consoleUrl } : {}),
    };
    await writeFileAtomic(paths.runtime, `${JSON.stringify(info, null, 2)}\n`, 0o600);
    // Removed first on shutdown, so the CLI stops pointing at a stack that is going away.
    closers.push(() => rm(paths.runtime, { force: true }));

    let closed: Promise<void> | undefined;
    return {
      info,
      tokenSource: token.source,
      queue,
      close: () => {
        closed ??= closeAll();
        return closed;
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

type ServeFn = typeof import("@hono/node-server").serve;

function listen(
  serve: ServeFn,
  port: number,
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname: "127.0.0.1" }, () => {
      server.off("error", reject);
      resolve(server as Server);
    }) as Server;
    server.once("error", reject);
  });
}

/** The web console's URL when the chat app serves one (its assets are built into web/dist). */
async function webConsoleUrl(apiUrl: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${apiUrl}/`, { signal: AbortSignal.timeout(3000) });
    await res.body?.cancel();
    return res.ok && res.headers.get("content-type")?.includes("text/html") ? `${apiUrl}/` : undefined;
  } catch {
    return undefined;
  }
}

/** Two stacks on one DATA_DIR would corrupt the DynamoDB files: refuse while the other one lives. */
async function refuseSecondInstance(runtimePath: string, dataDir: string): Promise<void> {
  const running = await readJson<RuntimeInfo>(runtimePath);
  if (!running?.pid || running.pid === process.pid) return;
  try {
    process.kill(running.pid, 0);
  } catch {
    return; // stale file from a crashed run
  }
  throw new ConfigError(
    `another \`npm start\` (pid ${running.pid}, API ${running.apiUrl}) is already using DATA_DIR=${dataDir}. ` +
      "Stop it first, or set DATA_DIR to another folder (and PORT/S3_PORT to free ports).",
  );
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** `documents/a.pdf` from a queued S3 notification body, for messages a user can read. */
export function describeMessage(body: string): string {
  try {
    const record = (JSON.parse(body) as { Records?: S3EventRecord[] }).Records?.[0];
    if (record) return `s3://${record.s3.bucket.name}/${decodeS3EventKey(record.s3.object.key)}`;
  } catch {
    // not an S3 notification
  }
  return body.slice(0, 80);
}

function printQueueEvent(event: QueueEvent, out: Printer): void {
  if (event.type === "batch") {
    const secs = (event.durationMs / 1000).toFixed(1);
    const retry = event.failed - event.deadLettered;
    const outcome = [
      retry ? `${retry} to retry` : "",
      event.deadLettered ? `${event.deadLettered} dead-lettered` : "",
    ]
      .filter(Boolean)
      .join(", ");
    if (event.error)
      out.warn(`ingest: batch of ${event.size} failed after ${secs}s: ${event.error} (${outcome})`);
    else if (event.failed) out.warn(`ingest: ${event.succeeded}/${event.size} done, ${outcome} (${secs}s)`);
    else out.info(dim(`ingest: ${event.size} event(s) processed in ${secs}s`));
  } else if (event.type === "dead-letter") {
    out.error(
      `ingest: gave up on ${describeMessage(event.letter.body)} after ${event.letter.receiveCount} attempts` +
        `${event.letter.lastError ? `: ${event.letter.lastError}` : ""} (dead-letter list: GET /_local/queue)`,
    );
  }
}

type StatusReader = (bucket: string, key: string) => Promise<DocumentRecord | undefined>;

/** Reads a document's record the way the chat API does (same store, same clients). */
async function documentStatusReader(tableName: string): Promise<StatusReader> {
  const [{ DynamoDocumentStore }, { documentIdFor }, clients] = await Promise.all([
    import("../../functions/core/documents/dynamo-store"),
    import("../../functions/core/ingest/events"),
    import("../../functions/core/runtime/clients"),
  ]);
  const store = new DynamoDocumentStore({ client: clients.documents, tableName });
  return (bucket, key) => store.get(documentIdFor(bucket, key));
}

/** After an invocation: one line per document it settled (ready, failed with the reason, deleted). */
async function reportDocuments(
  event: SQSEvent,
  response: unknown,
  read: StatusReader,
  out: Printer,
): Promise<void> {
  const retried = new Set(
    ((response as SQSBatchResponse | undefined)?.batchItemFailures ?? []).map((f) => f.itemIdentifier),
  );
  for (const message of event.Records) {
    if (retried.has(message.messageId)) continue;
    let records: S3EventRecord[] = [];
    try {
      records = (JSON.parse(message.body) as { Records?: S3EventRecord[] }).Records ?? [];
    } catch {
      continue;
    }
    for (const r of records) {
      const key = decodeS3EventKey(r.s3.object.key);
      try {
        const doc = await read(r.s3.bucket.name, key);
        if (!doc) out.info(`deleted   ${key}`);
        else if (doc.status === "ready")
          out.info(
            `${green("ready")}     ${key}  id=${doc.documentId}  ${doc.chunkCount ?? "?"} chunk(s), ~${doc.tokenEstimate ?? "?"} tokens`,
          );
        else if (doc.status === "failed")
          out.warn(
            `failed    ${key}  id=${doc.documentId}  ${doc.error?.message ?? "unknown reason"} [${doc.error?.code ?? "?"}]`,
          );
        else if (doc.status === "deleted") out.info(`deleted   ${key}`);
      } catch {
        // Status lines are a convenience; the API has the truth.
      }
    }
  }
}

function printJanitor(result: unknown, out: Printer): void {
  if (!result || typeof result !== "object") return;
  const r = result as Record<string, unknown>;
  const deleted =
    typeof r.deleted === "number" ? r.deleted : Array.isArray(r.deleted) ? r.deleted.length : undefined;
  if (deleted) out.info(`janitor: released ${deleted} remote file(s)`);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/**
 * The web console PUTs uploads straight to the local S3 server through presigned URLs, from another
 * origin than the page: the bucket must allow cross-origin PUTs, as the CDK construct's bucket does.
 */
async function allowBrowserUploads(endpoint: string, bucket: string, region: string): Promise<void> {
  const s3 = new S3Client({ endpoint, forcePathStyle: true, region, credentials: LOCAL_CREDENTIALS });
  try {
    await s3.send(
      new PutBucketCorsCommand({
        Bucket: bucket,
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedMethods: ["PUT"],
              AllowedOrigins: ["*"],
              AllowedHeaders: ["*"],
              ExposeHeaders: ["ETag"],
            },
          ],
        },
      }),
    );
  } finally {
    s3.destroy();
  }
}
