/**
 * streamFileContent over real HTTP against a scripted server: the text arrives piece by piece (the
 * JSON envelope split anywhere), opening is retried like any call, and after the first bytes a stall,
 * the deadline, a cut envelope, the caller's abort or an early exit end the stream as they should.
 */
import { afterEach, describe, expect, it } from "vitest";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import { NetworkError, ServerError, TimeoutError } from "../../functions/core/provider/errors";
import { type Handler, providerError, type Scripted, sleep, startScripted } from "./support/scripted-server";

let server: Scripted | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function clientFor(handler: Handler, requestTimeoutMs = 2_000) {
  server = await startScripted(handler);
  const client = new MoonshotClient({
    baseURL: server.baseURL,
    apiKey: async () => "sk-test",
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 100, maxElapsedMs: 5_000 },
    requestTimeoutMs,
  });
  return { client, server };
}

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const piece of it) out.push(piece);
  return out;
}

const ENVELOPE = JSON.stringify({
  content: 'line one\n"quoted" \\ é 漢字\nline three',
  file_type: "text/plain",
});

describe("MoonshotClient.streamFileContent", () => {
  it("decodes a JSON envelope written in small pieces (mid-escape, mid-UTF-8) into the text", async () => {
    const { client } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const bytes = Buffer.from(ENVELOPE);
      for (let i = 0; i < bytes.length; i += 3) {
        res.write(bytes.subarray(i, i + 3));
        await sleep(1);
      }
      res.end();
    });
    const pieces = await collect(client.streamFileContent("file-1"));
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("")).toBe(JSON.parse(ENVELOPE).content);
  });

  it("an HTTP error before the body is mapped and retried like any call", async () => {
    const { client, server } = await clientFor((_q, res) => providerError(res, 500, "server_error", "down"));
    const err = await collect(client.streamFileContent("file-1")).catch((e) => e);
    expect(err).toBeInstanceOf(ServerError);
    expect(server.requests).toHaveLength(3);
  });

  it("a body that goes silent past the request timeout becomes a retryable TimeoutError", async () => {
    const { client } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("the first words ");
      await sleep(800);
      if (!res.destroyed) res.end("and the rest");
    }, 150);
    const got: string[] = [];
    const err = await (async () => {
      for await (const piece of client.streamFileContent("file-1")) got.push(piece);
    })().catch((e) => e);
    expect(got.join("")).toBe("the first words ");
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/no data from the provider/);
  });

  it("the call's deadline ends a slow body with a TimeoutError that is not retried", async () => {
    const { client } = await clientFor(async (_q, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      for (let i = 0; i < 100 && !res.destroyed; i++) {
        res.write(`${i} `);
        await sleep(20);
      }
      if (!res.destroyed) res.end();
    });
    const err = await collect(client.streamFileContent("file-1", { deadline: Date.now() + 300 })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/deadline/);
  });

  it("an envelope cut short is a retryable NetworkError, not a shorter text", async () => {
    const { client } = await clientFor((_q, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(ENVELOPE.slice(0, 30));
    });
    const err = await collect(client.streamFileContent("file-1")).catch((e) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/files\.content: .*envelope/);
  });

  it("breaking out early closes the HTTP stream; a caller's abort ends it with the abort", async () => {
    const endless: Handler = async (_q, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      for (let i = 0; i < 200 && !res.destroyed; i++) {
        res.write(`${i} `);
        await sleep(5);
      }
      if (!res.destroyed) res.end();
    };
    const { client, server } = await clientFor(endless);
    for await (const piece of client.streamFileContent("file-1")) {
      if (piece.includes("2 ")) break;
    }
    await expect.poll(() => server.requests[0].clientClosed).toBe(true);

    const ac = new AbortController();
    setTimeout(() => ac.abort(), 60);
    const err = await collect(client.streamFileContent("file-1", { signal: ac.signal })).catch((e) => e);
    expect(err.name).toBe("AbortError");
  });
});
