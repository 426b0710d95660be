/**
 * The console's client for the chat API. Every call carries the bearer token from memory (it is kept
 * in sessionStorage by the sign-in form, never in a URL, a query string or a log line) and turns
 * failures into an `ApiError` whose `kind` says what the user can do about it.
 */
import { readSse } from "./sse";

export type DocumentStatus = "processing" | "ready" | "failed" | "deleted";

/** The fields of the API's document record the console shows. */
export interface DocumentItem {
  documentId: string;
  key: string;
  status: DocumentStatus;
  size: number;
  contentType?: string;
  error?: { code: string; message: string };
  chunkCount?: number;
  createdAt: string;
  updatedAt: string;
}

export interface DocumentPage {
  items: DocumentItem[];
  /** Next page's cursor; null or absent on the last page. */
  cursor?: string | null;
}

/** What the server accepts for upload (GET /uploads); checked again server-side on POST /uploads. */
export interface UploadPolicy {
  maxBytes: number;
  /** Lower-case extensions without the dot. */
  extensions: string[];
  /** Key prefix every upload goes under, if the deployment confines uploads (e.g. "uploads/"). */
  basePrefix?: string;
  /** The signed-in key's scope: it sees and uploads only under this prefix ("" = everything). */
  scopePrefix?: string;
}

/** A presigned PUT returned by POST /uploads. */
export interface UploadTicket {
  key: string;
  url: string;
  method: "PUT";
  headers: Record<string, string>;
  expiresAt: string;
}

export interface ChatTurn {
  role: "user" | "assistant";
  content: string;
}

export interface ChatRequest {
  question: string;
  messages?: ChatTurn[];
  prefix?: string;
  documentIds?: string[];
}

export interface SourceChunk {
  index: number;
  tokens?: number;
  text: string;
}

export interface Source {
  documentId: string;
  key: string;
  /** True when the whole document was sent, false when only the best-ranked chunks were. */
  complete?: boolean;
  chunks: SourceChunk[];
}

/** The `done` event of POST /chat (and its non-streamed body). */
export interface ChatResult {
  answer: string;
  model?: string;
  finishReason?: string | null;
  usage?: { promptTokens?: number; completionTokens?: number; totalTokens?: number };
  sources: Source[];
  /** Documents in scope that were not ready and so not used. */
  skipped: { documentId: string; key?: string; status?: string; reason?: string }[];
}

/** One streamed piece: answer text, or the model's reasoning (thinking models). */
export type ChatDelta = { content: string } | { reasoning: string };

export type ErrorKind =
  | "auth"
  | "not_configured"
  | "rate_limited"
  | "quota"
  | "network"
  | "invalid"
  | "not_found"
  | "exists"
  | "unavailable"
  | "server";

/** A failure the UI can explain: `message` is written for the person using the console. */
export class ApiError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly status = 0,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The API's base URL: the directory the console was served from (works under a stage path). */
export function apiBase(): URL {
  return new URL(".", window.location.href);
}

/** Parses Retry-After (seconds or an HTTP date) into whole seconds. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** The server's own message from `{ error: { message } }`, `{ message }` or `{ error: "..." }`. */
function serverMessage(body: unknown): { message?: string; code?: string } {
  if (!body || typeof body !== "object") return {};
  const b = body as Record<string, unknown>;
  const err = b.error;
  if (typeof err === "string") return { message: err, code: typeof b.code === "string" ? b.code : undefined };
  if (err && typeof err === "object") {
    const e = err as Record<string, unknown>;
    const message = typeof e.message === "string" ? e.message : undefined;
    const code =
      typeof e.code === "string" ? e.code : typeof e.type === "string" ? (e.type as string) : undefined;
    return { message, code };
  }
  return { message: typeof b.message === "string" ? b.message : undefined };
}

/** Turns an HTTP error (status, headers, parsed body) into an ApiError with an actionable message. */
export function errorFromResponse(status: number, headers: Headers, body: unknown): ApiError {
  const { message, code } = serverMessage(body);
  const retryAfter = parseRetryAfter(headers.get("retry-after"));
  // 403: this key's scope (a folder outside it); the token itself is fine, so no sign-out.
  if (status === 403) return new ApiError("invalid", message ?? "This key may not do that.", status);
  if (status === 409) return new ApiError("exists", message ?? "That file already exists.", status);
  if (status === 401) {
    return new ApiError(
      "auth",
      "The API token was not accepted. Sign in again with the token printed by `npm start` " +
        "(or stored in the stack's API token secret).",
      status,
    );
  }
  if (status === 429 && (code === "insufficient_quota" || code === "provider_quota_exhausted")) {
    return new ApiError("quota", message ?? "The model provider account is out of credit.", status);
  }
  if (status === 429) {
    const when =
      retryAfter !== undefined ? ` Try again in ${retryAfter} s.` : " Wait a little, then try again.";
    return new ApiError(
      "rate_limited",
      `${message ?? "Too many requests right now."}${when}`,
      status,
      retryAfter,
    );
  }
  const notConfigured = code === "provider_not_configured" || /not configured|api key/i.test(message ?? "");
  if (status === 503 && notConfigured) {
    return new ApiError(
      "not_configured",
      message ??
        "The model provider's API key is not configured: set MOONSHOT_API_KEY for `npm start`, or store the key in the stack's Moonshot key secret.",
      status,
    );
  }
  if (status === 404) return new ApiError("not_found", message ?? "Not found.", status);
  if (status >= 400 && status < 500) {
    return new ApiError("invalid", message ?? `The request was rejected (HTTP ${status}).`, status);
  }
  if (status === 502 || status === 503 || status === 504) {
    const when = retryAfter !== undefined ? ` Try again in ${retryAfter} s.` : " Try again shortly.";
    return new ApiError(
      "unavailable",
      `${message ?? "The service is temporarily unavailable."}${when}`,
      status,
      retryAfter,
    );
  }
  return new ApiError("server", message ?? `The server failed (HTTP ${status}).`, status);
}

