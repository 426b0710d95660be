/**
 * Local DynamoDB for `npm start`, tests and benchmarks: dynalite (the DynamoDB API on LevelDB, with
 * DynamoDB's real validation, including the 400 KB item limit) on 127.0.0.1, plus the documents table
 * built from the same TABLE_KEYS definition the CDK construct uses.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type GlobalSecondaryIndexDescription,
  ResourceInUseException,
  ResourceNotFoundException,
  ScanCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";
import {
  DOCUMENT_SK,
  deletedPartition,
  documentIdOfPk,
  documentsPartition,
  filesPartition,
  HOLDING_ATTRIBUTES,
  TABLE_KEYS,
} from "../../functions/core/documents/table";

export interface LocalDynamo {
  /** `http://127.0.0.1:<port>`, for `new DynamoDBClient({ endpoint })` or AWS_ENDPOINT_URL_DYNAMODB. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

export interface LocalDynamoOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** LevelDB directory for data that survives restarts; in memory when omitted. */
  dataDir?: string;
}

/** Starts dynalite on 127.0.0.1. Tables become ACTIVE immediately (no simulated CREATING delay). */
export async function startLocalDynamo(opts: LocalDynamoOptions = {}): Promise<LocalDynamo> {
  const server: Server = dynalite({
    path: opts.dataDir,
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets of SDK clients would otherwise hold the close open.
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

/**
 * Creates the documents table (pk/sk, the sharded GSIs `byKey` and `holdsFiles` with their
 * projections, on-demand) unless it exists, waits until it is ACTIVE and enables TTL on `expiresAt`
 * where the server supports it (dynalite does not implement UpdateTimeToLive; tombstones then simply
 * never expire locally). A table made by an older version, whose indexes are not these (no
 * `holdsFiles`, or the unsharded every-attribute ones), is migrated (see migrateIndexes); `migrated`
 * says so.
 */
export async function ensureDocumentsTable(
  client: DynamoDBClient,
  tableName: string,
): Promise<{ migrated: boolean }> {
  const backup = `${tableName}-migration`;
  const table = await describe(client, tableName);
  let migrated = true;
  if (table && !hasCurrentIndexes(table)) await migrateIndexes(client, tableName, backup);
  else if (await describe(client, backup)) await restoreFromBackup(client, tableName, backup);
  else {
    migrated = false;
    if (!table) await createDocumentsTable(client, tableName);
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TABLE_KEYS.ttlAttribute, Enabled: true },
      }),
    );
  } catch (err) {
    const name = (err as { name?: string }).name ?? "";
    // dynalite: UnknownOperationException; an already-enabled TTL: ValidationException.
    if (!/UnknownOperation|Validation/.test(name)) throw err;
  }
  return { migrated };
}

/** The indexes the documents table has, as CreateTable takes them (from TABLE_KEYS). */
export function documentIndexes(): GlobalSecondaryIndex[] {
  const { byKeyIndex, holdsFilesIndex } = TABLE_KEYS;
  return [
    {
      IndexName: byKeyIndex.name,
      KeySchema: [
        { AttributeName: byKeyIndex.partitionKey, KeyType: "HASH" },
        { AttributeName: byKeyIndex.sortKey, KeyType: "RANGE" },
      ],
      Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: [...byKeyIndex.projected] },
    },
    {
      IndexName: holdsFilesIndex.name,
      KeySchema: [{ AttributeName: holdsFilesIndex.partitionKey, KeyType: "HASH" }],
      Projection: { ProjectionType: "KEYS_ONLY" },
    },
  ];
}

async function createDocumentsTable(client: DynamoDBClient, tableName: string, withIndexes = true) {
  const { partitionKey, sortKey, byKeyIndex, holdsFilesIndex } = TABLE_KEYS;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: partitionKey, AttributeType: "S" },
          { AttributeName: sortKey, AttributeType: "S" },
          ...(withIndexes
            ? [
                { AttributeName: byKeyIndex.partitionKey, AttributeType: "S" as const },
                { AttributeName: byKeyIndex.sortKey, AttributeType: "S" as const },
                { AttributeName: holdsFilesIndex.partitionKey, AttributeType: "S" as const },
              ]
            : []),
        ],
        KeySchema: [
          { AttributeName: partitionKey, KeyType: "HASH" },
          { AttributeName: sortKey, KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: withIndexes ? documentIndexes() : undefined,
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 2 }, { TableName: tableName });
}

async function describe(client: DynamoDBClient, tableName: string) {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return undefined;
    throw err;
  }
}

