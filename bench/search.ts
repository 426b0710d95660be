/**
 * Search index benchmark: N documents seeded straight into local DynamoDB (a child process, like a
 * remote table), the index built by the real indexer into local S3, then, side by side in one process:
 *
 * - request to provider call, warm: an unscoped question (index path) against the same question
 *   scoped to the one document holding the fact (ratio; target 3x or less);
 * - the first question after a cold start (a new searcher: index loaded from storage): time and bytes;
 * - chunk-text bytes read per unscoped question, against the text the chunks sent hold;
 * - process RSS (peak), next to the chat function's 1 GB;
 * - agreement: top-10 overlap of the index with today's in-memory ranking (ChunkRanker over every
 *   chunk) over `questions` questions (target 0.9);
 * - index upkeep: indexer time per document in bulk, against the seed's own write time per document;
 *   and one overwritten document after the bulk build: bytes its run wrote (delta + manifest, flat
 *   in the corpus size) and bytes the warm chat side read to see it.
 *
 * `npx tsx bench/search.ts --docs 10000 --mb 500` (the size; long on a small machine).
 */
import { pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createChatApp } from "../functions/chat/app";
import { ChunkRanker, type ChunkRef, type ContextDocument } from "../functions/core/chat/context";
import { mapLimit } from "../functions/core/chat/selection";
import { DynamoDocumentStore } from "../functions/core/documents/dynamo-store";
import type { DocumentRecord, TextChunk } from "../functions/core/documents/model";
import { MoonshotClient } from "../functions/core/moonshot/adapter";
import type { ChatRequest, ProviderApi } from "../functions/core/provider/types";
import { SearchIndexer } from "../functions/core/search/indexer";
import { IndexSearcher } from "../functions/core/search/searcher";
import { S3IndexObjects } from "../functions/core/search/storage";
import { ensureDocumentsTable, startLocalDynamoProcess } from "../local/aws/dynamo";
import { startLocalS3 } from "../local/aws/s3";
import { prng } from "../local/emulator/prng";
import { startEmulator } from "../local/emulator/server";
import { makeCorpus } from "./chat-context";

