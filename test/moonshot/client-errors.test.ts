/**
 * Error mapping and the retry loop, over real HTTP against a scripted server: which answers become
 * which typed error, which are retried, and that every bound (attempts, elapsed time, deadline,
 * Retry-After cap, caller abort) holds.
 */
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MoonshotClient, type MoonshotClientOptions } from "../../functions/core/moonshot/adapter";
import type { RequestEvent } from "../../functions/core/provider/client";
import {
  AuthenticationError,
  ContentFilterError,
  ContextLengthError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  NetworkError,
  NotConfiguredError,
  NotFoundError,
  PermissionDeniedError,
  type ProviderError,
  QuotaExhaustedError,
  RateLimitError,
  ServerError,
  StorageQuotaError,
  TimeoutError,
} from "../../functions/core/provider/errors";
import {
  drop,
  fileObject,
  type Handler,
  json,
  providerError,
  type Scripted,
  sleep,
  startScripted,
} from "./support/scripted-server";

let server: Scripted | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 2_000, maxElapsedMs: 10_000 };

async function clientFor(handler: Handler, over: Partial<MoonshotClientOptions> = {}) {
  server = await startScripted(handler);
  const events: RequestEvent[] = [];
  const client = new MoonshotClient({
    baseURL: server.baseURL,
    apiKey: async () => "sk-test",
    retry: FAST,
    requestTimeoutMs: 2_000,
    onRequest: (e) => events.push(e),
    ...over,
  });
  return { client, events, server };
}

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    return err as ProviderError;
  }
  throw new Error("expected the call to fail");
}

describe("error mapping", () => {
  const cases: Array<
    [string, number, string, string, new (...a: never[]) => ProviderError, string, boolean]
  > = [
    [
      "too large",
      400,
      "invalid_request_error",
      "File size is too large, max file size is 100MB, please confirm and re-upload the file",
      FileTooLargeError,
      "file_too_large",
      false,
    ],
    [
      "zero size",
      400,
      "invalid_request_error",
      "File size is zero, please confirm and re-upload the file",
      EmptyFileError,
      "file_empty",
      false,
    ],
    [
      "file count",
      400,
      "invalid_request_error",
      "The number of files you have uploaded exceeded the max file count 1000, please delete previous uploaded files",
      FileCountQuotaError,
      "file_count_quota",
      false,
    ],
    [
      "total size",
      400,
      "invalid_request_error",
      "The total size of the files you have uploaded exceeded the max total size 10GB, please delete some files",
      StorageQuotaError,
      "storage_quota",
      false,
    ],
    [
      "token limit",
      400,
      "invalid_request_error",
      "Invalid request: Your request exceeded model token limit : 8192",
      ContextLengthError,
      "context_length",
      false,
    ],
    [
      "input too long",
      400,
      "invalid_request_error",
      "Input token length too long",
      ContextLengthError,
      "context_length",
      false,
    ],
    [
      "content filter",
      400,
      "content_filter",
      "The request was rejected because it was considered high risk",
      ContentFilterError,
      "content_filter",
      false,
    ],
    [
      "other 400",
      400,
      "invalid_request_error",
      "Invalid purpose: nope",
      InvalidRequestError,
      "invalid_request",
      false,
    ],
    [
      "auth",
      401,
      "invalid_authentication_error",
      "Invalid Authentication",
      AuthenticationError,
      "auth",
      false,
    ],
    [
      "bad key",
      401,
      "incorrect_api_key_error",
      "Incorrect API key provided",
      AuthenticationError,
      "auth",
      false,
    ],
    [
      "forbidden",
      403,
      "permission_denied_error",
      "The API you are accessing is not open",
      PermissionDeniedError,
      "permission_denied",
      false,
    ],
    ["not found", 404, "resource_not_found_error", "file not found", NotFoundError, "not_found", false],
    [
      "quota",
      429,
      "exceeded_current_quota_error",
      "Your account is suspended, please check your plan and billing details",
      QuotaExhaustedError,
      "quota_exhausted",
      false,
    ],
  ];
  for (const [name, status, type, message, Cls, code, retryable] of cases) {
    it(`${name}: ${status} ${type} -> ${Cls.name}, sent once`, async () => {
      const { client, server } = await clientFor((_q, res) => providerError(res, status, type, message));
      const err = await failure(client.retrieveFile("file-1"));
      expect(err).toBeInstanceOf(Cls);
      expect(err.code).toBe(code);
      expect(err.status).toBe(status);
      expect(err.retryable).toBe(retryable);
      expect(err.message).toContain(message);
      expect(server.requests).toHaveLength(1);
    });
  }

  it("an HTML page from a proxy maps by status with a readable, tag-free message", async () => {
    const html = "<html><head><style>b{}</style></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>";
    const { client, server } = await clientFor(
      (_q, res) => {
        res.writeHead(502, { "content-type": "text/html" }).end(html);
      },
      { retry: { ...FAST, maxAttempts: 2 } },
    );
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(ServerError);
    expect(err.status).toBe(502);
    expect(err.message).toContain("HTTP 502");
    expect(err.message).toContain("502 Bad Gateway nginx");
    expect(err.message).not.toContain("<");
    expect(server.requests).toHaveLength(2);
  });

  it("an empty error body still says what happened", async () => {
    const { client } = await clientFor((_q, res) => {
      res.writeHead(403).end();
    });
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(PermissionDeniedError);
    expect(err.message).toMatch(/files\.list: provider answered HTTP 403 .*no error body/);
  });

  it("no API key -> NotConfiguredError before any request", async () => {
    const { client, server } = await clientFor((_q, res) => json(res, 200, {}), {
      apiKey: async () => undefined,
    });
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(NotConfiguredError);
    expect(err.message).toBe("provider API key not configured");
    expect(server.requests).toHaveLength(0);
  });

  it("sends the key as a bearer token", async () => {
    const { client, server } = await clientFor((_q, res) => json(res, 200, { object: "list", data: [] }));
    await client.listFiles();
    expect(server.requests[0].headers.authorization).toBe("Bearer sk-test");
  });
});

