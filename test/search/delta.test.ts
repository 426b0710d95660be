/**
 * Index upkeep proportional to the change (delta.ts), against real local servers (dynalite, s3rver):
 * adds, overwrites and deletes go to the delta and score exactly like one MiniSearch index over every
 * chunk; the fold; crashes between the piece writes and the manifest; bytes written per run for one
 * changed document at two corpus sizes; the sweep of objects a crashed run left.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import MiniSearch from "minisearch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { type IndexerConfig, SearchIndexer } from "../../functions/core/search/indexer";
import { manifestObjects } from "../../functions/core/search/layout";
import { IndexSearcher } from "../../functions/core/search/searcher";
import {
  addRouted,
  chunkId,
  createSegment,
  loadSegment,
  routeChunks,
  TermRouter,
} from "../../functions/core/search/segments";
import { type IndexObjects, S3IndexObjects } from "../../functions/core/search/storage";
import { chunkText } from "../../functions/core/text/chunking";
import { normalizeTerm, queryTerms, tokenize } from "../../functions/core/text/terms";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let store: DynamoDocumentStore;
let buckets = 0;

beforeAll(async () => {
  stack = await startLocalStack({ prefix: "searchdelta" });
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
});
afterAll(async () => {
  await stack?.close();
});

async function newObjects(): Promise<S3IndexObjects> {
  const bucket = `search-delta-${++buckets}`;
  await stack.s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
  return new S3IndexObjects({ client: stack.s3Client, bucket });
}

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

const indexerOn = (objects: IndexObjects, config: Partial<IndexerConfig> = {}) =>
  new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects,
    config: { segments: 4, todoSettleMs: 0, ...config },
  });

async function drain(ix: SearchIndexer) {
  const reports = [];
  for (let i = 0; i < 20; i++) {
    const r = await ix.run();
    reports.push(r);
    if (r.todos === 0) return reports;
  }
  throw new Error(`the indexer did not drain its to-dos: ${JSON.stringify(reports.slice(-2))}`);
}

/** Objects whose put throws at the `crashAt`-th write. */
function crashing(objects: IndexObjects, crashAt: number): IndexObjects {
  let puts = 0;
  return {
    get: (k, e) => objects.get(k, e),
    delete: (k) => objects.delete(k),
    list: () => objects.list(),
    put: async (k, b, t) => {
      if (++puts === crashAt) throw new Error("simulated crash");
      return objects.put(k, b, t);
    },
  };
}

/** Exhaustive BM25 (one MiniSearch index over every current chunk), as the searcher must score. */
function expectExactScores(
  texts: Map<string, string>,
  got: { documentId: string; chunkIndex: number; score: number }[],
  question: string,
) {
  const reference = new MiniSearch<{ id: string; text: string }>({
    fields: ["text"],
    tokenize,
    processTerm: (t) => normalizeTerm(t),
    searchOptions: { combineWith: "OR", prefix: false, fuzzy: false },
  });
  for (const [id, text] of texts) {
    for (const [i, c] of chunkText(text).entries()) reference.add({ id: `${id}#${i}`, text: c.text });
  }
  const all = reference.search(queryTerms(question).join(" "));
  const byId = new Map(all.map((r) => [r.id as string, r.score]));
  expect(got).toHaveLength(Math.min(10, all.length));
  got.forEach((h, i) => {
    expect(h.score).toBeCloseTo(all[i]!.score, 6);
    expect(byId.get(`${h.documentId}#${h.chunkIndex}`)).toBeCloseTo(h.score, 6);
  });
}

