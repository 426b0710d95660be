/**
 * POST /v1/chat/completions: OpenAI-compatible chat over stored documents. The official `openai`
 * client works unchanged with `baseURL: "<api>/v1"` and `apiKey: "<API token>"`, streaming included.
 *
 * Standard fields: model (optional here: the deployment's default), messages (system/developer/user/
 * assistant; string content or text parts), stream, stream_options, max_tokens or
 * max_completion_tokens, temperature, top_p, n (1 only). Other standard fields are ignored.
 *
 * Document selection (extra body fields; with the openai client pass them in the create() params):
 *   "documents": string[]   document ids to use (404 for an unknown id)
 *   "prefix": string        every document whose key starts with it
 *   neither                 every ready document
 * The caller's system messages are kept, in place; the documents go in as system messages right
 * after the leading system messages. Chunks are ranked against the last user message.
 *
 * The response is a standard `chat.completion` (or `chat.completion.chunk` stream ending in
 * `data: [DONE]`) plus extra top-level fields `sources`, `skipped` and `context` (on the last chunk when
 * streaming, which also carries `usage`).
 */
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import * as z from "zod/mini";
import { badRequest, toApiError } from "../../core/chat/errors";
import type { ChatMessage, ChatUsage } from "../../core/provider/types";
import type { ChatAppContext, ChatEnv } from "../context";
import { callOptions, countAnswer, countError, parseWith, readJson, sseFrame, streamResponse } from "../http";
import { selectionFor } from "../scope";
import { documentIdsField, prefixField } from "./selection";

const textPart = z.looseObject({ type: z.string(), text: z.optional(z.string()) });

const message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool"], {
    error: "must be system, developer, user or assistant",
  }),
  content: z.optional(
    z.union([z.string(), z.array(textPart), z.null()], {
      error: "must be a string or an array of text parts",
    }),
  ),
  name: z.optional(z.string()),
});

/** A count of tokens: a whole number >= 1. */
const tokenCount = () =>
  z.nullish(
    z
      .number({ error: "must be a number" })
      .check(z.refine(Number.isSafeInteger, "must be a whole number"), z.minimum(1, "must be at least 1")),
  );

/** A sampling parameter in [0, 1]. */
const unitInterval = () =>
  z.nullish(
    z
      .number({ error: "must be a number" })
      .check(z.minimum(0, "must be between 0 and 1"), z.maximum(1, "must be between 0 and 1")),
  );

const completionRequest = z.looseObject({
  model: z.optional(z.string({ error: "must be a string" }).check(z.minLength(1, "must not be empty"))),
  messages: z
    .array(message, { error: "must be an array of messages" })
    .check(
      z.minLength(1, "must contain at least one message"),
      z.maxLength(500, "must have at most 500 messages"),
    ),
  stream: z.nullish(z.boolean({ error: "must be true or false" })),
  stream_options: z.nullish(z.looseObject({ include_usage: z.optional(z.boolean()) })),
  max_tokens: tokenCount(),
  max_completion_tokens: tokenCount(),
  temperature: unitInterval(),
  top_p: unitInterval(),
  n: z.nullish(z.literal(1, { error: "only n = 1 is supported" })),
  documents: documentIdsField(),
  prefix: prefixField(),
  tools: z.optional(z.unknown()),
});

/** Text of a message's content; non-text parts are refused (this API is text-only). */
function contentText(content: z.infer<typeof message>["content"], i: number): string {
  if (content === undefined || content === null) return "";
  if (typeof content === "string") return content;
  return content
    .map((part, j) => {
      if (part.type !== "text" || typeof part.text !== "string") {
        throw badRequest(
          `messages.${i}.content.${j}: only text parts are supported (got "${part.type}").`,
          `messages.${i}.content`,
        );
      }
      return part.text;
    })
    .join("\n");
}