function networkError(cause: unknown): ApiError {
  if (cause instanceof ApiError) return cause;
  if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
  const offline = typeof navigator !== "undefined" && navigator.onLine === false;
  return new ApiError(
    "network",
    offline
      ? "You appear to be offline. Reconnect, then try again."
      : `Cannot reach the API at ${apiBase().origin}. Check your connection and that the server is running.`,
  );
}

async function parseBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 300) };
  }
}

/** The API client bound to one token. */
export class Api {
  constructor(
    private readonly token: string,
    private readonly base: URL = apiBase(),
  ) {}

  private async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.token}`,
      Accept: "application/json",
    };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(new URL(path, this.base), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (cause) {
      throw networkError(cause);
    }
    if (!response.ok) throw errorFromResponse(response.status, response.headers, await parseBody(response));
    return response;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body);
    return (await parseBody(response)) as T;
  }

  /** GET /uploads: the upload policy; also how sign-in checks the token. */
  uploadPolicy(): Promise<UploadPolicy> {
    return this.json<UploadPolicy>("GET", "uploads");
  }

  /** POST /uploads: a presigned PUT for one file. */
  createUpload(input: {
    filename: string;
    size: number;
    contentType: string;
    prefix?: string;
    /** Replace an existing file; without it an existing key is a 409 (kind "exists"). */
    overwrite?: boolean;
  }) {
    return this.json<UploadTicket>("POST", "uploads", input);
  }

  /** GET /documents, one page. */
  listDocuments(query: { prefix?: string; cursor?: string; limit?: number }): Promise<DocumentPage> {
    const params = new URLSearchParams();
    if (query.prefix) params.set("prefix", query.prefix);
    if (query.cursor) params.set("cursor", query.cursor);
    params.set("limit", String(query.limit ?? 100));
    return this.json<DocumentPage>("GET", `documents?${params}`);
  }

  /** DELETE /documents/{id}. */
  async deleteDocument(documentId: string): Promise<void> {
    await this.request("DELETE", `documents/${encodeURIComponent(documentId)}`);
  }

  /**
   * POST /chat with `stream: true`: calls `onDelta` with each piece of the answer as it arrives and
   * resolves with the closing `done` event (answer, sources, usage). Event format (functions/chat/routes/chat.ts):
   * `start` { model, skipped }, `delta` { content } or { reasoning }, then `done` or `error` { error }.
   */
  async chat(
    input: ChatRequest,
    onDelta: (delta: ChatDelta) => void,
    signal?: AbortSignal,
  ): Promise<ChatResult> {
    const response = await this.request("POST", "chat", { ...input, stream: true }, signal);
    if (!response.body) throw new ApiError("server", "The answer stream was empty.");
    try {
      for await (const event of readSse(response.body)) {
        let payload: Record<string, unknown>;
        try {
          payload = JSON.parse(event.data) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (event.event === "delta") {
          if (typeof payload.content === "string") onDelta({ content: payload.content });
          else if (typeof payload.reasoning === "string") onDelta({ reasoning: payload.reasoning });
        } else if (event.event === "done") {
          return payload as unknown as ChatResult;
        } else if (event.event === "error") {
          throw errorFromResponse(statusOfStreamError(payload), new Headers(), payload);
        }
      }
    } catch (cause) {
      throw networkError(cause);
    }
    throw new ApiError(
      "network",
      "The answer stopped before it finished (the connection closed). Retry the question.",
    );
  }
}

/** The HTTP status an error event stands for (the stream itself was already a 200). */
function statusOfStreamError(payload: Record<string, unknown>): number {
  const type = (payload.error as { type?: string } | undefined)?.type;
  switch (type) {
    case "rate_limit_error":
    case "insufficient_quota":
      return 429;
    case "provider_not_configured":
    case "provider_unavailable":
      return 503;
    case "provider_timeout":
      return 504;
    case "invalid_request_error":
      return 400;
    default:
      return 502;
  }
}