/** Whether the table's indexes are exactly the wanted ones (names, keys, projections). */
function hasCurrentIndexes(table: { GlobalSecondaryIndexes?: GlobalSecondaryIndexDescription[] }): boolean {
  const have = table.GlobalSecondaryIndexes ?? [];
  const want = documentIndexes();
  const shape = (i: GlobalSecondaryIndex | GlobalSecondaryIndexDescription) =>
    JSON.stringify([
      i.IndexName,
      (i.KeySchema ?? []).map((k) => [k.AttributeName, k.KeyType]),
      i.Projection?.ProjectionType,
      [...(i.Projection?.NonKeyAttributes ?? [])].sort(),
    ]);
  return have.length === want.length && want.every((w) => have.some((h) => shape(h) === shape(w)));
}

/**
 * dynalite cannot add or change an index, so a local table from an older layout is copied to a backup
 * table, recreated with the current indexes, and restored (every record gets the index attributes of
 * the current layout on the way: its `byKey` shard, or the tombstones' partition, and its
 * `holdsFiles` shard when it holds files). A crash while copying out leaves the old table whole (the
 * next start begins again); after that the backup is complete and the next start restores from it.
 */
async function migrateIndexes(client: DynamoDBClient, tableName: string, backup: string) {
  await dropTable(client, backup);
  await createDocumentsTable(client, backup, false);
  await copyItems(client, tableName, backup);
  await dropTable(client, tableName);
  await restoreFromBackup(client, tableName, backup);
}

async function restoreFromBackup(client: DynamoDBClient, tableName: string, backup: string) {
  await createDocumentsTable(client, tableName);
  await copyItems(client, backup, tableName, withIndexAttributes);
  await dropTable(client, backup);
}

/** A record item with the index attributes of the current layout (chunk items pass unchanged). */
export function withIndexAttributes(item: Record<string, AttributeValue>): Record<string, AttributeValue> {
  const { sortKey, byKeyIndex, holdsFilesIndex } = TABLE_KEYS;
  if (item[sortKey]?.S !== DOCUMENT_SK) return item;
  const documentId = item.documentId?.S ?? documentIdOfPk(item[TABLE_KEYS.partitionKey]?.S ?? "");
  const out = { ...item };
  const key = item.key?.S;
  if (key !== undefined) {
    const deleted = item.status?.S === "deleted";
    out[byKeyIndex.partitionKey] = {
      S: deleted ? deletedPartition(documentId) : documentsPartition(documentId),
    };
    out[byKeyIndex.sortKey] = { S: key };
  }
  if (HOLDING_ATTRIBUTES.some((a) => a in item))
    out[holdsFilesIndex.partitionKey] = { S: filesPartition(documentId) };
  else delete out[holdsFilesIndex.partitionKey];
  return out;
}

async function dropTable(client: DynamoDBClient, tableName: string) {
  try {
    await client.send(new DeleteTableCommand({ TableName: tableName }));
  } catch (err) {
    if (err instanceof ResourceNotFoundException) return;
    throw err;
  }
  await waitUntilTableNotExists(
    { client, maxWaitTime: 30, minDelay: 1, maxDelay: 2 },
    { TableName: tableName },
  );
}

/** Copies every item, page by page (puts are idempotent, so a copy can simply be repeated). */
async function copyItems(
  client: DynamoDBClient,
  from: string,
  to: string,
  map: (item: Record<string, AttributeValue>) => Record<string, AttributeValue> = (i) => i,
) {
  let startKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: from, ExclusiveStartKey: startKey }));
    const items = (page.Items ?? []).map(map);
    for (let i = 0; i < items.length; i += 25) {
      let pending = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      while (pending.length > 0) {
        const out = await client.send(new BatchWriteItemCommand({ RequestItems: { [to]: pending } }));
        pending = (out.UnprocessedItems?.[to] ?? []) as typeof pending;
      }
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}

/**
 * dynalite in a child Node process on 127.0.0.1:0, in memory, closed by ending that process. Benchmarks
 * and the soak use it so the local database does not compete with the code under test for one event
 * loop, as a real DynamoDB would not.
 */
export async function startLocalDynamoProcess(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const script = `import dynalite from "dynalite";
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ port: server.address().port })));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    cwd: new URL("../..", import.meta.url),
    stdio: ["pipe", "pipe", "inherit"],
  });
  const [line] = (await Promise.race([
    once(child.stdout!, "data"),
    once(child, "exit").then(() => {
      throw new Error("the dynalite child process exited before listening");
    }),
  ])) as [Buffer];
  const { port } = JSON.parse(line.toString("utf8")) as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      const exited = once(child, "exit");
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The scoped API keys table (partition key `id`, as lib/chat-api.ts creates it); created if absent. */
export async function ensureApiKeysTable(client: DynamoDBClient, tableName: string): Promise<void> {
  if (await describe(client, tableName)) return;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [{ AttributeName: "id", AttributeType: "S" }],
        KeySchema: [{ AttributeName: "id", KeyType: "HASH" }],
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 2 }, { TableName: tableName });
}
