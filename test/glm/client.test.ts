/**
 * The GLM adapter over real HTTP against a scripted server: GLM's error codes and messages (English
 * from api.z.ai, Chinese from open.bigmodel.cn) become the right typed errors, the file list follows
 * every page, token counting uses GLM's tokenizer when it takes the model and a local over-estimate
 * when it does not, and the models come from configuration.
 */
import { Readable } from "node:stream";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { GlmClient, type GlmClientOptions, glmLocalTokenCount } from "../../functions/core/glm/adapter";
import {
  AuthenticationError,
  ContentFilterError,
  ContextLengthError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  PermissionDeniedError,
  type ProviderError,
  QuotaExhaustedError,
  RateLimitError,
  ServerError,
} from "../../functions/core/provider/errors";
import type { ChatMessage } from "../../functions/core/provider/types";
import { countChatTokens } from "../../local/emulator/tokens";
import { type Handler, json, type Scripted, startScripted } from "../moonshot/support/scripted-server";

let server: Scripted | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const FAST = { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 200, maxElapsedMs: 5_000 };

async function clientFor(handler: Handler, over: Partial<GlmClientOptions> = {}) {
  server = await startScripted(handler);
  const client = new GlmClient({
    baseURL: `http://127.0.0.1:${server.port}/api/paas/v4`,
    apiKey: async () => "glm-test-key",
    retry: FAST,
    requestTimeoutMs: 2_000,
    ...over,
  });
  return { client, server };
}

const glmError = (status: number, code: string, message: string): Handler => {
  return (_req, res) => json(res, status, { error: { code, message } });
};

async function failure(p: Promise<unknown>): Promise<ProviderError> {
  try {
    await p;
  } catch (err) {
    return err as ProviderError;
  }
  throw new Error("expected the call to fail");
}

const file = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  object: "file",
  bytes: 3,
  created_at: 1_700_000_000,
  filename: `${id}.pdf`,
  purpose: "file-extract",
  ...over,
});

describe("error mapping (GLM business codes)", () => {
  type Op = "upload" | "content" | "chat" | "delete";
  const cases: Array<[string, Op, number, string, string, new (...a: never[]) => ProviderError, boolean]> = [
    ["1000 authentication", "content", 401, "1000", "Authentication Failed", AuthenticationError, false],
    [
      "1002 invalid token (zh)",
      "content",
      401,
      "1002",
      "Authentication Token非法，请确认Authentication Token正确传递。",
      AuthenticationError,
      false,
    ],
    [
      "1113 arrears at 429 is out of credit, not a rate limit",
      "chat",
      429,
      "1113",
      "Your account is in arrears, please recharge and try again",
      QuotaExhaustedError,
      false,
    ],
    [
      "1302 concurrency",
      "chat",
      429,
      "1302",
      "High concurrency usage of this API, please reduce concurrency",
      RateLimitError,
      true,
    ],
    [
      "1303 frequency (zh)",
      "upload",
      429,
      "1303",
      "您当前使用该 API 的频率过高，请降低频率",
      RateLimitError,
      true,
    ],
    ["1261 prompt too long", "chat", 400, "1261", "Prompt 超长", ContextLengthError, false],
    [
      "1301 unsafe content",
      "chat",
      400,
      "1301",
      "System detected potentially unsafe or sensitive content in input or generation.",
      ContentFilterError,
      false,
    ],
    [
      "1112 locked account",
      "chat",
      403,
      "1112",
      "Your account has been locked",
      PermissionDeniedError,
      false,
    ],
    ["1211 unknown model", "chat", 400, "1211", "Model does not exist", InvalidRequestError, false],
    [
      "1214 'messages' empty on chat is not an empty file",
      "chat",
      400,
      "1214",
      "messages:输入不能为空",
      InvalidRequestError,
      false,
    ],
    ["500 internal error", "chat", 500, "500", "Internal Error", ServerError, true],
    [
      "file too large (en)",
      "upload",
      400,
      "1214",
      "File size exceeds the limit of 50MB",
      FileTooLargeError,
      false,
    ],
    ["file too large (zh)", "upload", 400, "1214", "文件大小超过50M限制", FileTooLargeError, false],
    ["435 file too large", "upload", 435, "435", "File size exceeds 100MB", FileTooLargeError, false],
    ["empty file (zh)", "upload", 400, "1214", "上传文件为空", EmptyFileError, false],
    [
      "too many files (en)",
      "upload",
      400,
      "1214",
      "The number of files exceeds the limit of 100, please delete some files",
      FileCountQuotaError,
      false,
    ],
    ["too many files (zh)", "upload", 400, "1214", "文件数量已达上限100个", FileCountQuotaError, false],
    [
      "extraction failed",
      "content",
      400,
      "1214",
      "Failed to extract file content: broken xref table",
      ExtractionFailedError,
      false,
    ],
    ["extraction failed (zh)", "content", 400, "1214", "文件解析失败", ExtractionFailedError, false],
    ["434 file API not opened", "upload", 434, "434", "No API permission", PermissionDeniedError, false],
  ];

  it.each(cases)("%s", async (_name, op, status, code, message, cls, retryable) => {
    const { client, server } = await clientFor(glmError(status, code, message));
    const call =
      op === "upload"
        ? client.uploadFile({ filename: "a.pdf", size: 3, open: () => Readable.from([Buffer.from("abc")]) })
        : op === "content"
          ? client.getFileContent("file-1")
          : op === "delete"
            ? client.deleteFile("file-1")
            : client.chat({ model: "glm-4.6", messages: [{ role: "user", content: "hi" }] });
    const err = await failure(call);
    expect(err).toBeInstanceOf(cls);
    expect(err.retryable).toBe(retryable);
    expect(err.status).toBe(status);
    expect(err.message).toContain(message);
    // Retryable errors are retried (up to the policy's attempts); the others are sent once.
    expect(server.requests.length).toBe(retryable ? FAST.maxAttempts : 1);
  });

  it("a delete of a file GLM no longer has is 'already gone', whatever code the 404 carries", async () => {
    const { client } = await clientFor(glmError(404, "1214", "file not found"));
    expect(await client.deleteFile("file-gone")).toBe(false);
  });

  it("an error inside a stream (code only, no status) maps by its code", async () => {
    const { client } = await clientFor((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end(`data: ${JSON.stringify({ error: { code: "1113", message: "account in arrears" } })}\n\n`);
    });
    const stream = client.chatStream({ model: "glm-4.6", messages: [{ role: "user", content: "hi" }] });
    const err = await failure(
      (async () => {
        for await (const _ of stream) {
          // drain
        }
      })(),
    );
    expect(err).toBeInstanceOf(QuotaExhaustedError);
  });

  it("an HTML page from a proxy still maps by status", async () => {
    const { client } = await clientFor((_req, res) => {
      res
        .writeHead(502, { "content-type": "text/html" })
        .end("<html><body><h1>502 Bad Gateway</h1></body></html>");
    });
    const err = await failure(client.getFileContent("file-1"));
    expect(err).toBeInstanceOf(ServerError);
    expect(err.message).toContain("502 Bad Gateway");
    expect(err.message).not.toContain("<");
  });
});

