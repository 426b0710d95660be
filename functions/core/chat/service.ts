/**
 * Prepares a grounded chat request: resolves the model and its window, selects and reads documents,
 * plans the context within budget, and confirms the size with the provider's own token count before
 * anything is sent, shrinking until it fits. The caller then sends `request` with `chat` or
 * `chatStream`; both routes (`/chat` and `/v1/chat/completions`) share this.
 */
import type { DocumentReader, DocumentRecord, TextChunk } from "../documents/model";
import type {
  CallOptions,
  ChatMessage,
  ChatRequest,
  GenerationOptions,
  ProviderApi,
} from "../provider/types";
import { type MetricsPort, noMetrics } from "../runtime/telemetry";
import type { IndexedDocument, SearchHit, SearchIndex } from "../search/model";
import { DEFAULT_MAX_CONTEXT_TOKENS } from "./budget";
import {
  ChunkRanker,
  type ChunkRef,
  type ContextDocument,
  ContextPlan,
  type ContextSource,
  type ContextSummary,
  defaultSafetyMargin,
  documentBudget,
  estimateMessagesTokens,
} from "./context";
import { ApiError, badRequest } from "./errors";
import { CHAT_METRICS } from "./metrics";
import type { ModelCatalog, ResolvedModel } from "./models";
import { layoutPrompt } from "./prompt-layout";
import {
  type DocumentSelector,
  MAX_SKIPPED_LISTED,
  mapLimit,
  type Selection,
  type SkippedDocument,
  selectDocuments,
  skipReasonOf,
} from "./selection";

/** Answer budget when the request sets none: enough for a thinking model's reasoning plus answer. */
export const DEFAULT_MAX_TOKENS = 8192;
/** Provider token checks before giving up (each one shrinks the context further). */
const MAX_CHECKS = 5;
/** A top-up is tried when the provider's count leaves at least this share of the budget unused... */
const TOP_UP_MIN_SHARE = 0.05;
/** ...and fills this share of that room (the calibration from one count is not exact). */
const TOP_UP_FILL = 0.9;

export interface ChatServiceDeps {
  store: DocumentReader;
  provider: Pick<ProviderApi, "estimateTokenCount">;
  models: ModelCatalog;
  defaultModel: string;
  /** Parallel chunk reads. Default 16. */
  readConcurrency?: number;
  /**
   * Without a search index: most documents one request may cover (default 1,000). With one: scopes up
   * to this many are listed record by record (so documents not indexed yet, and skipped ones, are
   * seen); larger scopes are taken from the index, without limit.
   */
  maxDocuments?: number;
  /**
   * Most tokens of document text per request when the request sets none (still capped by the model's
   * window). Default DEFAULT_MAX_CONTEXT_TOKENS.
   */
  maxContextTokens?: number;
  /** The search index: large scopes rank with it and read only the chunks they send. */
  search?: SearchIndex;
  /** Where context figures go (Powertools in Lambda). Default: nowhere. */
  metrics?: MetricsPort;
}

export interface ChatPlanInput {
  /** Requested model; the configured default when absent. */
  model?: string;
  selector: DocumentSelector;
  /**
   * The documents this request may see: the caller's scoped view (functions/core/auth/scope.ts,
   * `readerFor` in the app). Default: the service's whole store.
   */
  reader?: DocumentReader;
  /** The conversation without documents: system prompts, previous turns, the question last. */
  messages: ChatMessage[];
  /**
   * Where the leading system prompts end in `messages`: documents go there, or right before the
   * question when they are ranked per question (prompt-layout.ts, for the provider's prefix cache).
   */
  documentsAt: number;
  /** Text chunks are ranked against (normally the latest user message). */
  query: string;
  maxTokens?: number;
  /** Most tokens of document text to send (the deployment's default when absent; capped by the window). */
  maxContextTokens?: number;
  /** Sampling and output parameters, already checked against the model (core/chat/parameters.ts). */
  options?: GenerationOptions;
}

export interface PreparedChat {
  /** Ready to send: `max_tokens` is always set, so the budget the context was built for holds. */
  request: ChatRequest;
  model: ResolvedModel;
  sources: ContextSource[];
  skipped: SkippedDocument[];
  skippedNotListed: number;
  context: ContextSummary & {
    /** The provider's count of the final prompt. */
    promptTokens: number;
    /** Provider token checks it took (1 when the first plan fitted). */
    checks: number;
    /** Chunks were added after the provider counted fewer tokens than the local estimate. */
    toppedUp: boolean;
    /** The context budget asked for (request or deployment); `budgetTokens` is it capped by the window. */
    maxContextTokens: number;
    /** "index": chunks chosen by the search index, only those read; "read": the scope's text read. */
    retrieval: "index" | "read";
  };
  /** Milliseconds of each step; `searchMs` (the index search, part of `readMs`) when the index ranked. */
  timings: { selectMs: number; readMs: number; searchMs?: number; planMs: number; checkMs: number };
}

