/**
 * The emulator's one token counter, shared by chat completions (usage, context-window checks) and
 * `POST /v1/tokenizers/estimate-token-count`, so the two always agree as they do on the real service.
 *
 * It approximates a BPE tokenizer without shipping a vocabulary: an ASCII word costs one token per 5
 * letters, rounded up (common words are one token; English averages ~4 characters per token), a digit
 * run one per 3 digits, each CJK character one token, other letters one per 2 characters, each
 * punctuation mark or symbol one token, and a run of newlines one token. Plain spaces are free (BPE
 * merges them into the following word). Deterministic by construction.
 */

/** Fixed cost of each chat message (role markers, separators), like the real chat template. */
export const TOKENS_PER_MESSAGE = 4;
/** Fixed cost of priming the assistant's reply. */
export const TOKENS_PER_REPLY = 3;

const PIECE =
  /(\p{Script=Han}|\p{Script=Hiragana}|\p{Script=Katakana}|\p{Script=Hangul})|([A-Za-z]+)|(\p{Nd}+)|(\p{L}+)|(\n+)|([ \t\r\f\v\u00a0]+)|(\p{M}+)|([^\s])/gu;

/** Counts the tokens of a text. */
export function countTokens(text: string): number {
  let tokens = 0;
  for (const m of text.matchAll(PIECE)) {
    if (m[1] !== undefined) tokens += 1;
    else if (m[2] !== undefined) tokens += Math.ceil(m[2].length / 5);
    else if (m[3] !== undefined) tokens += Math.ceil(m[3].length / 3);
    else if (m[4] !== undefined) tokens += Math.ceil(m[4].length / 2);
    else if (m[5] !== undefined) tokens += 1;
    else if (m[6] !== undefined) tokens += 0;
    else if (m[7] !== undefined) tokens += 0;
    else tokens += 1;
  }
  return tokens;
}

/** A chat message as the API receives it: string content or an array of typed parts. */
export interface TokenizableMessage {
  role?: unknown;
  content?: unknown;
  name?: unknown;
}

/** The text of a message's content: a string, or the `text` of its text parts (others ignored). */
export function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    const texts: string[] = [];
    for (const part of content) {
      if (part && typeof part === "object" && typeof (part as { text?: unknown }).text === "string") {
        texts.push((part as { text: string }).text);
      }
    }
    return texts.join("\n");
  }
  return "";
}

/** Counts the prompt tokens of a chat request's messages: content, names and per-message overhead. */
export function countChatTokens(messages: readonly TokenizableMessage[]): number {
  let tokens = TOKENS_PER_REPLY;
  for (const message of messages) {
    tokens += TOKENS_PER_MESSAGE;
    if (typeof message.role === "string") tokens += countTokens(message.role) > 0 ? 1 : 0;
    if (typeof message.name === "string") tokens += countTokens(message.name);
    tokens += countTokens(messageText(message.content));
  }
  return tokens;
}
