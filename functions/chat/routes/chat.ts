/**
 * POST /chat: ask a question over stored documents.
 *
 * Request (JSON, unknown fields rejected so typos are caught):
 *   { "question": string, "documentIds"?: string[], "prefix"?: string,
 *     "messages"?: [{ "role": "user" | "assistant" | "system", "content": string }],  // earlier turns
 *     "model"?: string, "stream"?: boolean, "maxTokens"?: number, "maxContextTokens"?: number,
 *     "temperature"?: number }
 * Documents: `documentIds`, else every document under `prefix`, else every document; only ready
 * ones are used and the others are listed in `skipped`.
 *
 * Response: { answer, reasoning?, model, finishReason, usage: { promptTokens, completionTokens,
 *   totalTokens, cachedTokens, costUsd }, sources: [{ documentId, key, complete, chunks: [{ index, tokens, text }] }],
 *   skipped: [{ documentId, key, status, reason }], context: { mode, ... } }
 *
 * With `stream: true`: Server-Sent Events, each `data:` a JSON object whose `type` equals the event name:
 *   event: start  data: { type, model, skipped, context }
 *   event: delta  data: { type, content } or { type, reasoning }   (many)
 *   event: done   data: { type, answer, reasoning?, model, finishReason, usage, sources, skipped, context }
 *   event: error  data: { type, error: { type, message } }   (instead of done, if the provider fails mid-answer)
 */
import { Hono } from "hono";
import * as z from "zod/mini";
import { toApiError } from "../../core/chat/errors";
import { checkGenerationOptions } from "../../core/chat/parameters";
import type { PreparedChat } from "../../core/chat/service";
import type { ChatMessage, ChatResult, ChatUsage } from "../../core/provider/types";
import type { ChatAppContext, ChatEnv } from "../context";
import { callOptions, countAnswer, countError, parseWith, readJson, sseFrame, streamResponse } from "../http";
import {
  chatResponseSchema,
  describeRoute,
  errorResponses,
  jsonBody,
  jsonOrSseResponse,
  PROVIDER_ERRORS,
} from "../openapi";
import { selectionFor } from "../scope";
import { documentIdsField, maxContextTokensField, prefixField } from "./selection";

/** Instruction that precedes the documents. */
export const CHAT_SYSTEM_PROMPT =
  "Answer using the documents given in the following system messages; each begins with a line 'Document: <key>'. " +
  "Name the key of each document you rely on. If they do not contain the answer, say so plainly rather than guessing.";

export const chatRequest = z.strictObject({
  question: z
    .string({ error: "must be a string" })
    .check(
      z.trim(),
      z.minLength(1, "must not be empty: ask a question"),
      z.maxLength(32_000, "must be at most 32,000 characters"),
    ),
  documentIds: documentIdsField(),
  prefix: prefixField(),
  maxContextTokens: maxContextTokensField(),
  messages: z.optional(
    z
      .array(
        z.strictObject({
          role: z.enum(["user", "assistant", "system"], { error: "must be user, assistant or system" }),
          content: z.string({ error: "must be a string" }),
        }),
        { error: "must be an array of { role, content }" },
      )
      .check(z.maxLength(200, "must have at most 200 turns")),
  ),
  model: z.optional(z.string({ error: "must be a string" }).check(z.minLength(1, "must not be empty"))),
  stream: z.optional(z.boolean({ error: "must be true or false" })),
  maxTokens: z.optional(
    z
      .int({ error: "must be a whole number" })
      .check(z.minimum(1, "must be at least 1"), z.maximum(1_000_000, "is too large")),
  ),
  temperature: z.optional(
    z
      .number({ error: "must be a number" })
      .check(z.minimum(0, "must be between 0 and 1"), z.maximum(1, "must be between 0 and 1")),
  ),
});

export type ChatRequestBody = z.infer<typeof chatRequest>;

