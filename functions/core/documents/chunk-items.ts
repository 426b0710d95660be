/**
 * Text chunk items of the documents table: `pk = DOC#<documentId>`, `sk = CHUNK#<generation>#<index>`
 * (table.ts). A generation is written whole before any record points at it, and deleted once no
 * record does, so these writes need no condition: the record's transitions (transitions.ts) decide
 * which generation is live.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { CHUNK_SK_PREFIX, chunkSk, chunkSkPrefix, documentPk, TABLE_KEYS } from "./table";

const BATCH_WRITE_SIZE = 25;
const BATCH_RETRIES = 8;
/** Batches in flight at once: several-MB texts write quickly without a burst of hundreds. */
const BATCHES_IN_FLIGHT = 4;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A stored chunk item as read back (index parsed from the sort key when only keys were read). */
export type ChunkItem = Record<string, unknown> & { index: number };

/** Reads, writes and deletes the chunk items of one table. */
export class ChunkItems {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Writes a generation's chunks (25 per batch, unprocessed items retried with backoff). */
  async write(documentId: string, generation: string, chunks: { text: string; tokens: number }[]) {
    const requests = chunks.map((chunk, index) => ({
      PutRequest: {
        Item: {
          [TABLE_KEYS.partitionKey]: documentPk(documentId),
          [TABLE_KEYS.sortKey]: chunkSk(generation, index),
          documentId,
          generation,
          index,
          text: chunk.text,
          tokens: chunk.tokens,
        },
      },
    }));
    await this.batchWrite(requests);
  }

  /** Deletes a generation's chunk items (all, or those from index `fromIndex` on). */
  async deleteGeneration(documentId: string, generation: string, fromIndex = 0): Promise<number> {
    const items = await this.query(documentId, generation, true);
    const doomed = items.filter((i) => i.index >= fromIndex);
    await this.batchWrite(
      doomed.map((i) => ({
        DeleteRequest: {
          Key: {
            [TABLE_KEYS.partitionKey]: i[TABLE_KEYS.partitionKey],
            [TABLE_KEYS.sortKey]: i[TABLE_KEYS.sortKey],
          },
        },
      })),
    );
    return doomed.length;
  }

  /** A generation's chunk items in index order (strongly consistent); keys only when `keysOnly`. */
  async query(documentId: string, generation: string, keysOnly: boolean): Promise<ChunkItem[]> {
    const items: ChunkItem[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
          ExpressionAttributeNames: { "#pk": TABLE_KEYS.partitionKey, "#sk": TABLE_KEYS.sortKey },
          ExpressionAttributeValues: { ":pk": documentPk(documentId), ":prefix": chunkSkPrefix(generation) },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        if (keysOnly) {
          const sk = item[TABLE_KEYS.sortKey] as string;
          items.push({ ...item, index: Number(sk.slice(sk.lastIndexOf("#") + 1)) });
        } else items.push(item as ChunkItem);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  /** Chunk items per generation of one document (keys only). */
  async countByGeneration(documentId: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
          ExpressionAttributeNames: { "#pk": TABLE_KEYS.partitionKey, "#sk": TABLE_KEYS.sortKey },
          ExpressionAttributeValues: { ":pk": documentPk(documentId), ":prefix": CHUNK_SK_PREFIX },
          ProjectionExpression: "#sk",
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        const sk = item[TABLE_KEYS.sortKey] as string;
        const generation = sk.slice(CHUNK_SK_PREFIX.length, sk.lastIndexOf("#"));
        counts.set(generation, (counts.get(generation) ?? 0) + 1);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return counts;
  }

  private async batchWrite(requests: Record<string, unknown>[]): Promise<void> {
    const batches: Record<string, unknown>[][] = [];
    for (let i = 0; i < requests.length; i += BATCH_WRITE_SIZE) {
      batches.push(requests.slice(i, i + BATCH_WRITE_SIZE));
    }
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        await this.writeBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.min(BATCHES_IN_FLIGHT, batches.length) }, worker));
  }

  private async writeBatch(batch: Record<string, unknown>[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > BATCH_RETRIES) {
        throw new Error(
          `DynamoDB left ${pending.length} write(s) unprocessed after ${BATCH_RETRIES} retries`,
        );
      }
      if (attempt > 0) await sleep(Math.min(2_000, 25 * 2 ** attempt) * (0.5 + Math.random()));
      const out = await this.client.send(
        new BatchWriteCommand({ RequestItems: { [this.tableName]: pending as never } }),
      );
      pending = (out.UnprocessedItems?.[this.tableName] as Record<string, unknown>[] | undefined) ?? [];
    }
  }
}
