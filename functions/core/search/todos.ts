/**
 * The index's to-do list: one item per document whose text may have changed since the index last
 * looked at it, in the documents table (pk `SEARCH#TODO`, sk = document id). The store writes it
 * *before* every write that changes which text a document has (ready, failed, deleted, stuck), so a
 * crash anywhere after that leaves the to-do behind rather than a stale index; the indexer removes it
 * only after the index reflects the record, and only if nobody wrote it again meanwhile (a token).
 */
import { randomUUID } from "node:crypto";
import { DeleteCommand, type DynamoDBDocumentClient, PutCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";
import { TABLE_KEYS } from "../documents/table";

export const SEARCH_TODO_PARTITION = "SEARCH#TODO";

export interface SearchTodo {
  documentId: string;
  /** Changes with every write of the to-do: a removal conditioned on it never loses a newer one. */
  token: string;
  /** ISO time it was (last) written: the lag figure starts here. */
  at: string;
}

export class SearchTodoList {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Records that `documentId`'s text may change (idempotent; a later write replaces the token). */
  async note(documentId: string, now = new Date()): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: {
          [TABLE_KEYS.partitionKey]: SEARCH_TODO_PARTITION,
          [TABLE_KEYS.sortKey]: documentId,
          documentId,
          token: randomUUID(),
          at: now.toISOString(),
        },
      }),
    );
  }

  /** Up to `limit` to-dos (strongly consistent), oldest document ids first in key order. */
  async list(limit: number): Promise<SearchTodo[]> {
    const out: SearchTodo[] = [];
    const pages = paginateQuery(
      { client: this.client, pageSize: limit },
      {
        TableName: this.tableName,
        KeyConditionExpression: "#pk = :pk",
        ExpressionAttributeNames: { "#pk": TABLE_KEYS.partitionKey },
        ExpressionAttributeValues: { ":pk": SEARCH_TODO_PARTITION },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        if (out.length >= limit) return out;
        out.push({
          documentId: item.documentId as string,
          token: item.token as string,
          at: item.at as string,
        });
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Removes a to-do the index has caught up with; false (kept) when it was written again since. */
  async done(todo: SearchTodo): Promise<boolean> {
    try {
      await this.client.send(
        new DeleteCommand({
          TableName: this.tableName,
          Key: { [TABLE_KEYS.partitionKey]: SEARCH_TODO_PARTITION, [TABLE_KEYS.sortKey]: todo.documentId },
          ConditionExpression: "#token = :token",
          ExpressionAttributeNames: { "#token": "token" },
          ExpressionAttributeValues: { ":token": todo.token },
        }),
      );
      return true;
    } catch (err) {
      if ((err as { name?: string }).name === "ConditionalCheckFailedException") return false;
      throw err;
    }
  }
}
