/**
 * How ingestion classifies what went wrong: a terminal reason the user reads on the document
 * (`failed` with a code), or a fault worth retrying (the SQS record is redelivered).
 */
import type { DocumentFailure } from "../documents/model";
import {
  AuthenticationError,
  ContentFilterError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  NotConfiguredError,
  NotFoundError,
  PermissionDeniedError,
  type ProviderError,
  QuotaExhaustedError,
} from "../provider/errors";

/** Thrown for a retryable problem; the SQS record becomes a batch item failure. */
export class RetryLaterError extends Error {
  override readonly name = "RetryLaterError";
}

/** A terminal outcome raised inside the pipeline: the version fails with this reason. */
export class TerminalFailure extends Error {
  constructor(
    readonly failure: DocumentFailure,
    readonly orphanFileIds: string[] = [],
  ) {
    super(failure.message);
  }
}

const TRANSIENT_CODES = new Set(["rate_limited", "server_error", "network", "timeout"]);

/** Maps a provider error to the reason a user reads, or undefined when it is worth retrying. */
export function failureForProviderError(err: ProviderError): DocumentFailure | undefined {
  const detail = err.message.replace(/^[a-z.]+: /, "");
  if (err instanceof NotConfiguredError) {
    return { code: "provider_not_configured", message: "provider API key not configured" };
  }
  if (err instanceof ExtractionFailedError) {
    return { code: "extraction_failed", message: `the provider could not extract text: ${detail}` };
  }
  if (err instanceof FileTooLargeError)
    return { code: "too_large", message: `the provider refused the file: ${detail}` };
  if (err instanceof EmptyFileError)
    return { code: "empty", message: `the provider found the file empty: ${detail}` };
  if (err instanceof QuotaExhaustedError) {
    return { code: "quota", message: `the provider account is out of credit: ${detail}` };
  }
  if (isQuotaError(err)) return { code: "quota", message: `provider storage quota reached: ${detail}` };
  // Transient by nature, whatever the flag says: SQS redelivers, the redrive limit bounds it.
  if (err.retryable || TRANSIENT_CODES.has(err.code)) return undefined;
  if (
    err instanceof AuthenticationError ||
    err instanceof PermissionDeniedError ||
    err instanceof InvalidRequestError ||
    err instanceof ContentFilterError ||
    err instanceof NotFoundError
  ) {
    return { code: "provider_rejected", message: `the provider rejected the file: ${detail}` };
  }
  return { code: "provider_rejected", message: `the provider answered an error: ${detail}` };
}

/** File-count quota, or the total-bytes quota (which the provider reports as an invalid request). */
export function isQuotaError(err: unknown): boolean {
  return (
    err instanceof FileCountQuotaError ||
    (err instanceof InvalidRequestError && /total size|max total/i.test(err.message))
  );
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