describe("files", () => {
  it("lists every file-extract file, page by page with after/limit/has_more", async () => {
    const all = Array.from({ length: 250 }, (_, i) => file(`file-${String(i).padStart(3, "0")}`));
    const { client, server } = await clientFor((req, res) => {
      const url = new URL(req.url ?? "", "http://x");
      const after = url.searchParams.get("after");
      const limit = Number(url.searchParams.get("limit"));
      const start = after ? all.findIndex((f) => f.id === after) + 1 : 0;
      const data = all.slice(start, start + limit);
      json(res, 200, { object: "list", data, has_more: start + limit < all.length });
    });
    const listed = await client.listFiles();
    expect(listed.map((f) => f.id)).toEqual(all.map((f) => f.id));
    expect(server.requests.map((r) => r.url)).toEqual([
      "/api/paas/v4/files?purpose=file-extract&limit=100",
      "/api/paas/v4/files?purpose=file-extract&limit=100&after=file-099",
      "/api/paas/v4/files?purpose=file-extract&limit=100&after=file-199",
    ]);
  });

  it("refuses a cursor that repeats a page for ever instead of looping", async () => {
    const { client, server } = await clientFor((_req, res) =>
      json(res, 200, { object: "list", data: [file("file-a")], has_more: true }),
    );
    const err = await failure(client.listFiles());
    expect(err).toBeInstanceOf(ServerError);
    expect(err.message).toMatch(/repeated the previous one/);
    expect(server.requests.length).toBe(2);
  });

  it("takes an upload answered without status, and reads the content envelope", async () => {
    const { client, server } = await clientFor((req, res) => {
      if (req.method === "POST")
        return json(res, 200, file("file-new", { filename: "report.pdf", bytes: 5 }));
      json(res, 200, {
        content: "extracted text",
        file_type: "application/pdf",
        filename: "report.pdf",
        title: "",
        type: "file",
      });
    });
    const uploaded = await client.uploadFile({
      filename: "report.pdf",
      size: 5,
      open: () => Readable.from([Buffer.from("%PDF-")]),
    });
    expect(uploaded.id).toBe("file-new");
    expect(uploaded.status).toBeUndefined();
    expect(await client.getFileContent("file-new")).toBe("extracted text");
    expect(server.requests[0]!.url).toBe("/api/paas/v4/files");
    expect(server.requests[0]!.headers.authorization).toBe("Bearer glm-test-key");
    expect(server.requests[0]!.body!.toString()).toContain('name="purpose"\r\n\r\nfile-extract');
    expect(server.requests[1]!.url).toBe("/api/paas/v4/files/file-new/content");
  });

  it("refuses a file over GLM's 50 MB before sending it", async () => {
    const { client, server } = await clientFor((_req, res) => json(res, 200, {}));
    const err = await failure(
      client.uploadFile({
        filename: "big.pdf",
        size: 51 * 1024 * 1024,
        open: () => Readable.from([]),
      }),
    );
    expect(err).toBeInstanceOf(FileTooLargeError);
    expect(server.requests.length).toBe(0);
  });
});

