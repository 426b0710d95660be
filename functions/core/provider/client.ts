/**
 * `ProviderClient`: the HTTP machinery behind the `ProviderApi` port, shared by the adapters of the
 * OpenAI-compatible providers (moonshot/adapter.ts, glm/adapter.ts). An adapter adds what differs:
 * its error vocabulary, how files are listed, how tokens are counted and where the models come from.
 *
 * Where the `openai` SDK is used, and where it is not (and why):
 * - Chat completions (plain and streaming) and the model list go through `openai`: they are
 *   OpenAI-compatible endpoints, the SDK's types fit, and its SSE decoder (frames split across
 *   chunks, multi-line `data:`, `[DONE]`) is maintained upstream. Moonshot's extras (`reasoning_content`,
 *   usage inside `choices[0]`, GLM's `request_id`) survive because the SDK passes the JSON through untouched.
 *   The SDK runs with `maxRetries: 0`: its own loop would retry `exceeded_current_quota_error` (any
 *   429) for nothing and ignores our deadline, so the one retry loop is ours (retry.ts). We also keep
 *   our own per-attempt timeout and, for streams, an idle timeout between chunks (the SDK's timeout
 *   stops at the response headers) and a check that the stream really finished (the SDK ends silently
 *   on a truncated stream or an abort).
 * - Files and token estimation use `fetch` directly. Uploads: the SDK never retries a request with a
 *   stream body, its `FilePurpose` type lacks `file-extract`, and we need the size checks and a body
 *   that re-opens the source per attempt; a hand-built streaming multipart body (multipart.ts) does
 *   all of that without buffering. Content: the SDK returns the raw Response anyway and we must
 *   accept plain text or the `{"content": ...}` envelope. List: the SDK's cursor page expects
 *   `has_more`, which Moonshot does not send. Delete: 404 means "already gone" (false), not an error.
 *   Token estimation is not an OpenAI endpoint at all. Measured on Node 20: `files.create` with an
 *   fs.ReadStream keeps the whole file alive (94.5 MB of live Buffers for a 95 MB file), because
 *   Node's fetch clones a request whose redirect mode is "follow", teeing the body; send() sets
 *   `redirect: "error"` for streamed bodies and holds < 1 MB.
 * Both paths feed the same error mapping (error-mapping.ts) and the same retry loop.
 * `openai` is imported on the first chat/models call, not at module load: ingestion and the janitor
 * never chat, and evaluating the SDK cost every function's cold start.
 */
