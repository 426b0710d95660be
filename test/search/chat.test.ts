/**
 * Chat over the index, against real local servers and the Moonshot emulator: a scope larger than the
 * listing limit is taken from the index with no 400, only the chosen chunks are read (never the
 * scope's text), and a document that is ready but not indexed yet still answers when it is named.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import type { DocumentRecord } from "../../functions/core/documents/model";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { S3IndexObjects } from "../../functions/core/search/storage";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let emulator: RunningEmulator;
let store: DynamoDocumentStore;
let indexer: SearchIndexer;
const reads = { whole: 0, byKey: 0, searches: 0 };
/** While `on`, a scope listing waits for a search to start (at most 5 s) and notes whether one did. */
const gate = {
  on: false,
  searchedFirst: [] as boolean[],
  started: () => {},
  searched: Promise.resolve(),
};
let app: Hono;
let noIndexApp: Hono;
let extraApp: Hono;
const extraScopes: string[] = [];

const filler = (i: number) =>
  Array.from({ length: 400 }, (_, j) => `Paragraph ${j} of ledger ${i} lists routine cargo entries.`).join(
    "\n\n",
  );

beforeAll(async () => {
  [stack, emulator] = await Promise.all([
    startLocalStack({ prefix: "searchchat" }),
    startEmulator({ models: [{ id: "moonshot-v1-8k", context_length: 8192 }] }),
  ]);
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  await stack.s3Client.send(new CreateBucketCommand({ Bucket: "index" }));
  const objects = new S3IndexObjects({ client: stack.s3Client, bucket: "index" });
  indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects,
    config: { segments: 4, todoSettleMs: 0 },
  });
  for (let i = 0; i < 24; i++) {
    const fact = i === 17 ? "\n\nThe launch harbour of Project Wexmir is Tarqua Bay.\n\n" : "";
    await store.putDocumentText(
      {
        documentId: `ledger-${String(i).padStart(2, "0")}`,
        key: `ledgers/${String(i).padStart(2, "0")}.txt`,
      },
      filler(i) + fact + filler(i + 100),
    );
  }
  while ((await indexer.run()).todos > 0);
  // Counts what the chat reads from the store.
  const counting = Object.assign(Object.create(store) as DynamoDocumentStore, {
    list: async (q: Parameters<DynamoDocumentStore["list"]>[0]) => {
      if (gate.on) {
        let searched = false;
        await Promise.race([
          gate.searched.then(() => {
            searched = true;
          }),
          new Promise((r) => setTimeout(r, 5000)),
        ]);
        gate.searchedFirst.push(searched);
      }
      return store.list(q);
    },
    getChunks: (r: DocumentRecord) => {
      reads.whole++;
      return store.getChunks(r);
    },
    getChunksAt: (keys: Parameters<DynamoDocumentStore["getChunksAt"]>[0]) => {
      reads.byKey += keys.length;
      return store.getChunksAt(keys);
    },
  });
  const moonshot = new MoonshotClient({
    baseURL: emulator.baseURL,
    apiKey: async () => "k",
    retry: { maxAttempts: 1 },
  });
  const common = {
    provider: moonshot,
    objects: { deleteObject: async () => {} },
    defaultModel: "moonshot-v1-8k",
    requireGatewayAuthorizer: false,
    maxDocuments: 10, // stands for the 1,000-document listing limit
  };
  const searcher = new IndexSearcher({ objects, refreshMs: 0 });
  const countingSearch = Object.assign(Object.create(searcher) as IndexSearcher, {
    search: (q: Parameters<IndexSearcher["search"]>[0]) => {
      reads.searches++;
      gate.started();
      return searcher.search(q);
    },
  });
  app = createChatApp({ ...common, store: counting, search: countingSearch }) as unknown as Hono;
  noIndexApp = createChatApp({ ...common, store }) as unknown as Hono;
  // An index whose table under ledgers/2 holds one more document than the store lists there (as when
  // a record is processing its next version: listed as skipped, its previous text still indexed).
  const extraSearch = Object.assign(Object.create(searcher) as IndexSearcher, {
    documents: async (scope?: Parameters<IndexSearcher["documents"]>[0]) => {
      const docs = await searcher.documents(scope);
      if (scope?.prefix !== "ledgers/2") return docs;
      return [...docs, { ...docs[0]!, documentId: "ledger-extra", key: "ledgers/2x.txt" }];
    },
    search: (q: Parameters<IndexSearcher["search"]>[0]) => {
      reads.searches++;
      extraScopes.push(q.documentIds ? "documentIds" : "prefix");
      return searcher.search(q);
    },
  });
  extraApp = createChatApp({ ...common, store, search: extraSearch }) as unknown as Hono;
});
afterAll(async () => {
  await Promise.all([stack?.close(), emulator?.close()]);
});

