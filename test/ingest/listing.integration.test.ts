/**
 * GET /documents?status= on a large table: each page evaluates a bounded number of index items and
 * comes back early with a cursor, however rare the status; following the cursors finds every match
 * once, in key order. Against dynalite, counting what each list call reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mapLimit } from "../../functions/core/chat/selection";
import { DynamoDocumentStore, normaliseSequencer } from "../../functions/core/documents/dynamo-store";
import type { ListDocumentsQuery } from "../../functions/core/documents/model";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let store: DynamoDocumentStore;
/** Index Queries sent and items they evaluated (ScannedCount), since the last reset. */
const reads = { queries: 0, evaluated: 0 };

const DOCS = 1_500;
const key = (i: number) => `big/${String(i).padStart(5, "0")}.txt`;
const FAILED = [3, 1_499];
const DELETED = [700, 701];

beforeAll(async () => {
  stack = await startLocalStack({ prefix: "listing" });
  stack.documentClient.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const input = args.input as { IndexName?: string };
      if (input.IndexName) {
        reads.queries++;
        reads.evaluated += (out.output as { ScannedCount?: number }).ScannedCount ?? 0;
      }
      return out;
    },
    { step: "initialize", name: "countIndexReads" },
  );
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  await mapLimit(
    Array.from({ length: DOCS }, (_, i) => i),
    16,
    (i) =>
      store.putDocumentText(
        {
          documentId: `doc-${i}`,
          key: key(i),
          ...(FAILED.includes(i)
            ? { status: "failed", error: { code: "empty", message: "the file is empty" } }
            : {}),
        },
        `text ${i}`,
      ),
  );
  for (const i of DELETED) {
    await store.tombstone({
      documentId: `doc-${i}`,
      bucket: "local",
      key: key(i),
      sequencer: normaliseSequencer("9"),
      now: new Date(),
    });
  }
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

/** Follows the cursors; returns every key and the most any one page read. */
async function listAll(query: ListDocumentsQuery) {
  const keys: string[] = [];
  let pages = 0;
  let mostEvaluated = 0;
  let mostQueries = 0;
  let cursor: string | undefined;
  do {
    reads.queries = 0;
    reads.evaluated = 0;
    const page = await store.list({ ...query, cursor });
    pages++;
    mostEvaluated = Math.max(mostEvaluated, reads.evaluated);
    mostQueries = Math.max(mostQueries, reads.queries);
    keys.push(...page.items.map((d) => d.key));
    cursor = page.cursor;
    if (pages > 100) throw new Error("more than 100 pages");
  } while (cursor);
  return { keys, pages, mostEvaluated, mostQueries };
}

describe("listing by status on a large table", () => {
  it("bounds what one page reads and returns a cursor early; the cursors find every match", async () => {
    reads.queries = 0;
    reads.evaluated = 0;
    const first = await store.list({ status: "failed", limit: 10 });
    // One Query per shard, at most ~1,000 items evaluated, and an answer before the table is read.
    expect(reads.queries).toBeLessThanOrEqual(8);
    expect(reads.evaluated).toBeLessThanOrEqual(1_000);
    expect(first.cursor).toBeDefined();

    const all = await listAll({ status: "failed", limit: 10 });
    expect(all.keys).toEqual(FAILED.map(key));
    expect(all.mostQueries).toBeLessThanOrEqual(8);
    expect(all.mostEvaluated).toBeLessThanOrEqual(1_000);
  });

  it("status=deleted lists the tombstones without reading the live documents", async () => {
    const all = await listAll({ status: "deleted" });
    expect(all.keys).toEqual(DELETED.map(key));
    expect(all.pages).toBe(1);
    expect(all.mostEvaluated).toBeLessThanOrEqual(DELETED.length);
  });

  it("without a filter, pages are full and in key order, deleted documents left out", async () => {
    const all = await listAll({ limit: 100 });
    const expected = Array.from({ length: DOCS }, (_, i) => i)
      .filter((i) => !DELETED.includes(i))
      .map(key);
    expect(all.keys).toEqual(expected);
    expect(all.pages).toBe(Math.ceil(expected.length / 100));
    const prefixed = await listAll({ prefix: "big/0070", limit: 3 });
    expect(prefixed.keys).toEqual([702, 703, 704, 705, 706, 707, 708, 709].map(key));
  });
});
