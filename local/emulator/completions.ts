/**
 * The emulator's chat completions, apart from the HTTP server (server.ts keeps the I/O, faults and
 * streaming pace): the request checks the provider applies (per model family), the answer with its
 * parameters applied (`n`, `stop`, JSON mode), usage with cached prompt tokens, and the frames of a
 * streamed answer.
 *
 * The prefix cache models the provider's automatic context caching: every answered prompt is
 * remembered for `ttlSeconds`, and a later prompt that starts with the same messages (role, name and
 * content byte for byte) reports the tokens of that shared prefix as cached, when they reach
 * `minTokens`. It works at message granularity (the provider matches token blocks, so it may cache a
 * little more inside a changed message); kimi-k2 models report the figure as
 * `usage.prompt_tokens_details.cached_tokens`, moonshot-v1 models as a top-level `usage.cached_tokens`.
 */
import { createHash } from "node:crypto";
import { answer } from "./chat";
import { type ErrorVocabulary, errors as moonshotErrors } from "./errors";
import { countChatTokens, countTokens, messageText, TOKENS_PER_MESSAGE, TOKENS_PER_REPLY } from "./tokens";

export interface ModelSpec {
  id: string;
  context_length: number;
}

export interface ChatMessageIn {
  role: string;
  content: unknown;
  name?: unknown;
}

export interface PromptCacheOptions {
  /** How long a prompt stays cached after it was last used. Default 300 s. */
  ttlSeconds: number;
  /** Shortest prefix reported as cached. Default 256 tokens. */
  minTokens: number;
}

export const DEFAULT_PROMPT_CACHE: PromptCacheOptions = { ttlSeconds: 300, minTokens: 256 };

/** Most prompt prefixes remembered (oldest forgotten first). */
const MAX_CACHED_PREFIXES = 200_000;

/** Remembers prompt prefixes: the hash of messages 0..i of a prompt -> tokens of that prefix. */
export class PromptCache {
  private readonly entries = new Map<string, { tokens: number; expiresAt: number }>();

  constructor(public options: PromptCacheOptions = DEFAULT_PROMPT_CACHE) {}

  /** Tokens of the longest remembered prefix of `messages` (0 when under `minTokens`). */
  lookup(model: string, messages: readonly ChatMessageIn[], nowMs: number): number {
    let cached = 0;
    for (const { hash, tokens } of prefixes(model, messages)) {
      const entry = this.entries.get(hash);
      if (!entry || entry.expiresAt <= nowMs) break;
      cached = tokens;
    }
    return cached >= this.options.minTokens ? cached : 0;
  }

  /** Remembers every prefix of an answered prompt (and refreshes the ones already known). */
  remember(model: string, messages: readonly ChatMessageIn[], nowMs: number): void {
    const expiresAt = nowMs + this.options.ttlSeconds * 1000;
    for (const { hash, tokens } of prefixes(model, messages)) {
      this.entries.delete(hash); // re-insert: Map order is then least recently used first
      this.entries.set(hash, { tokens, expiresAt });
    }
    while (this.entries.size > MAX_CACHED_PREFIXES) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  clear(): void {
    this.entries.clear();
  }
}

/** Chained hashes of each message prefix, with the prompt tokens up to and including that message. */
function* prefixes(model: string, messages: readonly ChatMessageIn[]) {
  let hash = createHash("sha256").update(model).digest("hex");
  let tokens = TOKENS_PER_REPLY;
  for (const m of messages) {
    const name = typeof m.name === "string" ? m.name : "";
    const text = messageText(m.content);
    hash = createHash("sha256")
      .update(hash)
      .update(`\u0000${m.role}\u0000${name}\u0000`)
      .update(text)
      .digest("hex");
    tokens += TOKENS_PER_MESSAGE + (countTokens(m.role) > 0 ? 1 : 0) + (name ? countTokens(name) : 0);
    tokens += countTokens(text);
    yield { hash, tokens };
  }
}

/** kimi-k2.5 and later fix their sampling parameters (the provider's model parameter reference). */
const fixesSampling = (model: string) => /^kimi-k2\.\d/.test(model);

export function isThinkingCapable(model: string): boolean {
  return model.startsWith("kimi-k2-thinking") || fixesSampling(model);
}

/** kimi-k2-thinking* always think; kimi-k2.5/2.6 think unless `thinking: {type: "disabled"}`. */
export function usesThinking(model: string, thinking: unknown): boolean {
  if (model.startsWith("kimi-k2-thinking")) return true;
  if (fixesSampling(model)) {
    return !(
      thinking &&
      typeof thinking === "object" &&
      (thinking as { type?: unknown }).type === "disabled"
    );
  }
  return false;
}

/**
 * What a provider does differently in the checks and the answer's shape: its error vocabulary and
 * which models think (Moonshot's by default; the GLM profile passes its own, profiles.ts).
 */
export interface CompletionDialect {
  errors: ErrorVocabulary;
  thinks(model: string, thinking: unknown): boolean;
}

export const MOONSHOT_DIALECT: CompletionDialect = { errors: moonshotErrors, thinks: usesThinking };

export interface CompletionParams {
  maxTokens?: number;
  n: number;
  stop: string[];
  responseFormat: "text" | "json_object" | "json_schema";
  /** `response_format.json_schema.schema`, when given. */
  jsonSchema?: Record<string, unknown>;
  thinking: boolean;
  includeUsage: boolean;
}

function optionalInt(
  body: Record<string, unknown>,
  key: string,
  errors: ErrorVocabulary = moonshotErrors,
): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v))
    throw errors.invalid(`Invalid request: ${key} must be an integer`);
  return v;
}