/** Assembles grounded chat requests; see the module comment. */
export class ChatService {
  constructor(private readonly deps: ChatServiceDeps) {}

  async prepare(input: ChatPlanInput, opts: CallOptions = {}): Promise<PreparedChat> {
    const t0 = performance.now();
    const reader = input.reader ?? this.deps.store;
    const modelId = input.model ?? this.deps.defaultModel;
    // Both in parallel, but a bad model is reported before a bad selection, whichever fails first.
    const [modelResult, selectionResult] = await Promise.allSettled([
      this.deps.models.resolve(modelId, input.model === undefined),
      this.select(input.selector, reader),
    ]);
    if (modelResult.status === "rejected") throw modelResult.reason;
    if (selectionResult.status === "rejected") throw selectionResult.reason;
    const model = modelResult.value;
    const selection = selectionResult.value;
    const t1 = performance.now();

    const maxTokens = input.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, Math.floor(model.contextLength / 4));
    const conversationTokens = estimateMessagesTokens(input.messages);
    const windowBudget = documentBudget({
      contextLength: model.contextLength,
      maxTokens,
      conversationTokens,
    });
    if (windowBudget <= 0) throw tooLong(model, maxTokens, conversationTokens, "estimated");
    // The caller's (or the deployment's) context budget, when it is tighter than the window.
    const maxContextTokens =
      input.maxContextTokens ?? this.deps.maxContextTokens ?? DEFAULT_MAX_CONTEXT_TOKENS;
    const cap = maxContextTokens < windowBudget ? maxContextTokens : undefined;
    const budget = cap ?? windowBudget;

    const storedEstimate = selection.documents.reduce(
      (n, r) => n + (r.tokenEstimate ?? Number.POSITIVE_INFINITY),
      0,
    );
    // Documents left without text while they were read go to `skipped` with why, never silently away.
    const unreadable: SkippedDocument[] = [];
    // Over the budget and every document indexed at its current text: rank with the index and read
    // only the chunks that can be sent. Otherwise read the scope's text (a document ready but not
    // indexed yet is answered this way when named or in a small scope).
    const useIndex = storedEstimate > budget && (await this.indexedAtCurrentText(selection));
    let plan: ContextPlan;
    let t2: number;
    const searched = { ms: 0 };
    if (useIndex) {
      // Reading is the index search plus the chosen chunks; packing them is part of it.
      plan = await this.planFromIndex(input, selection, budget, unreadable, searched);
      t2 = performance.now();
    } else {
      // When the stored estimates already say the text will not all fit, rank while reading: each
      // document is indexed as soon as its chunks arrive, overlapping the reads still in flight.
      const ranker = new ChunkRanker(input.query);
      const rankWhileReading = storedEstimate > budget;
      // Each text is read whole or not at all (the store re-reads a document replaced or deleted
      // mid-read, and says which version it read).
      const documents: ContextDocument[] = await mapLimit(
        selection.documents,
        this.deps.readConcurrency ?? 16,
        async (record, i) => {
          const read = await reader.readText(record);
          if (!read.ok) {
            unreadable.push({
              documentId: record.documentId,
              key: record.key,
              status: read.status,
              reason: read.reason,
            });
            return { record, chunks: [] };
          }
          if (rankWhileReading) ranker.add(i, read.chunks);
          return { record: read.record, chunks: read.chunks, version: read.version };
        },
      );
      t2 = performance.now();
      plan = ContextPlan.plan(documents, input.query, budget, ranker);
    }
    const skipped = [...selection.skipped];
    let skippedNotListed = selection.skippedNotListed;
    for (const s of unreadable) {
      if (skipped.length < MAX_SKIPPED_LISTED) skipped.push(s);
      else skippedNotListed++;
    }
    const t3 = performance.now();

