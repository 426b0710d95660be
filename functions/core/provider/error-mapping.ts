/**
 * The provider-neutral half of error mapping: reading an error body, Retry-After, what a bare HTTP
 * status means, and transport failures from fetch/undici. Each adapter maps its own error vocabulary
 * on top (moonshot/error-mapping.ts, glm/error-mapping.ts); the fetch-based file calls and the
 * openai-based chat calls share it, so both classify failures the same way.
 */
import {
  AuthenticationError,
  FileTooLargeError,
  NetworkError,
  NotFoundError,
  PermissionDeniedError,
  ProviderError,
  RateLimitError,
  ServerError,
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
  /** `error.type` / `error.code` / `error.message` of the provider's JSON error body, when present. */
  type?: string;
  code?: string;
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

/** The fields of a provider error object: Moonshot sends `type`, Zhipu GLM a numeric-string `code`. */
export interface ProviderErrorBody {
  type?: string;
  code?: string;
  message?: string;
}

/**
 * Reads `{"error": {"type" | "code", "message"}}` (or the same fields at the top level) out of a body,
 * if it is that.
 */
export function parseErrorBody(text: string): ProviderErrorBody | undefined {
  const trimmed = text.trim();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(trimmed) as unknown;
    if (!parsed || typeof parsed !== "object") return undefined;
    const obj = parsed as Record<string, unknown>;
    const inner = obj.error && typeof obj.error === "object" ? (obj.error as Record<string, unknown>) : obj;
    return readErrorObject(inner);
  } catch {
    return undefined;
  }
}

/** The type, code and message of an error object (the `error` member of a body), when it has any. */
export function readErrorObject(inner: unknown): ProviderErrorBody | undefined {
  if (!inner || typeof inner !== "object") return undefined;
  const o = inner as Record<string, unknown>;
  const type = typeof o.type === "string" ? o.type : undefined;
  const code = typeof o.code === "string" ? o.code : typeof o.code === "number" ? String(o.code) : undefined;
  const message =
    typeof o.message === "string"
      ? o.message
      : o.message !== undefined
        ? JSON.stringify(o.message)
        : undefined;
  if (type === undefined && code === undefined && message === undefined) return undefined;
  return { type, code, message };
}

/** A one-line, tag-free excerpt of a non-JSON body (an HTML error page from a proxy, say). */
export function snippet(text: string | undefined): string {
  if (!text) return "";
  const flat = text
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]+>/g, " ")
    .replace(/\s+/g, " ")
    .trim();
  if (flat === "") return "";
  return flat.length > BODY_SNIPPET_CHARS ? `${flat.slice(0, BODY_SNIPPET_CHARS)}…` : flat;
}

/** `operation: provider message`, or a readable fallback built from the status and the raw body. */
export function httpErrorMessage(input: HttpErrorInput): string {
  const providerMessage = input.message?.trim();
  if (providerMessage) return `${input.operation}: ${providerMessage}`;
  const excerpt = snippet(input.bodyText);
  const reason = input.statusText ? ` ${input.statusText}` : "";
  return `${input.operation}: provider answered HTTP ${input.status}${reason}${excerpt ? ` (${excerpt})` : " with no error body"}`;
}

/** What every typed error of an HTTP answer carries. */
export function errorOptions(input: HttpErrorInput): {
  status: number;
  type?: string;
  retryAfterMs?: number;
} {
  return {
    status: input.status,
    type: input.type ?? input.code,
    retryAfterMs: parseRetryAfter(input.headers),
  };
}

/**
 * The typed error an HTTP status alone implies (what a proxy's page or an empty body still tells), or
 * undefined for a 4xx whose meaning is in the provider's own vocabulary (each adapter reads it).
 */
export function errorForStatus(input: HttpErrorInput): ProviderError | undefined {
  const { status } = input;
  const message = httpErrorMessage(input);
  const base = errorOptions(input);
  if (status === 401) return new AuthenticationError("auth", message, base);
  if (status === 403) return new PermissionDeniedError("permission_denied", message, base);
  if (status === 404) return new NotFoundError("not_found", message, base);
  if (status === 408) return new TimeoutError("timeout", message, { ...base, retryable: true });
  if (status === 413) return new FileTooLargeError("file_too_large", message, base);
  if (status === 429) return new RateLimitError("rate_limited", message, { ...base, retryable: true });
  if (status >= 500) {
    // 501 (not implemented) and 505 will not change on a retry.
    const retryable = status !== 501 && status !== 505;
    return new ServerError("server_error", message, { ...base, retryable });
  }
  return undefined;
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
