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
  CreateTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";
import { TABLE_KEYS } from "../../functions/core/documents/table";

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
 * Creates the documents table (pk/sk, GSI `byKey` on gsi1pk/gsi1sk, on-demand) unless it exists,
 * waits until it is ACTIVE and enables TTL on `expiresAt` where the server supports it (dynalite
 * does not implement UpdateTimeToLive; tombstones then simply never expire locally).
 */
export async function ensureDocumentsTable(client: DynamoDBClient, tableName: string): Promise<void> {
  const { partitionKey, sortKey, byKeyIndex, ttlAttribute } = TABLE_KEYS;
  try {
    await client.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [
          { AttributeName: partitionKey, AttributeType: "S" },
          { AttributeName: sortKey, AttributeType: "S" },
          { AttributeName: byKeyIndex.partitionKey, AttributeType: "S" },
          { AttributeName: byKeyIndex.sortKey, AttributeType: "S" },
        ],
        KeySchema: [
          { AttributeName: partitionKey, KeyType: "HASH" },
          { AttributeName: sortKey, KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: byKeyIndex.name,
            KeySchema: [
              { AttributeName: byKeyIndex.partitionKey, KeyType: "HASH" },
              { AttributeName: byKeyIndex.sortKey, KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "ALL" },
          },
        ],
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
  }
  await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1, maxDelay: 2 }, { TableName: tableName });
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: ttlAttribute, Enabled: true },
      }),
    );
  } catch (err) {
    const name = (err as { name?: string }).name ?? "";
    // dynalite: UnknownOperationException; an already-enabled TTL: ValidationException.
    if (!/UnknownOperation|Validation/.test(name)) throw err;
  }
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
