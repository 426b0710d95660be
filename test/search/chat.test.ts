/**
 * Chat over the index, against real local servers and the Moonshot emulator: a scope larger than the
 * listing limit is taken from the index with no 400, only the chosen chunks are read (never the
 * scope's text), its failed documents are named in `skipped`, and a document that is ready but not
 * indexed yet still answers when it is named.
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
const reads = { whole: 0, byKey: 0 };
let app: Hono;
let noIndexApp: Hono;

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
  app = createChatApp({
    ...common,
    store: counting,
    search: new IndexSearcher({ objects, refreshMs: 0 }),
  }) as unknown as Hono;
  noIndexApp = createChatApp({ ...common, store }) as unknown as Hono;
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

  it("without an index the same scope is the old 400", async () => {
    const res = await ask(noIndexApp, { question: "What is the launch harbour of Project Wexmir?" });
    expect(res.status).toBe(400);
  });

  it("a scope taken from the index names its failed documents in `skipped`", async () => {
    await store.putDocumentText(
      {
        documentId: "ledger-broken",
        key: "ledgers/broken.pdf",
        status: "failed",
        error: { code: "extraction_failed", message: "the provider could not extract text" },
      },
      filler(3),
    );
    while ((await indexer.run()).todos > 0);
    const res = await ask(app, {
      question: "What is the launch harbour of Project Wexmir?",
      prefix: "ledgers/",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer & { skipped: unknown[]; skippedNotListed?: number };
    expect(body.context).toMatchObject({ retrieval: "index", documents: 24 });
    expect(body.skipped).toEqual([
      {
        documentId: "ledger-broken",
        key: "ledgers/broken.pdf",
        status: "failed",
        reason: "ingestion failed: the provider could not extract text",
      },
    ]);
    expect(body.answer).toContain("Tarqua Bay");
    await store.tombstone({
      documentId: "ledger-broken",
      bucket: "local",
      key: "ledgers/broken.pdf",
      sequencer: `F${"1".padStart(31, "0")}`,
      now: new Date(),
    });
    while ((await indexer.run()).todos > 0);
    const after = (await (await ask(app, { question: "Wexmir harbour", prefix: "ledgers/" })).json()) as {
      skipped: unknown[];
    };
    expect(after.skipped).toEqual([]);
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
