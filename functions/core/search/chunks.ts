/**
 * Reads chosen chunks by key (BatchGetItem, 100 keys a call, a few calls in flight, unprocessed keys
 * retried): what a search hit or a ranked chat context needs, and nothing else of the scope.
 */
import { BatchGetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { TextChunk } from "../documents/model";
import { chunkSk, documentPk, TABLE_KEYS } from "../documents/table";

export interface ChunkKey {
  documentId: string;
  generation: string;
  index: number;
}

const BATCH = 100;
const IN_FLIGHT = 4;
const RETRIES = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The chunks in `keys` order; undefined where the chunk no longer exists (its text was replaced). */
export async function batchGetChunks(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly ChunkKey[],
): Promise<(TextChunk | undefined)[]> {
  const skOf = (k: ChunkKey) => `${documentPk(k.documentId)}|${chunkSk(k.generation, k.index)}`;
  const found = new Map<string, TextChunk>();
  const batches: ChunkKey[][] = [];
  const unique = [...new Map(keys.map((k) => [skOf(k), k])).values()];
  for (let i = 0; i < unique.length; i += BATCH) batches.push(unique.slice(i, i + BATCH));
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      let pending: Record<string, unknown>[] = batch.map((k) => ({
        [TABLE_KEYS.partitionKey]: documentPk(k.documentId),
        [TABLE_KEYS.sortKey]: chunkSk(k.generation, k.index),
      }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > RETRIES) throw new Error(`DynamoDB left ${pending.length} chunk read(s) unprocessed`);
        if (attempt > 0) await sleep(Math.min(1_000, 20 * 2 ** attempt) * (0.5 + Math.random()));
        const out = await client.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending } } }),
        );
        for (const item of out.Responses?.[tableName] ?? []) {
          const chunk: TextChunk = {
            documentId: item.documentId as string,
            generation: item.generation as string,
            index: item.index as number,
            text: item.text as string,
            tokens: item.tokens as number,
          };
          found.set(skOf(chunk), chunk);
        }
        pending = (out.UnprocessedKeys?.[tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, batches.length) }, worker));
  return keys.map((k) => found.get(skOf(k)));
}
