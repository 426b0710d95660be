/**
 * Reads through the table's indexes (table.ts): every shard of an index queried in parallel, and the
 * records they point at fetched from the table with BatchGetItem, strongly consistent (the indexes
 * project keys and little else, and lag writes by a moment; the records do not).
 *
 * While a stack is being upgraded from the unsharded layout, a sharded index may not exist yet or
 * still be backfilling: its Query is then sent to the legacy index (same key attributes, every
 * attribute projected), for a few minutes before the sharded one is tried again.
 */
import { BatchGetCommand, type DynamoDBDocumentClient, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { DOCUMENT_SK, documentIdOfPk, documentPk, TABLE_KEYS } from "./table";

type IndexRole = "byKey" | "holdsFiles";

const BATCH_GET_SIZE = 100;
const BATCH_GET_RETRIES = 8;
/** How long a missing or backfilling index is not asked again. */
const LEGACY_FALLBACK_MS = 5 * 60_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** DynamoDB's answer for an index that does not exist, or cannot be read yet. */
function isIndexUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return e?.name === "ValidationException" && /specified index|backfilling/i.test(e.message ?? "");
}

export interface IndexQuery {
  partition: string;
  /** `#sk` in sortKeyCondition refers to the index's sort key. */
  sortKeyCondition?: string;
  values?: Record<string, unknown>;
  filter?: string;
  names?: Record<string, string>;
  limit?: number;
  startKey?: Record<string, unknown>;
}

export class IndexReads {
  private readonly legacyUntil = new Map<IndexRole, number>();

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** One page of one partition of an index. */
  async query(role: IndexRole, q: IndexQuery) {
    const spec = role === "byKey" ? TABLE_KEYS.byKeyIndex : TABLE_KEYS.holdsFilesIndex;
    const legacy = TABLE_KEYS.legacyIndexNames[role];
    const names: Record<string, string> = { "#pk": spec.partitionKey, ...q.names };
    if ("sortKey" in spec && q.sortKeyCondition) names["#sk"] = spec.sortKey;
    const send = (indexName: string) =>
      this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: indexName,
          KeyConditionExpression: q.sortKeyCondition ? `#pk = :pk AND ${q.sortKeyCondition}` : "#pk = :pk",
          FilterExpression: q.filter,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ":pk": q.partition, ...q.values },
          ExclusiveStartKey: q.startKey,
          Limit: q.limit,
        }),
      );
    if ((this.legacyUntil.get(role) ?? 0) > Date.now()) return send(legacy);
    try {
      return await send(spec.name);
    } catch (err) {
      if (!isIndexUnavailable(err)) throw err;
      this.legacyUntil.set(role, Date.now() + LEGACY_FALLBACK_MS);
      return send(legacy);
    }
  }

  /** Every item of every given partition of an index (all pages). */
  async queryAll(role: IndexRole, partitions: readonly string[]): Promise<Record<string, unknown>[]> {
    const pages = await Promise.all(
      partitions.map(async (partition) => {
        const items: Record<string, unknown>[] = [];
        let startKey: Record<string, unknown> | undefined;
        do {
          const page = await this.query(role, { partition, startKey });
          items.push(...(page.Items ?? []));
          startKey = page.LastEvaluatedKey;
        } while (startKey);
        return items;
      }),
    );
    return pages.flat();
  }

  /**
   * The records of these documents, strongly consistent, by document id (absent: no record). 100 keys
   * per call, a few calls in flight, unprocessed keys retried with backoff.
   */
  async getRecords(documentIds: readonly string[]): Promise<Map<string, Record<string, unknown>>> {
    const out = new Map<string, Record<string, unknown>>();
    const unique = [...new Set(documentIds)];
    const batches: string[][] = [];
    for (let i = 0; i < unique.length; i += BATCH_GET_SIZE) batches.push(unique.slice(i, i + BATCH_GET_SIZE));
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        let keys: Record<string, unknown>[] = batch.map((id) => ({
          [TABLE_KEYS.partitionKey]: documentPk(id),
          [TABLE_KEYS.sortKey]: DOCUMENT_SK,
        }));
        for (let attempt = 0; keys.length > 0; attempt++) {
          if (attempt > BATCH_GET_RETRIES) {
            throw new Error(
              `DynamoDB left ${keys.length} read(s) unprocessed after ${BATCH_GET_RETRIES} retries`,
            );
          }
          if (attempt > 0) await sleep(Math.min(2_000, 25 * 2 ** attempt) * (0.5 + Math.random()));
          const res = await this.client.send(
            new BatchGetCommand({
              RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } },
            }),
          );
          for (const item of res.Responses?.[this.tableName] ?? []) {
            out.set(documentIdOfPk(item[TABLE_KEYS.partitionKey] as string), item);
          }
          keys = (res.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, batches.length) }, worker));
    return out;
  }
}
