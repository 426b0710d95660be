/**
 * Chat over real HTTP against a scripted server: plain completions, and SSE streams written in awkward
 * pieces (frames split mid-JSON and mid-UTF-8, CRLF line ends, comments), both usage placements,
 * reasoning deltas, retries before the first byte only, truncation, idle timeouts and early exit.
 */
import type { ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { MoonshotClient, type MoonshotClientOptions } from "../../functions/core/moonshot/adapter";
import {
  ContextLengthError,
  NetworkError,
  RateLimitError,
  ServerError,
  TimeoutError,
} from "../../functions/core/provider/errors";
import type { ChatDelta, ChatRequest } from "../../functions/core/provider/types";
import {
  drop,
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

async function clientFor(handler: Handler, over: Partial<MoonshotClientOptions> = {}) {
  server = await startScripted(handler);
  const client = new MoonshotClient({
    baseURL: server.baseURL,
    apiKey: async () => "sk-test",
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 100, maxElapsedMs: 5_000 },
    requestTimeoutMs: 2_000,
    ...over,
  });
  return { client, server };
}

const REQ: ChatRequest = {
  model: "kimi-k2.6",
  messages: [
    { role: "system", content: "Answer from the documents." },
    { role: "user", content: "What colour is the fox?" },
  ],
  max_tokens: 256,
};

const chunk = (
  delta: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  finish: string | null = null,
) => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created: 1,
  model: "kimi-k2.6",
  choices: [{ index: 0, delta, finish_reason: finish, ...extra }],
});

/** Serialises events as SSE and writes the bytes in pieces of `piece` bytes (splitting frames anywhere). */
async function writeSse(
  res: ServerResponse,
  events: unknown[],
  opts: { piece?: number; crlf?: boolean; done?: boolean } = {},
) {
  const nl = opts.crlf ? "\r\n" : "\n";
  let text = `: keep-alive comment${nl}${nl}`;
  for (const e of events) text += `data: ${JSON.stringify(e)}${nl}${nl}`;
  if (opts.done !== false) text += `data: [DONE]${nl}${nl}`;
  const bytes = Buffer.from(text, "utf8");
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  const piece = opts.piece ?? bytes.length;
  for (let i = 0; i < bytes.length; i += piece) {
    res.write(bytes.subarray(i, i + piece));
    // Yield to the event loop so each piece leaves as its own write.
    if (piece < bytes.length) await new Promise((r) => setImmediate(r));
  }
  res.end();
}

async function collect(it: AsyncIterable<ChatDelta>): Promise<ChatDelta[]> {
  const out: ChatDelta[] = [];
  for await (const d of it) out.push(d);
  return out;
}

const text = (ds: ChatDelta[]) => ds.map((d) => d.content ?? "").join("");

describe("chat", () => {
  it("returns content, reasoning, finish reason and usage; sends the request body as given", async () => {
    const { client, server } = await clientFor((_q, res) =>
      json(res, 200, {
        id: "chatcmpl-9",
        object: "chat.completion",
        created: 1,
        model: "kimi-k2.6",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: "Brown.", reasoning_content: "The doc says brown." },
            finish_reason: "stop",
          },
        ],
        usage: { prompt_tokens: 20, completion_tokens: 2, total_tokens: 22 },
      }),
    );
    const r = await client.chat(REQ);
    expect(r).toEqual({
      id: "chatcmpl-9",
      model: "kimi-k2.6",
      content: "Brown.",
      reasoningContent: "The doc says brown.",
      finishReason: "stop",
      choices: [
        { index: 0, content: "Brown.", reasoningContent: "The doc says brown.", finishReason: "stop" },
      ],
      usage: { prompt_tokens: 20, completion_tokens: 2, total_tokens: 22 },
    });
    const req = server.requests[0];
    expect(req.url).toBe("/v1/chat/completions");
    expect(req.headers.authorization).toBe("Bearer sk-test");
    expect(JSON.parse(req.body!.toString())).toEqual({ ...REQ, stream: false });
  });

  it("maps a context overflow to ContextLengthError without retrying", async () => {
    const { client, server } = await clientFor((_q, res) =>
      providerError(
        res,
        400,
        "invalid_request_error",
        "Invalid request: Your request exceeded model token limit : 8192",
      ),
    );
    await expect(client.chat(REQ)).rejects.toBeInstanceOf(ContextLengthError);
    expect(server.requests).toHaveLength(1);
  });

  it("retries a 429 engine_overloaded_error honouring retry-after-ms", async () => {
    const { client, server } = await clientFor((_q, res, n) =>
      n === 0
        ? providerError(res, 429, "engine_overloaded_error", "overloaded", { "retry-after-ms": "60" })
        : json(res, 200, {
            id: "c",
            object: "chat.completion",
            created: 1,
            model: "kimi-k2.6",
            choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
          }),
    );
    const t0 = Date.now();
    const r = await client.chat(REQ);
    expect(r.content).toBe("ok");
    expect(r.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(server.requests).toHaveLength(2);
  });
});

