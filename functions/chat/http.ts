/**
 * Small HTTP helpers shared by the route modules: JSON body parsing with clear 400s, zod validation
 * errors that name the field, and the one error response shape.
 */
import type { Context } from "hono";
import type { z } from "zod/mini";
import englishMessages from "zod/v4/locales/en.js";
import { type ApiError, badRequest, toApiError } from "../core/chat/errors";
import { CHAT_METRICS } from "../core/chat/metrics";
import { costUsd, type PriceTable } from "../core/chat/prices";
import type { ChatUsage } from "../core/provider/types";
import type { LoggerPort, MetricsPort } from "../core/runtime/telemetry";

/** The logger the app writes to (Powertools' Logger fits). */
export type AppLogger = Pick<LoggerPort, "info" | "warn" | "error">;

/** The JSON error response for any thrown value (ApiError, provider error, or unknown). */
export function errorResponse(c: Context, err: unknown, log?: AppLogger): Response {
  const apiError: ApiError = toApiError(err);
  if (apiError.status >= 500 && log) {
    const e = err as Error;
    log.error("request failed", {
      status: apiError.status,
      type: apiError.type,
      error: {
        name: e?.name,
        message: e?.message,
        stack: apiError.type === "internal_error" ? e?.stack : undefined,
      },
      path: c.req.path,
    });
  }
  return c.json(apiError.toBody(), apiError.status as 400, apiError.headers);
}

/** Reads the body as JSON; empty or malformed JSON is a 400 that says so. */
export async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") throw badRequest("The request body is empty; send a JSON object.");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`The request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Default English messages for issues a schema gives no message of its own ("Unrecognized key: ...",
 * "Too big: expected string to have <=1024 characters"). zod/mini loads no locale (that is part of why
 * it imports fast), so without this they would all read "Invalid input". Passed per parse, not through
 * the global `z.config`, so other zod users in the same process are unaffected.
 */
const defaultMessages = englishMessages().localeError;

/** Validates `value` with `schema`; failures become a 400 naming each bad field and what it needs. */
export function parseWith<S extends z.ZodMiniType>(
  schema: S,
  value: unknown,
  what = "request body",
): z.infer<S> {
  const result = schema.safeParse(value, { error: defaultMessages });
  if (result.success) return result.data;
  const issues = result.error.issues.slice(0, 5).map((i) => {
    const path = i.path.length > 0 ? i.path.join(".") : what;
    return `${path}: ${i.message}`;
  });
  const first = result.error.issues[0];
  throw badRequest(
    `Invalid ${what}: ${issues.join("; ")}${result.error.issues.length > 5 ? "; ..." : ""}`,
    first && first.path.length > 0 ? first.path.join(".") : undefined,
  );
}

/**
 * Abort signal and deadline for provider calls: the client's disconnect (local server) and, in Lambda,
 * the invocation's remaining time less a second to write the error.
 */
export function callOptions(c: Context): { signal: AbortSignal; deadline?: number } {
  const ctx = (c.env as { context?: { getRemainingTimeInMillis?: () => number } } | undefined)?.context;
  const remaining = ctx?.getRemainingTimeInMillis?.();
  return {
    signal: c.req.raw.signal,
    ...(typeof remaining === "number" ? { deadline: Date.now() + Math.max(0, remaining - 1000) } : {}),
  };
}

/** Server-Sent Events response headers (no buffering by proxies, no caching). */
export const SSE_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
};

/** One SSE frame; `event` omitted means the default "message" event. */
export function sseFrame(data: unknown, event?: string): string {
  const json = typeof data === "string" ? data : JSON.stringify(data);
  return `${event ? `event: ${event}\n` : ""}data: ${json}\n\n`;
}

/**
 * A streamed response that first pulls one item from `source` so a failure before the first token
 * (rate limit, outage, bad key) still gets a proper HTTP status instead of a 200 stream with an error
 * inside. Then every item is written through `frame`; a failure mid-stream is written with `onError`.
 */
export async function streamResponse<T>(
  source: AsyncIterable<T>,
  write: {
    start?: () => string;
    frame: (item: T) => string | undefined;
    end: () => string;
    onError: (err: unknown) => string;
  },
  headers: Record<string, string> = SSE_HEADERS,
): Promise<Response> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next(); // throws -> caller's error response with the right status
  const encoder = new TextEncoder();
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      const push = (s: string | undefined) => {
        if (s && !cancelled) controller.enqueue(encoder.encode(s));
      };
      try {
        push(write.start?.());
        let next = first;
        while (!next.done && !cancelled) {
          push(write.frame(next.value));
          next = await iterator.next();
        }
        push(write.end());
      } catch (err) {
        push(write.onError(err));
      } finally {
        if (!cancelled) controller.close();
      }
    },
    async cancel() {
      // The client went away: stop reading from the provider.
      cancelled = true;
      await iterator.return?.();
    },
  });
  return new Response(stream, { status: 200, headers });
}

/**
 * Figures of one finished answer (completion and cached prompt tokens, cost) into the metrics; returns
 * the answer's cost in USD (null when the model has no price, or the provider sent no usage).
 */
export function countAnswer(
  metrics: MetricsPort,
  prices: PriceTable,
  model: string,
  usage: ChatUsage | undefined,
): number | null {
  metrics.count(CHAT_METRICS.answers);
  if (!usage) return null;
  metrics.count(CHAT_METRICS.completionTokens, usage.completion_tokens);
  metrics.count(CHAT_METRICS.cachedPromptTokens, usage.cached_tokens ?? 0);
  const cost = costUsd(prices, model, usage);
  if (cost !== null) metrics.count(CHAT_METRICS.costUsd, cost);
  return cost;
}

/** A failed request or answer, by error type (rate_limit_error, provider_unavailable, ...). */
export function countError(metrics: MetricsPort, err: unknown): void {
  metrics.count(CHAT_METRICS.errors, 1, { name: "type", value: toApiError(err).type });
}
