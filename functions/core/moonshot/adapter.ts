/**
 * `MoonshotClient`: the Moonshot (Kimi) adapter of the provider port. Everything OpenAI-compatible
 * (upload, content, retrieve, delete, chat) is the shared ProviderClient; Moonshot adds:
 * - `GET /files` answers every file at once (`{"object":"list","data":[...]}`, no `has_more`), so the
 *   list is one call (the SDK's cursor page expects `has_more`, hence fetch);
 * - `POST /tokenizers/estimate-token-count` counts a chat request exactly (not an OpenAI endpoint);
 * - `GET /models` lists the models with their `context_length` (through the SDK);
 * - errors are `{"error": {"type", "message"}}` (error-mapping.ts).
 */

import { auth, type Json, ProviderClient, type ProviderClientOptions, unexpected } from "../provider/client";
import type { HttpErrorInput } from "../provider/error-mapping";
import type { ProviderError } from "../provider/errors";
import { PROVIDER_PROFILES } from "../provider/profiles";
import type { CallOptions, ChatRequest, ModelInfo, RemoteFile } from "../provider/types";
import { MOONSHOT_TYPE_STATUS, mapMoonshotError } from "./error-mapping";

export type MoonshotClientOptions = ProviderClientOptions;

/** The Moonshot (Kimi) API over HTTP, with typed errors and bounded retries. */
export class MoonshotClient extends ProviderClient {
  readonly provider = "moonshot" as const;

  constructor(opts: MoonshotClientOptions) {
    const profile = PROVIDER_PROFILES.moonshot;
    super(opts, { baseURL: profile.defaultBaseUrl, maxFileBytes: profile.limits.maxFileBytes });
  }

  async listFiles(opts?: CallOptions): Promise<RemoteFile[]> {
    const op = "files.list";
    return this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const res = await this.send(op, ctx, key, "GET", "/files");
      const body = await this.readJson(op, res);
      if (!Array.isArray(body.data)) throw unexpected(op, "a file list without a data array");
      return body.data as RemoteFile[];
    });
  }

  async estimateTokenCount(
    req: Pick<ChatRequest, "model" | "messages">,
    opts?: CallOptions,
  ): Promise<number> {
    const op = "tokenizers.estimate";
    return this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const res = await this.send(op, ctx, key, "POST", "/tokenizers/estimate-token-count", {
        body: JSON.stringify({ model: req.model, messages: req.messages }),
        headers: { "content-type": "application/json" },
      });
      const body = await this.readJson(op, res);
      const total = (body.data as Json | undefined)?.total_tokens;
      if (typeof total !== "number") throw unexpected(op, "no data.total_tokens");
      return total;
    });
  }

  async listModels(opts?: CallOptions): Promise<ModelInfo[]> {
    const op = "models.list";
    return this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const { data, response } = await (await this.sdk()).models
        .list({ signal: ctx.signal, headers: auth(key) })
        .withResponse();
      ctx.status = response.status;
      return data.data as unknown as ModelInfo[];
    });
  }

  protected mapError(input: HttpErrorInput): ProviderError {
    return mapMoonshotError(input);
  }

  protected statusOfError(body: { type?: string }): number | undefined {
    return body.type ? MOONSHOT_TYPE_STATUS[body.type] : undefined;
  }
}