    const build = (): ChatMessage[] =>
      layoutPrompt({
        messages: input.messages,
        documentsAt: input.documentsAt,
        documents: plan.messages(),
        mode: plan.mode,
      });
    let messages = build();
    let promptTokens = 0;
    let checks = 0;
    let toppedUp = false;
    for (;;) {
      checks++;
      promptTokens = await this.deps.provider.estimateTokenCount({ model: model.id, messages }, opts);
      const local = plan.estimatedTokens + conversationTokens;
      const windowOver = promptTokens + maxTokens - model.contextLength;
      // The context budget counts document text only: the provider's count, scaled to the documents'
      // share of the local estimate.
      const capOver =
        cap === undefined
          ? Number.NEGATIVE_INFINITY
          : Math.ceil((plan.estimatedTokens * promptTokens) / Math.max(1, local)) - cap;
      const over = Math.max(windowOver, capOver);
      if (over <= 0) {
        // The local estimate errs high, so ranking may have left out chunks that fit. When the
        // provider's count leaves a real share of the budget unused, add the next-best chunks once
        // (scaled by how far the estimate ran over) and count again; an overshoot then shrinks.
        const room = Math.min(-windowOver - defaultSafetyMargin(model.contextLength), -capOver);
        if (toppedUp || checks >= MAX_CHECKS - 1 || room < budget * TOP_UP_MIN_SHARE) break;
        toppedUp = true;
        const ratio = Math.max(0.5, promptTokens / Math.max(1, local));
        if (plan.grow(Math.floor((room / ratio) * TOP_UP_FILL)) === 0) break;
        messages = build();
        continue;
      }
      if (plan.chunkCount === 0) throw tooLong(model, maxTokens, promptTokens, "counted by the provider");
      if (checks >= MAX_CHECKS) {
        // Should not happen (each round drops more than the overshoot); refuse rather than send a
        // request the provider would reject as too long.
        throw new ApiError(
          502,
          "provider_error",
          `Could not fit the documents into ${model.id}'s context window after ${checks} token counts; narrow the selection or lower maxTokens.`,
        );
      }
      // Convert the provider's overshoot into local-estimate units, then drop a little extra (more each
      // round) so one or two rounds suffice.
      const ratio = Math.max(1, promptTokens / Math.max(1, local));
      const slack = windowOver >= capOver ? defaultSafetyMargin(model.contextLength) / 4 : budget * 0.01;
      plan.shrink(Math.ceil((over / ratio) * (1 + 0.25 * checks) + slack));
      messages = build();
    }
    const t4 = performance.now();
    const metrics = this.deps.metrics ?? noMetrics;
    metrics.count(CHAT_METRICS.promptTokens, promptTokens);
    metrics.count(CHAT_METRICS.documentsSent, plan.summary().documentsSent);
    metrics.count(CHAT_METRICS.contextRanked, plan.mode === "ranked" ? 1 : 0);
    metrics.count(CHAT_METRICS.contextToppedUp, toppedUp ? 1 : 0);
    metrics.count(CHAT_METRICS.tokenChecks, checks);
    metrics.timing(CHAT_METRICS.prepareTime, t4 - t0);

