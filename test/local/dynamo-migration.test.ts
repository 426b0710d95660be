/**
 * Local tables of older layouts are migrated by ensureDocumentsTable: made before the `holdsFiles`
 * index existed, or with the unsharded every-attribute indexes. Nothing is lost, records are listed
 * and found holding files through the sharded indexes, tombstones are listed under status=deleted.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
} from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { TABLE_KEYS } from "../../functions/core/documents/table";
import { ensureDocumentsTable, type LocalDynamo, startLocalDynamo } from "../../local/aws/dynamo";

let dynamo: LocalDynamo;
let client: DynamoDBClient;
let doc: DynamoDBDocumentClient;

beforeAll(async () => {
  dynamo = await startLocalDynamo();
  client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  doc = DynamoDBDocumentClient.from(client);
});
afterAll(async () => {
  client?.destroy();
  await dynamo?.close();
});

/**
 * The table as the first release created it (keys and the unsharded byKey index only), or, with
 * `filesIndex`, as the next one did (plus the unsharded holdsFiles index).
 */
async function createOldShapeTable(name: string, filesIndex = false) {
  const { partitionKey, sortKey } = TABLE_KEYS;
  const byKeyIndex = { name: "byKey", partitionKey: "gsi1pk", sortKey: "gsi1sk" };
  await client.send(
    new CreateTableCommand({
      TableName: name,
      BillingMode: "PAY_PER_REQUEST",
      AttributeDefinitions: [
        { AttributeName: partitionKey, AttributeType: "S" },
        { AttributeName: sortKey, AttributeType: "S" },
        { AttributeName: byKeyIndex.partitionKey, AttributeType: "S" },
        { AttributeName: byKeyIndex.sortKey, AttributeType: "S" },
        ...(filesIndex ? [{ AttributeName: "gsi2pk", AttributeType: "S" as const }] : []),
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
        ...(filesIndex
          ? [
              {
                IndexName: "holdsFiles",
                KeySchema: [{ AttributeName: "gsi2pk", KeyType: "HASH" as const }],
                Projection: { ProjectionType: "ALL" as const },
              },
            ]
          : []),
      ],
    }),
  );
}

const oldItems = [
  {
    pk: "DOC#held",
    sk: "DOC",
    documentId: "held",
    key: "held.txt",
    status: "ready",
    remoteFileId: "f-1",
    rev: 3,
    gsi1pk: "DOCS",
    gsi1sk: "held.txt",
  },
  { pk: "DOC#held", sk: "CHUNK#g1#000000", text: "hello", tokens: 1 },
  {
    pk: "DOC#free",
    sk: "DOC",
    documentId: "free",
    key: "free.txt",
    status: "ready",
    rev: 2,
    gsi1pk: "DOCS",
    gsi1sk: "free.txt",
  },
  {
    pk: "DOC#gone",
    sk: "DOC",
    documentId: "gone",
    key: "gone.txt",
    status: "deleted",
    staleFileIds: new Set(["f-2"]),
    rev: 5,
  },
];

async function seed(name: string) {
  for (const Item of oldItems) await doc.send(new PutCommand({ TableName: name, Item }));
}

async function itemCount(name: string) {
  return (await doc.send(new ScanCommand({ TableName: name }))).Items?.length ?? 0;
}

async function indexNames(name: string) {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
  return (Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort();
}

const CURRENT_INDEXES = ["byKeySharded", "holdsFilesSharded"];

describe("ensureDocumentsTable on a table from before the holdsFiles index", () => {
  it("adds the index, keeps every item and indexes the records that hold files", async () => {
    await createOldShapeTable("old-docs");
    await seed("old-docs");
    expect(await ensureDocumentsTable(client, "old-docs")).toEqual({ migrated: true });

    expect(await indexNames("old-docs")).toEqual(CURRENT_INDEXES);
    expect(await itemCount("old-docs")).toBe(oldItems.length);
    const store = new DynamoDocumentStore({ client: doc, tableName: "old-docs" });
    const held = (await store.listWithRemoteFiles()).map((d) => d.documentId).sort();
    expect(held).toEqual(["gone", "held"]);
    expect((await store.getState("held"))?.rev).toBe(3);
    expect((await client.send(new ListTablesCommand({}))).TableNames).not.toContain("old-docs-migration");

    // Running it again is a no-op.
    expect(await ensureDocumentsTable(client, "old-docs")).toEqual({ migrated: false });
    expect(await itemCount("old-docs")).toBe(oldItems.length);
  });

  it("finishes a migration that stopped after the old table was dropped (restores from the backup)", async () => {
    await createOldShapeTable("crashed-docs-migration");
    await seed("crashed-docs-migration");
    await ensureDocumentsTable(client, "crashed-docs");

    expect(await indexNames("crashed-docs")).toEqual(CURRENT_INDEXES);
    expect(await itemCount("crashed-docs")).toBe(oldItems.length);
    expect((await client.send(new ListTablesCommand({}))).TableNames).not.toContain("crashed-docs-migration");
  });
});

describe("ensureDocumentsTable on a table with the unsharded indexes", () => {
  it("moves to the sharded indexes: listing, status filters and the janitor's read all find the old items", async () => {
    await createOldShapeTable("flat-docs", true);
    await seed("flat-docs");
    expect(await ensureDocumentsTable(client, "flat-docs")).toEqual({ migrated: true });
    expect(await indexNames("flat-docs")).toEqual(CURRENT_INDEXES);
    expect(await itemCount("flat-docs")).toBe(oldItems.length);

    const store = new DynamoDocumentStore({ client: doc, tableName: "flat-docs" });
    expect((await store.list()).items.map((d) => d.key)).toEqual(["free.txt", "held.txt"]);
    expect((await store.list({ status: "deleted" })).items.map((d) => d.key)).toEqual(["gone.txt"]);
    expect((await store.listWithRemoteFiles()).map((d) => d.documentId).sort()).toEqual(["gone", "held"]);
    expect(await ensureDocumentsTable(client, "flat-docs")).toEqual({ migrated: false });
  });
});
