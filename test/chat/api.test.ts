/**
 * The chat API against in-memory fakes: validation, provider error mapping, auth, documents routes,
 * and the streamed formats. Fast: no servers (Hono's app.request).
 */
import { beforeEach, describe, expect, it } from "vitest";
import { type ChatDeps, createChatApp } from "../../functions/chat/app";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import {
  NetworkError,
  NotConfiguredError,
  QuotaExhaustedError,
  RateLimitError,
  ServerError,
  TimeoutError,
} from "../../functions/core/provider/errors";
import { RecordingMetrics } from "../../functions/core/runtime/telemetry";
import { authHeader, FakeMoonshot, MemoryStore, parseSse, TOKEN } from "./support";

const para = (topic: string, n: number) =>
  Array.from({ length: n }, (_, i) => `Note ${i}: the ${topic} ledger lists routine entries.\n\n`).join("");

let store: MemoryStore;
let moonshot: FakeMoonshot;
let deleted: { bucket: string; key: string }[];

function makeApp(overrides: Partial<ChatDeps> = {}) {
  return createChatApp({
    store,
    provider: moonshot,
    objects: {
      async deleteObject(bucket, key) {
        deleted.push({ bucket, key });
      },
    },
    defaultModel: "kimi-k2.6",
    authenticate: bearerAuthenticator(async () => TOKEN),
    logger: { info() {}, warn() {}, error() {} },
    ...overrides,
  });
}

