/**
 * Turns what the wire gave us (an HTTP status with the provider's error body, or a transport failure
 * from fetch/undici) into one of the typed errors in errors.ts. Shared by the fetch-based file calls
 * and the openai-based chat calls so both classify failures the same way.
 */
import {
  AuthenticationError,
  ContentFilterError,
  ContextLengthError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  NetworkError,
  NotFoundError,
  PermissionDeniedError,
  ProviderError,
  QuotaExhaustedError,
  RateLimitError,
  ServerError,
  StorageQuotaError,
  TimeoutError,
} from "./errors";

/** What an HTTP error response carried, already read. */
export interface HttpErrorInput {
  operation: string;
  status: number;
  statusText?: string;
  headers?: Headers;
  /** The raw body text, when the provider did not send (parsable) JSON. */
  bodyText?: string;
  /** `error.type` / `error.message` of the provider's JSON error body, when present. */
  type?: string;
  message?: string;
}

/** Longest slice of an unparsable error body quoted in a message (proxies send whole HTML pages). */
const BODY_SNIPPET_CHARS = 200;

/**
 * Milliseconds the server asked us to wait: `retry-after-ms` (OpenAI/Moonshot style) wins over
 * `Retry-After`, which may be delta-seconds or an HTTP date. Undefined when absent or unparsable.
 */
export function parseRetryAfter(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms !== null && ms.trim() !== "") {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const ra = headers.get("retry-after");
  if (ra === null || ra.trim() === "") return undefined;
  const trimmed = ra.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Reads `{"error": {"type", "message"}}` (or a bare `{"message"}`) out of a body, if it is that. */
export function parseErrorBody(text: string): { type?: string; message?: string } | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(trimmed) as unknown;
    if (!parsed || typeof parsed !== "object") return undefined;
    const obj = parsed as Record<string, unknown>;
    const inner = obj.error && typeof obj.error === "object" ? (obj.error as Record<string, unknown>) : obj;
    const type = typeof inner.type === "string" ? inner.type : undefined;
    const message =
      typeof inner.message === "string"
        ? inner.message
        : inner.message !== undefined
          ? JSON.stringify(inner.message)
          : undefined;
    if (type === undefined && message === undefined) return undefined;
    return { type, message };
  } catch {
    return undefined;
  }
}

/** A one-line, tag-free excerpt of a non-JSON body (an HTML error page from a proxy, say). */
function snippet(text: string | undefined): string {
  if (!text) return "";
  const flat = text
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (flat === "") return "";
  return flat.length > BODY_SNIPPET_CHARS ? `${flat.slice(0, BODY_SNIPPET_CHARS)}…` : flat;
}

/** The typed error for an HTTP error response. */
export function mapHttpError(input: HttpErrorInput): ProviderError {
  const { status, type, operation } = input;
  const retryAfterMs = parseRetryAfter(input.headers);
  const providerMessage = input.message?.trim();
  const text = providerMessage ?? "";
  const fallback = () => {
    const excerpt = snippet(input.bodyText);
    const reason = input.statusText ? ` ${input.statusText}` : "";
    return `${operation}: provider answered HTTP ${status}${reason}${excerpt ? ` (${excerpt})` : " with no error body"}`;
  };
  const message = providerMessage ? `${operation}: ${providerMessage}` : fallback();
  const base = { status, type, retryAfterMs };

  if (/failed to extract file/i.test(text)) {
    // The real service sometimes extracts the same bytes on a second try (transient parser load);
    // a corrupt file fails every time, so the retry loop gives this class a single extra attempt.
    return new ExtractionFailedError("extraction_failed", message, { ...base, retryable: status >= 500 });
  }
  if (status === 401) return new AuthenticationError("auth", message, base);
  if (status === 403) return new PermissionDeniedError("permission_denied", message, base);
  if (status === 404) return new NotFoundError("not_found", message, base);
  if (status === 408) return new TimeoutError("timeout", message, { ...base, retryable: true });
  if (status === 413 || /file size is too large/i.test(text)) {
    return new FileTooLargeError("file_too_large", message, base);
  }
  if (status === 429) {
    if (
      type === "exceeded_current_quota_error" ||
      /exceeded (your )?current quota|insufficient balance/i.test(text)
    ) {
      return new QuotaExhaustedError("quota_exhausted", message, { ...base, retryable: false });
    }
    return new RateLimitError("rate_limited", message, { ...base, retryable: true });
  }
  if (status >= 500) {
    // 501 (not implemented) and 505 will not change on a retry.
    const retryable = status !== 501 && status !== 505;
    return new ServerError("server_error", message, { ...base, retryable });
  }
  if (type === "content_filter") return new ContentFilterError("content_filter", message, base);
  if (/file size is zero|empty file/i.test(text)) return new EmptyFileError("file_empty", message, base);
  if (/max file count|number of files you have uploaded/i.test(text)) {
    return new FileCountQuotaError("file_count_quota", message, base);
  }
  if (/max total size|total size of (the )?files/i.test(text)) {
    return new StorageQuotaError("storage_quota", message, base);
  }
  if (/exceeded model token limit|input token length too long|context length/i.test(text)) {
    return new ContextLengthError("context_length", message, base);
  }
  return new InvalidRequestError("invalid_request", message, base);
}

/** Error codes of Node/undici that mean the connection broke and the same request may succeed. */
const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
]);
const TIMEOUT_CODES = new Set([
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

/** Walks `cause` chains (fetch wraps the socket error in `TypeError: fetch failed`). */
function causes(err: unknown): Array<{ code?: string; message: string; name?: string }> {
  const out: Array<{ code?: string; message: string; name?: string }> = [];
  let current: unknown = err;
  for (let depth = 0; current && depth < 6; depth++) {
    if (typeof current !== "object") {
      out.push({ message: String(current) });
      break;
    }
    const e = current as { code?: unknown; message?: unknown; name?: unknown; cause?: unknown };
    out.push({
      code: typeof e.code === "string" ? e.code : undefined,
      message: typeof e.message === "string" ? e.message : "",
      name: typeof e.name === "string" ? e.name : undefined,
    });
    current = e.cause;
  }
  return out;
}

/**
 * The typed error for a failure below HTTP (no response, or the body broke off). Anything that is
 * not recognisably a connection problem still becomes a retryable NetworkError: fetch only rejects
 * for transport reasons once the request was built.
 */
export function mapTransportError(err: unknown, operation: string): ProviderError {
  if (err instanceof ProviderError) return err;
  const chain = causes(err);
  const detail = chain
    .map((c) => [c.code, c.message].filter(Boolean).join(" "))
    .filter(Boolean)
    .join(" <- ");
  if (chain.some((c) => (c.code && TIMEOUT_CODES.has(c.code)) || c.name === "TimeoutError")) {
    return new TimeoutError("timeout", `${operation}: request timed out (${detail})`, {
      retryable: true,
      cause: err,
    });
  }
  if (chain.some((c) => /unexpected redirect|redirect mode/i.test(c.message))) {
    return new ServerError("server_error", `${operation}: provider answered with a redirect (${detail})`, {
      retryable: false,
      cause: err,
    });
  }
  const known = chain.some(
    (c) =>
      (c.code && NETWORK_CODES.has(c.code)) ||
      /socket hang up|other side closed|terminated|fetch failed|network/i.test(c.message),
  );
  const what = known ? "connection failed" : "request failed before a response";
  return new NetworkError("network", `${operation}: ${what} (${detail || "unknown error"})`, {
    retryable: true,
    cause: err,
  });
}