import type { Readable } from "node:stream";
import type OpenAI from "openai";
import type {
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from "openai/resources/chat/completions";
import { ContentDecoder, ContentStreamError, extractContent } from "./content-stream";
import { type HttpErrorInput, mapTransportError, parseErrorBody, readErrorObject } from "./error-mapping";
import {
  EmptyFileError,
  FileTooLargeError,
  NetworkError,
  NotConfiguredError,
  NotFoundError,
  ProviderError,
  type ProviderErrorCode,
  ServerError,
  TimeoutError,
  UploadSourceError,
  unexpected,
} from "./errors";

export { extractContent } from "./content-stream";
export { unexpected } from "./errors";

import { normaliseUsage, toChatResult } from "./chat-result";
import { buildMultipart } from "./multipart";
import type { ProviderName } from "./profiles";
import {
  type AttemptContext,
  AttemptTimeout,
  DEFAULT_RETRY_POLICY,
  type RetryPolicy,
  withRetry,
} from "./retry";
import type {
  CallOptions,
  ChatDelta,
  ChatRequest,
  ChatResult,
  ChatUsage,
  FilePurpose,
  ModelInfo,
  ProviderApi,
  RemoteFile,
  UploadSource,
} from "./types";

export type { RetryPolicy } from "./retry";

/** One attempt of one operation, as reported to `onRequest`. */
export interface RequestEvent {
  /** e.g. `files.upload`, `chat`, `chat.stream`. */
  operation: string;
  /** HTTP status, when a response arrived. */
  status?: number;
  attempt: number;
  durationMs: number;
  /** The error's message when the attempt failed. */
  error?: string;
  /** The error's class code when the attempt failed (a good metric dimension). */
  code?: ProviderErrorCode;
}

export interface ProviderClientOptions {
  /** API root (Moonshot: `.../v1`, GLM: `.../api/paas/v4`). @default the adapter's public endpoint */
  baseURL?: string;
  /** Key provider, asked once per call (Secrets Manager in AWS, cached there). Undefined -> NotConfiguredError. */
  apiKey: () => Promise<string | undefined>;
  /** Overrides of DEFAULT_RETRY_POLICY. */
  retry?: Partial<RetryPolicy>;
  /** Per-attempt timeout for everything but uploads; for streams, also the longest silence between chunks. @default 120000 */
  requestTimeoutMs?: number;
  /** Per-attempt timeout of an upload (it includes server-side extraction). @default 300000 */
  uploadTimeoutMs?: number;
  /** Largest upload accepted before sending. @default the provider's per-file limit */
  maxFileBytes?: number;
  /** Injectable fetch (tests, instrumentation). @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Called after every attempt, successful or not; must not throw (exceptions are ignored). */
  onRequest?: (e: RequestEvent) => void;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
const DEFAULT_UPLOAD_TIMEOUT_MS = 300_000;

export type Json = Record<string, unknown>;

type OpenAIModule = typeof import("openai");
/** The `openai` module once some client has loaded it (its error classes are only thrown after that). */
let openaiModule: OpenAIModule | undefined;
const loadOpenAI = async (): Promise<OpenAIModule> => {
  openaiModule ??= await import("openai");
  return openaiModule;
};

/** What an adapter fixes for its provider. */
export interface ProviderDefaults {
  baseURL: string;
  maxFileBytes: number;
}

/** An OpenAI-compatible provider API over HTTP, with typed errors and bounded retries. */
export abstract class ProviderClient implements ProviderApi {
  /** Which provider this client talks to (errors carry it). */
  abstract readonly provider: ProviderName;
  readonly baseURL: string;
  protected readonly policy: RetryPolicy;
  protected readonly requestTimeoutMs: number;
  protected readonly uploadTimeoutMs: number;
  protected readonly maxFileBytes: number;
  protected readonly fetchImpl: typeof fetch;
  private sdkClient?: OpenAI;

  constructor(
    private readonly opts: ProviderClientOptions,
    defaults: ProviderDefaults,
  ) {
    this.baseURL = (opts.baseURL ?? defaults.baseURL).replace(/\/+$/, "");
    this.policy = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.uploadTimeoutMs = opts.uploadTimeoutMs ?? DEFAULT_UPLOAD_TIMEOUT_MS;
    this.maxFileBytes = opts.maxFileBytes ?? defaults.maxFileBytes;
    const f = opts.fetch ?? globalThis.fetch;
    this.fetchImpl = ((input, init) => f(input, init)) as typeof fetch;
  }

  /** Every file of the account (all pages, when the provider pages its list). */
  abstract listFiles(opts?: CallOptions): Promise<RemoteFile[]>;
  /** Prompt tokens of a chat request, as the budget must count them (see each adapter). */
  abstract estimateTokenCount(
    req: Pick<ChatRequest, "model" | "messages">,
    opts?: CallOptions,
  ): Promise<number>;
  /** The models offered, with their context windows. */
  abstract listModels(opts?: CallOptions): Promise<ModelInfo[]>;
  /** The provider's error vocabulary -> a typed error (moonshot/error-mapping.ts, glm/error-mapping.ts). */
  protected abstract mapError(input: HttpErrorInput): ProviderError;
  /**
   * The HTTP status an error object implies when it arrives without one (inside an SSE stream), from
   * its `type` or `code`; undefined when it does not say.
   */
  protected abstract statusOfError(body: { type?: string; code?: string }): number | undefined;

  /**
   * Fields added to a streamed chat request. OpenAI-style servers only send usage when asked; an
   * adapter whose provider does not document `stream_options` sends none.
   */
  protected streamRequestExtras(): Record<string, unknown> {
    return { stream_options: { include_usage: true } };
  }

  /** The `openai` client for the OpenAI-compatible endpoints, created on first use (see the header). */
  protected async sdk(): Promise<OpenAI> {
    if (!this.sdkClient) {
      const { default: OpenAIClient } = await loadOpenAI();
      this.sdkClient ??= new OpenAIClient({
        baseURL: this.baseURL,
        // The real key is resolved per call and sent as a per-request header (see auth()).
        apiKey: "resolved-per-request",
        maxRetries: 0,
        // Ours fires first (per-attempt signal); this only backs it up.
        timeout: Math.max(this.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS) * 2,
        fetch: this.fetchImpl,
      });
    }
    return this.sdkClient;
  }

  async uploadFile(
    source: UploadSource,
    purpose: FilePurpose = "file-extract",
    opts?: CallOptions,
  ): Promise<RemoteFile> {
    const op = "files.upload";
    if (source.size !== undefined) {
      if (source.size === 0) {
        throw new EmptyFileError(
          "file_empty",
          `${op}: "${source.filename}" is empty (0 bytes); nothing to extract`,
        );
      }
      if (source.size > this.maxFileBytes) {
        throw new FileTooLargeError(
          "file_too_large",
          `${op}: "${source.filename}" is ${source.size} bytes; the provider accepts at most ${this.maxFileBytes}`,
        );
      }
    }
    // Set when an attempt ended without an answer: the provider may have stored that upload anyway.
    let unanswered = false;
    return this.call(op, opts, this.uploadTimeoutMs, async (ctx, key) => {
      if (unanswered && source.findEarlier) {
        const earlier = await source.findEarlier();
        if (earlier) return earlier;
      }
      let stream: Readable;
      try {
        stream = await source.open();
      } catch (cause) {
        throw new UploadSourceError(
          `opening "${source.filename}" failed: ${(cause as Error)?.message ?? cause}`,
          {
            cause,
          },
        );
      }
      const body = buildMultipart(
        { purpose },
        {
          field: "file",
          filename: source.filename,
          contentType: source.contentType ?? "application/octet-stream",
          stream,
          size: source.size,
          maxBytes: this.maxFileBytes,
        },
      );
      const headers: Record<string, string> = { "content-type": body.contentType };
      if (body.contentLength !== undefined) headers["content-length"] = String(body.contentLength);
      try {
        const res = await this.send(op, ctx, key, "POST", "/files", { body: body.body, headers });
        return (await this.readJson(op, res)) as unknown as RemoteFile;
      } catch (err) {
        // The body stopped on purpose (source broke, too many bytes): that is the real error, not
        // the "fetch failed" it caused.
        const failure = body.failure();
        // No answer, or a success whose body was lost: the file may exist.
        if (!failure && (ctx.status === undefined || ctx.status < 300)) unanswered = true;
        throw failure ?? err;
      } finally {
        if (!stream.destroyed) stream.destroy();
      }
    });
  }

  async getFileContent(fileId: string, opts?: CallOptions): Promise<string> {
    const op = "files.content";
    return this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const res = await this.send(op, ctx, key, "GET", `/files/${encodeURIComponent(fileId)}/content`);
      const text = await res.text();
      return extractContent(text, res.headers.get("content-type"));
    });
  }

  /**
   * The extracted text as it arrives, decoded piece by piece (content-stream.ts): never held whole.
   * Connecting and the first bytes are retried like any call; after that a stall (no data for the
   * request timeout), the deadline or a broken connection ends the stream with a retryable error,
   * since the caller cannot take back the text it already consumed.
   */
  async *streamFileContent(fileId: string, opts?: CallOptions): AsyncGenerator<string> {
    const op = "files.content";
    const path = `/files/${encodeURIComponent(fileId)}/content`;
    let contentType: string | null = null;
    const pieces = this.guardedStream<Uint8Array>(op, opts, async (attempt, key) => {
      const res = await this.send(op, attempt, key, "GET", path);
      if (!res.body)
        throw new NetworkError("network", `${op}: a response without a body`, { retryable: true });
      contentType = res.headers.get("content-type");
      const reader = res.body.getReader();
      return {
        status: res.status,
        first: await reader.read(),
        next: () => reader.read(),
        close: () => reader.cancel(),
      };
    });
    const bytes = new TextDecoder("utf-8");
    let content: ContentDecoder | undefined;
    try {
      for await (const piece of pieces) {
        content ??= new ContentDecoder(contentType);
        const text = content.push(bytes.decode(piece, { stream: true }));
        if (text) yield text;
      }
      content ??= new ContentDecoder(contentType);
      const rest = content.push(bytes.decode()) + content.end();
      if (rest) yield rest;
    } catch (err) {
      if (err instanceof ContentStreamError) {
        throw this.label(new NetworkError("network", `${op}: ${err.message}`, { retryable: true }));
      }
      throw err;
    }
  }

  async retrieveFile(fileId: string, opts?: CallOptions): Promise<RemoteFile> {
    const op = "files.retrieve";
    return this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const res = await this.send(op, ctx, key, "GET", `/files/${encodeURIComponent(fileId)}`);
      return (await this.readJson(op, res)) as unknown as RemoteFile;
    });
  }

  async deleteFile(fileId: string, opts?: CallOptions): Promise<boolean> {
    const op = "files.delete";
    try {
      return await this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
        const res = await this.send(op, ctx, key, "DELETE", `/files/${encodeURIComponent(fileId)}`);
        const body = await this.readJson(op, res);
        return body.deleted !== false;
      });
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  async chat(req: ChatRequest, opts?: CallOptions): Promise<ChatResult> {
    const op = "chat";
    return this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const body = { ...req, stream: false } as unknown as ChatCompletionCreateParamsNonStreaming;
      const { data, response } = await (await this.sdk()).chat.completions
        .create(body, { signal: ctx.signal, headers: auth(key) })
        .withResponse();
      ctx.status = response.status;
      return toChatResult(op, data);
    });
  }

  async *chatStream(req: ChatRequest, opts?: CallOptions): AsyncGenerator<ChatDelta> {
    const op = "chat.stream";
    const body = {
      ...req,
      stream: true,
      ...this.streamRequestExtras(),
    } as unknown as ChatCompletionCreateParamsStreaming;

    // Retried only up to the first chunk: once a delta reached the caller, a retry would repeat it.
    const chunks = this.guardedStream<ChatCompletionChunk>(op, opts, async (attempt, key) => {
      const { data: stream, response } = await (await this.sdk()).chat.completions
        .create(body, { signal: attempt.signal, headers: auth(key) })
        .withResponse();
      const iterator = stream[Symbol.asyncIterator]();
      const first = await iterator.next();
      // An aborted stream also ends quietly: guardedStream reports the abort's reason instead.
      if (first.done && !attempt.signal.aborted)
        throw new NetworkError("network", `${op}: stream ended before any data`, { retryable: true });
      return {
        status: response.status,
        first,
        next: () => iterator.next(),
        close: () => iterator.return?.() ?? Promise.resolve(),
      };
    });

    let finishReason: string | null = null;
    let usage: ChatUsage | undefined;
    for await (const chunk of chunks) {
      usage = normaliseUsage(chunk.usage) ?? usage;
      // With n > 1 a chunk may carry deltas of several choices; Moonshot also puts usage in a choice.
      for (const raw of chunk.choices ?? []) {
        const choice = raw as ChatCompletionChunk.Choice & { usage?: ChatUsage };
        usage = normaliseUsage(choice.usage) ?? usage;
        const delta = choice.delta as
          | { content?: string | null; reasoning_content?: string | null }
          | undefined;
        const index = typeof choice.index === "number" ? choice.index : 0;
        const out: ChatDelta = index === 0 ? {} : { index };
        if (delta?.content) out.content = delta.content;
        if (delta?.reasoning_content) out.reasoningContent = delta.reasoning_content;
        if (choice.finish_reason) {
          if (index === 0 || finishReason === null) finishReason = choice.finish_reason;
          out.finishReason = choice.finish_reason;
        }
        if (
          out.content !== undefined ||
          out.reasoningContent !== undefined ||
          out.finishReason !== undefined
        ) {
          yield out;
        }
      }
    }
    if (finishReason === null) {
      throw this.label(
        new NetworkError("network", `${op}: stream ended before the model finished (no finish_reason)`, {
          retryable: true,
        }),
      );
    }
    yield { done: true, finishReason, usage };
  }

  /**
   * A streamed response: opening it and reading its first item run under the retry loop like any
   * call; after that nothing is retried (the caller already has what was yielded), and a stall (no
   * item for the request timeout), the call's deadline, the caller's signal or a broken connection
   * ends the stream with a classified error. Stopping early (break/throw) closes the HTTP stream.
   */
  private async *guardedStream<T>(
    op: string,
    opts: CallOptions | undefined,
    open: (
      attempt: AttemptContext,
      key: string,
    ) => Promise<{
      status: number;
      first: IteratorResult<T>;
      next: () => Promise<IteratorResult<T>>;
      close: () => Promise<unknown>;
    }>,
  ): AsyncGenerator<T> {
    const opened = await this.call(op, opts, this.requestTimeoutMs, async (ctx, key) => {
      const controller = new AbortController();
      const onAttemptAbort = () => controller.abort(ctx.signal.reason);
      ctx.signal.addEventListener("abort", onAttemptAbort, { once: true });
      try {
        const stream = await open({ attempt: ctx.attempt, signal: controller.signal }, key);
        ctx.status = stream.status;
        if (controller.signal.aborted) throw controller.signal.reason;
        return { ...stream, controller };
      } catch (err) {
        controller.abort();
        throw err;
      } finally {
        ctx.signal.removeEventListener("abort", onAttemptAbort);
      }
    });

    const { controller } = opened;
    let stop: "idle" | "deadline" | "caller" | undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    const deadlineTimer =
      opts?.deadline === undefined
        ? undefined
        : setTimeout(
            () => {
              stop ??= "deadline";
              controller.abort(new AttemptTimeout("deadline"));
            },
            Math.max(0, opts.deadline - Date.now()),
          );
    const onCaller = () => {
      stop ??= "caller";
      controller.abort(opts?.signal?.reason);
    };
    opts?.signal?.addEventListener("abort", onCaller, { once: true });
    let finished = false;
    try {
      let next = opened.first;
      while (!next.done) {
        yield next.value;
        idleTimer = setTimeout(() => {
          stop ??= "idle";
          controller.abort(new AttemptTimeout("timeout"));
        }, this.requestTimeoutMs);
        try {
          next = await opened.next();
        } finally {
          clearTimeout(idleTimer);
        }
      }
      // Some streams (the SDK's) end quietly when aborted: say why they ended.
      if (stop === "caller") throw opts?.signal?.reason;
      if (stop) throw streamTimeout(op, stop, this.requestTimeoutMs);
      finished = true;
    } catch (err) {
      if (stop === "caller") throw opts?.signal?.reason ?? err;
      if (stop) throw streamTimeout(op, stop, this.requestTimeoutMs);
      throw this.classify(err, { operation: op, timedOut: false, deadlineHit: false });
    } finally {
      clearTimeout(idleTimer);
      clearTimeout(deadlineTimer);
      opts?.signal?.removeEventListener("abort", onCaller);
      if (!finished) {
        controller.abort();
        await opened.close().catch(() => undefined);
      }
    }
  }

  /** Resolves the key, then runs `fn` under the retry loop with this client's policy and hook. */
  protected async call<T>(
    operation: string,
    opts: CallOptions | undefined,
    timeoutMs: number,
    fn: (ctx: AttemptContext, key: string) => Promise<T>,
    policy?: Partial<RetryPolicy>,
  ): Promise<T> {
    const key = (await this.opts.apiKey())?.trim();
    if (!key) throw this.label(new NotConfiguredError("not_configured", "provider API key not configured"));
    try {
      return await withRetry(
        {
          operation,
          policy: policy ? { ...this.policy, ...policy } : this.policy,
          timeoutMs,
          deadline: opts?.deadline,
          signal: opts?.signal,
          classify: (err, c) => this.classify(err, c),
          onAttempt: (r) =>
            this.opts.onRequest?.({
              operation: r.operation,
              status: r.status,
              attempt: r.attempt,
              durationMs: r.durationMs,
              error: r.error?.message,
              code: r.error?.code,
            }),
        },
        (ctx) => fn(ctx, key),
      );
    } catch (err) {
      throw this.label(err);
    }
  }

  /** Marks a provider error with the provider that produced it (for messages naming it). */
  protected label<E>(err: E): E {
    if (err instanceof ProviderError) err.provider ??= this.provider;
    return err;
  }

  /** One fetch; resolves on 2xx, throws the mapped error otherwise (after reading the error body). */
  protected async send(
    operation: string,
    ctx: AttemptContext,
    key: string,
    method: string,
    path: string,
    init: { body?: BodyInit; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    const isStream = init.body instanceof ReadableStream;
    const res = await this.fetchImpl(`${this.baseURL}${path}`, {
      method,
      body: init.body,
      headers: { ...init.headers, ...auth(key), accept: "application/json, text/plain;q=0.9, */*;q=0.5" },
      signal: ctx.signal,
      // A streamed body needs duplex "half" (undici), and redirect "error": with the default "follow",
      // fetch clones the request to be able to replay it, which tees the body stream and keeps every
      // byte of the upload in memory (measured: +95 MB RSS for a 95 MB file; +4 MB with "error").
      // The API never redirects, and a stream could not be replayed to follow one anyway.
      ...(isStream ? { duplex: "half", redirect: "error" } : {}),
    } as RequestInit);
    ctx.status = res.status;
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    const parsed = parseErrorBody(text);
    throw this.mapError({
      operation,
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
      type: parsed?.type,
      code: parsed?.code,
      message: parsed?.message,
      bodyText: parsed ? undefined : text,
    });
  }

  protected async readJson(operation: string, res: Response): Promise<Json> {
    const text = await res.text();
    try {
      const value = JSON.parse(text) as unknown;
      if (value && typeof value === "object" && !Array.isArray(value)) return value as Json;
    } catch {
      // fall through
    }
    throw unexpected(operation, `a non-JSON body: ${text.slice(0, 120)}`);
  }

  /** Any failure of an attempt -> a typed ProviderError, in this provider's vocabulary. */
  protected classify(err: unknown, ctx: { operation: string; timedOut: boolean; deadlineHit: boolean }) {
    return this.label(
      classifyFailure(err, ctx, {
        mapError: (input) => this.mapError(input),
        statusOfError: (body) => this.statusOfError(body),
      }),
    );
  }
}

