/**
 * POST /v1/chat/completions: OpenAI-compatible chat over stored documents. The official `openai`
 * client, the Vercel AI SDK (`@ai-sdk/openai-compatible`) and LangChain (`@langchain/openai`) work
 * unchanged with `baseURL: "<api>/v1"` and `apiKey: "<API token>"`, streaming included.
 *
 * Every OpenAI request parameter is either forwarded or refused (a 400 naming it), never dropped:
 * - forwarded: model (optional here: the deployment's default), messages (system/developer/user/
 *   assistant; string content or text parts), stream, stream_options.include_usage, max_tokens /
 *   max_completion_tokens, temperature, top_p, n, stop, response_format (text, JSON mode, JSON schema),
 *   seed, presence_penalty, frequency_penalty, prompt_cache_key, safety_identifier (and `user`, its
 *   deprecated name). Models that fix a parameter refuse a changed value (core/chat/parameters.ts).
 * - refused unless given as a no-op (REFUSED below): tools and their relatives, logprobs, audio, ...
 * - anything else: 400 "Unrecognized request argument", as OpenAI answers, so a typo is never ignored.
 *
 * Document selection (extra body fields; with the openai client pass them in the create() params):
 *   "documents": string[]   document ids to use (404 for an unknown id)
 *   "prefix": string        every document whose key starts with it
 *   neither                 every ready document
 *   "max_context_tokens": n most tokens of document text to send (default: the deployment's, 32,768;
 *                           always capped by the model's window)
 *   "source_text": boolean  include each sent chunk's text in `sources` (default: true for a plain
 *                           response, false when streaming, where `sources` lists chunk refs only)
 * The caller's system messages are kept, in place; the documents go in as system messages right
 * after the leading system messages (when every chunk fits), or right before the last user message
 * when chunks are ranked against it per question (core/chat/prompt-layout.ts: the stable part first,
 * for the provider's prefix cache).
 *
 * The response is a standard `chat.completion` (or `chat.completion.chunk` stream ending in
 * `data: [DONE]`) plus extra top-level fields `sources`, `skipped` and `context` (on the chunk carrying
 * the finish reason when streaming). With `stream_options.include_usage`, usage comes in a last chunk
 * of its own with `choices: []`, and every other chunk has `usage: null`, as OpenAI does.
 */
import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import * as z from "zod/mini";
import type { ContextSource } from "../../core/chat/context";
import { badRequest, toApiError } from "../../core/chat/errors";
import { checkGenerationOptions } from "../../core/chat/parameters";
import type { ChatMessage, ChatUsage, GenerationOptions } from "../../core/provider/types";
import type { ChatAppContext, ChatEnv } from "../context";
import { callOptions, countAnswer, countError, parseWith, readJson, sseFrame, streamResponse } from "../http";
import {
  completionResponseSchema,
  describeRoute,
  errorResponses,
  jsonBody,
  jsonOrSseResponse,
  PROVIDER_ERRORS,
} from "../openapi";
import { selectionFor } from "../scope";
import { documentIdsField, maxContextTokensField, prefixField } from "./selection";

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
  z.nullish(z.int({ error: "must be a whole number" }).check(z.minimum(1, "must be at least 1")));

/** A sampling parameter in [0, 1] (the provider's range). */
const unitInterval = () =>
  z.nullish(
    z
      .number({ error: "must be a number" })
      .check(z.minimum(0, "must be between 0 and 1"), z.maximum(1, "must be between 0 and 1")),
  );

/** A penalty in [-2, 2]. */
const penalty = () =>
  z.nullish(
    z
      .number({ error: "must be a number" })
      .check(z.minimum(-2, "must be between -2 and 2"), z.maximum(2, "must be between -2 and 2")),
  );

/** The provider takes up to 5 stop sequences of at most 32 bytes each. */
const stopSequence = z.string({ error: "must be a string" }).check(
  z.minLength(1, "must not be empty"),
  z.refine((s) => Buffer.byteLength(s) <= 32, "must be at most 32 bytes"),
);