describe("token counting and models", () => {
  const messages: ChatMessage[] = [
    { role: "system", content: "Document: a.md\n\nThe launch is on Tuesday." },
    { role: "user", content: "When is the launch?" },
  ];

  it("uses GLM's tokenizer when it takes the model", async () => {
    const { client, server } = await clientFor((_req, res) =>
      json(res, 200, { id: "t1", created: 1, usage: { prompt_tokens: 42 } }),
    );
    expect(await client.estimateTokenCount({ model: "glm-4.6", messages })).toBe(42);
    expect(server.requests[0]!.url).toBe("/api/paas/v4/tokenizer");
    expect(JSON.parse(server.requests[0]!.body!.toString())).toEqual({ model: "glm-4.6", messages });
  });

  it("counts locally, and does not ask again, when the tokenizer refuses a model", async () => {
    const { client, server } = await clientFor(glmError(400, "1214", "model 参数非法"));
    const local = glmLocalTokenCount(messages);
    expect(await client.estimateTokenCount({ model: "glm-4.5-air", messages })).toBe(local);
    expect(await client.estimateTokenCount({ model: "glm-4.5-air", messages })).toBe(local);
    expect(server.requests.length).toBe(1);
  });

  it("counts locally this time, without retrying, when the tokenizer is unavailable", async () => {
    const { client, server } = await clientFor(glmError(500, "500", "Internal Error"));
    expect(await client.estimateTokenCount({ model: "glm-4.6", messages })).toBe(
      glmLocalTokenCount(messages),
    );
    expect(await client.estimateTokenCount({ model: "glm-4.6", messages })).toBe(
      glmLocalTokenCount(messages),
    );
    expect(server.requests.length).toBe(2);
  });

  it("passes an authentication error on: the chat would fail the same way", async () => {
    const { client } = await clientFor(glmError(401, "1000", "Authentication Failed"));
    expect(await failure(client.estimateTokenCount({ model: "glm-4.6", messages }))).toBeInstanceOf(
      AuthenticationError,
    );
  });

  it("offers the configured models with their windows, without a request", async () => {
    const { client, server } = await clientFor((_req, res) => json(res, 404, {}));
    expect(await client.listModels()).toContainEqual(
      expect.objectContaining({ id: "glm-4.6", context_length: 200_000 }),
    );
    const custom = new GlmClient({ apiKey: async () => "k", models: { "glm-x": 32_000 } });
    expect(await custom.listModels()).toEqual([
      { id: "glm-x", object: "model", owned_by: "zhipu", context_length: 32_000 },
    ]);
    expect(server.requests.length).toBe(0);
  });

  it("the local count never falls below the emulator's GLM count, whatever the text", () => {
    const text = fc.oneof(
      fc.string({ unit: "grapheme", maxLength: 400 }),
      fc.string({ unit: "binary", maxLength: 400 }),
      fc.constantFrom(
        '{"key": "value", "nested": {"data": 123}} ',
        "!@#$%^&*()_+",
        "数据 表\n\n",
        "a b c d e f",
      ),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("system", "user", "assistant"), text), {
          minLength: 1,
          maxLength: 6,
        }),
        (pairs) => {
          const msgs = pairs.map(([role, content]) => ({ role, content }) as ChatMessage);
          expect(glmLocalTokenCount(msgs)).toBeGreaterThanOrEqual(countChatTokens(msgs));
        },
      ),
      { numRuns: 300 },
    );
  });

  it("streamed requests do not send stream_options (not in GLM's chat reference)", async () => {
    const { client, server } = await clientFor((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (o: object) =>
        `data: ${JSON.stringify({ id: "c1", created: 1, model: "glm-4.6", ...o })}\n\n`;
      res.write(chunk({ choices: [{ index: 0, delta: { role: "assistant", content: "Tues" } }] }));
      res.write(
        chunk({
          choices: [{ index: 0, delta: { content: "day" }, finish_reason: "stop" }],
          usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 },
        }),
      );
      res.end("data: [DONE]\n\n");
    });
    const parts: string[] = [];
    let usage: unknown;
    for await (const d of client.chatStream({ model: "glm-4.6", messages })) {
      if (d.content) parts.push(d.content);
      if (d.done) usage = d.usage;
    }
    expect(parts.join("")).toBe("Tuesday");
    expect(usage).toEqual({ prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 });
    const sent = JSON.parse(server.requests[0]!.body!.toString());
    expect(sent.stream).toBe(true);
    expect(sent).not.toHaveProperty("stream_options");
    expect(server.requests[0]!.url).toBe("/api/paas/v4/chat/completions");
  });
});
