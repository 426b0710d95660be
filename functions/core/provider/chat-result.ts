/**
 * Chat responses in our shape: a completion's choices and usage, with the provider's two places for
 * cached tokens (kimi-k2's `prompt_tokens_details.cached_tokens`, moonshot-v1's top-level
 * `cached_tokens`) read as one field. Shared by the plain and streamed chat calls of client.ts.
 */
import type { ChatCompletion } from "openai/resources/chat/completions";
import { unexpected } from "./errors";
import type { ChatChoice, ChatResult, ChatUsage } from "./types";

type Json = Record<string, unknown>;

export function normaliseUsage(u: unknown): ChatUsage | undefined {
  if (!u || typeof u !== "object") return undefined;
  const o = u as Json;
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
  const prompt = num(o.prompt_tokens);
  const completion = num(o.completion_tokens);
  const out: ChatUsage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: num(o.total_tokens) || prompt + completion,
  };
  // kimi-k2 models report prompt_tokens_details.cached_tokens, moonshot-v1 models a top-level
  // cached_tokens: one field here, whichever the provider sent.
  const details = o.prompt_tokens_details as Json | undefined | null;
  const detailed = details && typeof details === "object" ? details.cached_tokens : undefined;
  const cached = typeof detailed === "number" ? detailed : o.cached_tokens;
  if (typeof cached === "number" && Number.isFinite(cached) && cached >= 0) {
    out.cached_tokens = Math.min(cached, prompt);
  }
  return out;
}

export function toChatResult(op: string, data: ChatCompletion): ChatResult {
  if (!data.choices?.length) throw unexpected(op, "a chat completion without choices");
  const choices: ChatChoice[] = data.choices
    .map((choice, i) => {
      const message = choice.message as ChatCompletion.Choice["message"] & {
        reasoning_content?: string | null;
      };
      const out: ChatChoice = {
        index: typeof choice.index === "number" ? choice.index : i,
        content: message?.content ?? "",
        finishReason: choice.finish_reason ?? null,
      };
      if (message?.reasoning_content) out.reasoningContent = message.reasoning_content;
      return out;
    })
    .sort((a, b) => a.index - b.index);
  const first = choices[0]!;
  return {
    id: data.id,
    model: data.model,
    content: first.content,
    reasoningContent: first.reasoningContent,
    finishReason: first.finishReason,
    choices,
    usage: normaliseUsage(data.usage) ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
  };
}
