/**
 * Prepares a grounded chat request: resolves the model and its window, selects and reads documents,
 * plans the context within budget, and confirms the size with the provider's own token count before
 * anything is sent, shrinking until it fits. The caller then sends `request` with `chat` or
 * `chatStream`; both routes (`/chat` and `/v1/chat/completions`) share this.
 */
import type { DocumentReader } from "../documents/model";
import type { CallOptions, ChatMessage, ChatRequest, ProviderApi } from "../provider/types";
import { type MetricsPort, noMetrics } from "../runtime/telemetry";
import {
  ChunkRanker,
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
import { type DocumentSelector, mapLimit, type SkippedDocument, selectDocuments } from "./selection";

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
  /** Most documents one request may cover. Default 1,000. */
  maxDocuments?: number;
  /** Where context figures go (Powertools in Lambda). Default: nowhere. */
  metrics?: MetricsPort;
}

export interface ChatPlanInput {
  /** Requested model; the configured default when absent. */
  model?: string;
  selector: DocumentSelector;
  /** The conversation without documents: system prompts, previous turns, the question last. */
  messages: ChatMessage[];
  /** Index in `messages` where the document messages are inserted (after the leading system prompts). */
  documentsAt: number;
  /** Text chunks are ranked against (normally the latest user message). */
  query: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
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
  };
  timings: { selectMs: number; readMs: number; planMs: number; checkMs: number };
}

/** Assembles grounded chat requests; see the module comment. */
export class ChatService {
  constructor(private readonly deps: ChatServiceDeps) {}

  async prepare(input: ChatPlanInput, opts: CallOptions = {}): Promise<PreparedChat> {
    const t0 = performance.now();
    const modelId = input.model ?? this.deps.defaultModel;
    // Both in parallel, but a bad model is reported before a bad selection, whichever fails first.
    const [modelResult, selectionResult] = await Promise.allSettled([
      this.deps.models.resolve(modelId, input.model === undefined),
      selectDocuments(this.deps.store, input.selector, { maxDocuments: this.deps.maxDocuments }),
    ]);
    if (modelResult.status === "rejected") throw modelResult.reason;
    if (selectionResult.status === "rejected") throw selectionResult.reason;
    const model = modelResult.value;
    const selection = selectionResult.value;
    const t1 = performance.now();

    const maxTokens = input.maxTokens ?? Math.min(DEFAULT_MAX_TOKENS, Math.floor(model.contextLength / 4));
    const conversationTokens = estimateMessagesTokens(input.messages);
    const budget = documentBudget({ contextLength: model.contextLength, maxTokens, conversationTokens });
    if (budget <= 0) throw tooLong(model, maxTokens, conversationTokens, "estimated");

    // When the stored estimates already say the text will not all fit, rank while reading: each
    // document is indexed as soon as its chunks arrive, overlapping the reads still in flight.
    const ranker = new ChunkRanker(input.query);
    const storedEstimate = selection.documents.reduce(
      (n, r) => n + (r.tokenEstimate ?? Number.POSITIVE_INFINITY),
      0,
    );
    const rankWhileReading = storedEstimate > budget;
    const documents: ContextDocument[] = await mapLimit(
      selection.documents,
      this.deps.readConcurrency ?? 16,
      async (record, i) => {
        const chunks = await this.deps.store.getChunks(record);
        if (rankWhileReading) ranker.add(i, chunks);
        return { record, chunks };
      },
    );
    const t2 = performance.now();

    const plan = ContextPlan.plan(documents, input.query, budget, ranker);
    const t3 = performance.now();

    const build = (): ChatMessage[] => [
      ...input.messages.slice(0, input.documentsAt),
      ...plan.messages(),
      ...input.messages.slice(input.documentsAt),
    ];
    let messages = build();
    let promptTokens = 0;
    let checks = 0;
    let toppedUp = false;
    for (;;) {
      checks++;
      promptTokens = await this.deps.provider.estimateTokenCount({ model: model.id, messages }, opts);
      const over = promptTokens + maxTokens - model.contextLength;
      if (over <= 0) {
        // The local estimate errs high, so ranking may have left out chunks that fit. When the
        // provider's count leaves a real share of the budget unused, add the next-best chunks once
        // (scaled by how far the estimate ran over) and count again; an overshoot then shrinks.
        const room = -over - defaultSafetyMargin(model.contextLength);
        if (toppedUp || checks >= MAX_CHECKS - 1 || room < budget * TOP_UP_MIN_SHARE) break;
        toppedUp = true;
        const local = plan.estimatedTokens + conversationTokens;
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
      const local = plan.estimatedTokens + conversationTokens;
      const ratio = Math.max(1, promptTokens / Math.max(1, local));
      const toDrop = Math.ceil(
        (over / ratio) * (1 + 0.25 * checks) + defaultSafetyMargin(model.contextLength) / 4,
      );
      plan.shrink(toDrop);
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

    const request: ChatRequest = { model: model.id, messages, max_tokens: maxTokens };
    if (input.temperature !== undefined) request.temperature = input.temperature;
    if (input.topP !== undefined) request.top_p = input.topP;
    return {
      request,
      model,
      sources: plan.sources(),
      skipped: selection.skipped,
      skippedNotListed: selection.skippedNotListed,
      context: { ...plan.summary(), promptTokens, checks, toppedUp },
      timings: { selectMs: t1 - t0, readMs: t2 - t1, planMs: t3 - t2, checkMs: t4 - t3 },
    };
  }
}

function tooLong(model: ResolvedModel, maxTokens: number, tokens: number, how: string): ApiError {
  return badRequest(
    `The conversation (${tokens} tokens, ${how}) plus maxTokens (${maxTokens}) leave no room in ${model.id}'s context window of ${model.contextLength} tokens; shorten the messages or lower maxTokens.`,
    "messages",
  );
}
