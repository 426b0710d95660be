/**
 * The index kept in step by real ingestion (local S3, DynamoDB, the Moonshot emulator, IngestService
 * fed SQS-shaped batches): overwrites, deletes, out-of-order events, duplicate deliveries and a crash
 * between the record write and the wake-up. After each step the indexer runs and the index must hold
 * exactly every searchable document's latest text.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { isSearchable } from "../../functions/core/search/model";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { S3IndexObjects } from "../../functions/core/search/storage";
import { type IngestHarness, messagesFor, startIngestHarness } from "../ingest/harness";

let h: IngestHarness;
let indexer: SearchIndexer;
let searcher: IndexSearcher;
const wakes: string[] = [];
const waker = { wake: async (id: string) => void wakes.push(id) };

beforeAll(async () => {
  h = await startIngestHarness();
  await h.stack.s3Client.send(new CreateBucketCommand({ Bucket: "index" }));
  const objects = new S3IndexObjects({ client: h.stack.s3Client, bucket: "index" });
  indexer = new SearchIndexer({
    store: h.store,
    todos: h.store.searchTodos,
    objects,
    config: { segments: 4, todoSettleMs: 0 },
  });
  searcher = new IndexSearcher({ objects, refreshMs: 0 });
});
afterAll(async () => {
  await h?.close();
});

async function catchUp(): Promise<void> {
  for (let i = 0; i < 10; i++) if ((await indexer.run()).todos === 0) return;
  throw new Error("index did not catch up");
}

/** The invariant: the index holds each searchable record's current generation, and nothing else. */
async function expectInStep(): Promise<void> {
  const records = [];
  let cursor: string | undefined;
  do {
    const page = await h.store.list({ limit: 1000, cursor });
    records.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  const want = records
    .filter(isSearchable)
    .map((r) => `${r.documentId}@${r.textGeneration}`)
    .sort();
  const have = (await searcher.documents()).map((d) => `${d.documentId}@${d.generation}`).sort();
  expect(have).toEqual(want);
}

const found = async (query: string) => (await searcher.search({ query, limit: 20 })).map((x) => x.key);

describe("search index kept by ingestion", () => {
  it("makes a ready document searchable and wakes the indexer", async () => {
    const e = await h.put("notes/a.txt", "The lighthouse keeper logs every storm.");
    await h.deliver(messagesFor([e]), { service: h.service({ indexWaker: waker }) });
    expect(wakes).toContain((await h.store.list({ prefix: "notes/a.txt" })).items[0]!.documentId);
    await catchUp();
    expect(await found("lighthouse storm")).toEqual(["notes/a.txt"]);
    await expectInStep();
  });

  it("an overwrite replaces the searchable text; a delete removes it", async () => {
    const v2 = await h.put("notes/a.txt", "The harbour master counts the boats.");
    const b = await h.put("notes/b.txt", "Orchards of quince and medlar.");
    await h.deliver(messagesFor([v2, b]));
    await catchUp();
    expect(await found("lighthouse")).toEqual([]);
    expect(await found("harbour boats")).toEqual(["notes/a.txt"]);
    const gone = await h.remove("notes/b.txt");
    await h.deliver(messagesFor([gone]));
    await catchUp();
    expect(await found("quince medlar")).toEqual([]);
    await expectInStep();
  });

  it("out-of-order and duplicate events converge on the newest text", async () => {
    const v1 = await h.put("notes/c.txt", "First draft mentions gryphons.");
    const v2 = await h.put("notes/c.txt", "Final text mentions basilisks.");
    await h.deliver(messagesFor([v2, v2]));
    await h.deliver(messagesFor([v1])); // late and older: stale
    await catchUp();
    expect(await found("gryphons")).toEqual([]);
    expect(await found("basilisks")).toEqual(["notes/c.txt"]);
    await expectInStep();
  });

  it("a crash after the record write (no wake-up) still leaves the work to the indexer", async () => {
    const e = await h.put("notes/d.txt", "Cartographers chart the fjords.");
    const crashingWaker = {
      wake: async () => {
        throw new Error("process killed before the wake-up");
      },
    };
    await h.deliver(messagesFor([e]), { service: h.service({ indexWaker: crashingWaker }) });
    await catchUp();
    expect(await found("cartographers fjords")).toEqual(["notes/d.txt"]);
    await expectInStep();
  });

  it("a failed new version takes the old text out of the index", async () => {
    const bad = await h.put("notes/a.txt", "");
    await h.deliver(messagesFor([bad]));
    await catchUp();
    expect(await found("harbour boats")).toEqual([]);
    await expectInStep();
  });
});
