/** The retry loop's arithmetic and bounds, with an injected clock, sleep and random source. */
import { describe, expect, it } from "vitest";
import { parseRetryAfter } from "../../functions/core/provider/error-mapping";
import { RateLimitError, ServerError } from "../../functions/core/provider/errors";
import { backoffDelay, type RetryPolicy, withRetry } from "../../functions/core/provider/retry";

const policy: RetryPolicy = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1_000, maxElapsedMs: 60_000 };

describe("backoffDelay (full jitter)", () => {
  it("is uniform below min(maxDelay, base * 2^(attempt-1))", () => {
    expect(backoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(10, policy, () => 0.999)).toBe(999);
    expect(backoffDelay(2, policy, () => 0)).toBe(0);
  });
});

describe("parseRetryAfter", () => {
  const h = (o: Record<string, string>) => new Headers(o);
  it("prefers retry-after-ms, then seconds, then an HTTP date", () => {
    expect(parseRetryAfter(h({ "retry-after-ms": "250", "retry-after": "9" }))).toBe(250);
    expect(parseRetryAfter(h({ "retry-after": "2" }))).toBe(2_000);
    expect(parseRetryAfter(h({ "retry-after": "1.5" }))).toBe(1_500);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter(h({ "retry-after": "Thu, 01 Jan 2026 00:00:03 GMT" }), now)).toBe(3_000);
    expect(parseRetryAfter(h({ "retry-after": "Wed, 31 Dec 2025 23:59:00 GMT" }), now)).toBe(0);
  });
  it("ignores absent or garbage values", () => {
    expect(parseRetryAfter(h({}))).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after": "soon" }))).toBeUndefined();
    expect(parseRetryAfter(h({ "retry-after-ms": "-5" }))).toBeUndefined();
  });
});

describe("withRetry", () => {
  function fakeClock() {
    let t = 1_000_000;
    const sleeps: number[] = [];
    return {
      now: () => t,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        t += ms;
      },
      sleeps,
    };
  }
  const classify = (e: unknown) => e as ServerError;

  it("sleeps the jittered backoff between attempts and stops at maxAttempts", async () => {
    const clock = fakeClock();
    let calls = 0;
    const err = await withRetry(
      { operation: "op", policy, timeoutMs: 1_000, classify, random: () => 0.5, ...clock },
      async () => {
        calls++;
        throw new ServerError("server_error", "down", { status: 500, retryable: true });
      },
    ).catch((e) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(calls).toBe(6);
    expect(clock.sleeps).toEqual([50, 100, 200, 400, 500]);
  });

  it("uses the server's hint instead of backoff", async () => {
    const clock = fakeClock();
    let calls = 0;
    const result = await withRetry(
      { operation: "op", policy, timeoutMs: 1_000, classify, ...clock },
      async () => {
        if (++calls < 3)
          throw new RateLimitError("rate_limited", "slow", {
            status: 429,
            retryable: true,
            retryAfterMs: 700,
          });
        return "ok";
      },
    );
    expect(result).toBe("ok");
    expect(clock.sleeps).toEqual([700, 700]);
  });

  it("stops before a sleep would cross maxElapsedMs or the deadline", async () => {
    const clock = fakeClock();
    let calls = 0;
    const fail = async () => {
      calls++;
      throw new RateLimitError("rate_limited", "slow", { status: 429, retryable: true, retryAfterMs: 400 });
    };
    await withRetry(
      { operation: "op", policy: { ...policy, maxElapsedMs: 1_000 }, timeoutMs: 1_000, classify, ...clock },
      fail,
    ).catch(() => undefined);
    expect(calls).toBe(3); // sleeps at 0+400, 400+400; a third would end at 1200 > 1000
    expect(clock.sleeps).toEqual([400, 400]);

    calls = 0;
    const c2 = fakeClock();
    await withRetry(
      { operation: "op", policy, timeoutMs: 1_000, classify, deadline: c2.now() + 500, ...c2 },
      fail,
    ).catch(() => undefined);
    expect(calls).toBe(2);
    expect(c2.sleeps).toEqual([400]);
  });

  it("a failing onAttempt hook never fails the call", async () => {
    const result = await withRetry(
      {
        operation: "op",
        policy,
        timeoutMs: 1_000,
        classify,
        onAttempt: () => {
          throw new Error("metrics down");
        },
      },
      async () => 42,
    );
    expect(result).toBe(42);
  });
});
