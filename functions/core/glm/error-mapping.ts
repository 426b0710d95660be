/**
 * Zhipu GLM's error vocabulary -> the typed errors in provider/errors.ts.
 *
 * GLM answers `{"error": {"code": "<number as string>", "message"}}`: the HTTP status says little (400
 * for most request problems, 429 for rate limits AND an account in arrears) and the business code says
 * the rest. Codes and their meaning: docs.z.ai/api-reference/api-code (docs.bigmodel.cn/cn/api/api-code
 * in Chinese), e.g. 1000-1004 authentication, 1113 "account in arrears", 1211 "model does not exist",
 * 1214 "invalid parameter", 1261 "prompt too long", 1301 unsafe content, 1302/1303/1305 concurrency,
 * frequency and traffic limits. HTTP 434 is "no API permission (file API in beta)" and 435 "file size
 * exceeds 100MB" on the same page.
 *
 * The docs do not say which code a file-specific refusal carries (too large, empty, too many files,
 * text extraction failed), so those are recognised by the message, in English (api.z.ai) and Chinese
 * (open.bigmodel.cn), and only for file operations: `messages: 输入不能为空` ("input must not be
 * empty") on a chat request is not an empty file.
 */
import {
  errorForStatus,
  errorOptions,
  type HttpErrorInput,
  httpErrorMessage,
} from "../provider/error-mapping";
import {
  AuthenticationError,
  ContentFilterError,
  ContextLengthError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  PermissionDeniedError,
  type ProviderError,
  QuotaExhaustedError,
  RateLimitError,
  ServerError,
  StorageQuotaError,
} from "../provider/errors";

type Kind =
  | "auth"
  | "permission"
  | "arrears"
  | "usage_cap"
  | "transient"
  | "invalid"
  | "context"
  | "filter"
  | "rate";

/** Business codes with a meaning of their own (docs.z.ai/api-reference/api-code). */
const CODES: Readonly<Record<string, Kind>> = {
  "500": "transient", // internal error
  "1000": "auth", // authentication failed
  "1001": "auth", // no Authentication header
  "1002": "auth", // invalid token
  "1003": "auth", // token expired
  "1004": "auth", // token rejected
  "1110": "permission", // account inactive
  "1111": "permission", // account does not exist
  "1112": "permission", // account locked
  "1113": "arrears", // account in arrears: recharge
  "1120": "transient", // account unreachable, try later
  "1121": "permission", // account locked for irregular activity
  "1200": "invalid", // API call error
  "1210": "invalid", // incorrect parameters
  "1211": "invalid", // model does not exist
  "1212": "invalid", // model does not support this call method
  "1213": "invalid", // parameter not received
  "1214": "invalid", // invalid parameter
  "1215": "invalid", // two parameters that exclude each other
  "1220": "permission", // no permission for this API
  "1221": "invalid", // API taken offline
  "1222": "invalid", // API does not exist
  "1230": "transient", // API call process error
  "1231": "invalid", // a request with this id already exists
  "1234": "transient", // network error
  "1261": "context", // prompt too long
  "1300": "filter", // blocked by policy
  "1301": "filter", // unsafe or sensitive content
  "1302": "rate", // concurrency too high
  "1303": "rate", // frequency too high
  "1304": "usage_cap", // daily call limit reached
  "1305": "rate", // traffic limit triggered
  "1308": "usage_cap", // usage cap reached until the next reset
  "1309": "permission", // coding plan expired
  "1310": "usage_cap", // weekly / monthly cap reached
  "1311": "permission", // plan does not include this model
  "1312": "rate", // model overloaded, try later or another model
  "1313": "permission", // fair-use restriction
};

/** The HTTP status each kind comes with, for errors that arrive inside an SSE stream. */
const KIND_STATUS: Readonly<Record<Kind, number>> = {
  auth: 401,
  permission: 403,
  arrears: 429,
  usage_cap: 429,
  transient: 500,
  invalid: 400,
  context: 400,
  filter: 400,
  rate: 429,
};

/** The status a GLM error code implies (for an error object without one); undefined if unknown. */
export function glmStatusOfCode(code: string | undefined): number | undefined {
  const kind = code === undefined ? undefined : CODES[code];
  return kind ? KIND_STATUS[kind] : undefined;
}

const EXTRACTION_FAILED = /failed to extract|extraction failed|解析失败|抽取失败|提取失败|无法解析/i;
const TOO_LARGE =
  /too large|exceeds? (the )?(max(imum)? )?(file )?size|size exceeds|文件大小|大小超过|超过.{0,8}M/i;
const EMPTY = /\bempty\b|file size is zero|为空|大小为\s*0/i;
const TOO_MANY = /number of files|file count|too many files|文件数|文件个数|文件数量/i;
const TOTAL_SIZE = /total size|总大小|存储空间/i;

/** The typed error for a GLM HTTP error response. */
export function mapGlmError(input: HttpErrorInput): ProviderError {
  const { status, code, operation } = input;
  const text = input.message?.trim() ?? "";
  const message = httpErrorMessage(input);
  const base = errorOptions(input);
  const kind = code === undefined ? undefined : CODES[code];
  const fileOperation = operation.startsWith("files.");

  if (fileOperation && EXTRACTION_FAILED.test(text)) {
    // As with Moonshot, a parser under load may succeed once more; a corrupt file never does.
    return new ExtractionFailedError("extraction_failed", message, { ...base, retryable: status >= 500 });
  }
  if (status === 435 || (fileOperation && TOO_LARGE.test(text))) {
    return new FileTooLargeError("file_too_large", message, base);
  }
  if (status === 434) return new PermissionDeniedError("permission_denied", message, base);
  if (fileOperation && TOO_MANY.test(text)) return new FileCountQuotaError("file_count_quota", message, base);
  if (fileOperation && TOTAL_SIZE.test(text)) return new StorageQuotaError("storage_quota", message, base);
  if (fileOperation && EMPTY.test(text)) return new EmptyFileError("file_empty", message, base);

  switch (kind) {
    case "auth":
      return new AuthenticationError("auth", message, base);
    case "permission":
      return new PermissionDeniedError("permission_denied", message, base);
    case "arrears":
    case "usage_cap":
      // Out of credit or over a usage cap: no retry helps before the account is topped up or reset.
      return new QuotaExhaustedError("quota_exhausted", message, { ...base, retryable: false });
    case "rate":
      return new RateLimitError("rate_limited", message, { ...base, retryable: true });
    case "transient":
      return new ServerError("server_error", message, { ...base, retryable: true });
    case "context":
      return new ContextLengthError("context_length", message, base);
    case "filter":
      return new ContentFilterError("content_filter", message, base);
    case "invalid":
      // A 404 keeps its meaning (a missing file is "already gone" to delete), whatever the code.
      if (status === 404) break;
      return new InvalidRequestError("invalid_request", message, base);
  }
  return errorForStatus(input) ?? new InvalidRequestError("invalid_request", message, base);
}