export function auth(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}

function streamTimeout(op: string, stop: "idle" | "deadline", idleMs: number): TimeoutError {
  return stop === "deadline"
    ? new TimeoutError("timeout", `${op}: call deadline reached while streaming`, { retryable: false })
    : new TimeoutError("timeout", `${op}: no data from the provider for ${idleMs} ms`, { retryable: true });
}

/** Any failure of an attempt -> a typed ProviderError (UploadSourceError and foreign bugs pass through). */
function classifyFailure(
  err: unknown,
  ctx: { operation: string; timedOut: boolean; deadlineHit: boolean },
  provider: {
    mapError: (input: HttpErrorInput) => ProviderError;
    statusOfError: (body: { type?: string; code?: string }) => number | undefined;
  },
): ProviderError {
  const { operation } = ctx;
  if (err instanceof UploadSourceError) throw err;
  if (ctx.timedOut || err instanceof AttemptTimeout) {
    const deadline = ctx.deadlineHit || (err instanceof AttemptTimeout && err.kind === "deadline");
    return new TimeoutError(
      "timeout",
      deadline
        ? `${operation}: call deadline reached before the provider answered`
        : `${operation}: request timed out`,
      { retryable: !deadline, cause: err },
    );
  }
  const sdk = openaiModule;
  if (sdk && err instanceof sdk.APIConnectionTimeoutError) {
    return new TimeoutError("timeout", `${operation}: request timed out`, { retryable: true, cause: err });
  }
  if (sdk && err instanceof sdk.APIUserAbortError) {
    return new NetworkError("network", `${operation}: request aborted`, { retryable: true, cause: err });
  }
  if (sdk && err instanceof sdk.APIConnectionError) return mapTransportError(err.cause ?? err, operation);
  if (sdk && err instanceof sdk.APIError) {
    const body = readErrorObject(err.error);
    const status = err.status ?? (body ? provider.statusOfError(body) : undefined) ?? 500;
    return provider.mapError({
      operation,
      status,
      headers: err.headers,
      type: body?.type,
      code: body?.code,
      message: body?.message,
      bodyText: err.error === undefined ? err.message.replace(/^\d{3}\s*/, "") : undefined,
    });
  }
  if (err instanceof SyntaxError) {
    return new ServerError("server_error", `${operation}: malformed data from provider (${err.message})`, {
      retryable: true,
      cause: err,
    });
  }
  return mapTransportError(err, operation);
}