function optionalNumber(
  body: Record<string, unknown>,
  key: string,
  min: number,
  max: number,
  errors: ErrorVocabulary = moonshotErrors,
) {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !(v >= min && v <= max))
    throw errors.invalid(`Invalid request: ${key} must be a number between ${min} and ${max}`);
  return v;
}

/** Checks the generation parameters as the provider does for `model`; returns what the answer needs. */
export function checkParams(
  body: Record<string, unknown>,
  model: ModelSpec,
  dialect: CompletionDialect = MOONSHOT_DIALECT,
): CompletionParams {
  const { errors } = dialect;
  const maxTokens =
    optionalInt(body, "max_completion_tokens", errors) ?? optionalInt(body, "max_tokens", errors);
  if (maxTokens !== undefined && maxTokens < 1)
    throw errors.invalid("Invalid request: max_tokens must be >= 1");
  const n = optionalInt(body, "n", errors) ?? 1;
  if (n < 1 || n > 5) throw errors.invalid("Invalid request: n must be between 1 and 5");
  const temperature = optionalNumber(body, "temperature", 0, 1, errors);
  const topP = optionalNumber(body, "top_p", 0, 1, errors);
  const presence = optionalNumber(body, "presence_penalty", -2, 2, errors);
  const frequency = optionalNumber(body, "frequency_penalty", -2, 2, errors);
  optionalInt(body, "seed", errors);
  const thinking = dialect.thinks(model.id, body.thinking);
  if (fixesSampling(model.id)) {
    const fixedTemperature = thinking ? 1 : 0.6;
    if (temperature !== undefined && temperature !== fixedTemperature)
      throw errors.invalid(`invalid temperature: only ${fixedTemperature} is allowed for this model`);
    if (topP !== undefined && topP !== 0.95)
      throw errors.invalid("invalid top_p: only 0.95 is allowed for this model");
    if (n !== 1) throw errors.invalid("invalid n: only 1 is allowed for this model");
    if (presence !== undefined && presence !== 0)
      throw errors.invalid("invalid presence_penalty: only 0 is allowed for this model");
    if (frequency !== undefined && frequency !== 0)
      throw errors.invalid("invalid frequency_penalty: only 0 is allowed for this model");
  } else if (n > 1 && temperature !== undefined && temperature < 0.01) {
    throw errors.invalid("Invalid request: n must be 1 when temperature is close to 0");
  }

  let stop: string[] = [];
  if (typeof body.stop === "string") stop = [body.stop];
  else if (Array.isArray(body.stop)) stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null)
    throw errors.invalid("Invalid request: stop must be a string or an array of strings");
  if (stop.length > 5) throw errors.invalid("Invalid request: stop allows at most 5 strings");
  for (const s of stop) {
    if (typeof s !== "string" || Buffer.byteLength(s) > 32)
      throw errors.invalid("Invalid request: each stop string must be a string of at most 32 bytes");
  }

  let responseFormat: CompletionParams["responseFormat"] = "text";
  let jsonSchema: Record<string, unknown> | undefined;
  const rf = body.response_format;
  if (rf !== undefined && rf !== null) {
    const type = (rf as { type?: unknown }).type;
    if (type !== "text" && type !== "json_object" && type !== "json_schema")
      throw errors.invalid("Invalid request: response_format.type must be text, json_object or json_schema");
    responseFormat = type;
    if (type === "json_schema") {
      const spec = (rf as { json_schema?: { name?: unknown; schema?: unknown } }).json_schema;
      if (!spec || typeof spec.name !== "string")
        throw errors.invalid("Invalid request: response_format.json_schema needs a name and a schema");
      if (spec.schema && typeof spec.schema === "object") jsonSchema = spec.schema as Record<string, unknown>;
    }
  }
  const streamOptions = body.stream_options as { include_usage?: unknown } | undefined | null;
  return {
    maxTokens,
    n,
    stop,
    responseFormat,
    jsonSchema,
    thinking,
    includeUsage: streamOptions?.include_usage === true,
  };
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens?: number;
  prompt_tokens_details?: { cached_tokens: number };
}

export interface Completion {
  content: string;
  reasoning?: string;
  finish: "stop" | "length";
  usage: CompletionUsage;
}