export interface SearchBenchOptions {
  documents?: number;
  totalMB?: number;
  runs?: number;
  questions?: number;
  seed?: number;
  /** Term partitions of the index (the indexer's default when unset). */
  segments?: number;
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/**
 * After seconds of synchronous work (the reference ranking over every chunk) the local servers'
 * keep-alive timers have expired: let them close their idle sockets, and the client see it, before the
 * next request (else it may write to a socket being closed: ECONNRESET), and retry one that still was.
 */
async function afterBlocking<T>(call: () => Promise<T>): Promise<T> {
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
  try {
    return await call();
  } catch (err) {
    if ((err as { code?: string }).code !== "ECONNRESET") throw err;
    return call();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

export async function main(opts: SearchBenchOptions = {}) {
  const docs = opts.documents ?? 500;
  const totalBytes = Math.round((opts.totalMB ?? 25) * 1024 * 1024);
  const runs = opts.runs ?? 5;
  const questionCount = opts.questions ?? 100;
  const rand = prng(opts.seed ?? 7);
  let peakRss = process.memoryUsage().rss;
  const sample = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const [dynamo, s3, emulator] = await Promise.all([
    startLocalDynamoProcess(),
    startLocalS3({ buckets: ["bench-index"] }),
    startEmulator({ models: [{ id: "kimi-k2.6", context_length: 262144 }] }),
  ]);
  const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
  const dynamoClient = new DynamoDBClient({ endpoint: dynamo.endpoint, region: "us-east-1", credentials });
  const s3Client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: "us-east-1",
    credentials,
  });
  try {
    await s3Client.send(new CreateBucketCommand({ Bucket: "bench-index" })).catch(() => undefined);
    const tableName = "bench-search-documents";
    await ensureDocumentsTable(dynamoClient, tableName);
    const store = new DynamoDocumentStore({
      client: DynamoDBDocumentClient.from(dynamoClient, { marshallOptions: { removeUndefinedValues: true } }),
      tableName,
    });
    const objects = new S3IndexObjects({ client: s3Client, bucket: "bench-index" });

    // ---- seed, then index (upkeep per document against the seed's own write time per document)
    const { texts, facts } = makeCorpus(docs, Math.floor(totalBytes / docs), rand);
    const t0 = performance.now();
    const records: DocumentRecord[] = await mapLimit(texts, 8, (text, i) =>
      store.putDocumentText(
        {
          documentId: `bench-${String(i).padStart(5, "0")}`,
          key: `bench/doc-${String(i).padStart(5, "0")}.txt`,
        },
        text,
      ),
    );
    const seedMs = performance.now() - t0;
    process.stderr.write(`search bench: seeded ${docs} documents in ${Math.round(seedMs)} ms\n`);
    // The indexer's live memory: at the first segment write of each fold (the batch routed, one segment
    // loaded and packed) a forced GC, then the heap over the heap before the bulk build (the corpus
    // texts the seed made are still held: the baseline, not the indexer's). One GC per fold.
    gc();
    const heapBeforeIndex = process.memoryUsage().heapUsed;
    let indexLiveHeap = heapBeforeIndex;
    const indexerObjects: typeof objects = Object.assign(Object.create(objects) as typeof objects, {
      put: async (key: string, body: Buffer, type: string) => {
        if (key.startsWith("segments/0/")) {
          gc();
          indexLiveHeap = Math.max(indexLiveHeap, process.memoryUsage().heapUsed);
        }
        return objects.put(key, body, type);
      },
    });
    const indexer = new SearchIndexer({
      store,
      todos: store.searchTodos,
      objects: indexerObjects,
      config: { todoSettleMs: 0, ...(opts.segments ? { segments: opts.segments } : {}) },
    });
    let indexPeakHeap = heapBeforeIndex;
    const heapSample = setInterval(() => {
      indexPeakHeap = Math.max(indexPeakHeap, process.memoryUsage().heapUsed);
    }, 50);
    const t1 = performance.now();
    let indexRuns = 0;
    const bulkRuns: { added: number; textMB: number; folded: boolean; ms: number }[] = [];
    for (;;) {
      const r = await indexer.run();
      if (r.todos === 0) break;
      indexRuns++;
      bulkRuns.push({
        added: r.added,
        textMB: Math.round((r.textBytes / 1048576) * 10) / 10,
        folded: r.folded,
        ms: Math.round(r.ms),
      });
      indexPeakHeap = Math.max(indexPeakHeap, process.memoryUsage().heapUsed);
    }
    const indexMs = performance.now() - t1;
    clearInterval(heapSample);
    // Printed as they come (a later failure keeps them).
    process.stderr.write(
      `search bench: indexer ${(indexMs / docs).toFixed(1)} ms/document vs seed ${(seedMs / docs).toFixed(1)} ms/document (${(indexMs / seedMs).toFixed(2)}x), live heap ${Math.round((indexLiveHeap - heapBeforeIndex) / 1048576)} MB\n`,
    );
    process.stderr.write(
      `search bench: indexed in ${Math.round(indexMs)} ms (${indexRuns} runs: ${JSON.stringify(bulkRuns)})\n`,
    );
    const textBytes = records.reduce((n, r) => n + (r.textBytes ?? 0), 0);
    const chunkCount = records.reduce((n, r) => n + (r.chunkCount ?? 0), 0);

    // ---- the chat app over the index, with a hook on the provider call and a counter on chunk reads
    const client = new MoonshotClient({
      baseURL: emulator.baseURL,
      apiKey: async () => "k",
      retry: { maxAttempts: 1 },
    });
    let upstreamAt = 0;
    const moonshot: ProviderApi = Object.assign(Object.create(client) as ProviderApi, {
      chat(req: ChatRequest, o?: Parameters<ProviderApi["chat"]>[1]) {
        upstreamAt = performance.now();
        return client.chat(req, o);
      },
    });
    let chunkBytesRead = 0;
    const counting = Object.assign(Object.create(store) as DynamoDocumentStore, {
      getChunks: async (r: DocumentRecord) => {
        const c = await store.getChunks(r);
        for (const x of c) chunkBytesRead += Buffer.byteLength(x.text, "utf8");
        return c;
      },
      getChunksAt: async (keys: Parameters<DynamoDocumentStore["getChunksAt"]>[0]) => {
        const c = await store.getChunksAt(keys);
        for (const x of c) if (x) chunkBytesRead += Buffer.byteLength(x.text, "utf8");
        return c;
      },
    });
    let lastTimings: Record<string, number> = {};
    const makeApp = (searcher: IndexSearcher) =>
      createChatApp({
        logger: {
          info(message, attributes) {
            const t = attributes?.timings as Record<string, number> | undefined;
            if (message === "chat prepared" && t) lastTimings = t;
          },
          warn() {},
          error() {},
        },
        store: counting,
        provider: moonshot,
        objects: { deleteObject: async () => {} },
        search: searcher,
        defaultModel: "kimi-k2.6",
        requireGatewayAuthorizer: false,
      });
    const ask = async (app: ReturnType<typeof makeApp>, body: Record<string, unknown>) => {
      upstreamAt = 0;
      chunkBytesRead = 0;
      const start = performance.now();
      const res = await app.request("/chat", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = (await res.json()) as {
        sources?: { chunks: { text: string }[] }[];
        context?: { retrieval?: string; promptTokens?: number; budgetTokens?: number };
      };
      if (res.status !== 200 || upstreamAt === 0)
        throw new Error(`chat failed: ${res.status} ${JSON.stringify(json)}`);
      const sentBytes = (json.sources ?? []).reduce(
        (n, s) => n + s.chunks.reduce((m, c) => m + Buffer.byteLength(c.text, "utf8"), 0),
        0,
      );
      return {
        ms: upstreamAt - start,
        readBytes: chunkBytesRead,
        sentBytes,
        retrieval: json.context?.retrieval,
        fill: (json.context?.promptTokens ?? 0) / Math.max(1, json.context?.budgetTokens ?? 1),
        budgetTokens: json.context?.budgetTokens,
        timings: Object.fromEntries(Object.entries(lastTimings).map(([k, v]) => [k, Math.round(v)])),
      };
    };

    // ---- cold: the first question after a cold start. The chat side's own memory: heap growth from
    // here (corpus texts of the seed released) through the warm questions.
    texts.length = 0;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const coldSearcher = new IndexSearcher({ objects });
    const coldApp = makeApp(coldSearcher);
    const firstFact = facts[0]!;
    const cold = await ask(coldApp, {
      question: `What is the ${firstFact.attribute} of ${firstFact.entity}?`,
    });
    const coldBytes = coldSearcher.stats.bytesLoaded;

    // ---- warm: unscoped vs scoped to the fact's document, alternating
    const warmApp = coldApp;
    const unscoped: number[] = [];
    const scoped: number[] = [];
    const readRatio: number[] = [];
    const readBytes: number[] = [];
    const unscopedTimings: Record<string, number>[] = [];
    const fills: number[] = [];
    const scopedTimings: Record<string, number>[] = [];
    let lastWarmQuestion = "";
    for (let r = 0; r < runs; r++) {
      const fact = facts[Math.floor(rand() * facts.length)]!;
      const question = `What is the ${fact.attribute} of ${fact.entity}?`;
      lastWarmQuestion = question;
      await ask(warmApp, { question }); // warms the segments this question needs
      const u = await ask(warmApp, { question });
      const s = await ask(warmApp, { question, documentIds: [records[fact.doc]!.documentId] });
      unscoped.push(u.ms);
      scoped.push(s.ms);
      const last = coldSearcher.stats.lastSearch;
      unscopedTimings.push({
        ...u.timings,
        ...(last
          ? {
              segmentsMs: Math.round(last.segmentsMs),
              scoreMs: Math.round(last.scoreMs),
              postingsScanned: last.postingsScanned,
              postings: last.postings,
            }
          : {}),
      });
      fills.push(Math.round(u.fill * 1000) / 1000);
      scopedTimings.push(s.timings);
      readBytes.push(u.readBytes);
      readRatio.push(u.readBytes / Math.max(1, u.sentBytes));
      if (u.retrieval !== "index")
        throw new Error(`unscoped question did not use the index (${u.retrieval})`);
    }

    gc();
    const chatHeapMB = (process.memoryUsage().heapUsed - heapBefore) / 1048576;
    process.stderr.write(
      `search bench: cold ${Math.round(cold.ms)} ms reading ${coldBytes} B; warm unscoped ${JSON.stringify(unscoped.map(Math.round))} vs scoped ${JSON.stringify(scoped.map(Math.round))} ms; timings ${JSON.stringify(unscopedTimings)}; chat heap ${Math.round(chatHeapMB)} MB\n`,
    );

    // ---- agreement with today's in-memory ranking over every chunk
    const all: ContextDocument[] = await mapLimit(records, 8, async (record) => ({
      record,
      chunks: (await store.getChunks(record)) as TextChunk[],
    }));
    const refs: ChunkRef[] = [];
    for (const [doc, d] of all.entries()) {
      for (const [pos, c] of d.chunks.entries()) refs.push({ doc, pos, tokens: c.tokens });
    }
    const searcher = new IndexSearcher({ objects });
    let overlap = 0;
    for (let q = 0; q < questionCount; q++) {
      const fact = facts[Math.floor(rand() * facts.length)]!;
      const question = `What is the ${fact.attribute} of ${fact.entity}?`;
      const want = new ChunkRanker(question)
        .order(all, refs)
        .slice(0, 10)
        .map((r) => `${all[r.doc]!.record.documentId}#${all[r.doc]!.chunks[r.pos]!.index}`);
      const got = new Set(
        (await afterBlocking(() => searcher.search({ query: question, limit: 10 }))).map(
          (h) => `${h.documentId}#${h.chunkIndex}`,
        ),
      );
      overlap += want.filter((k) => got.has(k)).length / Math.max(1, want.length);
    }
    const manifest = await afterBlocking(() => searcher.manifest());

    // ---- upkeep of one change after the bulk build: one document overwritten (same size), one run.
    // Its bytes written (delta + manifest) should not grow with the corpus; the warm chat side then
    // reads only the new manifest and delta, and patches the segments it holds.
    const changed = records[1 % records.length]!;
    const changedText = (await afterBlocking(() => store.getChunks(changed)))
      .map((c) => c.text)
      .reverse()
      .join("\n\n");
    await store.putDocumentText({ documentId: changed.documentId, key: changed.key }, changedText);
    const t2 = performance.now();
    let oneChange = { bytesWritten: 0, folded: false, deltaDocuments: 0, runs: 0 };
    for (;;) {
      const r = await indexer.run();
      if (r.added + r.removed > 0)
        oneChange = {
          bytesWritten: oneChange.bytesWritten + r.bytesWritten,
          folded: oneChange.folded || r.folded,
          deltaDocuments: r.deltaDocuments,
          runs: oneChange.runs + 1,
        };
      if (r.todos === 0) break;
    }
    const oneChangeMs = performance.now() - t2;
    // The last warm question again: its segments are cached, so what it reads is what the change costs
    // (an older question's segments may have left the LRU cache meanwhile: that is the cache cap).
    const loadedBefore = coldSearcher.stats.bytesLoaded;
    const deltaBefore = coldSearcher.stats.deltaBytesLoaded;
    const afterChange = await ask(warmApp, { question: lastWarmQuestion });
    const refreshBytes = coldSearcher.stats.bytesLoaded - loadedBefore;
    const refreshDeltaBytes = coldSearcher.stats.deltaBytesLoaded - deltaBefore;

    clearInterval(sample);
    return {
      documents: docs,
      textBytes,
      chunks: chunkCount,
      segments: manifest?.segments,
      seedMsPerDocument: seedMs / docs,
      indexMsPerDocument: indexMs / docs,
      indexRuns,
      /** Each bulk run: documents added, new text, whether it folded (rewrote every segment), time. */
      bulkRuns,
      indexFolds: bulkRuns.filter((r) => r.folded).length,
      /** Peak heap during the bulk build over the heap before it, garbage included (sampled every 50 ms). */
      indexerPeakHeapMB: Math.round((indexPeakHeap - heapBeforeIndex) / 1048576),
      /** Live heap at each fold's first segment write (forced GC) over the heap before: the working set. */
      indexerLiveHeapMB: Math.round((indexLiveHeap - heapBeforeIndex) / 1048576),
      upkeepRatio: indexMs / seedMs,
      coldFirstQuestionMs: Math.round(cold.ms),
      coldBytesRead: coldBytes,
      warmUnscopedMs: unscoped.map(Math.round),
      warmScopedMs: scoped.map(Math.round),
      warmRatio: median(unscoped) / median(scoped),
      /** Where the time goes (ChatService timings of each run: select, read, plan, provider count). */
      unscopedTimings,
      scopedTimings,
      chunkBytesReadPerQuestion: median(readBytes),
      /** Unscoped answers: the provider's prompt count / document budget (the window is used). */
      windowFill: fills,
      readOverSent: median(readRatio),
      agreementTop10: overlap / questionCount,
      peakRssMB: Math.round(peakRss / 1048576),
      /** Heap the chat side holds after the warm questions (index cache, table), over the baseline. */
      chatHeapMB: Math.round(chatHeapMB),
      /** Decompressed JSON of the segments the chat side cached (heap per JSON byte = chatHeapMB / this). */
      chatCachedJsonMB: Math.round((coldSearcher.stats.cachedJsonBytes / 1048576) * 10) / 10,
      chatFunctionMemoryMB: 1024,
      /** The deployment's context budget the chat answered with (MAX_CONTEXT_TOKENS default). */
      budgetTokens: cold.budgetTokens,
      /** One overwritten document after the bulk build: the indexer run(s) it took. */
      oneChangeBytesWritten: oneChange.bytesWritten,
      oneChangeFolded: oneChange.folded,
      oneChangeMs: Math.round(oneChangeMs),
      /** Bytes the warm chat side read to see that change (manifest + delta), and its next answer's time. */
      oneChangeChatRefreshBytes: refreshBytes,
      /** ...of which the delta (the rest: the manifest, and any segment the LRU cap had evicted). */
      oneChangeChatDeltaBytes: refreshDeltaBytes,
      oneChangeNextQuestionMs: Math.round(afterChange.ms),
    };
  } finally {
    clearInterval(sample);
    dynamoClient.destroy();
    s3Client.destroy();
    await Promise.all([emulator.close(), s3.close(), dynamo.close()]);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  main({
    documents: arg("docs"),
    totalMB: arg("mb"),
    runs: arg("runs"),
    questions: arg("questions"),
    segments: arg("segments"),
  })
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