/** Usage as /chat reports it: the provider's counts, cached prompt tokens and the cost (USD or null). */
const camelUsage = (u: ChatUsage | undefined, costUsd: number | null) =>
  u
    ? {
        promptTokens: u.prompt_tokens,
        completionTokens: u.completion_tokens,
        totalTokens: u.total_tokens,
        cachedTokens: u.cached_tokens ?? 0,
        costUsd,
      }
    : undefined;

const answerMeta = (p: PreparedChat) => ({
  sources: p.sources,
  skipped: p.skipped,
  ...(p.skippedNotListed > 0 ? { skippedNotListed: p.skippedNotListed } : {}),
  context: p.context,
});

export function chatRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  const { service, deps } = ctx;

  routes.post(
    "/chat",
    describeRoute({
      summary: "Ask a question over stored documents",
      description:
        "JSON answer, or Server-Sent Events with `stream: true` (start, delta..., done or error). See API.md.",
      tags: ["chat"],
      requestBody: jsonBody(chatRequest),
      responses: {
        200: jsonOrSseResponse(
          "The answer with its usage (cached tokens, cost), sources and context",
          chatResponseSchema,
        ),
        ...errorResponses(400, 404, 413, ...PROVIDER_ERRORS),
      },
    }),
    async (c) => {
      const body = parseWith(chatRequest, await readJson(c));
      const messages: ChatMessage[] = [
        { role: "system", content: CHAT_SYSTEM_PROMPT },
        ...(body.messages ?? []),
        { role: "user", content: body.question },
      ];
      const call = callOptions(c);
      const prepared = await service.prepare(
        {
          model: body.model,
          ...selectionFor(c, ctx, { documentIds: body.documentIds, prefix: body.prefix }),
          messages,
          documentsAt: 1,
          query: body.question,
          maxTokens: body.maxTokens,
          maxContextTokens: body.maxContextTokens,
          options: checkGenerationOptions(
            body.model ?? deps.defaultModel,
            body.temperature === undefined ? {} : { temperature: body.temperature },
          ),
        },
        call,
      );
      ctx.log.info("chat prepared", {
        model: prepared.model.id,
        context: prepared.context,
        timings: prepared.timings,
      });

      if (!body.stream) {
        const result: ChatResult = await deps.provider.chat(prepared.request, call);
        const cost = countAnswer(ctx.metrics, ctx.prices, prepared.model.id, result.usage);
        return c.json({
          answer: result.content,
          ...(result.reasoningContent ? { reasoning: result.reasoningContent } : {}),
          model: result.model || prepared.model.id,
          finishReason: result.finishReason,
          usage: camelUsage(result.usage, cost),
          ...answerMeta(prepared),
        });
      }

      let answer = "";
      let reasoning = "";
      let usage: ChatUsage | undefined;
      let finishReason: string | null = null;
      return streamResponse(deps.provider.chatStream(prepared.request, call), {
        start: () =>
          sseFrame(
            { type: "start", model: prepared.model.id, skipped: prepared.skipped, context: prepared.context },
            "start",
          ),
        frame: (d) => {
          if (d.usage) usage = d.usage;
          if (d.finishReason) finishReason = d.finishReason;
          let out = "";
          if (d.reasoningContent) {
            reasoning += d.reasoningContent;
            out += sseFrame({ type: "delta", reasoning: d.reasoningContent }, "delta");
          }
          if (d.content) {
            answer += d.content;
            out += sseFrame({ type: "delta", content: d.content }, "delta");
          }
          return out;
        },
        end: () => {
          const cost = countAnswer(ctx.metrics, ctx.prices, prepared.model.id, usage);
          return sseFrame(
            {
              type: "done",
              answer,
              ...(reasoning ? { reasoning } : {}),
              model: prepared.model.id,
              finishReason,
              usage: camelUsage(usage, cost),
              ...answerMeta(prepared),
            },
            "done",
          );
        },
        onError: (err) => {
          countError(ctx.metrics, err);
          const e = toApiError(err);
          ctx.log.warn("chat stream failed mid-answer", { type: e.type, message: e.message });
          return sseFrame({ type: "error", error: e.toBody().error }, "error");
        },
      });
    },
  );

  return routes;
}