export function completionsRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  const { service, deps } = ctx;

  routes.post("/v1/chat/completions", async (c) => {
    const body = parseWith(completionRequest, await readJson(c));
    if (
      body.tools !== undefined &&
      body.tools !== null &&
      !(Array.isArray(body.tools) && body.tools.length === 0)
    ) {
      throw badRequest("tools are not supported by this API; remove the tools field.", "tools");
    }
    const messages: ChatMessage[] = body.messages.map((m, i) => {
      if (m.role === "tool")
        throw badRequest(`messages.${i}: tool messages are not supported.`, `messages.${i}.role`);
      return { role: m.role === "developer" ? "system" : m.role, content: contentText(m.content, i) };
    });
    let lastUser = -1;
    messages.forEach((m, i) => {
      if (m.role === "user") lastUser = i;
    });
    if (lastUser < 0) throw badRequest("messages must include a user message (the question).", "messages");
    const query = messages[lastUser]!.content;
    if (query.trim() === "")
      throw badRequest(`messages.${lastUser}.content: the question must not be empty.`, "messages");
    let documentsAt = 0;
    while (documentsAt < messages.length && messages[documentsAt]!.role === "system") documentsAt++;

    const call = callOptions(c);
    const prepared = await service.prepare(
      {
        model: body.model,
        ...selectionFor(c, ctx, { documentIds: body.documents, prefix: body.prefix }),
        messages,
        documentsAt,
        query,
        maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
        temperature: body.temperature ?? undefined,
        topP: body.top_p ?? undefined,
      },
      call,
    );
    ctx.log.info("completion prepared", {
      model: prepared.model.id,
      context: prepared.context,
      timings: prepared.timings,
    });
    const extras = {
      sources: prepared.sources,
      skipped: prepared.skipped,
      ...(prepared.skippedNotListed > 0 ? { skippedNotListed: prepared.skippedNotListed } : {}),
      context: prepared.context,
    };
    const created = Math.floor(Date.now() / 1000);

    if (!body.stream) {
      const result = await deps.provider.chat(prepared.request, call);
      countAnswer(ctx.metrics, result.usage);
      return c.json({
        id: result.id || `chatcmpl-${randomUUID()}`,
        object: "chat.completion",
        created,
        model: result.model || prepared.model.id,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: result.content,
              ...(result.reasoningContent ? { reasoning_content: result.reasoningContent } : {}),
            },
            finish_reason: result.finishReason ?? "stop",
            logprobs: null,
          },
        ],
        usage: result.usage,
        ...extras,
      });
    }

    const id = `chatcmpl-${randomUUID()}`;
    const model = prepared.model.id;
    const chunk = (
      delta: Record<string, unknown>,
      finishReason: string | null,
      more: Record<string, unknown> = {},
    ) =>
      sseFrame({
        id,
        object: "chat.completion.chunk",
        created,
        model,
        choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
        ...more,
      });
    let usage: ChatUsage | undefined;
    let finishReason: string | null = null;
    return streamResponse(deps.provider.chatStream(prepared.request, call), {
      start: () => chunk({ role: "assistant", content: "" }, null),
      frame: (d) => {
        if (d.usage) usage = d.usage;
        if (d.finishReason) finishReason = d.finishReason;
        const delta: Record<string, unknown> = {};
        if (d.reasoningContent) delta.reasoning_content = d.reasoningContent;
        if (d.content) delta.content = d.content;
        return Object.keys(delta).length > 0 ? chunk(delta, null) : undefined;
      },
      end: () => {
        countAnswer(ctx.metrics, usage);
        return `${chunk({}, finishReason ?? "stop", { usage: usage ?? null, ...extras })}${sseFrame("[DONE]")}`;
      },
      onError: (err) => {
        countError(ctx.metrics, err);
        const e = toApiError(err);
        ctx.log.warn("completion stream failed mid-answer", { type: e.type, message: e.message });
        // The openai client raises an APIError for a data frame carrying `error`.
        return sseFrame({ error: e.toBody().error });
      },
    });
  });

  return routes;
}
