/**
 * Where the document messages go in a prompt, laid out for the provider's automatic prefix cache:
 * what stays the same from one question of a conversation to the next comes first, so a follow-up
 * repeats the previous prompt byte for byte as far as possible and that prefix is billed at the
 * cached price.
 *
 * - "all" (every selected chunk fits the budget): the caller's leading system messages, then the
 *   documents (fixed order, full text: identical for every question over the same scope), then the
 *   earlier turns and the question. A follow-up's prompt starts with the whole previous prompt
 *   except its question, which it repeats as a turn.
 * - "ranked" (chunks chosen per question): the documents change with each question, so they go
 *   after the earlier turns, right before the question: the leading system messages and the turns,
 *   which only grow, stay a shared prefix.
 */
import type { ChatMessage } from "../provider/types";
import type { ContextMode } from "./context";

export interface PromptParts {
  /** The conversation without documents: leading system messages, earlier turns, the question. */
  messages: readonly ChatMessage[];
  /** Where the leading system messages end (documents never go before this). */
  documentsAt: number;
  /** One system message per document, in document order. */
  documents: readonly ChatMessage[];
  mode: ContextMode;
}

/** The prompt: `messages` with `documents` inserted where the cache is best served (see above). */
export function layoutPrompt({ messages, documentsAt, documents, mode }: PromptParts): ChatMessage[] {
  let at = documentsAt;
  if (mode === "ranked") {
    // Right before the question (the last user message), never before the leading system messages.
    let question = -1;
    for (let i = messages.length - 1; i >= 0; i--) {
      if (messages[i]!.role === "user") {
        question = i;
        break;
      }
    }
    at = Math.max(documentsAt, question);
  }
  return [...messages.slice(0, at), ...documents, ...messages.slice(at)];
}
