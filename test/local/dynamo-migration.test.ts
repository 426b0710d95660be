/**
 * Local tables made before the `holdsFiles` index existed are migrated by ensureDocumentsTable:
 * nothing is lost, and records holding files are found through the new index.
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

/** The table as the first release created it: keys and the byKey index only. */
async function createOldShapeTable(name: string) {
  const { partitionKey, sortKey, byKeyIndex } = TABLE_KEYS;
  await client.send(
    new CreateTableCommand({
      TableName: name,
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
  },
  { pk: "DOC#held", sk: "CHUNK#g1#000000", text: "hello", tokens: 1 },
  { pk: "DOC#free", sk: "DOC", documentId: "free", key: "free.txt", status: "ready", rev: 2 },
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

describe("ensureDocumentsTable on a table from before the holdsFiles index", () => {
  it("adds the index, keeps every item and indexes the records that hold files", async () => {
    await createOldShapeTable("old-docs");
    await seed("old-docs");
    expect(await ensureDocumentsTable(client, "old-docs")).toEqual({ migrated: true });

    expect(await indexNames("old-docs")).toEqual(["byKey", "holdsFiles"]);
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

    expect(await indexNames("crashed-docs")).toEqual(["byKey", "holdsFiles"]);
    expect(await itemCount("crashed-docs")).toBe(oldItems.length);
    expect((await client.send(new ListTablesCommand({}))).TableNames).not.toContain("crashed-docs-migration");
  });
});
