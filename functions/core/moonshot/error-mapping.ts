/**
 * Moonshot's error vocabulary -> the typed errors in provider/errors.ts. Moonshot answers
 * `{"error": {"type", "message"}}`; the type and a few message wordings (DESIGN notes, "Provider
 * facts") tell the classes apart where the HTTP status does not.
 */
import {
  errorForStatus,
  errorOptions,
  type HttpErrorInput,
  httpErrorMessage,
} from "../provider/error-mapping";
import {
  ContentFilterError,
  ContextLengthError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  type ProviderError,
  QuotaExhaustedError,
  StorageQuotaError,
} from "../provider/errors";

/** Moonshot error types -> the status they come with, for errors that arrive inside an SSE stream. */
export const MOONSHOT_TYPE_STATUS: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  content_filter: 400,
  invalid_authentication_error: 401,
  incorrect_api_key_error: 401,
  permission_denied_error: 403,
  resource_not_found_error: 404,
  rate_limit_reached_error: 429,
  engine_overloaded_error: 429,
  exceeded_current_quota_error: 429,
  server_error: 500,
};

/** The typed error for a Moonshot HTTP error response. */
export function mapMoonshotError(input: HttpErrorInput): ProviderError {
  const { status, type } = input;
  const text = input.message?.trim() ?? "";
  const message = httpErrorMessage(input);
  const base = errorOptions(input);

  if (/failed to extract file/i.test(text)) {
    // The real service sometimes extracts the same bytes on a second try (transient parser load);
    // a corrupt file fails every time, so the retry loop gives this class a single extra attempt.
    return new ExtractionFailedError("extraction_failed", message, { ...base, retryable: status >= 500 });
  }
  if (/file size is too large/i.test(text)) return new FileTooLargeError("file_too_large", message, base);
  if (
    status === 429 &&
    (type === "exceeded_current_quota_error" ||
      /exceeded (your )?current quota|insufficient balance/i.test(text))
  ) {
    return new QuotaExhaustedError("quota_exhausted", message, { ...base, retryable: false });
  }
  const byStatus = errorForStatus(input);
  if (byStatus) return byStatus;
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
