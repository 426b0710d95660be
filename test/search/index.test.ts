/**
 * The search index against real local servers (dynalite for records, chunks and to-dos; s3rver for
 * the index objects): indexing, exact BM25 agreement with one MiniSearch index over everything,
 * filters inside the search, overwrites, deletes, crashes mid-run and the to-do race.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import MiniSearch from "minisearch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import type { DocumentRecord } from "../../functions/core/documents/model";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { type IndexObjects, S3IndexObjects } from "../../functions/core/search/storage";
import { chunkText } from "../../functions/core/text/chunking";
import { normalizeTerm, queryTerms, tokenize } from "../../functions/core/text/terms";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let store: DynamoDocumentStore;
let objects: IndexObjects;
const INDEX_BUCKET = "search-index-test";

beforeAll(async () => {
  stack = await startLocalStack({ prefix: "search" });
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  await stack.s3Client.send(new CreateBucketCommand({ Bucket: INDEX_BUCKET }));
  objects = new S3IndexObjects({ client: stack.s3Client, bucket: INDEX_BUCKET });
});
afterAll(async () => {
  await stack?.close();
});

const WORDS =
  "amber basalt cobalt delta ember fjord granite harbor iris jasper kelp lumen marsh nectar onyx".split(" ");
function prose(seed: number, words: number): string {
  let x = seed;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    out.push(WORDS[x % WORDS.length]!);
    if (i % 12 === 11) out.push("the of and.");
    if (i % 200 === 199) out.push("\n\n");
  }
  return out.join(" ");
}

const indexer = (config = {}) =>
  new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects,
    config: { segments: 8, todoSettleMs: 0, ...config },
  });
const searcher = () => new IndexSearcher({ objects, refreshMs: 0 });

async function drain(ix = indexer()): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const r = await ix.run();
    if (r.todos === 0) return;
  }
  throw new Error("the indexer did not drain its to-dos");
}

describe("search index", () => {
  const docs: { record: DocumentRecord; text: string }[] = [];

  it("indexes ready documents and scores exactly like one MiniSearch index over every chunk", async () => {
    for (let i = 0; i < 12; i++) {
      const text = `${prose(i + 1, 1500 + i * 300)}\n\nThe vault number of Project Quill-${i} is zx-${1000 + i}.`;
      const record = await store.putDocumentText(
        { documentId: `doc-${i}`, key: `${i % 2 ? "odd" : "even"}/doc-${i}.txt` },
        text,
      );
      docs.push({ record, text });
    }
    await drain();

    const reference = new MiniSearch<{ id: string; text: string }>({
      fields: ["text"],
      tokenize,
      processTerm: (t) => normalizeTerm(t),
      searchOptions: { combineWith: "OR", prefix: false, fuzzy: false },
    });
    for (const { record, text } of docs) {
      for (const [i, c] of chunkText(text).entries())
        reference.add({ id: `${record.documentId}#${i}`, text: c.text });
    }
    const s = searcher();
    for (const question of [
      "What is the vault number of Project Quill-7?",
      "cobalt fjord lumen",
      "amber amber onyx marsh harbor",
    ]) {
      const all = reference.search(queryTerms(question).join(" "));
      const byId = new Map(all.map((r) => [r.id as string, r.score]));
      const got = await s.search({ query: question, limit: 10 });
      expect(got).toHaveLength(Math.min(10, all.length));
      // Same scores, best first (ties may come in another order).
      got.forEach((h, i) => {
        expect(h.score).toBeCloseTo(all[i]!.score, 6);
        expect(byId.get(`${h.documentId}#${h.chunkIndex}`)).toBeCloseTo(h.score, 6);
      });
    }
    const top = (await s.search({ query: "vault number Quill-7", limit: 1 }))[0]!;
    expect(top.documentId).toBe("doc-7");
    expect(top.generation).toBe(docs[7]!.record.textGeneration);
  });

  it("applies prefix and document-id filters inside the search", async () => {
    const s = searcher();
    const odd = await s.search({ query: "vault number project", prefix: "odd/", limit: 50 });
    expect(odd.length).toBeGreaterThan(0);
    expect(odd.every((h) => h.key.startsWith("odd/"))).toBe(true);
    const two = await s.search({ query: "vault number project", documentIds: ["doc-2", "doc-5"], limit: 50 });
    expect(new Set(two.map((h) => h.documentId))).toEqual(new Set(["doc-2", "doc-5"]));
    expect(await s.search({ query: "vault", prefix: "nothing/", limit: 5 })).toEqual([]);
    expect(await s.search({ query: "the of and", limit: 5 })).toEqual([]);
    expect((await s.documents({ prefix: "even/" })).map((d) => d.documentId)).toEqual([
      "doc-0",
      "doc-10",
      "doc-2",
      "doc-4",
      "doc-6",
      "doc-8",
    ]);
  });

  it("knows failed documents as not searchable (for `skipped`) until they are ready or deleted", async () => {
    const s = searcher();
    const failed = (message: string, n: number) =>
      store.putDocumentText(
        {
          documentId: "broken",
          key: "broken/report.pdf",
          status: "failed",
          textGeneration: `broken-g${n}`,
          error: { code: "extraction_failed", message },
        },
        "The quarry ledger of Project Broken lists slate.",
      );
    await failed("the provider could not extract text", 1);
    await drain();
    expect(await s.unsearchable({ prefix: "broken/" })).toEqual([
      {
        documentId: "broken",
        key: "broken/report.pdf",
        status: "failed",
        error: "the provider could not extract text",
      },
    ]);
    expect(await s.documents({ prefix: "broken/" })).toEqual([]);
    expect(await s.search({ query: "quarry ledger slate", limit: 5 })).toEqual([]);

    await store.putDocumentText(
      { documentId: "broken", key: "broken/report.pdf", textGeneration: "broken-g2" },
      "The quarry ledger of Project Broken lists slate.",
    );
    await drain();
    expect(await s.unsearchable({ prefix: "broken/" })).toEqual([]);
    expect((await s.search({ query: "quarry ledger slate", limit: 5 }))[0]?.documentId).toBe("broken");

    await failed("a later version failed", 3);
    await drain();
    expect((await s.unsearchable({ prefix: "broken/" })).map((d) => d.error)).toEqual([
      "a later version failed",
    ]);
    expect(await s.search({ query: "quarry ledger slate", limit: 5 })).toEqual([]);

    await store.tombstone({
      documentId: "broken",
      bucket: "local",
      key: "broken/report.pdf",
      sequencer: `F${"1".padStart(31, "0")}`,
      now: new Date(),
    });
    await drain();
    expect(await s.unsearchable()).toEqual([]);
    expect((await s.manifest())?.documents).toBe((await s.documents()).length);
  });

  it("follows overwrites and deletes; nothing of an old text stays searchable", async () => {
    await store.putDocumentText(
      { documentId: "doc-3", key: "odd/doc-3.txt", textGeneration: "gen-new" },
      "A fresh text about zeppelin hangars.",
    );
    await store.tombstone({
      documentId: "doc-4",
      bucket: "local",
      key: "even/doc-4.txt",
      sequencer: "F".repeat(32),
      now: new Date(),
    });
    await drain();
    const s = searcher();
    expect((await s.search({ query: "Quill-3", limit: 5 })).map((h) => h.documentId)).not.toContain("doc-3");
    expect(
      (await s.search({ query: "zeppelin", limit: 5 })).map((h) => [h.documentId, h.generation]),
    ).toEqual([["doc-3", "gen-new"]]);
    const all = await s.search({ query: "vault number project quill", limit: 100 });
    expect(all.map((h) => h.documentId)).not.toContain("doc-4");
    expect((await s.documents()).map((d) => d.documentId)).not.toContain("doc-4");
  });

  it("a run that crashes before its manifest changes nothing and leaves its to-dos", async () => {
    await store.putDocumentText(
      { documentId: "doc-crash", key: "odd/crash.txt" },
      "Walrus tusks and narwhals.",
    );
    let puts = 0;
    const failing: IndexObjects = {
      get: (k, e) => objects.get(k, e),
      delete: (k) => objects.delete(k),
      list: () => objects.list(),
      put: async (k, b, t) => {
        if (++puts === 2) throw new Error("simulated crash"); // the manifest, after the delta
        return objects.put(k, b, t);
      },
    };
    const before = await indexer().readState();
    await expect(
      new SearchIndexer({
        store,
        todos: store.searchTodos,
        objects: failing,
        config: { segments: 8, todoSettleMs: 0 },
      }).run(),
    ).rejects.toThrow(/simulated crash/);
    expect((await indexer().readState()).manifest.version).toBe(before.manifest.version);
    expect((await store.searchTodos.list(10)).map((t) => t.documentId)).toContain("doc-crash");
    expect(await searcher().search({ query: "narwhals", limit: 5 })).toEqual([]);
    await drain();
    expect((await searcher().search({ query: "narwhals", limit: 5 })).map((h) => h.documentId)).toEqual([
      "doc-crash",
    ]);
  });

  it("keeps a to-do written again while a run was working on the previous one", async () => {
    await store.searchTodos.note("doc-race");
    const [first] = await store.searchTodos
      .list(100)
      .then((l) => l.filter((t) => t.documentId === "doc-race"));
    await store.searchTodos.note("doc-race"); // a newer change announced after the run read the list
    expect(await store.searchTodos.done(first!)).toBe(false);
    expect((await store.searchTodos.list(100)).some((t) => t.documentId === "doc-race")).toBe(true);
    await drain(indexer({ staleTodoMs: 0 }));
  });

  it("indexes at once but keeps a fresh to-do for re-checks until it settles (clock skew between writers)", async () => {
    await store.putDocumentText({ documentId: "doc-settle", key: "odd/settle.txt" }, "Quokkas on the jetty.");
    const settling = indexer({ todoSettleMs: 60_000 });
    const report = await settling.run();
    expect(report.added).toBeGreaterThanOrEqual(1);
    expect((await searcher().search({ query: "quokkas", limit: 3 }))[0]?.documentId).toBe("doc-settle");
    expect((await store.searchTodos.list(100)).some((t) => t.documentId === "doc-settle")).toBe(true);
    const again = await settling.run();
    expect(again.added + again.removed).toBe(0);
    await drain();
  });

  it("a warm searcher reloads only the manifest until a run changes the index", async () => {
    const s = searcher();
    await s.search({ query: "walrus cobalt", limit: 3 });
    const loaded = s.stats.objectsLoaded;
    await s.search({ query: "walrus cobalt", limit: 3 });
    expect(s.stats.objectsLoaded).toBe(loaded);
    await store.putDocumentText({ documentId: "doc-new", key: "odd/new.txt" }, "Cobalt walrus parade.");
    await drain();
    const hits = await s.search({ query: "walrus cobalt parade", limit: 3 });
    expect(hits[0]?.documentId).toBe("doc-new");
    expect(s.stats.objectsLoaded).toBeGreaterThan(loaded);
  });

  it("loads at most the cache cap of segments for one query: a long one drops the terms of the rest", async () => {
    // A question naming every word spreads over (nearly) every segment; the cap holds two or three.
    const long = WORDS.join(" ");
    const s = new IndexSearcher({ objects, refreshMs: 0 });
    const sizes = (await s.manifest())!.segmentBytes!;
    expect(sizes).toHaveLength(8);
    const cap = Math.max(...sizes) * 2.5;
    const capped = new IndexSearcher({ objects, refreshMs: 0, maxCachedBytes: cap });
    const hits = await capped.search({ query: long, limit: 5 });
    expect(hits.length).toBe(5);
    expect(capped.stats.lastSearch!.termsDropped).toBeGreaterThan(0);
    expect(capped.stats.segmentsCached).toBeLessThan(new Set(sizes.map((_, i) => i)).size);
    expect(capped.stats.cachedJsonBytes).toBeLessThanOrEqual(cap);
    // A short question is never cut, and scores as without a cap.
    const short = "vault number Quill-7";
    expect(await capped.search({ query: short, limit: 5 })).toEqual(
      await s.search({ query: short, limit: 5 }),
    );
    expect(capped.stats.lastSearch!.termsDropped).toBe(0);
  });
});
