/**
 * `GlmClient`: the Zhipu GLM adapter of the provider port (open.bigmodel.cn or api.z.ai, both under
 * `/api/paas/v4`, Bearer auth). Upload, content, retrieve, delete and chat are the shared
 * OpenAI-compatible ProviderClient; GLM differs in:
 * - `GET /files` pages: `purpose` (required), `limit` 1-100, `after` (the last id of the previous
 *   page) and `has_more` (docs.bigmodel.cn "文件列表"); listFiles follows every page of file-extract files;
 * - uploads answer without `status` (the text is extracted when `/files/{id}/content` is read);
 * - no model list: the models and their context windows come from configuration (the profile's table,
 *   or MODEL_WINDOWS);
 * - token counting: `POST /tokenizer` (`{model, messages}` -> `usage.prompt_tokens`) is documented for
 *   a few models only (docs.bigmodel.cn "文本分词器": glm-4-plus, glm-4-air, glm-4-flash, ...;
 *   docs.z.ai: glm-4.6, glm-4.5). It is asked once per model; when it refuses a model (or is down),
 *   the count is a local estimate built to stay above GLM's real one (conservativeTokenEstimate plus
 *   a 5% margin), so a budget never relies on a number that may be low;
 * - errors are `{"error": {"code": "<number>", "message"}}` (error-mapping.ts);
 * - `stream_options` is not in GLM's chat reference, so streamed requests do not send it (GLM puts
 *   `usage` on the last chunk by itself).
 */
import { type Json, ProviderClient, type ProviderClientOptions, unexpected } from "../provider/client";
import type { HttpErrorInput } from "../provider/error-mapping";
import {
  AuthenticationError,
  NotConfiguredError,
  PermissionDeniedError,
  ProviderError,
} from "../provider/errors";
import { PROVIDER_PROFILES } from "../provider/profiles";
import type { CallOptions, ChatMessage, ChatRequest, ModelInfo, RemoteFile } from "../provider/types";
import { conservativeTokenEstimate } from "../text/tokens";
import { glmStatusOfCode, mapGlmError } from "./error-mapping";

export interface GlmClientOptions extends ProviderClientOptions {
  /** Context windows of the offered models. @default the GLM profile's table */
  models?: Readonly<Record<string, number>>;
  /** Ask `POST /tokenizer` before falling back to the local estimate. @default true */
  tokenizer?: boolean;
}

/** Files per page of `GET /files` (the documented maximum). */
export const GLM_LIST_PAGE_SIZE = 100;
/** Pages read at most by one listing: far above the 100-file quota, a bound on a looping cursor. */
const MAX_LIST_PAGES = 1000;
/** Tokens the chat template spends per message, and on priming the reply (over-estimates). */
const MESSAGE_OVERHEAD = 8;
const REPLY_OVERHEAD = 4;
/** Margin on the local estimate, on top of pricing every piece at or above a tokenizer's rate. */
const LOCAL_MARGIN = 1.05;

/** The local prompt count used when GLM cannot count: stays above GLM's own (see the header). */
export function glmLocalTokenCount(messages: readonly ChatMessage[]): number {
  let tokens = REPLY_OVERHEAD;
  for (const m of messages) {
    tokens += MESSAGE_OVERHEAD + conservativeTokenEstimate(m.content);
    if (m.name) tokens += conservativeTokenEstimate(m.name);
  }
  return Math.ceil(tokens * LOCAL_MARGIN);
}

/** The Zhipu GLM API over HTTP, with typed errors and bounded retries. */
export class GlmClient extends ProviderClient {
  readonly provider = "glm" as const;
  private readonly windows: Readonly<Record<string, number>>;
  private readonly useTokenizer: boolean;
  /** Models the tokenizer refused: counted locally from then on (per process). */
  private readonly tokenizerRefused = new Set<string>();

  constructor(opts: GlmClientOptions) {
    const profile = PROVIDER_PROFILES.glm;
    super(opts, { baseURL: profile.defaultBaseUrl, maxFileBytes: profile.limits.maxFileBytes });
    this.windows = opts.models ?? profile.models ?? {};
    this.useTokenizer = opts.tokenizer ?? true;
  }

  /** Every file-extract file of the account, page after page. */
  async listFiles(opts?: CallOptions): Promise<RemoteFile[]> {
    const op = "files.list";
    const files: RemoteFile[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const query = new URLSearchParams({ purpose: "file-extract", limit: String(GLM_LIST_PAGE_SIZE) });
      if (after !== undefined) query.set("after", after);
      const body = await this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
        const res = await this.send(op, ctx, key, "GET", `/files?${query}`);
        return this.readJson(op, res);
      });
      if (!Array.isArray(body.data)) throw unexpected(op, "a file list without a data array");
      const data = body.data as RemoteFile[];
      let fresh = 0;
      for (const f of data) {
        if (seen.has(f.id)) continue;
        seen.add(f.id);
        files.push(f);
        fresh++;
      }
      if (body.has_more !== true || data.length === 0) return files;
      // A cursor that brings nothing new would loop for ever: the listing is as complete as it gets.
      if (fresh === 0) throw unexpected(op, `page ${page + 1} repeated the previous one (has_more: true)`);
      after = data[data.length - 1]!.id;
    }
    throw unexpected(op, `more than ${MAX_LIST_PAGES} pages of files`);
  }

  /**
   * GLM's own count when its tokenizer takes the model, else the local over-estimate. A tokenizer that
   * refuses the model (4xx) is not asked again for it; one that is unavailable is skipped this time.
   * An authentication or configuration error is thrown: the chat would fail the same way.
   */
  async estimateTokenCount(
    req: Pick<ChatRequest, "model" | "messages">,
    opts?: CallOptions,
  ): Promise<number> {
    if (!this.useTokenizer || this.tokenizerRefused.has(req.model)) return glmLocalTokenCount(req.messages);
    const op = "tokenizer";
    try {
      return await this.call(
        op,
        opts,
        this.requestTimeoutMs,
        async (ctx, key) => {
          const res = await this.send(op, ctx, key, "POST", "/tokenizer", {
            body: JSON.stringify({ model: req.model, messages: req.messages }),
            headers: { "content-type": "application/json" },
          });
          const body = await this.readJson(op, res);
          const tokens = (body.usage as Json | undefined)?.prompt_tokens;
          if (typeof tokens !== "number" || !Number.isFinite(tokens) || tokens < 0)
            throw unexpected(op, "no usage.prompt_tokens");
          return tokens;
        },
        // The local estimate is a safe answer: do not make a person wait for retries.
        { maxAttempts: 1 },
      );
    } catch (err) {
      if (
        err instanceof AuthenticationError ||
        err instanceof PermissionDeniedError ||
        err instanceof NotConfiguredError ||
        !(err instanceof ProviderError)
      ) {
        throw err;
      }
      const status = err.status;
      if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429)
        this.tokenizerRefused.add(req.model);
      return glmLocalTokenCount(req.messages);
    }
  }

  /** The configured models (GLM publishes no model list endpoint). */
  async listModels(_opts?: CallOptions): Promise<ModelInfo[]> {
    return Object.entries(this.windows).map(([id, contextLength]) => ({
      id,
      object: "model",
      owned_by: "zhipu",
      context_length: contextLength,
    }));
  }

  protected mapError(input: HttpErrorInput): ProviderError {
    return mapGlmError(input);
  }

  protected statusOfError(body: { code?: string }): number | undefined {
    return glmStatusOfCode(body.code);
  }

  protected override streamRequestExtras(): Record<string, unknown> {
    return {};
  }
}