describe("retries", () => {
  it("429 rate_limit_reached_error with retry-after-ms waits that long, then succeeds", async () => {
    const { client, server, events } = await clientFor((_q, res, n) =>
      n === 0
        ? providerError(res, 429, "rate_limit_reached_error", "rate limit reached", {
            "retry-after-ms": "300",
          })
        : json(res, 200, fileObject("file-1")),
    );
    const t0 = Date.now();
    const file = await client.retrieveFile("file-1");
    expect(file.id).toBe("file-1");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(server.requests).toHaveLength(2);
    expect(events.map((e) => [e.operation, e.attempt, e.status, e.code])).toEqual([
      ["files.retrieve", 1, 429, "rate_limited"],
      ["files.retrieve", 2, 200, undefined],
    ]);
  });

  it("Retry-After in seconds is honoured", async () => {
    const { client, server } = await clientFor((_q, res, n) =>
      n === 0
        ? providerError(res, 429, "engine_overloaded_error", "The engine is currently overloaded", {
            "retry-after": "1",
          })
        : json(res, 200, fileObject("file-1")),
    );
    const t0 = Date.now();
    await client.retrieveFile("file-1");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(server.requests).toHaveLength(2);
  });

  it("Retry-After as an HTTP date is honoured", async () => {
    const { client } = await clientFor((_q, res, n) =>
      n === 0
        ? providerError(res, 429, "rate_limit_reached_error", "slow down", {
            "retry-after": new Date(Date.now() + 1500).toUTCString(),
          })
        : json(res, 200, fileObject("file-1")),
    );
    const t0 = Date.now();
    await client.retrieveFile("file-1");
    // HTTP dates have 1 s resolution: the wait is between 0.5 and 1.5 s.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
  });

  it("a Retry-After longer than maxDelayMs ends the call at once, carrying the hint", async () => {
    const { client, server } = await clientFor((_q, res) =>
      providerError(res, 429, "rate_limit_reached_error", "slow down", { "retry-after": "60" }),
    );
    const t0 = Date.now();
    const err = await failure(client.retrieveFile("file-1"));
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.retryAfterMs).toBe(60_000);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(server.requests).toHaveLength(1);
  });

  it("never retries exceeded_current_quota_error", async () => {
    const { client, server } = await clientFor((_q, res) =>
      providerError(res, 429, "exceeded_current_quota_error", "Your account is not active", {
        "retry-after": "0",
      }),
    );
    const err = await failure(
      client.chat({ model: "kimi-k2.6", messages: [{ role: "user", content: "hi" }] }),
    );
    expect(err).toBeInstanceOf(QuotaExhaustedError);
    expect(err.retryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it("5xx is retried up to maxAttempts, then the last error is thrown", async () => {
    const { client, server, events } = await clientFor(
      (_q, res) => providerError(res, 500, "server_error", "boom"),
      {
        retry: { ...FAST, maxAttempts: 3 },
      },
    );
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(ServerError);
    expect(err.retryable).toBe(true);
    expect(server.requests).toHaveLength(3);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3]);
  });

  it("503 then 200 succeeds", async () => {
    const { client } = await clientFor((_q, res, n) =>
      n === 0
        ? providerError(res, 503, "server_error", "unavailable")
        : json(res, 200, { object: "list", data: [fileObject("f")] }),
    );
    expect(await client.listFiles()).toHaveLength(1);
  });

  it("'Failed to extract file' gets exactly one retry, and succeeds when the service recovers", async () => {
    const failing = await clientFor((_q, res) =>
      providerError(res, 500, "server_error", "Failed to extract file: parse error"),
    );
    const err = await failure(failing.client.retrieveFile("f"));
    expect(err).toBeInstanceOf(ExtractionFailedError);
    expect(err.code).toBe("extraction_failed");
    expect(failing.server.requests).toHaveLength(2);
    await failing.server.close();

    const recovering = await clientFor((_q, res, n) =>
      n === 0
        ? providerError(res, 500, "server_error", "Failed to extract file: timeout")
        : json(res, 200, fileObject("f")),
    );
    expect((await recovering.client.retrieveFile("f")).id).toBe("f");
    expect(recovering.server.requests).toHaveLength(2);
  });

  it("a dropped connection is a retryable NetworkError; the retry succeeds", async () => {
    const { client, server } = await clientFor((_q, res, n) =>
      n === 0 ? drop(res) : json(res, 200, fileObject("f")),
    );
    expect((await client.retrieveFile("f")).id).toBe("f");
    expect(server.requests).toHaveLength(2);
  });

  it("connection refused -> NetworkError after maxAttempts", async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const events: RequestEvent[] = [];
    const client = new MoonshotClient({
      baseURL: `http://127.0.0.1:${port}/v1`,
      apiKey: async () => "k",
      retry: { ...FAST, maxAttempts: 3 },
      onRequest: (e) => events.push(e),
    });
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(events).toHaveLength(3);
  });

  it("a slow response becomes a TimeoutError and is retried", async () => {
    const { client, server } = await clientFor(
      async (_q, res, n) => {
        if (n === 0) await sleep(600);
        if (!res.destroyed) json(res, 200, fileObject("f"));
      },
      { requestTimeoutMs: 200 },
    );
    expect((await client.retrieveFile("f")).id).toBe("f");
    expect(server.requests).toHaveLength(2);
  });

  it("a response whose body stalls also times out (the timeout covers the body)", async () => {
    const { client } = await clientFor(
      async (_q, res) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.write('{"object":"list",');
        await sleep(1_000);
        if (!res.destroyed) res.end('"data":[]}');
      },
      { requestTimeoutMs: 150, retry: { ...FAST, maxAttempts: 2 } },
    );
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.retryable).toBe(true);
  });

  it("never sleeps past the caller's deadline: throws the last error instead", async () => {
    const { client, server } = await clientFor((_q, res) =>
      providerError(res, 429, "rate_limit_reached_error", "slow down", { "retry-after-ms": "1500" }),
    );
    const t0 = Date.now();
    const err = await failure(client.listFiles({ deadline: Date.now() + 500 }));
    expect(err).toBeInstanceOf(RateLimitError);
    expect(Date.now() - t0).toBeLessThan(400);
    expect(server.requests).toHaveLength(1);
  });

  it("a deadline shorter than the request timeout cuts the attempt, not retried", async () => {
    const { client } = await clientFor(async (_q, res) => {
      await sleep(1_000);
      if (!res.destroyed) json(res, 200, fileObject("f"));
    });
    const t0 = Date.now();
    const err = await failure(client.retrieveFile("f", { deadline: Date.now() + 200 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/deadline/);
    expect(Date.now() - t0).toBeLessThan(700);
  });

  it("maxElapsedMs bounds the whole call", async () => {
    const { client, server } = await clientFor(
      (_q, res) => providerError(res, 500, "server_error", "down", { "retry-after-ms": "150" }),
      { retry: { maxAttempts: 50, baseDelayMs: 5, maxDelayMs: 1_000, maxElapsedMs: 500 } },
    );
    const t0 = Date.now();
    await failure(client.listFiles());
    expect(Date.now() - t0).toBeLessThan(800);
    expect(server.requests.length).toBeGreaterThanOrEqual(3);
    expect(server.requests.length).toBeLessThanOrEqual(4);
  });

  it("a caller's abort ends the call with the abort, not a retry", async () => {
    const { client, server } = await clientFor(async (_q, res) => {
      await sleep(500);
      if (!res.destroyed) json(res, 200, fileObject("f"));
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = (await failure(client.retrieveFile("f", { signal: ac.signal }))) as unknown as Error;
    expect(err.name).toBe("AbortError");
    expect(server.requests).toHaveLength(1);
  });

  it("400, 401, 403 and 404 are sent once", async () => {
    for (const status of [400, 401, 403, 404]) {
      const { client, server } = await clientFor((_q, res) => providerError(res, status, "x", "no"));
      await failure(client.listFiles());
      expect(server.requests, `status ${status}`).toHaveLength(1);
      await server.close();
    }
  });
});