const responseFormat = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ type: z.literal("text") }),
    z.strictObject({ type: z.literal("json_object") }),
    z.strictObject({
      type: z.literal("json_schema"),
      json_schema: z.strictObject({
        name: z.string({ error: "must be a string" }).check(z.minLength(1, "must not be empty")),
        description: z.optional(z.string()),
        schema: z.optional(z.record(z.string(), z.unknown())),
        strict: z.nullish(z.boolean()),
      }),
    }),
  ],
  { error: 'must be { "type": "text" | "json_object" | "json_schema" }' },
);

/**
 * OpenAI parameters this API does not offer. Each is accepted only as a no-op value (what some clients
 * send by default); any other value is refused with a 400 naming it and saying why.
 */
const REFUSED: Record<string, { noop: (v: unknown) => boolean; why: string }> = {
  tools: {
    noop: (v) => v == null || (Array.isArray(v) && v.length === 0),
    why: "tools (function calling) are not supported: answers come from the stored documents; remove tools",
  },
  tool_choice: {
    noop: (v) => v == null || v === "none" || v === "auto",
    why: "tool_choice is not supported (no tools); remove it",
  },
  parallel_tool_calls: { noop: () => true, why: "" },
  functions: { noop: (v) => v == null, why: "functions (legacy function calling) are not supported" },
  function_call: { noop: (v) => v == null || v === "none", why: "function_call is not supported" },
  logprobs: { noop: (v) => v == null || v === false, why: "logprobs are not available from this API" },
  top_logprobs: {
    noop: (v) => v == null || v === 0,
    why: "top_logprobs needs logprobs, which are not available",
  },
  logit_bias: {
    noop: (v) => v == null || (typeof v === "object" && Object.keys(v as object).length === 0),
    why: "logit_bias is not supported by the provider",
  },
  audio: { noop: (v) => v == null, why: "audio output is not supported; this API answers in text" },
  modalities: {
    noop: (v) => v == null || (Array.isArray(v) && v.length === 1 && v[0] === "text"),
    why: 'only text output is supported (modalities: ["text"])',
  },
  prediction: { noop: (v) => v == null, why: "predicted outputs are not supported" },
  web_search_options: {
    noop: (v) => v == null,
    why: "web search is not supported: answers come from the stored documents",
  },
  reasoning_effort: {
    noop: (v) => v == null,
    why: "reasoning_effort is not supported (thinking models decide their own effort)",
  },
  verbosity: { noop: (v) => v == null, why: "verbosity is not supported" },
  store: {
    noop: (v) => v == null || v === false,
    why: "completions are not stored by this API (store: false)",
  },
  metadata: {
    noop: (v) => v == null || (typeof v === "object" && Object.keys(v as object).length === 0),
    why: "metadata is only for stored completions, which this API does not keep",
  },
  service_tier: {
    noop: (v) => v == null || v === "auto" || v === "default",
    why: 'service_tier is not supported (only "auto")',
  },
};

export const completionRequest = z.strictObject({
  model: z.optional(z.string({ error: "must be a string" }).check(z.minLength(1, "must not be empty"))),
  messages: z
    .array(message, { error: "must be an array of messages" })
    .check(
      z.minLength(1, "must contain at least one message"),
      z.maxLength(500, "must have at most 500 messages"),
    ),
  stream: z.nullish(z.boolean({ error: "must be true or false" })),
  stream_options: z.nullish(
    z.strictObject({
      include_usage: z.optional(z.boolean({ error: "must be true or false" })),
      include_obfuscation: z.optional(z.boolean({ error: "must be true or false" })),
    }),
  ),
  max_tokens: tokenCount(),
  max_completion_tokens: tokenCount(),
  temperature: unitInterval(),
  top_p: unitInterval(),
  n: z.nullish(
    z
      .int({ error: "must be a whole number" })
      .check(z.minimum(1, "must be at least 1"), z.maximum(5, "must be at most 5 (the provider's limit)")),
  ),
  stop: z.nullish(
    z.union([stopSequence, z.array(stopSequence).check(z.maxLength(5, "must list at most 5 sequences"))], {
      error: "must be a string or an array of at most 5 strings",
    }),
  ),
  response_format: z.nullish(responseFormat),
  seed: z.nullish(z.int({ error: "must be a whole number" })),
  presence_penalty: penalty(),
  frequency_penalty: penalty(),
  prompt_cache_key: z.nullish(z.string().check(z.maxLength(1024, "must be at most 1024 characters"))),
  safety_identifier: z.nullish(z.string().check(z.maxLength(1024, "must be at most 1024 characters"))),
  user: z.nullish(z.string().check(z.maxLength(1024, "must be at most 1024 characters"))),
  documents: documentIdsField(),
  prefix: prefixField(),
  max_context_tokens: maxContextTokensField(),
  source_text: z.optional(z.boolean({ error: "must be true or false" })),
  ...Object.fromEntries(Object.keys(REFUSED).map((k) => [k, z.optional(z.unknown())])),
});

