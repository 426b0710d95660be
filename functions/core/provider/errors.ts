/**
 * Typed errors for every class of failure a provider API (or the network in between) produces,
 * so callers decide by `instanceof` or `code` instead of parsing messages.
 *
 * `retryable` says whether the same request may succeed later; the client's retry loop and the
 * ingest path both read it.
 */
import type { ProviderName } from "./profiles";

export type ProviderErrorCode =
  | "auth" // 401 invalid_authentication_error / incorrect_api_key_error
  | "permission_denied" // 403
  | "not_found" // 404 resource_not_found_error
  | "invalid_request" // 400 invalid_request_error (other messages)
  | "file_too_large" // 400 "File size is too large, max file size is 100MB..."
  | "file_empty" // 400 "File size is zero..."
  | "file_count_quota" // 400 "The number of files you have uploaded exceeded the max file count ..."
  | "storage_quota" // 400 total size of uploaded files over the account's cap (10 GB)
  | "context_length" // 400 "Input token length too long" / "exceeded model token limit"
  | "content_filter" // 400 content_filter
  | "rate_limited" // 429 rate_limit_reached_error / engine_overloaded_error
  | "quota_exhausted" // 429 exceeded_current_quota_error: out of credit, retrying is useless
  | "extraction_failed" // 500 server_error "Failed to extract file: ..."
  | "server_error" // other 5xx
  | "network" // connection reset / refused / dropped
  | "timeout" // request or overall deadline exceeded
  | "not_configured"; // no API key available

export class ProviderError extends Error {
  override readonly name: string = "ProviderError";
  /** Which provider answered (set by the client), so messages can name it and its settings. */
  provider?: ProviderName;
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
    readonly options: {
      status?: number;
      /** The provider's `error.type` (Moonshot) or `error.code` (GLM), when it sent one. */
      type?: string;
      retryable?: boolean;
      /** Milliseconds the provider asked us to wait (Retry-After / retry-after-ms). */
      retryAfterMs?: number;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }
  get status(): number | undefined {
    return this.options.status;
  }
  get retryable(): boolean {
    return this.options.retryable ?? false;
  }
  get retryAfterMs(): number | undefined {
    return this.options.retryAfterMs;
  }
}

export class AuthenticationError extends ProviderError {
  override readonly name = "AuthenticationError";
}
export class PermissionDeniedError extends ProviderError {
  override readonly name = "PermissionDeniedError";
}
export class NotFoundError extends ProviderError {
  override readonly name = "NotFoundError";
}
export class InvalidRequestError extends ProviderError {
  override readonly name = "InvalidRequestError";
}
export class FileTooLargeError extends ProviderError {
  override readonly name = "FileTooLargeError";
}
export class EmptyFileError extends ProviderError {
  override readonly name = "EmptyFileError";
}
export class FileCountQuotaError extends ProviderError {
  override readonly name = "FileCountQuotaError";
}
/** The account's total stored bytes would pass its cap (10 GB): delete remote files first. */
export class StorageQuotaError extends ProviderError {
  override readonly name = "StorageQuotaError";
}
export class ContextLengthError extends ProviderError {
  override readonly name = "ContextLengthError";
}
export class ContentFilterError extends ProviderError {
  override readonly name = "ContentFilterError";
}
export class RateLimitError extends ProviderError {
  override readonly name = "RateLimitError";
}
export class QuotaExhaustedError extends ProviderError {
  override readonly name = "QuotaExhaustedError";
}
export class ExtractionFailedError extends ProviderError {
  override readonly name = "ExtractionFailedError";
}
export class ServerError extends ProviderError {
  override readonly name = "ServerError";
}
export class NetworkError extends ProviderError {
  override readonly name = "NetworkError";
}
export class TimeoutError extends ProviderError {
  override readonly name = "TimeoutError";
}
export class NotConfiguredError extends ProviderError {
  override readonly name = "NotConfiguredError";
}

/**
 * The upload's own source failed (could not be opened, broke off, or yielded a different number of
 * bytes than its declared size). Not a provider error and not retried by the client: the caller knows
 * whether its source is worth re-reading (an S3 object that vanished is not).
 */
export class UploadSourceError extends Error {
  override readonly name = "UploadSourceError";
}

/** A success response without what it must carry (a bug or a contract change on their side). */
export function unexpected(operation: string, what: string): ServerError {
  return new ServerError("server_error", `${operation}: unexpected response from provider: ${what}`, {
    retryable: false,
  });
}
