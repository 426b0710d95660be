/**
 * The providers' error vocabularies: status codes, error types or codes and message wording.
 * - Moonshot (`errors`): `{"error":{"type","message"}}`, as listed in the platform docs (see the
 *   repository's DESIGN notes, "Provider facts").
 * - Zhipu GLM (`glmErrors`): `{"error":{"code","message"}}` with numeric-string business codes from
 *   docs.z.ai/api-reference/api-code (docs.bigmodel.cn/cn/api/api-code). The docs give codes and their
 *   meaning, not the wording of file-specific refusals (size, count, type, extraction): those messages
 *   are ours, written the way the code table words its neighbours, and marked "not documented" below.
 * Every emulator error goes through {@link ApiError}, so a body always has one of these two shapes.
 */

/** An error answered to the client with the provider's body shape. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    /** Moonshot's `error.type`; empty for GLM, which sends `code` instead. */
    readonly type: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** GLM's business code (a number as a string). */
    readonly code?: string,
  ) {
    super(message);
  }

  /** The JSON body the provider sends. */
  body(): { error: { type: string; message: string } | { code: string; message: string } } {
    if (this.code !== undefined) return { error: { code: this.code, message: this.message } };
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

/** What the emulator answers, in one provider's vocabulary (Moonshot's `errors`, GLM's `glmErrors`). */
export interface ErrorVocabulary {
  missingAuth(): ApiError;
  wrongKey(): ApiError;
  notFound(what: string): ApiError;
  fileNotFound(id: string): ApiError;
  modelNotFound(model: string): ApiError;
  invalid(message: string): ApiError;
  fileTooLarge(maxBytes: number): ApiError;
  fileEmpty(): ApiError;
  fileCount(maxFiles: number): ApiError;
  totalTooLarge(maxTotal: number): ApiError;
  unsupportedType(ext: string): ApiError;
  inputTooLong(): ApiError;
  tokenLimit(contextLength: number): ApiError;
  extractionFailed(details: string): ApiError;
  server(message?: string): ApiError;
  rateLimited(retryAfterSeconds: number): ApiError;
  overloaded(retryAfterSeconds: number): ApiError;
  quotaExhausted(): ApiError;
}

export const errors: ErrorVocabulary = {
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

const glm = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
  new ApiError(status, "", message, headers, code);

/**
 * Zhipu GLM. Documented codes: 1000/1001 authentication, 1113 arrears, 1211 unknown model, 1213/1214
 * missing or invalid parameter, 1261 prompt too long, 1302/1303 concurrency/frequency, 500 internal
 * error. GLM documents no Retry-After, so its 429s carry none.
 */
export const glmErrors: ErrorVocabulary = {
  missingAuth: () =>
    glm(401, "1001", "Authentication parameter not received in Header, unable to authenticate"),
  wrongKey: () => glm(401, "1000", "Authentication Failed"),
  // Not documented: an unknown path or method. 404 with the "API does not exist" code.
  notFound: (what: string) => glm(404, "1222", `API ${what} does not exist`),
  // Not documented: a file id the account does not have. 404 with the invalid-parameter code.
  fileNotFound: (id: string) => glm(404, "1214", `Invalid file_id parameter: file ${id} does not exist`),
  modelNotFound: (model: string) =>
    glm(400, "1211", `Model does not exist, please check the model code: ${model}`),
  invalid: (message: string) => glm(400, "1214", message),
  // Not documented (wording): file-extract refusals, all code 1214.
  fileTooLarge: (maxBytes: number) =>
    glm(
      400,
      "1214",
      `File size exceeds the limit of ${formatLimit(maxBytes)}, please confirm and upload again`,
    ),
  fileEmpty: () => glm(400, "1214", "The uploaded file is empty, please confirm and upload again"),
  fileCount: (maxFiles: number) =>
    glm(
      400,
      "1214",
      `The number of files exceeds the limit of ${maxFiles}, please delete some files and upload again`,
    ),
  totalTooLarge: (maxTotal: number) =>
    glm(
      400,
      "1214",
      `The total size of your files exceeds ${formatLimit(maxTotal)}, please delete some files`,
    ),
  unsupportedType: (ext: string) =>
    glm(
      400,
      "1214",
      `Invalid file parameter: file type ${ext || "(no extension)"} is not supported for purpose file-extract`,
    ),
  inputTooLong: () => glm(400, "1261", "Prompt too long"),
  tokenLimit: (contextLength: number) =>
    glm(400, "1261", `Prompt too long: the request exceeds the model's ${contextLength} tokens`),
  // Not documented: GLM reports a failed extraction when the content is read.
  extractionFailed: (details: string) => glm(400, "1214", `Failed to extract file content: ${details}`),
  server: (message = "Internal Error") => glm(500, "500", message),
  rateLimited: () =>
    glm(429, "1303", "High frequency usage of this API, please reduce frequency or contact customer service"),
  overloaded: () =>
    glm(
      429,
      "1302",
      "High concurrency usage of this API, please reduce concurrency or contact customer service",
    ),
  quotaExhausted: () => glm(429, "1113", "Your account is in arrears, please recharge and try again"),
};