type CompletionRequest = z.infer<typeof completionRequest>;

/**
 * Refuses unsupported parameters (REFUSED) and unknown ones before the schema runs, so the message
 * names the parameter and says why.
 */
function refuseUnsupported(raw: unknown): void {
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) return; // the schema reports it
  const known = new Set(Object.keys(completionRequest.def.shape));
  for (const [key, value] of Object.entries(raw)) {
    const refused = REFUSED[key];
    if (refused) {
      if (!refused.noop(value)) throw badRequest(`${key}: ${refused.why}.`, key);
    } else if (!known.has(key)) {
      throw badRequest(
        `Unrecognized request argument supplied: ${key}. See GET /openapi.json for the parameters of this API.`,
        key,
      );
    }
  }
}

/** The generation parameters to forward, from the request (OpenAI names). */
function generationOptions(body: CompletionRequest): GenerationOptions {
  const out: GenerationOptions = {};
  if (body.temperature != null) out.temperature = body.temperature;
  if (body.top_p != null) out.top_p = body.top_p;
  if (body.n != null) out.n = body.n;
  if (body.stop != null) out.stop = body.stop;
  if (body.response_format != null) out.response_format = body.response_format;
  if (body.seed != null) out.seed = body.seed;
  if (body.presence_penalty != null) out.presence_penalty = body.presence_penalty;
  if (body.frequency_penalty != null) out.frequency_penalty = body.frequency_penalty;
  if (body.prompt_cache_key != null) out.prompt_cache_key = body.prompt_cache_key;
  const safety = body.safety_identifier ?? body.user;
  if (safety != null) out.safety_identifier = safety;
  return out;
}

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

/** Sources without the chunks' text: which documents and chunks were sent. */
const sourceRefs = (sources: ContextSource[]) =>
  sources.map((s) => ({ ...s, chunks: s.chunks.map(({ index, tokens }) => ({ index, tokens })) }));