const ask = (a: Hono, body: unknown) =>
  a.request("/chat", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

type Answer = {
  answer: string;
  sources: { documentId: string; complete: boolean; chunks: { index: number }[] }[];
  context: { retrieval: string; mode: string; documents: number; chunksTotal: number };
};

describe("chat over the search index", () => {
  it("answers over every document beyond the listing limit, reading only the chunks it may send", async () => {
    reads.whole = 0;
    reads.byKey = 0;
    const res = await ask(app, { question: "What is the launch harbour of Project Wexmir?" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer;
    expect(body.context).toMatchObject({ retrieval: "index", mode: "ranked", documents: 24 });
    expect(body.sources.map((s) => s.documentId)).toContain("ledger-17");
    expect(body.answer).toContain("Tarqua Bay");
    expect(reads.whole).toBe(0);
    const sent = body.sources.reduce((n, s) => n + s.chunks.length, 0);
    expect(reads.byKey).toBeGreaterThanOrEqual(sent);
    expect(reads.byKey).toBeLessThan(body.context.chunksTotal);
    expect(body.sources.every((s) => !s.complete)).toBe(true);
  });

  it("a listed scope uses the index search started alongside its listing (one search), and not when the listing differs", async () => {
    reads.searches = 0;
    gate.searched = new Promise<void>((r) => {
      gate.started = r;
    });
    gate.on = true;
    // ledgers/1x: 10 documents, within the listing limit (maxDocuments 10): listed record by record,
    // and the listing is held until a search has started: the search does not wait for the listing.
    const res = await ask(app, {
      question: "What is the launch harbour of Project Wexmir?",
      prefix: "ledgers/1",
    });
    gate.on = false;
    expect(gate.searchedFirst).toEqual([true]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer;
    expect(body.context).toMatchObject({ retrieval: "index", documents: 10 });
    expect(body.answer).toContain("Tarqua Bay");
    expect(reads.searches).toBe(1);
    // The same question over the same scope by document ids (no search ahead) sends the same chunks.
    const ids = Array.from({ length: 10 }, (_, i) => `ledger-1${i}`);
    const byIds = (await (
      await ask(app, { question: "What is the launch harbour of Project Wexmir?", documentIds: ids })
    ).json()) as Answer;
    expect(byIds.sources).toEqual(body.sources);
    expect(reads.searches).toBe(2);

    // One document of the scope rewritten and not indexed yet: the listing differs from the index,
    // so its text is read (as before); the search made ahead is not used.
    await store.putDocumentText(
      { documentId: "ledger-12", key: "ledgers/12.txt" },
      `${filler(12)} rewritten`,
    );
    reads.searches = 0;
    const stale = (await (
      await ask(app, { question: "What is the launch harbour of Project Wexmir?", prefix: "ledgers/1" })
    ).json()) as Answer;
    expect(stale.context.retrieval).toBe("read");
    expect(stale.answer).toContain("Tarqua Bay");
    while ((await indexer.run()).todos > 0);
  });

  it("the search made ahead is not used when the index holds a document the listing does not", async () => {
    extraScopes.length = 0;
    const res = await ask(extraApp, {
      question: "Which cargo entries does ledger 21 list?",
      prefix: "ledgers/2",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer;
    expect(body.context).toMatchObject({ retrieval: "index", documents: 4 });
    expect(extraScopes).toEqual(["prefix", "documentIds"]); // ahead, then again over the listed ids
    expect(body.sources.every((s) => /^ledger-2[0-3]$/.test(s.documentId))).toBe(true);
  });

  it("without an index the same scope is the old 400", async () => {
    const res = await ask(noIndexApp, { question: "What is the launch harbour of Project Wexmir?" });
    expect(res.status).toBe(400);
  });

  it("a ready document not indexed yet is answered when named (its text is read)", async () => {
    await store.putDocumentText(
      { documentId: "fresh", key: "ledgers/fresh.txt" },
      `${filler(7)}\n\nThe vault number of Project Ulsen is 4471.\n\n${filler(8)}`,
    );
    const res = await ask(app, {
      question: "What is the vault number of Project Ulsen?",
      documentIds: ["fresh", "ledger-03"],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer;
    expect(body.context.retrieval).toBe("read");
    expect(body.answer).toContain("4471");
    while ((await indexer.run()).todos > 0);
    const again = (await (
      await ask(app, {
        question: "What is the vault number of Project Ulsen?",
        documentIds: ["fresh", "ledger-03"],
      })
    ).json()) as Answer;
    expect(again.context.retrieval).toBe("index");
    expect(again.answer).toContain("4471");
  });
});
