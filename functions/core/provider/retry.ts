/**
 * The client's one retry loop: exponential backoff with full jitter, the server's Retry-After honoured,
 * every attempt under its own timeout, and the whole call bounded by attempts, elapsed time and the
 * caller's deadline (a Lambda's remaining time). Nothing else in the client retries (the openai SDK
 * runs with maxRetries: 0), so these bounds are the real ones.
 */
import { type ProviderError, TimeoutError } from "./errors";

export interface RetryPolicy {
  /** Attempts in total, the first included. */
  maxAttempts: number;
  /** First backoff ceiling; doubles per attempt (full jitter picks uniformly below it). */
  baseDelayMs: number;
  /** Longest single sleep. A Retry-After above this ends the call instead (the error carries it). */
  maxDelayMs: number;
  /** Time budget from the first attempt; no sleep may end past it. */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 20_000,
  maxElapsedMs: 90_000,
};

/**
 * `Failed to extract file` is retried at most this many times per call: the service sometimes
 * succeeds on a second try, but a corrupt document fails every time and each try re-sends the file.
 */
export const EXTRACTION_RETRY_LIMIT = 1;

/** One attempt's outcome, for metrics and logs. */
export interface AttemptReport {
  operation: string;
  attempt: number;
  durationMs: number;
  status?: number;
  error?: ProviderError;
}

export interface AttemptContext {
  attempt: number;
  /** Aborts when the caller aborts, the per-attempt timeout fires or the deadline passes. */
  signal: AbortSignal;
  /** The attempt sets the HTTP status it got, for the success report. */
  status?: number;
}

export interface RetryOptions {
  operation: string;
  policy: RetryPolicy;
  /** Per-attempt timeout; shortened to whatever is left before `deadline`. */
  timeoutMs: number;
  deadline?: number;
  signal?: AbortSignal;
  /** Classifies anything an attempt threw (transport errors, SDK errors) into a ProviderError. */
  classify: (
    err: unknown,
    ctx: { operation: string; timedOut: boolean; deadlineHit: boolean },
  ) => ProviderError;
  /** Status of a successful attempt (for the report), when the attempt can tell. */
  onAttempt?: (report: AttemptReport) => void;
  /** Injectable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

/** Full jitter: uniform in [0, min(maxDelay, base * 2^(attempt-1))). `attempt` is the one that failed. */
export function backoffDelay(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/** Sleeps, waking early (rejecting with the signal's reason) when the signal aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Marker reason for aborts the client itself caused, so they are not mistaken for the caller's. */
export class AttemptTimeout extends Error {
  override readonly name = "AttemptTimeout";
  constructor(readonly kind: "timeout" | "deadline") {
    super(kind === "deadline" ? "call deadline reached" : "request timed out");
  }
}

/**
 * An AbortSignal for one attempt: follows the caller's signal and fires on its own after `ms`.
 * `dispose()` stops the timer and unhooks from the caller's signal.
 */
export function attemptSignal(
  parent: AbortSignal | undefined,
  ms: number,
  kind: "timeout" | "deadline",
): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void; controller: AbortController } {
  const controller = new AbortController();
  let fired = false;
  const onParent = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener("abort", onParent, { once: true });
  const timer = setTimeout(
    () => {
      fired = true;
      controller.abort(new AttemptTimeout(kind));
    },
    Math.max(0, ms),
  );
  return {
    signal: controller.signal,
    controller,
    timedOut: () => fired,
    dispose: () => {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or a bound is reached; then throws
 * the last typed error. A caller's abort propagates as-is (its reason), never retried.
 */
export async function withRetry<T>(opts: RetryOptions, fn: (ctx: AttemptContext) => Promise<T>): Promise<T> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const random = opts.random ?? Math.random;
  const { policy, deadline, operation } = opts;
  const start = now();
  const budgetEnd = Math.min(start + policy.maxElapsedMs, deadline ?? Number.POSITIVE_INFINITY);
  let lastError: ProviderError | undefined;
  let extractionRetries = 0;

  for (let attempt = 1; ; attempt++) {
    opts.signal?.throwIfAborted();
    const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - now();
    if (left <= 0) {
      throw (
        lastError ??
        new TimeoutError("timeout", `${operation}: deadline passed before the request could be sent`, {
          retryable: false,
        })
      );
    }
    const deadlineBound = left < opts.timeoutMs;
    const scope = attemptSignal(
      opts.signal,
      Math.min(opts.timeoutMs, left),
      deadlineBound ? "deadline" : "timeout",
    );
    const t0 = now();
    try {
      const ctx: AttemptContext = { attempt, signal: scope.signal };
      const result = await fn(ctx);
      report(opts, { operation, attempt, durationMs: now() - t0, status: ctx.status });
      return result;
    } catch (raw) {
      if (opts.signal?.aborted && !scope.timedOut()) throw opts.signal.reason ?? raw;
      const err = opts.classify(raw, { operation, timedOut: scope.timedOut(), deadlineHit: deadlineBound });
      lastError = err;
      report(opts, { operation, attempt, durationMs: now() - t0, status: err.status, error: err });
      if (!err.retryable || attempt >= policy.maxAttempts) throw err;
      if (err.code === "extraction_failed" && ++extractionRetries > EXTRACTION_RETRY_LIMIT) throw err;
      const hinted = err.retryAfterMs;
      if (hinted !== undefined && hinted > policy.maxDelayMs) throw err;
      const delay = hinted ?? backoffDelay(attempt, policy, random);
      // Never sleep past the budget: the next attempt would start with no time to finish.
      if (now() + delay >= budgetEnd) throw err;
      await sleep(delay, opts.signal);
    } finally {
      scope.dispose();
    }
  }
}

function report(opts: RetryOptions, r: AttemptReport): void {
  try {
    opts.onAttempt?.(r);
  } catch {
    // A failing metrics hook must never fail the call.
  }
}