export function completionsRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  const { service, deps } = ctx;

  routes.post(
    "/v1/chat/completions",
    describeRoute({
      summary: "OpenAI-compatible chat completion over stored documents",
      description:
        "The OpenAI request body plus `documents`, `prefix`, `max_context_tokens`, `source_text`. Parameters this API does not offer are refused with a 400 naming them; unknown ones too. See API.md.",
      tags: ["openai"],
      requestBody: jsonBody(completionRequest),
      responses: {
        200: jsonOrSseResponse(
          "A chat.completion, or chat.completion.chunk SSE ending in data: [DONE] with `stream: true`",
          completionResponseSchema,
        ),
        ...errorResponses(400, 404, 413, ...PROVIDER_ERRORS),
      },
    }),
    async (c) => {
      const raw = await readJson(c);
      refuseUnsupported(raw);
      const body = parseWith(completionRequest, raw);
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
      const options = checkGenerationOptions(body.model ?? deps.defaultModel, generationOptions(body));
      const choiceCount = options.n ?? 1;

      const call = callOptions(c);
      const prepared = await service.prepare(
        {
          model: body.model,
          ...selectionFor(c, ctx, { documentIds: body.documents, prefix: body.prefix }),
          messages,
          documentsAt,
          query,
          maxTokens: body.max_completion_tokens ?? body.max_tokens ?? undefined,
          maxContextTokens: body.max_context_tokens,
          options,
        },
        call,
      );
      ctx.log.info("completion prepared", {
        model: prepared.model.id,
        context: prepared.context,
        timings: prepared.timings,
      });
      const extras = (withText: boolean) => ({
        sources: withText ? prepared.sources : sourceRefs(prepared.sources),
        skipped: prepared.skipped,
        ...(prepared.skippedNotListed > 0 ? { skippedNotListed: prepared.skippedNotListed } : {}),
        context: prepared.context,
      });
      const created = Math.floor(Date.now() / 1000);

      if (!body.stream) {
        const result = await deps.provider.chat(prepared.request, call);
        countAnswer(ctx.metrics, ctx.prices, prepared.model.id, result.usage);
        return c.json({
          id: result.id || `chatcmpl-${randomUUID()}`,
          object: "chat.completion",
          created,
          model: result.model || prepared.model.id,
          choices: result.choices.map((choice) => ({
            index: choice.index,
            message: {
              role: "assistant",
              content: choice.content,
              ...(choice.reasoningContent ? { reasoning_content: choice.reasoningContent } : {}),
            },
            finish_reason: choice.finishReason ?? "stop",
            logprobs: null,
          })),
          usage: openaiUsage(result.usage),
          ...extras(body.source_text ?? true),
        });
      }

      const id = `chatcmpl-${randomUUID()}`;
      const model = prepared.model.id;
      const includeUsage = body.stream_options?.include_usage === true;
      const frame = (choices: unknown[], more: Record<string, unknown> = {}) =>
        sseFrame({
          id,
          object: "chat.completion.chunk",
          created,
          model,
          choices,
          ...(includeUsage ? { usage: null } : {}),
          ...more,
        });
      const delta = (index: number, d: Record<string, unknown>) => ({
        index,
        delta: d,
        finish_reason: null,
        logprobs: null,
      });
      let usage: ChatUsage | undefined;
      const finishReasons = new Map<number, string>();
      return streamResponse(deps.provider.chatStream(prepared.request, call), {
        start: () =>
          frame(Array.from({ length: choiceCount }, (_, i) => delta(i, { role: "assistant", content: "" }))),
        frame: (d) => {
          if (d.usage) usage = d.usage;
          const index = d.index ?? 0;
          if (d.finishReason) finishReasons.set(index, d.finishReason);
          const out: Record<string, unknown> = {};
          if (d.reasoningContent) out.reasoning_content = d.reasoningContent;
          if (d.content) out.content = d.content;
          return Object.keys(out).length > 0 ? frame([delta(index, out)]) : undefined;
        },
        end: () => {
          countAnswer(ctx.metrics, ctx.prices, prepared.model.id, usage);
          const finished = Array.from({ length: choiceCount }, (_, index) => ({
            index,
            delta: {},
            finish_reason: finishReasons.get(index) ?? "stop",
            logprobs: null,
          }));
          let out = frame(finished, extras(body.source_text ?? false));
          // OpenAI's shape: usage in a last chunk of its own, with no choices.
          if (includeUsage) out += frame([], { usage: openaiUsage(usage) ?? null });
          return `${out}${sseFrame("[DONE]")}`;
        },
        onError: (err) => {
          countError(ctx.metrics, err);
          const e = toApiError(err);
          ctx.log.warn("completion stream failed mid-answer", { type: e.type, message: e.message });
          // The openai client raises an APIError for a data frame carrying `error`.
          return sseFrame({ error: e.toBody().error });
        },
      });
    },
  );

  return routes;
}

/** Usage in OpenAI's shape: cached prompt tokens under `prompt_tokens_details`. */
export function openaiUsage(u: ChatUsage | undefined) {
  if (!u) return undefined;
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.total_tokens,
    ...(u.cached_tokens !== undefined ? { prompt_tokens_details: { cached_tokens: u.cached_tokens } } : {}),
  };
}
