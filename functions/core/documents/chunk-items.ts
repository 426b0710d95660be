/**
 * Text chunk items of the documents table: `pk = DOC#<documentId>`, `sk = CHUNK#<generation>#<index>`
 * (table.ts). A generation is written whole before any record points at it, and deleted once no
 * record does, so these writes need no condition: the record's transitions (transitions.ts) decide
 * which generation is live.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient, paginateQuery } from "@aws-sdk/lib-dynamodb";
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

  /**
   * A writer that stores a generation's chunks as they come (25 per batch, a few batches in flight),
   * so a long text is never held whole: `add` waits while the batches in flight are at the limit.
   */
  writer(documentId: string, generation: string): ChunkWriter {
    return new ChunkWriter((requests) => this.writeBatch(requests), documentId, generation);
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
    for await (const item of this.items(documentId, chunkSkPrefix(generation))) {
      if (keysOnly) {
        const sk = item[TABLE_KEYS.sortKey] as string;
        items.push({ ...item, index: Number(sk.slice(sk.lastIndexOf("#") + 1)) });
      } else items.push(item as ChunkItem);
    }
    return items;
  }

  /** Chunk items per generation of one document (keys only). */
  async countByGeneration(documentId: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for await (const item of this.items(documentId, CHUNK_SK_PREFIX, "#sk")) {
      const sk = item[TABLE_KEYS.sortKey] as string;
      const generation = sk.slice(CHUNK_SK_PREFIX.length, sk.lastIndexOf("#"));
      counts.set(generation, (counts.get(generation) ?? 0) + 1);
    }
    return counts;
  }

  /** A document's items whose sort key starts with `prefix`, every page (strongly consistent). */
  private async *items(documentId: string, prefix: string, projection?: string) {
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
        ExpressionAttributeNames: { "#pk": TABLE_KEYS.partitionKey, "#sk": TABLE_KEYS.sortKey },
        ExpressionAttributeValues: { ":pk": documentPk(documentId), ":prefix": prefix },
        ...(projection ? { ProjectionExpression: projection } : {}),
        ConsistentRead: true,
      },
    );
    for await (const page of pages) yield* page.Items ?? [];
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

/** See ChunkItems.writer. */
export class ChunkWriter {
  private batch: Record<string, unknown>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: unknown;
  private next = 0;

  constructor(
    private readonly writeBatch: (requests: Record<string, unknown>[]) => Promise<void>,
    private readonly documentId: string,
    private readonly generation: string,
  ) {}

  /** Chunks added so far. */
  get count(): number {
    return this.next;
  }

  async add(chunk: { text: string; tokens: number }): Promise<void> {
    if (this.failure) throw this.failure;
    this.batch.push({
      PutRequest: {
        Item: {
          [TABLE_KEYS.partitionKey]: documentPk(this.documentId),
          [TABLE_KEYS.sortKey]: chunkSk(this.generation, this.next),
          documentId: this.documentId,
          generation: this.generation,
          index: this.next,
          text: chunk.text,
          tokens: chunk.tokens,
        },
      },
    });
    this.next++;
    if (this.batch.length >= BATCH_WRITE_SIZE) await this.dispatch();
  }

  /** Writes what is left and waits for every batch; throws the first failure. */
  async finish(): Promise<void> {
    if (this.batch.length > 0) await this.dispatch();
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }

  private async dispatch(): Promise<void> {
    const requests = this.batch;
    this.batch = [];
    while (this.inFlight.size >= BATCHES_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const p: Promise<void> = this.writeBatch(requests)
      .catch((err) => {
        this.failure ??= err;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }
}
