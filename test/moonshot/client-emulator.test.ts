/**
 * MoonshotClient against the Moonshot emulator over real HTTP: every operation, both content shapes,
 * each error class end to end, retries through injected faults, and a streamed 50 MB upload whose
 * memory cost must stay far below the file size. Request bodies are checked against the provider's
 * OpenAPI request schemas.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  generateFile,
  measureUpload,
  startChildEmulator,
  stopChildEmulator,
} from "../../bench/upload-memory";
import { MoonshotClient, type MoonshotClientOptions } from "../../functions/core/moonshot/adapter";
import type { RequestEvent } from "../../functions/core/provider/client";
import {
  AuthenticationError,
  ContextLengthError,
  EmptyFileError,
  FileCountQuotaError,
  FileTooLargeError,
  NetworkError,
  NotFoundError,
  QuotaExhaustedError,
  StorageQuotaError,
  TimeoutError,
} from "../../functions/core/provider/errors";
import type { ChatDelta, ChatRequest, UploadSource } from "../../functions/core/provider/types";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { validateRequest } from "../support/openapi";

const KEY = "sk-emulator-test";
let emu: RunningEmulator;

/** Records JSON request bodies so they can be checked against the OpenAPI request schemas. */
const sent: Array<{ method: string; path: string; body: unknown }> = [];
const recordingFetch: typeof fetch = async (input, init) => {
  if (typeof init?.body === "string") {
    const url = new URL(String(input instanceof Request ? input.url : input));
    sent.push({ method: init.method ?? "GET", path: url.pathname, body: JSON.parse(init.body) });
  }
  return fetch(input, init);
};

function client(over: Partial<MoonshotClientOptions> = {}): MoonshotClient {
  return new MoonshotClient({
    baseURL: emu.baseURL,
    apiKey: async () => KEY,
    retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 2_000, maxElapsedMs: 20_000 },
    requestTimeoutMs: 10_000,
    fetch: recordingFetch,
    ...over,
  });
}

const textSource = (filename: string, text: string): UploadSource => {
  const bytes = Buffer.from(text, "utf8");
  return { filename, size: bytes.length, contentType: "text/plain", open: () => Readable.from([bytes]) };
};

const DOC = "The northern warehouse stores blue umbrellas.\nThe southern warehouse stores red kettles.\n";

beforeAll(async () => {
  emu = await startEmulator({ apiKey: KEY });
});
afterAll(async () => {
  await emu?.close();
});
beforeEach(async () => {
  await emu.reset();
  sent.length = 0;
});

describe("operations", () => {
  it("upload, retrieve, list, content (JSON envelope), delete, delete again -> false", async () => {
    const c = client();
    const file = await c.uploadFile(textSource("warehouses.txt", DOC));
    expect(file).toMatchObject({
      object: "file",
      bytes: Buffer.byteLength(DOC),
      filename: "warehouses.txt",
      purpose: "file-extract",
    });
    expect(["ok", "ready"]).toContain(file.status);
    expect((await c.retrieveFile(file.id)).id).toBe(file.id);
    expect((await c.listFiles()).map((f) => f.id)).toEqual([file.id]);
    expect(await c.getFileContent(file.id)).toContain("blue umbrellas");
    expect(await c.deleteFile(file.id)).toBe(true);
    expect(await c.deleteFile(file.id)).toBe(false);
    expect(await c.listFiles()).toEqual([]);
    expect(emu.files()).toHaveLength(0);
  });

  it("content as plain text (contentFormat: text)", async () => {
    const plain = await startEmulator({ apiKey: KEY, contentFormat: "text" });
    try {
      const c = new MoonshotClient({ baseURL: plain.baseURL, apiKey: async () => KEY });
      const file = await c.uploadFile(textSource("w.txt", DOC));
      const text = await c.getFileContent(file.id);
      expect(text).toContain("red kettles");
      expect(text.trimStart().startsWith("{")).toBe(false);
    } finally {
      await plain.close();
    }
  });

  it("chat answers from the system message; stream yields the same text with usage", async () => {
    const c = client();
    const req: ChatRequest = {
      model: "moonshot-v1-8k",
      messages: [
        { role: "system", content: `Document warehouses.txt:\n${DOC}` },
        { role: "user", content: "Which warehouse stores red kettles?" },
      ],
      max_tokens: 200,
    };
    const plain = await c.chat(req);
    expect(plain.content).toContain("southern");
    expect(plain.finishReason).toBeTruthy();
    expect(plain.usage.total_tokens).toBeGreaterThan(0);

    const deltas: ChatDelta[] = [];
    for await (const d of c.chatStream(req)) deltas.push(d);
    const last = deltas.at(-1)!;
    expect(last.done).toBe(true);
    expect(last.usage?.total_tokens).toBeGreaterThan(0);
    expect(deltas.map((d) => d.content ?? "").join("")).toBe(plain.content);

    const chatBodies = sent.filter((s) => s.path === "/v1/chat/completions");
    expect(chatBodies).toHaveLength(2);
    for (const s of chatBodies) {
      const v = validateRequest("POST", s.path, s.body, "application/json");
      expect(v.errors).toBe("");
    }
  });

  it("estimateTokenCount and listModels", async () => {
    const c = client();
    const n = await c.estimateTokenCount({ model: "kimi-k2.6", messages: [{ role: "user", content: DOC }] });
    expect(n).toBeGreaterThan(5);
    const models = await c.listModels();
    expect(models.find((m) => m.id === "kimi-k2.6")?.context_length).toBe(262144);
    const est = sent.find((s) => s.path === "/v1/tokenizers/estimate-token-count")!;
    expect(validateRequest("POST", est.path, est.body, "application/json").errors).toBe("");
  });
});

