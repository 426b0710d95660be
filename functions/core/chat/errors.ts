/**
 * Errors the chat API returns, and the one mapping from anything thrown (validation, store, provider)
 * to an HTTP status plus an OpenAI-style body `{ "error": { "type", "message" } }`.
 *
 * The `type` strings are stable for programs; messages say what to fix. Provider errors never leak a
 * stack or the provider's raw body beyond its one-line message.
 */
import { ProviderError } from "../provider/errors";
import { PROVIDER_PROFILES } from "../provider/profiles";

/** Stable error types in the `error.type` field of every error response. */
export type ApiErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "conflict_error"
  | "request_too_large"
  | "rate_limit_error"
  | "insufficient_quota"
  | "provider_error"
  | "provider_unavailable"
  | "provider_timeout"
  | "provider_not_configured"
  | "configuration_error"
  | "internal_error";

export interface ApiErrorBody {
  error: { type: ApiErrorType; message: string; param?: string; code?: string };
}

/** An error with the HTTP status and body the API answers with. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
    readonly extra: { param?: string; code?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }

  toBody(): ApiErrorBody {
    const error: ApiErrorBody["error"] = { type: this.type, message: this.message };
    if (this.extra.param) error.param = this.extra.param;
    if (this.extra.code) error.code = this.extra.code;
    return { error };
  }

  get headers(): Record<string, string> {
    return this.extra.headers ?? {};
  }
}

export const badRequest = (message: string, param?: string): ApiError =>
  new ApiError(400, "invalid_request_error", message, { param });

export const notFound = (message: string, param?: string): ApiError =>
  new ApiError(404, "not_found_error", message, { param });

/** Seconds for a Retry-After header: the provider's own value rounded up, at least 1. */
function retryAfterSeconds(ms: number | undefined): string | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined;
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/**
 * Maps a provider error to the status a client of this API should see. The provider's 4xx that are
 * the caller's fault (content filter) stay 4xx; everything that is the provider's or our setup's
 * problem becomes 502/503/504, never 500.
 */
export function fromProviderError(err: ProviderError): ApiError {
  const retryAfter = retryAfterSeconds(err.retryAfterMs);
  // The provider that answered (its client marks the error); Moonshot when nothing says otherwise.
  const profile = PROVIDER_PROFILES[err.provider ?? "moonshot"];
  const providerType = err.options.type
    ? ` (${err.provider === "glm" ? `code ${err.options.type}` : err.options.type})`
    : "";
  switch (err.code) {
    case "rate_limited":
      return new ApiError(
        429,
        "rate_limit_error",
        `The model provider is rate limiting requests; retry ${retryAfter ? `after ${retryAfter} s` : "shortly"}.`,
        { headers: retryAfter ? { "Retry-After": retryAfter } : {}, code: "provider_rate_limited" },
      );
    case "quota_exhausted":
      return new ApiError(
        429,
        "insufficient_quota",
        `The model provider account is out of credit${providerType}: top up the ${profile.label} account; retrying will not help until then.`,
        { code: "provider_quota_exhausted" },
      );
    case "not_configured":
      return new ApiError(
        503,
        "provider_not_configured",
        `provider API key not configured: store the ${profile.label} API key in the configured secret (or ${profile.env.apiKey} locally).`,
      );
    case "auth":
    case "permission_denied":
      return new ApiError(
        502,
        "provider_error",
        `The model provider rejected this service's API key; an operator must check the stored ${profile.label} key.`,
        { code: `provider_${err.code}` },
      );
    case "content_filter":
      return new ApiError(
        400,
        "invalid_request_error",
        `The model provider's content filter rejected the request: ${err.message}`,
        { code: "content_filter" },
      );
    case "context_length":
      // Context assembly is built so this cannot happen; if the provider still says so, it is our bug
      // or a tokenizer disagreement, not the caller's.
      return new ApiError(
        502,
        "provider_error",
        `The model provider reported the prompt too long (${err.message}); retry with fewer documents or a smaller maxTokens.`,
        { code: "context_length" },
      );
    case "timeout":
      return new ApiError(504, "provider_timeout", "The model provider did not answer in time; retry.", {
        headers: retryAfter ? { "Retry-After": retryAfter } : {},
      });
    case "network":
      return new ApiError(
        503,
        "provider_unavailable",
        "The model provider could not be reached; retry shortly.",
        {
          headers: { "Retry-After": retryAfter ?? "5" },
        },
      );
    case "server_error":
    case "extraction_failed":
      return new ApiError(
        502,
        "provider_error",
        `The model provider failed (${err.status ?? "no status"}): ${err.message}`,
        { headers: retryAfter ? { "Retry-After": retryAfter } : {} },
      );
    case "invalid_request":
    case "not_found":
      return new ApiError(502, "provider_error", `The model provider rejected the request: ${err.message}`);
    default:
      return new ApiError(502, "provider_error", `The model provider failed: ${err.message}`);
  }
}

/** Anything thrown -> ApiError. Unknown errors become a 500 with a generic message (no stack). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ProviderError) return fromProviderError(err);
  // DynamoDB refusing a value (a key over its size limit, a malformed cursor) is about the request;
  // the routes check ids, prefixes and cursors first, so this is the net under them, never a 500.
  if ((err as { name?: unknown })?.name === "ValidationException") {
    return new ApiError(
      400,
      "invalid_request_error",
      "The document store refused a value of this request (too long or malformed); check the document ids, prefix and cursor.",
    );
  }
  return new ApiError(500, "internal_error", "Internal error; the request was logged. Retry, or report it.");
}