function post(
  app: ReturnType<typeof makeApp>,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  return app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeader, ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

beforeEach(() => {
  store = new MemoryStore();
  moonshot = new FakeMoonshot();
  deleted = [];
  store.add({ documentId: "doc-a", key: "reports/a.txt" }, `Alpha report.\n\n${para("alpha", 3)}`);
  store.add({ documentId: "doc-b", key: "reports/b.txt" }, `Beta report.\n\n${para("beta", 3)}`);
  store.add({ documentId: "doc-c", key: "other/c.txt" }, `Gamma memo.\n\n${para("gamma", 3)}`);
  store.add({ documentId: "doc-p", key: "reports/p.txt", status: "processing" });
  store.add({
    documentId: "doc-f",
    key: "reports/f.pdf",
    status: "failed",
    error: { code: "unsupported_type", message: "images are not supported" },
  });
});

describe("POST /chat", () => {
  it("answers over the selected prefix and names skipped documents", async () => {
    const res = await post(makeApp(), "/chat", {
      question: "What does the alpha ledger list?",
      prefix: "reports/",
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.answer).toBe("Seen: reports/a.txt, reports/b.txt.");
    expect(body.sources.map((s: { key: string }) => s.key)).toEqual(["reports/a.txt", "reports/b.txt"]);
    expect(body.sources[0].chunks[0]).toMatchObject({ index: 0 });
    expect(body.sources[0].chunks[0].text).toContain("Alpha report.");
    expect(body.skipped).toEqual([
      expect.objectContaining({
        documentId: "doc-f",
        status: "failed",
        reason: expect.stringContaining("images"),
      }),
      expect.objectContaining({ documentId: "doc-p", status: "processing" }),
    ]);
    expect(body.usage).toEqual({
      promptTokens: 10,
      completionTokens: 5,
      totalTokens: 15,
      cachedTokens: 0,
      costUsd: (10 * 0.6 + 5 * 3) / 1e6,
    });
    expect(body.model).toBe("kimi-k2.6");
    // Our instruction, then one system message per document, then the question.
    const sent = moonshot.chatRequests[0]!;
    expect(sent.messages.map((m) => m.role)).toEqual(["system", "system", "system", "user"]);
    expect(sent.messages[1]!.content.startsWith("Document: reports/a.txt\n\nAlpha report.")).toBe(true);
    expect(sent.max_tokens).toBeGreaterThan(0);
  });

  it("uses only the ids given, and all ready documents by default", async () => {
    const app = makeApp();
    let body = await (await post(app, "/chat", { question: "gamma?", documentIds: ["doc-c"] })).json();
    expect(body.answer).toBe("Seen: other/c.txt.");
    body = await (await post(app, "/chat", { question: "anything?" })).json();
    expect(body.answer).toBe("Seen: other/c.txt, reports/a.txt, reports/b.txt.");
  });

  it("streams deltas, then a done event with usage and sources", async () => {
    const res = await post(makeApp(), "/chat", {
      question: "beta?",
      documentIds: ["doc-b", "doc-a"],
      stream: true,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const frames = parseSse(await res.text());
    expect(frames[0]!.event).toBe("start");
    const deltas = frames.filter((f) => f.event === "delta").map((f) => JSON.parse(f.data));
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.every((d) => d.type === "delta")).toBe(true);
    const done = JSON.parse(frames.at(-1)!.data);
    expect(frames.at(-1)!.event).toBe("done");
    expect(done.type).toBe("done");
    // Ids keep the order given.
    expect(done.answer).toBe("Seen: reports/b.txt, reports/a.txt.");
    expect(deltas.map((d) => d.content).join("")).toBe(done.answer);
    expect(done.usage.totalTokens).toBe(15);
    expect(done.sources.map((s: { documentId: string }) => s.documentId)).toEqual(["doc-b", "doc-a"]);
  });

  it("a provider failure mid-stream ends with an error event", async () => {
    moonshot.fail = { on: "stream-mid", error: new ServerError("server_error", "boom", { status: 500 }) };
    const res = await post(makeApp(), "/chat", { question: "beta?", stream: true });
    expect(res.status).toBe(200);
    const frames = parseSse(await res.text());
    expect(frames.at(-1)!.event).toBe("error");
    expect(JSON.parse(frames.at(-1)!.data).error.type).toBe("provider_error");
  });

  it("a provider failure before the first token keeps its HTTP status when streaming", async () => {
    moonshot.fail = {
      on: "stream-first",
      error: new RateLimitError("rate_limited", "slow down", { status: 429, retryAfterMs: 7000 }),
    };
    const res = await post(makeApp(), "/chat", { question: "beta?", stream: true });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
  });

  it("shrinks the context when the provider counts more tokens than the local estimate", async () => {
    store = new MemoryStore();
    for (let i = 0; i < 8; i++) store.add({ documentId: `t${i}`, key: `t/${i}.txt` }, para(`topic${i}`, 60));
    moonshot.tokenRatio = 1.6;
    const res = await post(makeApp(), "/chat", {
      question: "topic3 ledger?",
      model: "tiny-4k",
      maxTokens: 500,
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.context.checks).toBeGreaterThan(1);
    expect(body.context.promptTokens + 500).toBeLessThanOrEqual(4096);
    expect(body.context.mode).toBe("ranked");
  });

  it("tops the context up when the provider counts fewer tokens than the local estimate", async () => {
    store = new MemoryStore();
    for (let i = 0; i < 8; i++) store.add({ documentId: `t${i}`, key: `t/${i}.txt` }, para(`topic${i}`, 60));
    const ask = async () => {
      const res = await post(makeApp(), "/chat", {
        question: "topic3 ledger?",
        model: "tiny-4k",
        maxTokens: 500,
      });
      expect(res.status).toBe(200);
      return (await res.json()).context;
    };
    moonshot.tokenRatio = 1;
    const exact = await ask();
    moonshot.tokenRatio = 0.6;
    const generous = await ask();
    expect(generous.toppedUp).toBe(true);
    expect(generous.checks).toBe(2);
    expect(generous.chunksSent).toBeGreaterThan(exact.chunksSent);
    // Still within the window, and most of the budget is used.
    expect(generous.promptTokens + 500).toBeLessThanOrEqual(4096);
    expect(generous.promptTokens).toBeGreaterThan(0.8 * (4096 - 500 - 256));
  });
});

describe("metrics", () => {
  it("counts answers, tokens and the context plan, and errors by type", async () => {
    const metrics = new RecordingMetrics();
    const app = makeApp({ metrics });
    expect((await post(app, "/chat", { question: "beta?" })).status).toBe(200);
    const streamed = await post(app, "/v1/chat/completions", {
      model: "kimi-k2.6",
      stream: true,
      messages: [{ role: "user", content: "alpha?" }],
    });
    await streamed.text();
    expect(metrics.counts.get("ChatAnswers")).toBe(2);
    expect(metrics.counts.get("ChatCompletionTokens")).toBeGreaterThan(0);
    expect(metrics.counts.get("ChatPromptTokens")).toBeGreaterThan(0);
    expect(metrics.counts.get("ChatTokenChecks")).toBeGreaterThanOrEqual(2);
    expect(metrics.counts.get("ChatDocumentsSent")).toBe(6);
    expect(metrics.timings.get("ChatPrepareTime")).toHaveLength(2);

    expect((await post(app, "/chat", { question: "" })).status).toBe(400);
    moonshot.fail = { on: "chat", error: new RateLimitError("rate_limited", "slow down", { status: 429 }) };
    expect((await post(app, "/chat", { question: "beta?" })).status).toBe(429);
    expect(metrics.counts.get("ChatErrors:invalid_request_error")).toBe(1);
    expect(metrics.counts.get("ChatErrors:rate_limit_error")).toBe(1);
    expect(metrics.counts.get("ChatAnswers")).toBe(2);
  });
});

describe("bad requests", () => {
  const cases: [string, string, unknown, number, RegExp][] = [
    ["empty question", "/chat", { question: "   " }, 400, /question: must not be empty/],
    ["missing question", "/chat", {}, 400, /question/],
    ["wrong type", "/chat", { question: 42 }, 400, /question: must be a string/],
    ["documentIds not an array", "/chat", { question: "q", documentIds: "doc-a" }, 400, /documentIds/],
    ["unknown field", "/chat", { question: "q", documentIDs: ["x"] }, 400, /documentIDs/],
    ["stream not boolean", "/chat", { question: "q", stream: "yes" }, 400, /stream: must be true or false/],
    ["maxTokens negative", "/chat", { question: "q", maxTokens: -1 }, 400, /maxTokens/],
    ["ids and prefix", "/chat", { question: "q", documentIds: ["doc-a"], prefix: "r" }, 400, /either/],
    [
      "unknown id",
      "/chat",
      { question: "q", documentIds: ["doc-a", "nope"] },
      404,
      /Unknown document id: nope/,
    ],
    ["empty prefix match", "/chat", { question: "q", prefix: "zzz/" }, 404, /No documents/],
    ["model not offered", "/chat", { question: "q", model: "gpt-9" }, 400, /not offered.*kimi-k2\.6/],
    ["malformed JSON", "/chat", "{ not json", 400, /not valid JSON/],
    ["empty body", "/chat", "", 400, /empty/],
    [
      "maxTokens over window",
      "/chat",
      { question: "q", model: "tiny-4k", maxTokens: 5000 },
      400,
      /context window/,
    ],
    ["completions without messages", "/v1/chat/completions", { model: "kimi-k2.6" }, 400, /messages/],
    [
      "completions no user message",
      "/v1/chat/completions",
      { messages: [{ role: "system", content: "x" }] },
      400,
      /user message/,
    ],
    [
      "completions bad role",
      "/v1/chat/completions",
      { messages: [{ role: "robot", content: "x" }] },
      400,
      /role/,
    ],
    [
      "completions n=2",
      "/v1/chat/completions",
      { n: 2, messages: [{ role: "user", content: "x" }] },
      400,
      /n: kimi-k2\.6 fixes this parameter/,
    ],
    [
      "completions image part",
      "/v1/chat/completions",
      { messages: [{ role: "user", content: [{ type: "image_url" }] }] },
      400,
      /only text parts/,
    ],
    [
      "completions unknown document",
      "/v1/chat/completions",
      { documents: ["zz"], messages: [{ role: "user", content: "x" }] },
      404,
      /zz/,
    ],
  ];
  for (const [name, path, body, status, message] of cases) {
    it(name, async () => {
      const res = await post(makeApp(), path, body);
      expect(res.status).toBe(status);
      const json = await res.json();
      expect(json.error.type).toMatch(status === 404 ? /not_found/ : /invalid_request/);
      expect(json.error.message).toMatch(message);
    });
  }

  it("body too large is 413", async () => {
    const res = await post(makeApp({ maxBodyBytes: 1000 }), "/chat", { question: "x".repeat(2000) });
    expect(res.status).toBe(413);
    expect((await res.json()).error.type).toBe("request_too_large");
  });

  it("unknown route is a JSON 404", async () => {
    const res = await makeApp().request("/nope", { headers: authHeader });
    expect(res.status).toBe(404);
    expect((await res.json()).error.type).toBe("not_found_error");
  });
});

describe("provider errors", () => {
  const cases: [string, Error, number, string, string | null][] = [
    [
      "rate limit passes Retry-After",
      new RateLimitError("rate_limited", "x", { status: 429, retryAfterMs: 2500 }),
      429,
      "rate_limit_error",
      "3",
    ],
    [
      "quota exhausted",
      new QuotaExhaustedError("quota_exhausted", "x", { status: 429 }),
      429,
      "insufficient_quota",
      null,
    ],
    ["server error", new ServerError("server_error", "x", { status: 500 }), 502, "provider_error", null],
    ["network", new NetworkError("network", "x"), 503, "provider_unavailable", "5"],
    ["timeout", new TimeoutError("timeout", "x"), 504, "provider_timeout", null],
    [
      "not configured",
      new NotConfiguredError("not_configured", "no key"),
      503,
      "provider_not_configured",
      null,
    ],
  ];
  for (const [name, error, status, type, retryAfter] of cases) {
    it(name, async () => {
      moonshot.fail = { on: "chat", error };
      const res = await post(makeApp(), "/v1/chat/completions", {
        messages: [{ role: "user", content: "alpha?" }],
      });
      expect(res.status).toBe(status);
      expect(res.headers.get("retry-after")).toBe(retryAfter);
      const body = await res.json();
      expect(body.error.type).toBe(type);
      expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // no stack
      if (type === "provider_not_configured")
        expect(body.error.message).toMatch(/provider API key not configured/);
    });
  }

  it("a failing model list maps too (and the list is cached)", async () => {
    const app = makeApp();
    await post(app, "/chat", { question: "q" });
    await post(app, "/chat", { question: "q" });
    expect(moonshot.listModelsCalls).toBe(1);
    const fresh = makeApp();
    moonshot.fail = { on: "models", error: new NotConfiguredError("not_configured", "no key") };
    const res = await post(fresh, "/chat", { question: "q" });
    expect(res.status).toBe(503);
  });

  it("an unexpected error is a JSON 500 without a stack", async () => {
    moonshot.fail = { on: "chat", error: new TypeError("cannot read properties of undefined") };
    const logged: string[] = [];
    const res = await post(
      makeApp({ logger: { info() {}, warn() {}, error: (m) => logged.push(m) } }),
      "/chat",
      {
        question: "q",
      },
    );
    expect(logged).toEqual(["request failed"]);
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.error.type).toBe("internal_error");
    expect(JSON.stringify(body)).not.toContain("cannot read");
  });
});

describe("documents routes", () => {
  it("lists with paging, prefix and status filters", async () => {
    const app = makeApp();
    const first = await (await app.request("/documents?limit=2", { headers: authHeader })).json();
    expect(first.items.map((d: { key: string }) => d.key)).toEqual(["other/c.txt", "reports/a.txt"]);
    expect(first.cursor).toEqual(expect.any(String));
    const second = await (
      await app.request(`/documents?limit=2&cursor=${encodeURIComponent(first.cursor)}`, {
        headers: authHeader,
      })
    ).json();
    expect(second.items.map((d: { key: string }) => d.key)).toEqual(["reports/b.txt", "reports/f.pdf"]);
    const failed = await (
      await app.request("/documents?prefix=reports/&status=failed", { headers: authHeader })
    ).json();
    expect(failed.items).toHaveLength(1);
    expect(failed.items[0].error.code).toBe("unsupported_type");
    expect(failed.items[0]).not.toHaveProperty("sequencer");
    expect(failed.cursor).toBeNull();
  });

  it("rejects bad query parameters and cursors", async () => {
    const app = makeApp();
    for (const [q, re] of [
      ["status=done", /status/],
      ["limit=0", /limit/],
      ["limit=abc", /limit/],
      ["cursor=zzz", /cursor/],
      ["colour=red", /colour/],
    ] as const) {
      const res = await app.request(`/documents?${q}`, { headers: authHeader });
      expect(res.status, q).toBe(400);
      expect((await res.json()).error.message).toMatch(re);
    }
  });

  it("gets one document, 404 for an unknown one", async () => {
    const app = makeApp();
    const res = await app.request("/documents/doc-f", { headers: authHeader });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      documentId: "doc-f",
      status: "failed",
      error: { code: "unsupported_type" },
    });
    const missing = await app.request("/documents/nope", { headers: authHeader });
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.message).toMatch(/nope/);
  });

  it("DELETE removes the S3 object and answers 202", async () => {
    const app = makeApp();
    const res = await app.request("/documents/doc-a", { method: "DELETE", headers: authHeader });
    expect(res.status).toBe(202);
    expect((await res.json()).message).toMatch(/reports\/a\.txt/);
    expect(deleted).toEqual([{ bucket: "docs", key: "reports/a.txt" }]);
    const missing = await app.request("/documents/nope", { method: "DELETE", headers: authHeader });
    expect(missing.status).toBe(404);
  });
});

