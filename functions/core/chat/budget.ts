/**
 * The context budget: the most tokens of document text one answer sends. A request sets it
 * (`maxContextTokens` / `max_context_tokens`), else the deployment (construct prop, `-c
 * maxContextTokens`, MAX_CONTEXT_TOKENS), else the default below; the model's window caps it always.
 */

/**
 * Most tokens of document text per request when neither the request nor the deployment says: 32K
 * holds ~16 chunks of ~2,000 tokens (peers send 20 chunks of 800 by default) and costs about $0.02 of
 * uncached input at kimi-k2.6's price, against about $0.15 for filling a 256K window; the README's
 * "What an answer costs" has the figures. A request may ask for more, up to the model's window.
 */
export const DEFAULT_MAX_CONTEXT_TOKENS = 32_768;

/**
 * The deployment's context budget from a setting (MAX_CONTEXT_TOKENS, the construct prop): a whole
 * number from 1,000 up; unset means DEFAULT_MAX_CONTEXT_TOKENS. Throws a message naming `where`.
 */
export function parseMaxContextTokens(
  value: string | number | undefined,
  where = "MAX_CONTEXT_TOKENS",
): number {
  if (value === undefined || (typeof value === "string" && value.trim() === ""))
    return DEFAULT_MAX_CONTEXT_TOKENS;
  const n = typeof value === "number" ? value : Number(value.trim());
  if (!Number.isSafeInteger(n) || n < 1000)
    throw new Error(
      `${where} must be a whole number of tokens >= 1000 (set it above the model's window, e.g. 262144, to fill the window), got ${JSON.stringify(value)}`,
    );
  return n;
}