describe("chatStream", () => {
  const moonshotStyle = [
    chunk({ role: "assistant", content: "" }),
    chunk({ reasoning_content: "Looking at the " }),
    chunk({ reasoning_content: "document…" }),
    chunk({ content: "The fox " }),
    chunk({ content: "is brown — 茶色." }),
    chunk({}, { usage: { prompt_tokens: 30, completion_tokens: 7, total_tokens: 37 } }, "stop"),
  ];

  it("parses frames split anywhere (1-byte writes, CRLF), Moonshot-style usage in choices[0]", async () => {
    const { client, server } = await clientFor((_q, res) =>
      writeSse(res, moonshotStyle, { piece: 7, crlf: true }),
    );
    const deltas = await collect(client.chatStream(REQ));
    expect(text(deltas)).toBe("The fox is brown — 茶色.");
    expect(deltas.map((d) => d.reasoningContent ?? "").join("")).toBe("Looking at the document…");
    const last = deltas.at(-1)!;
    expect(last).toEqual({
      done: true,
      finishReason: "stop",
      usage: { prompt_tokens: 30, completion_tokens: 7, total_tokens: 37 },
    });
    expect(deltas.filter((d) => d.done)).toHaveLength(1);
    const body = JSON.parse(server.requests[0].body!.toString());
    expect(body).toMatchObject({ model: "kimi-k2.6", stream: true, stream_options: { include_usage: true } });
  });

  it("single-byte writes still decode multi-byte characters correctly", async () => {
    const { client } = await clientFor((_q, res) => writeSse(res, moonshotStyle, { piece: 1 }));
    const deltas = await collect(client.chatStream(REQ));
    expect(text(deltas)).toBe("The fox is brown — 茶色.");
  });

  it("OpenAI-style usage on a final chunk with empty choices", async () => {
    const events = [
      chunk({ content: "Hi" }),
      chunk({}, {}, "length"),
      {
        id: "chatcmpl-1",
        object: "chat.completion.chunk",
        created: 1,
        model: "m",
        choices: [],
        usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
      },
    ];
    const { client } = await clientFor((_q, res) => writeSse(res, events));
    const deltas = await collect(client.chatStream(REQ));
    expect(deltas.at(-1)).toEqual({
      done: true,
      finishReason: "length",
      usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
    });
  });

  it("retries a stream that fails before the first byte (429, then a dropped connection)", async () => {
    const { client, server } = await clientFor(async (_q, res, n) => {
      if (n === 0)
        return providerError(res, 429, "rate_limit_reached_error", "slow down", { "retry-after-ms": "20" });
      if (n === 1) {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.flushHeaders();
        await sleep(20);
        return drop(res);
      }
      return writeSse(res, moonshotStyle);
    });
    const deltas = await collect(client.chatStream(REQ));
    expect(text(deltas)).toBe("The fox is brown — 茶色.");
    expect(server.requests).toHaveLength(3);
  });

  it("does not retry once a delta was delivered: the consumer gets a NetworkError", async () => {
    const { client, server } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify(chunk({ content: "partial " }))}\n\n`);
      await sleep(30);
      drop(res);
    });
    const seen: ChatDelta[] = [];
    const err = await (async () => {
      for await (const d of client.chatStream(REQ)) seen.push(d);
    })().catch((e) => e);
    expect(text(seen)).toBe("partial ");
    expect(err).toBeInstanceOf(NetworkError);
    expect(server.requests).toHaveLength(1);
  });

  it("a stream that ends cleanly but without a finish_reason is reported as truncated", async () => {
    const { client } = await clientFor((_q, res) =>
      writeSse(res, [chunk({ content: "cut" })], { done: false }),
    );
    const err = await collect(client.chatStream(REQ)).catch((e) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.message).toMatch(/before the model finished/);
  });

  it("a stream that goes silent past the idle timeout becomes a TimeoutError", async () => {
    const { client } = await clientFor(
      async (_q, res) => {
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(`data: ${JSON.stringify(chunk({ content: "a" }))}\n\n`);
        await sleep(800);
        if (!res.destroyed) res.end();
      },
      { requestTimeoutMs: 150 },
    );
    const err = await collect(client.chatStream(REQ)).catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/no data from the provider/);
  });

  it("an error event inside the stream is mapped by its type", async () => {
    const { client } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify(chunk({ content: "a" }))}\n\n`);
      res.end(
        `data: ${JSON.stringify({ error: { type: "engine_overloaded_error", message: "overloaded mid-stream" } })}\n\n`,
      );
    });
    const err = await collect(client.chatStream(REQ)).catch((e) => e);
    expect(err).toBeInstanceOf(RateLimitError);
    expect(err.message).toContain("overloaded mid-stream");
  });

  it("an HTTP error before the stream starts is mapped and retried like any call", async () => {
    const { client, server } = await clientFor((_q, res) => providerError(res, 500, "server_error", "down"));
    const err = await collect(client.chatStream(REQ)).catch((e) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(server.requests).toHaveLength(3);
  });

  it("breaking out early closes the HTTP stream", async () => {
    const { client, server } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < 200 && !res.destroyed; i++) {
        res.write(`data: ${JSON.stringify(chunk({ content: `${i} ` }))}\n\n`);
        await sleep(5);
      }
      if (!res.destroyed) res.end("data: [DONE]\n\n");
    });
    for await (const d of client.chatStream(REQ)) {
      if (d.content?.startsWith("2 ")) break;
    }
    await expect.poll(() => server.requests[0].clientClosed).toBe(true);
  });

  it("a caller's abort mid-stream ends it with the abort", async () => {
    const { client } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < 100 && !res.destroyed; i++) {
        res.write(`data: ${JSON.stringify(chunk({ content: "x" }))}\n\n`);
        await sleep(10);
      }
      if (!res.destroyed) res.end();
    });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 60);
    const err = await collect(client.chatStream(REQ, { signal: ac.signal })).catch((e) => e);
    expect(err.name).toBe("AbortError");
  });
});