describe("auth", () => {
  const routes: [string, string, unknown?][] = [
    ["GET", "/health"],
    ["GET", "/documents"],
    ["GET", "/documents/doc-a"],
    ["DELETE", "/documents/doc-a"],
    ["POST", "/chat", { question: "q" }],
    ["POST", "/v1/chat/completions", { messages: [{ role: "user", content: "q" }] }],
  ];
  for (const [method, path, body] of routes) {
    it(`${method} ${path} needs the token`, async () => {
      const app = makeApp();
      for (const headers of [
        {} as Record<string, string>,
        { authorization: "Bearer wrong" },
        { authorization: TOKEN },
        { authorization: "Basic abc" },
      ]) {
        const res = await app.request(path, {
          method,
          headers: { "content-type": "application/json", ...headers },
          body: body ? JSON.stringify(body) : undefined,
        });
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
        expect((await res.json()).error.type).toBe("authentication_error");
      }
      expect(deleted).toEqual([]);
      const ok = await app.request(path, {
        method,
        headers: { "content-type": "application/json", ...authHeader },
        body: body ? JSON.stringify(body) : undefined,
      });
      expect(ok.status).toBeLessThan(300);
    });
  }

  it("without authenticate, requests need API Gateway authorizer context", async () => {
    const app = makeApp({ authenticate: undefined });
    expect((await app.request("/health")).status).toBe(401);
    const via = (authorizer: Record<string, unknown> | null) =>
      app.request("/health", {}, { event: { requestContext: { authorizer } } });
    expect((await via({ principalId: "api-token", auth: "bearer" })).status).toBe(200);
    // Fail closed: an empty principal, or no context from our authorizer (another authorizer, none).
    for (const authorizer of [
      null,
      {},
      { principalId: "api-token" },
      { principalId: "", auth: "bearer" },
      { principalId: "  ", auth: "bearer" },
      { principalId: "user", auth: "something-else" },
      { claims: { sub: "x" } },
    ]) {
      expect((await via(authorizer)).status, JSON.stringify(authorizer)).toBe(401);
    }
    const open = makeApp({ authenticate: undefined, requireGatewayAuthorizer: false });
    expect((await open.request("/health")).status).toBe(200);
  });
});