describe("errors end to end", () => {
  const events: RequestEvent[] = [];
  const counted = () => client({ onRequest: (e) => events.push(e) });
  beforeEach(() => {
    events.length = 0;
  });

  it("wrong key -> AuthenticationError, sent once", async () => {
    const c = client({ apiKey: async () => "sk-wrong" });
    await expect(c.listFiles()).rejects.toBeInstanceOf(AuthenticationError);
    expect(emu.requests().filter((r) => r.path.startsWith("/v1"))).toHaveLength(1);
  });

  it("unknown file -> NotFoundError on retrieve and content", async () => {
    const c = client();
    await expect(c.retrieveFile("file-missing")).rejects.toBeInstanceOf(NotFoundError);
    await expect(c.getFileContent("file-missing")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("over the (configured) size cap -> FileTooLargeError, not retried", async () => {
    emu.setLimits({ maxFileBytes: 1024 });
    const c = counted();
    await expect(c.uploadFile(textSource("big.txt", "x".repeat(5_000)))).rejects.toBeInstanceOf(
      FileTooLargeError,
    );
    expect(events).toHaveLength(1);
  });

  it("zero bytes from a source of unknown size -> EmptyFileError from the provider", async () => {
    const c = counted();
    const err = await c.uploadFile({ filename: "empty.txt", open: () => Readable.from([]) }).catch((e) => e);
    expect(err).toBeInstanceOf(EmptyFileError);
    expect(err.status).toBe(400);
    expect(events).toHaveLength(1);
  });

  it("file-count quota -> FileCountQuotaError", async () => {
    emu.setLimits({ maxFiles: 2 });
    const c = client();
    await c.uploadFile(textSource("1.txt", "one"));
    await c.uploadFile(textSource("2.txt", "two"));
    await expect(c.uploadFile(textSource("3.txt", "three"))).rejects.toBeInstanceOf(FileCountQuotaError);
  });

  it("total-size quota -> StorageQuotaError", async () => {
    emu.setLimits({ maxTotalBytes: 100 });
    const c = client();
    await c.uploadFile(textSource("1.txt", "a".repeat(80)));
    await expect(c.uploadFile(textSource("2.txt", "b".repeat(80)))).rejects.toBeInstanceOf(StorageQuotaError);
  });

  it("context overflow -> ContextLengthError", async () => {
    const c = client();
    const huge = "lorem ipsum dolor sit amet ".repeat(4_000);
    await expect(
      c.chat({ model: "moonshot-v1-8k", messages: [{ role: "user", content: huge }], max_tokens: 100 }),
    ).rejects.toBeInstanceOf(ContextLengthError);
  });

  it("exceeded_current_quota_error is never retried (chat with no balance, and an injected fault)", async () => {
    emu.setBalance(0);
    const c = counted();
    await expect(
      c.chat({ model: "kimi-k2.6", messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toBeInstanceOf(QuotaExhaustedError);
    expect(events).toHaveLength(1);
    emu.setBalance(100);
    emu.setFaults({ rateQuota: 1, operations: ["list"] });
    await expect(c.listFiles()).rejects.toBeInstanceOf(QuotaExhaustedError);
    expect(events).toHaveLength(2);
    expect(emu.requests().filter((r) => r.status === 429)).toHaveLength(2);
  });
});

describe("resilience", () => {
  it("a stream cut mid-answer surfaces as NetworkError after the partial text, without a retry", async () => {
    emu.setFaults({ rateStreamCut: 1, streamDelayMs: 5 });
    const events: RequestEvent[] = [];
    const c = client({ onRequest: (e) => events.push(e) });
    const seen: ChatDelta[] = [];
    const err = await (async () => {
      for await (const d of c.chatStream({
        model: "moonshot-v1-8k",
        messages: [
          { role: "system", content: DOC },
          { role: "user", content: "umbrellas?" },
        ],
      }))
        seen.push(d);
    })().catch((e) => e);
    expect(err).toBeInstanceOf(NetworkError);
    expect(seen.some((d) => d.content)).toBe(true);
    expect(seen.some((d) => d.done)).toBe(false);
    // One attempt: the stream had delivered text, so repeating it would duplicate the answer.
    expect(events).toHaveLength(1);
  });

  it("slow responses become TimeoutError after the attempts run out", async () => {
    emu.setFaults({ rateSlow: 1, slowMs: 3_000, operations: ["list"] });
    const events: RequestEvent[] = [];
    const c = client({
      requestTimeoutMs: 200,
      retry: { maxAttempts: 2, baseDelayMs: 10 },
      onRequest: (e) => events.push(e),
    });
    const t0 = Date.now();
    await expect(c.listFiles()).rejects.toBeInstanceOf(TimeoutError);
    expect(events.map((e) => e.code)).toEqual(["timeout", "timeout"]);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it("every call succeeds through 20% injected faults (429 with Retry-After, 500, dropped connections)", async () => {
    emu.setFaults({ rate429: 0.1, rate500: 0.05, rateDrop: 0.05, retryAfterSeconds: 0.05, seed: 7 });
    const events: RequestEvent[] = [];
    const c = client({
      retry: { maxAttempts: 8, baseDelayMs: 10, maxDelayMs: 500, maxElapsedMs: 20_000 },
      onRequest: (e) => events.push(e),
    });
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push((await c.uploadFile(textSource(`f${i}.txt`, `${DOC}#${i}`))).id);
    for (const id of ids) expect(await c.getFileContent(id)).toContain("warehouse");
    expect((await c.listFiles()).map((f) => f.id).sort()).toEqual([...ids].sort());
    for (let i = 0; i < 5; i++) {
      const r = await c.chat({
        model: "moonshot-v1-8k",
        messages: [
          { role: "system", content: DOC },
          { role: "user", content: "umbrellas?" },
        ],
      });
      expect(r.content).toContain("umbrellas");
    }
    const failed = events.filter((e) => e.error);
    expect(failed.some((e) => e.code === "rate_limited")).toBe(true);
    expect(failed.some((e) => e.code === "server_error" || e.code === "network")).toBe(true);
    // A dropped upload may have been stored before the connection died; nothing else duplicates.
    expect(emu.files().length).toBeGreaterThanOrEqual(15);
  });

  it("streams a generated 100 MB file: memory held by the upload stays far below the file size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kdp-client-50mb-"));
    const path = join(dir, "large.txt");
    // The emulator runs in a child process here, so this process's memory is the client's alone.
    const apiKey = "sk-large";
    const { baseURL, child } = await startChildEmulator(apiKey);
    try {
      // 100 MB (decimal, under the 100 MiB cap): V8 lets up to ~64 MB of collectable Buffers pile up
      // before it collects them, so a smaller file could not tell streaming from buffering by RSS.
      const size = 100_000_000;
      await generateFile(path, size);
      await generateFile(`${path}.warm`, 1024 * 1024);
      const c = new MoonshotClient({ baseURL, apiKey: async () => apiKey });
      const warm = await measureUpload(c, `${path}.warm`); // loads lazy modules and JIT outside the measurement
      await c.deleteFile(warm.file.id);
      // RSS every 10 ms; plus a full GC every 500 ms with live memory sampled right after it.
      const m = await measureUpload(c, path, { filename: "large.txt", gcEveryMs: 500 });
      expect(m.file.bytes).toBe(size);
      // Buffering the body (e.g. fetch's redirect clone teeing the stream) holds ~size bytes alive.
      // Streaming holds a few MB idle, but up to ~30 MB was seen with the suite's other worker and
      // other sessions loading both cores (the emulator reads slower; sockets and streams queue more):
      // half the size still tells the two apart. The tight figure is bench/upload-memory.ts's.
      expect(m.gcSamples).toBeGreaterThan(0);
      expect(m.peakLiveArrayBuffersGrowthBytes).toBeLessThan(size / 2);
      // Raw RSS also counts chunks V8 has not collected yet (measured 35-55 MB here, vs > 100 MB when
      // the body was buffered): still well under the file's size.
      expect(m.peakRssGrowthBytes).toBeLessThan(size * 0.75);
      expect(await c.deleteFile(m.file.id)).toBe(true);
    } finally {
      await stopChildEmulator(child);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
