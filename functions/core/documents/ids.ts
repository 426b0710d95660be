/**
 * What a document id and a key prefix may look like in a request, checked before either reaches the
 * store: DynamoDB refuses key values over 1,024 bytes (and a sort-key condition over the same) with a
 * ValidationException, which must be the caller's 400, not our 500.
 */

/** Document ids are 22 base64url characters (documentIdFor); older or foreign ids stay in this set. */
export const DOCUMENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,200}$/;

/** S3's key limit, and DynamoDB's for a sort key: a longer prefix can match nothing. */
export const MAX_PREFIX_BYTES = 1024;

/** Why `id` is not a document id, or undefined when it is one. */
export function documentIdProblem(id: string): string | undefined {
  return DOCUMENT_ID_PATTERN.test(id)
    ? undefined
    : "is not a document id (1-200 of A-Z a-z 0-9 _ . : -); ids come from GET /documents";
}

/** Why `prefix` cannot be a key prefix, or undefined when it can. */
export function prefixProblem(prefix: string): string | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(prefix)) return "must not contain control characters";
  // Keys are matched as strings, so `a/../b/` could only ever match keys literally named so; refusing
  // it says so instead of answering an empty selection that looks like "b/" has nothing.
  if (prefix.split("/").some((s) => s === "." || s === ".."))
    return 'must not contain "." or ".." segments (keys are matched as written, not as paths)';
  if (Buffer.byteLength(prefix, "utf8") > MAX_PREFIX_BYTES)
    return `must be at most ${MAX_PREFIX_BYTES} bytes in UTF-8 (S3's key limit)`;
  return undefined;
}