    const request: ChatRequest = { ...input.options, model: model.id, messages, max_tokens: maxTokens };
    return {
      request,
      model,
      sources: plan.sources(),
      skipped,
      skippedNotListed,
      context: {
        ...plan.summary(),
        documents: selection.documents.length,
        promptTokens,
        checks,
        toppedUp,
        maxContextTokens,
        retrieval: useIndex ? "index" : "read",
      },
      timings: {
        selectMs: t1 - t0,
        readMs: t2 - t1,
        ...(useIndex ? { searchMs: searched.ms } : {}),
        planMs: t3 - t2,
        checkMs: t4 - t3,
      },
    };
  }

  /** The documents in scope: listed from the store while few, else the index's table (see maxDocuments). */
  private async select(
    selector: DocumentSelector,
    store: DocumentReader,
  ): Promise<Selection & { fromIndex?: boolean }> {
    const { search } = this.deps;
    if (!search || selector.documentIds) {
      return selectDocuments(store, selector, { maxDocuments: this.deps.maxDocuments });
    }
    const limit = this.deps.maxDocuments ?? LISTED_SCOPE;
    const indexed = await search.documents({ prefix: selector.prefix });
    if (indexed.length <= limit) {
      try {
        return await selectDocuments(store, selector, { maxDocuments: limit });
      } catch (err) {
        // More records than the listing limit (many not indexed yet, or failed): use the index, unless
        // it holds nothing yet (a new deployment still indexing): then the 400 stands.
        const tooMany =
          err instanceof ApiError && err.status === 400 && /documents are in scope/.test(err.message);
        if (!tooMany || indexed.length === 0) throw err;
      }
    }
    // The index's documents, and the ones it knows but cannot search (failed) named in `skipped`.
    const unsearchable = (await search.unsearchable?.({ prefix: selector.prefix })) ?? [];
    const skipped: SkippedDocument[] = unsearchable.slice(0, MAX_SKIPPED_LISTED).map((d) => ({
      documentId: d.documentId,
      key: d.key,
      status: d.status,
      reason: skipReasonOf(d.status, d.error),
    }));
    return {
      documents: indexed.map(recordOf),
      skipped,
      skippedNotListed: unsearchable.length - skipped.length,
      fromIndex: true,
    };
  }

  private async indexedAtCurrentText(selection: Selection & { fromIndex?: boolean }): Promise<boolean> {
    const { search, store } = this.deps;
    if (!search || !store.getChunksAt || selection.documents.length === 0) return false;
    if (selection.fromIndex) return true;
    const indexed = new Map(
      (await search.documents({ documentIds: selection.documents.map((d) => d.documentId) })).map((d) => [
        d.documentId,
        d.generation,
      ]),
    );
    return selection.documents.every(
      (d) => d.textGeneration && indexed.get(d.documentId) === d.textGeneration,
    );
  }

  /** Ranked context from the index: the top chunks for the budget (plus a margin), read by key. */
  private async planFromIndex(
    input: ChatPlanInput,
    selection: Selection & { fromIndex?: boolean },
    budget: number,
    unreadable: SkippedDocument[],
    searched: { ms: number },
  ): Promise<ContextPlan> {
    const search = this.deps.search as SearchIndex;
    const docs = selection.documents;
    const chunksInScope = docs.reduce((n, d) => n + (d.chunkCount ?? 0), 0);
    const tokensInScope = docs.reduce((n, d) => n + (d.tokenEstimate ?? 0), 0);
    const perChunk = Math.max(1, tokensInScope / Math.max(1, chunksInScope));
    const want = Math.min(MAX_INDEX_HITS, Math.ceil((budget / perChunk) * 1.3) + 8);
    const scope = selection.fromIndex
      ? { prefix: input.selector.prefix }
      : { documentIds: docs.map((d) => d.documentId) };
    const started = performance.now();
    let hits: SearchHit[] = await search.search({ query: input.query, ...scope, limit: want });
    searched.ms = performance.now() - started;
    if (hits.length === 0) {
      // No searchable words: the beginning of each document, like the in-memory ranking.
      hits = docs.slice(0, want).map((d) => ({
        documentId: d.documentId,
        key: d.key,
        generation: d.textGeneration as string,
        chunkIndex: 0,
        score: 0,
      }));
    }
    const keys = hits.map((h) => ({ ...h, index: h.chunkIndex }));
    // Through readChunksAt when the store has it: each document's version is checked after the read,
    // and one that lost its text is reported rather than dropped.
    const { store } = this.deps;
    const checked = store.readChunksAt ? await store.readChunksAt(keys) : undefined;
    const read = checked?.chunks ?? (await store.getChunksAt!(keys));
    for (const [documentId, state] of checked?.documents ?? []) {
      if (state.ok) continue;
      const key = docs.find((d) => d.documentId === documentId)?.key ?? state.record?.key ?? documentId;
      unreadable.push({ documentId, key, status: state.status, reason: state.reason });
    }
    const byDoc = new Map<string, TextChunk[]>();
    hits.forEach((h, i) => {
      const c = read[i];
      if (!c) return; // replaced since it was indexed
      const list = byDoc.get(h.documentId);
      if (list) list.push(c);
      else byDoc.set(h.documentId, [c]);
    });
    const documents: ContextDocument[] = [];
    const position = new Map<string, number>();
    for (const record of docs) {
      const chunks = byDoc.get(record.documentId);
      if (!chunks) continue;
      chunks.sort((a, b) => a.index - b.index);
      position.set(record.documentId, documents.length);
      const state = checked?.documents.get(record.documentId);
      const version = state?.ok ? state.version : undefined;
      documents.push({ record, chunks, chunkCount: record.chunkCount, ...(version ? { version } : {}) });
    }
    const order: ChunkRef[] = [];
    hits.forEach((h, i) => {
      const doc = position.get(h.documentId);
      if (doc === undefined || !read[i]) return;
      const pos = documents[doc]!.chunks.findIndex((c) => c.index === h.chunkIndex);
      order.push({ doc, pos, tokens: read[i]!.tokens });
    });
    return ContextPlan.planRanked(documents, order, budget, input.query);
  }
}

/** Listed record by record up to this many documents in scope; larger scopes come from the index. */
const LISTED_SCOPE = 1000;
/** Most chunks asked of the index for one context. */
const MAX_INDEX_HITS = 1000;

function tooLong(model: ResolvedModel, maxTokens: number, tokens: number, how: string): ApiError {
  return badRequest(
    `The conversation (${tokens} tokens, ${how}) plus maxTokens (${maxTokens}) leave no room in ${model.id}'s context window of ${model.contextLength} tokens; shorten the messages or lower maxTokens.`,
    "messages",
  );
}

/** A record as the index knows it: enough to read its chunks and size the context. */
function recordOf(d: IndexedDocument): DocumentRecord {
  return {
    documentId: d.documentId,
    key: d.key,
    bucket: "",
    status: "ready",
    size: 0,
    sequencer: "",
    textGeneration: d.generation,
    chunkCount: d.chunkCount,
    tokenEstimate: d.tokenEstimate,
    createdAt: "",
    updatedAt: "",
  };
}