describe("search index delta", () => {
  it("adds, overwrites and deletes through the delta, scoring exactly like one index over everything; a warm searcher patches only what changed", async () => {
    const objects = await newObjects();
    const texts = new Map<string, string>();
    const put = async (id: string, text: string) => {
      await store.putDocumentText({ documentId: id, key: `dx/${id}.txt` }, text);
      texts.set(id, text);
    };
    for (let i = 0; i < 6; i++)
      await put(`dx-${i}`, `${prose(i + 1, 1200 + 200 * i)}\n\nQuill-${i} is vault zx-${i}.`);
    const ix = indexerOn(objects);
    const first = await drain(ix);
    expect(first[0]!.folded).toBe(true); // no base yet: the first run writes one
    const warm = new IndexSearcher({ objects, refreshMs: 0 });
    const question = "cobalt fjord lumen vault quill";
    expectExactScores(texts, await warm.search({ query: question, limit: 10 }), question);
    const segmentsLoaded = warm.stats.objectsLoaded;

    // add, overwrite, delete: each run writes the delta and the manifest only
    await put("dx-new", `${prose(99, 900)} zeppelin hangar quill`);
    await put("dx-1", `${prose(77, 700)} narwhal quill overwrite`);
    await store.tombstone({
      documentId: "dx-2",
      bucket: "local",
      key: "dx/dx-2.txt",
      sequencer: "F".repeat(32),
      now: new Date(),
    });
    texts.delete("dx-2");
    const reports = await drain(ix);
    expect(reports.some((r) => r.added + r.removed > 0)).toBe(true);
    expect(reports.every((r) => !r.folded)).toBe(true);
    const state = await ix.readState();
    expect(state.manifest.deltaKey).toMatch(/^delta\//);
    expect(state.delta.size).toBe(3);

    // The warm searcher reads the new delta and patches its cached segments; it reads no segment again.
    expectExactScores(texts, await warm.search({ query: question, limit: 10 }), question);
    expect(warm.stats.deltasLoaded).toBe(1);
    expect(warm.stats.objectsLoaded - segmentsLoaded).toBe(1);
    expect(warm.stats.chunksPatched).toBeGreaterThan(0);
    for (const q of [question, "zeppelin narwhal", "amber amber onyx marsh harbor"]) {
      expectExactScores(texts, await warm.search({ query: q, limit: 10 }), q);
      const cold = new IndexSearcher({ objects, refreshMs: 0 });
      expect(await cold.search({ query: q, limit: 10 })).toEqual(await warm.search({ query: q, limit: 10 }));
    }
    expect((await warm.search({ query: "zx-2", limit: 50 })).map((h) => h.documentId)).not.toContain("dx-2");
    expect((await warm.documents({ prefix: "dx/" })).map((d) => d.documentId).sort()).toEqual(
      [...texts.keys()].sort(),
    );

    // overwrite a document that lives only in the delta, then delete it: nothing of it stays
    await put("dx-new", "a second text about quokkas");
    await drain(ix);
    expect((await warm.search({ query: "zeppelin", limit: 5 })).map((h) => h.documentId)).toEqual([]);
    expect((await warm.search({ query: "quokkas", limit: 5 })).map((h) => h.documentId)).toEqual(["dx-new"]);
    await store.tombstone({
      documentId: "dx-new",
      bucket: "local",
      key: "dx/dx-new.txt",
      sequencer: "F".repeat(32),
      now: new Date(),
    });
    texts.delete("dx-new");
    await drain(ix);
    expect(await warm.search({ query: "quokkas", limit: 5 })).toEqual([]);
    expect((await ix.readState()).delta.entries.has("dx-new")).toBe(false); // never in the base: no tombstone
    expectExactScores(texts, await warm.search({ query: question, limit: 10 }), question);
  });

  it("folds the delta into new base segments past its threshold, with the same results", async () => {
    const objects = await newObjects();
    const texts = new Map<string, string>();
    for (let i = 0; i < 4; i++) {
      const text = `${prose(i + 40, 800)} fold-${i} quill`;
      await store.putDocumentText({ documentId: `fx-${i}`, key: `fx/${i}.txt` }, text);
      texts.set(`fx-${i}`, text);
    }
    const ix = indexerOn(objects, { foldDocuments: 2 });
    await drain(ix);
    const warm = new IndexSearcher({ objects, refreshMs: 0 });
    const folds: boolean[] = [];
    for (let i = 0; i < 3; i++) {
      const text = `${prose(i + 60, 600)} fold-new-${i} quill`;
      await store.putDocumentText({ documentId: `fx-${i}`, key: `fx/${i}.txt` }, text);
      texts.set(`fx-${i}`, text);
      for (const r of await drain(ix)) if (r.added + r.removed > 0) folds.push(r.folded);
      expectExactScores(
        texts,
        await warm.search({ query: "quill amber fold", limit: 10 }),
        "quill amber fold",
      );
    }
    expect(folds).toEqual([false, false, true]); // 3 documents in the delta > 2: folded
    const state = await ix.readState();
    expect(state.manifest.deltaKey).toBe("");
    expect(state.delta.size).toBe(0);
    expect([...state.base.values()].map((d) => d.documentId).sort()).toEqual([...texts.keys()].sort());
  });

  it("a crash between the piece writes and the manifest changes nothing; the next run catches up and sweeps the leftovers", async () => {
    const objects = await newObjects();
    await store.putDocumentText({ documentId: "cx-0", key: "cx/0.txt" }, `${prose(5, 600)} base walrus`);
    await drain(indexerOn(objects));
    const before = await indexerOn(objects).readState();
    const searcher = new IndexSearcher({ objects, refreshMs: 0 });

    // delta run: crash at the manifest (after the delta object)
    await store.putDocumentText({ documentId: "cx-1", key: "cx/1.txt" }, "Narwhal tusks in the delta.");
    await expect(indexerOn(crashing(objects, 2)).run()).rejects.toThrow(/simulated crash/);
    // fold run: crash after some segments
    await expect(indexerOn(crashing(objects, 3), { foldDocuments: 0 }).run()).rejects.toThrow(
      /simulated crash/,
    );
    expect((await indexerOn(objects).readState()).manifest).toEqual(before.manifest);
    expect(await searcher.search({ query: "narwhal", limit: 5 })).toEqual([]);
    expect((await store.searchTodos.list(100)).map((t) => t.documentId)).toContain("cx-1");

    const leftovers = (await objects.list()).map((o) => o.key);
    const named = new Set(["manifest.json", ...manifestObjects(before.manifest)]);
    expect(leftovers.filter((k) => !named.has(k)).length).toBe(3); // a delta, two segments

    // The next run (leftovers younger than the grace period): caught up, leftovers kept.
    const kept = await drain(indexerOn(objects));
    expect(kept[0]!.orphansDeleted).toBe(0);
    expect((await searcher.search({ query: "narwhal", limit: 5 })).map((h) => h.documentId)).toEqual([
      "cx-1",
    ]);
    // A later run past the grace period deletes exactly the objects no manifest names.
    await store.putDocumentText({ documentId: "cx-2", key: "cx/2.txt" }, "Puffins.");
    const swept = await drain(indexerOn(objects, { orphanGraceMs: 0 }));
    expect(swept[0]!.orphansDeleted).toBe(3);
    const { manifest } = await indexerOn(objects).readState();
    const live = new Set([
      "manifest.json",
      ...manifestObjects(manifest),
      ...manifest.retired.map((r) => r.key),
    ]);
    expect((await objects.list()).map((o) => o.key).filter((k) => !live.has(k))).toEqual([]);
    for (const q of ["narwhal", "puffin", "walrus"])
      expect((await searcher.search({ query: q, limit: 5 })).length).toBe(1);
  });

  it("a bulk load folds a logarithmic number of times (batches grow with the index), with exact scores; a time budget and the text cap bound a bulk run", async () => {
    const K = 48;
    const texts = new Map<string, string>();
    for (let i = 0; i < K; i += 12) {
      await Promise.all(
        Array.from({ length: 12 }, (_, j) => {
          const id = `gx-${i + j}`;
          const text = `${prose(i + j + 300, 400)} bulk-${i + j} quill`;
          texts.set(id, text);
          return store.putDocumentText({ documentId: id, key: `gx/${id}.txt` }, text);
        }),
      );
    }
    const ids = [...texts.keys()];
    const bulkLoad = async (config: Partial<IndexerConfig>) => {
      await drain(indexerOn(await newObjects())); // earlier tests' to-dos out of the way
      for (const id of ids) await store.searchTodos.note(id, new Date(0)); // its write has landed
      const objects = await newObjects();
      const reports = await drain(indexerOn(objects, { maxDocuments: 4, foldDocuments: 3, ...config }));
      return { objects, reports, folds: reports.filter((r) => r.folded).length };
    };

    // Batches of 4, 4, 8, 16, 16 (the index doubles each run): 5 folds, against 12 with fixed batches.
    const growing = await bulkLoad({});
    const fixed = await bulkLoad({ bulkGrowth: 0 });
    console.log(
      `bulk load of ${K} documents in batches of 4: ${growing.folds} folds growing, ${fixed.folds} fixed`,
    );
    expect(fixed.folds).toBe(K / 4);
    expect(growing.folds).toBeLessThanOrEqual(Math.ceil(Math.log2(K / 4)) + 1);
    expect(growing.reports.filter((r) => r.added > 0).map((r) => r.added)).toEqual([4, 4, 8, 16, 16]);
    const searcher = new IndexSearcher({ objects: growing.objects, refreshMs: 0 });
    for (const q of ["quill amber bulk-7", "cobalt fjord lumen", "bulk-47 marsh"]) {
      expectExactScores(texts, await searcher.search({ query: q, limit: 10 }), q);
      const other = new IndexSearcher({ objects: fixed.objects, refreshMs: 0 });
      expect(await other.search({ query: q, limit: 10 })).toEqual(
        await searcher.search({ query: q, limit: 10 }),
      );
    }

    // A time budget: no fold measured yet in this process -> the ordinary batch; after one, the
    // batch is what the budget holds (a budget too small for the index alone: the ordinary batch).
    await drain(indexerOn(await newObjects()));
    for (const id of ids) await store.searchTodos.note(id, new Date(0)); // its write has landed
    const objects = await newObjects();
    const ix = indexerOn(objects, { maxDocuments: 4, foldDocuments: 3 });
    const first = await ix.run({ budgetMs: 60_000 });
    expect([first.bulk, first.added]).toEqual([false, 4]);
    // As long as the last folding run took: the index alone would fill it (the bound in bulkLimits).
    const tight = await ix.run({ budgetMs: first.ms });
    expect([tight.bulk, tight.added]).toEqual([false, 4]);
    const roomy = await ix.run({ budgetMs: 600_000 });
    expect([roomy.bulk, roomy.added]).toEqual([true, 8]);
    // The bulk text cap: a run takes documents up to it (at least one).
    const capped = await indexerOn(objects, {
      maxDocuments: 4,
      foldDocuments: 3,
      maxTextBytes: 1,
      bulkMaxTextBytes: first.textBytes / 2,
    }).run();
    expect(capped.bulk).toBe(true);
    expect(capped.added).toBeGreaterThanOrEqual(1);
    expect(capped.added).toBeLessThan(4);
    expect(capped.textBytes).toBeLessThanOrEqual(
      Math.max(first.textBytes / 2, capped.textBytes / capped.added),
    );
    await drain(ix);
    const searcher2 = new IndexSearcher({ objects, refreshMs: 0 });
    expectExactScores(
      texts,
      await searcher2.search({ query: "quill amber bulk-7", limit: 10 }),
      "quill amber bulk-7",
    );
  });

  it("a bulk load does not stall on the previous batch's to-dos, kept for the settle time", async () => {
    await drain(indexerOn(await newObjects())); // earlier tests' to-dos out of the way
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        store.putDocumentText({ documentId: `sx-${i}`, key: `sx/${i}.txt` }, `${prose(i + 900, 300)} settle`),
      ),
    );
    let clock = Date.now() + 1000;
    const ix = new SearchIndexer({
      store,
      todos: store.searchTodos,
      objects: await newObjects(),
      now: () => new Date(clock),
      config: { segments: 4, maxDocuments: 4, foldDocuments: 3, todoSettleMs: 30_000 },
    });
    const added = [];
    for (let i = 0; i < 3; i++) added.push((await ix.run()).added);
    // Each run lists past the settling to-dos at the head of the list: 4, 4, then 4 (12 in all).
    expect(added).toEqual([4, 4, 4]);
    expect((await store.searchTodos.list(100)).length).toBe(12); // all kept while they settle
    clock += 31_000;
    await drain(ix);
    expect(await store.searchTodos.list(100)).toEqual([]);
    expect((await ix.readState()).documents.size).toBe(12);
  });

  it("routing chunks once gives byte-identical segments to MiniSearch's own add, on new and stored segments", () => {
    const docs = Array.from({ length: 30 }, (_, d) =>
      chunkText(`${prose(d + 500, 700)} The Zx-${d} and the of quill.`).map((c, i) => ({
        id: chunkId(d + 1, i),
        tokens: tokenize(c.text),
      })),
    ).flat();
    const half = Math.floor(docs.length / 2);
    const first = docs.slice(0, half);
    const rest = docs.slice(half);
    for (let s = 0; s < 4; s++) {
      const plain = new TermRouter(4);
      plain.setDocuments(docs);
      const a = createSegment(plain, s);
      a.addAll(first);
      const aStored = loadSegment(JSON.stringify(a), plain, s);
      aStored.addAll(rest);

      const router = new TermRouter(4);
      const b = createSegment(router, s);
      addRouted(b, s, routeChunks(first, router));
      const bStored = loadSegment(JSON.stringify(b), router, s);
      addRouted(bStored, s, routeChunks(rest, router));
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));
      expect(JSON.stringify(bStored)).toBe(JSON.stringify(aStored));
      // the segment's own add works as before afterwards (its options restored)
      router.setDocuments(rest.slice(0, 1));
      bStored.discard(rest[0]!.id);
      bStored.add(rest[0]!);
      expect(bStored.documentCount).toBe(aStored.documentCount);
    }
  });

  it("writes bytes per run in proportion to the change, not the corpus (one changed document at 20 and 200 documents)", async () => {
    const bytesForOneChange = async (size: number) => {
      const objects = await newObjects();
      const prefix = `bx${size}`;
      for (let i = 0; i < size; i += 20) {
        await Promise.all(
          Array.from({ length: Math.min(20, size - i) }, (_, j) =>
            store.putDocumentText(
              { documentId: `${prefix}-${i + j}`, key: `${prefix}/${i + j}.txt` },
              `${prose(i + j + 1, 500)} doc ${i + j}`,
            ),
          ),
        );
      }
      const ix = indexerOn(objects, { segments: 32 });
      const bulk = await drain(ix);
      const foldBytes = bulk.reduce((n, r) => n + r.bytesWritten, 0);
      await store.putDocumentText(
        { documentId: `${prefix}-3`, key: `${prefix}/3.txt` },
        `${prose(1234, 500)} changed`,
      );
      const runs = await drain(ix);
      const changed = runs.filter((r) => r.added + r.removed > 0);
      expect(changed).toHaveLength(1);
      expect(changed[0]!.folded).toBe(false);
      return { foldBytes, runBytes: changed[0]!.bytesWritten };
    };
    const small = await bytesForOneChange(20);
    const large = await bytesForOneChange(200);
    const ratio = large.runBytes / small.runBytes;
    console.log(
      `bytes written for one changed document: ${small.runBytes} at 20 documents, ${large.runBytes} at 200 (ratio ${ratio.toFixed(2)}); bulk build ${small.foldBytes} vs ${large.foldBytes}`,
    );
    expect(large.foldBytes / small.foldBytes).toBeGreaterThan(5); // the bulk build does scale with the corpus
    expect(ratio).toBeLessThan(1.5); // one change costs the same at 10x the corpus
  });
});