/**
 * Answers `messages` with `params` applied. `promptTokens` and `cachedTokens` come from the caller
 * (which checked the window and asked the prompt cache).
 */
export function complete(
  model: ModelSpec,
  messages: readonly ChatMessageIn[],
  params: CompletionParams,
  promptTokens: number,
  cachedTokens: number,
): Completion {
  const result = answer(messages);
  let content = result.content;
  if (params.responseFormat !== "text") content = asJson(content, result.source?.label, params.jsonSchema);
  let finish: "stop" | "length" = "stop";
  for (const s of params.stop) {
    const at = content.indexOf(s);
    if (at >= 0) content = content.slice(0, at);
  }
  const budget = params.maxTokens ?? model.context_length - promptTokens;
  let reasoning = params.thinking ? result.reasoning : undefined;
  const reasoningTokens = reasoning ? countTokens(reasoning) : 0;
  if (reasoningTokens >= budget) {
    reasoning = truncateToTokens(reasoning ?? "", budget);
    content = "";
    finish = "length";
  } else if (reasoningTokens + countTokens(content) > budget) {
    content = truncateToTokens(content, budget - reasoningTokens);
    finish = "length";
  }
  const completionTokens = (countTokens(content) + (reasoning ? countTokens(reasoning) : 0)) * params.n;
  const usage: CompletionUsage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
  if (model.id.startsWith("moonshot-v1")) usage.cached_tokens = cachedTokens;
  else usage.prompt_tokens_details = { cached_tokens: cachedTokens };
  return { content, reasoning, finish, usage };
}

/** JSON mode: the answer as a JSON object (filling a given schema's properties by their type). */
function asJson(text: string, source: string | undefined, schema?: Record<string, unknown>): string {
  const properties = schema?.properties;
  if (!properties || typeof properties !== "object")
    return JSON.stringify({ answer: text, source: source ?? null });
  const out: Record<string, unknown> = {};
  let first = true;
  for (const [key, prop] of Object.entries(properties as Record<string, { type?: unknown }>)) {
    const type = Array.isArray(prop?.type) ? prop.type[0] : prop?.type;
    if (type === "number" || type === "integer") out[key] = 0;
    else if (type === "boolean") out[key] = false;
    else if (type === "array") out[key] = [];
    else if (type === "object") out[key] = {};
    else if (type === "null") out[key] = null;
    else {
      out[key] = first ? text : (source ?? "");
      first = false;
    }
  }
  return JSON.stringify(out);
}

/**
 * The SSE frames of a streamed completion, `[DONE]` included. Moonshot puts usage on the finishing
 * chunk in the first choice and at the top level; GLM (`usageInChoice: false`) at the top level only,
 * and its chunks carry a `request_id`.
 */
export function streamFrames(
  meta: { id: string; created: number; model: string; requestId?: string },
  completion: Completion,
  params: CompletionParams,
  style: { usageInChoice: boolean } = { usageInChoice: true },
): string[] {
  const requestId = meta.requestId === undefined ? {} : { request_id: meta.requestId };
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ id: meta.id, ...requestId, object: "chat.completion.chunk", created: meta.created, model: meta.model, choices, ...extra })}\n\n`;
  const indexes = Array.from({ length: params.n }, (_, i) => i);
  const frames: string[] = [
    frame(
      indexes.map((index) => ({ index, delta: { role: "assistant", content: "" }, finish_reason: null })),
    ),
  ];
  for (const index of indexes) {
    for (const piece of pieces(completion.reasoning ?? "")) {
      frames.push(frame([{ index, delta: { reasoning_content: piece }, finish_reason: null }]));
    }
    for (const piece of pieces(completion.content)) {
      frames.push(frame([{ index, delta: { content: piece }, finish_reason: null }]));
    }
  }
  const { usage, finish } = completion;
  frames.push(
    frame(
      indexes.map((index) => ({
        index,
        delta: {},
        finish_reason: finish,
        ...(index === 0 && style.usageInChoice ? { usage } : {}),
      })),
      { usage },
    ),
  );
  if (params.includeUsage) frames.push(frame([], { usage }));
  frames.push("data: [DONE]\n\n");
  return frames;
}

/** Prompt tokens of a request's messages (the emulator's one counter). */
export const promptTokensOf = (messages: readonly ChatMessageIn[]) => countChatTokens(messages);

/** The longest word-wise prefix of `text` that fits in `budget` tokens. */
function truncateToTokens(text: string, budget: number): string {
  let out = "";
  let used = 0;
  for (const m of text.matchAll(/\S+\s*/g)) {
    const cost = countTokens(m[0]);
    if (used + cost > budget) break;
    out += m[0];
    used += cost;
  }
  return out.trimEnd();
}

/** Splits a text into streaming deltas of a few words each (concatenating them gives the text back). */
function pieces(text: string): string[] {
  const out: string[] = [];
  const words = text.match(/\S+\s*|\s+/g) ?? [];
  for (let i = 0; i < words.length; i += 3) out.push(words.slice(i, i + 3).join(""));
  return out;
}
