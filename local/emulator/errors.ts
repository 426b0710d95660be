/**
 * The provider's error vocabulary: status codes, `error.type` values and message wording, as listed in
 * the platform docs (see the repository's DESIGN notes, "Provider facts"). Every emulator error goes
 * through {@link ApiError} so the body is always `{"error":{"type","message"}}`.
 */

/** An error answered to the client with the provider's body shape. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The JSON body the provider sends. */
  body(): { error: { type: string; message: string } } {
    return { error: { type: this.type, message: this.message } };
  }
}

const KB = 1024;
const MB = 1024 * KB;
const GB = 1024 * MB;

/** Formats a byte limit the way the provider's messages do ("100MB", "10GB"), exact for any cap. */
export function formatLimit(bytes: number): string {
  if (bytes >= GB && bytes % GB === 0) return `${bytes / GB}GB`;
  if (bytes >= MB && bytes % MB === 0) return `${bytes / MB}MB`;
  if (bytes >= KB && bytes % KB === 0) return `${bytes / KB}KB`;
  return `${bytes}B`;
}

export const errors = {
  missingAuth: () => new ApiError(401, "invalid_authentication_error", "Invalid Authentication"),
  wrongKey: () => new ApiError(401, "incorrect_api_key_error", "Incorrect API key provided"),
  notFound: (what: string) => new ApiError(404, "resource_not_found_error", `${what} not found`),
  fileNotFound: (id: string) => new ApiError(404, "resource_not_found_error", `file ${id} not found`),
  modelNotFound: (model: string) =>
    new ApiError(404, "resource_not_found_error", `Not found the model ${model} or Permission denied`),
  invalid: (message: string) => new ApiError(400, "invalid_request_error", message),
  fileTooLarge: (maxBytes: number) =>
    new ApiError(
      400,
      "invalid_request_error",
      `File size is too large, max file size is ${formatLimit(maxBytes)}, please confirm and upload again`,
    ),
  fileEmpty: () =>
    new ApiError(400, "invalid_request_error", "File size is zero, please confirm and upload again"),
  fileCount: (maxFiles: number) =>
    new ApiError(
      400,
      "invalid_request_error",
      `The number of files you have uploaded exceeded the max file count ${maxFiles}, please delete some files and upload again`,
    ),
  // Not quoted in the docs we have; worded like its siblings so clients can match "exceeded".
  totalTooLarge: (maxTotal: number) =>
    new ApiError(
      400,
      "invalid_request_error",
      `The total size of the files you have uploaded exceeded the max total size ${formatLimit(maxTotal)}, please delete some files and upload again`,
    ),
  unsupportedType: (ext: string) =>
    new ApiError(
      400,
      "invalid_request_error",
      `unsupported file type: ${ext || "(no extension)"}, please confirm and upload again`,
    ),
  inputTooLong: () => new ApiError(400, "invalid_request_error", "Input token length too long"),
  tokenLimit: (contextLength: number) =>
    new ApiError(400, "invalid_request_error", `Your request exceeded model token limit : ${contextLength}`),
  extractionFailed: (details: string) =>
    new ApiError(500, "server_error", `Failed to extract file: ${details}`),
  server: (message = "Internal server error, please try again later") =>
    new ApiError(500, "server_error", message),
  rateLimited: (retryAfterSeconds: number) =>
    new ApiError(
      429,
      "rate_limit_reached_error",
      `Your account emulator<ak-emulator> request reached organization max RPM, please try again after ${retryAfterSeconds} seconds`,
      retryHeaders(retryAfterSeconds),
    ),
  overloaded: (retryAfterSeconds: number) =>
    new ApiError(
      429,
      "engine_overloaded_error",
      "The engine is currently overloaded, please try again later",
      retryHeaders(retryAfterSeconds),
    ),
  quotaExhausted: () =>
    new ApiError(
      429,
      "exceeded_current_quota_error",
      "Your account emulator<ak-emulator> is suspended or has exceeded current quota, please check your plan and billing details",
    ),
};

function retryHeaders(seconds: number): Record<string, string> {
  return {
    "retry-after": String(Math.max(0, Math.ceil(seconds))),
    "retry-after-ms": String(Math.max(0, Math.round(seconds * 1000))),
  };
}
