/**
 * The chat API end to end on this machine: documents in local DynamoDB (dynalite), objects in local
 * S3 (s3rver), the provider emulator (which answers by quoting the best-matching sentence of the
 * system messages it received, so answers show which text was sent), and the app served with
 * @hono/node-server, called with fetch and with the official `openai` client. Runs once per provider
 * (TEST_PROVIDER): with GLM the model windows come from configuration and the small model's prompt
 * is counted by the local over-estimate (GLM's tokenizer does not take it).
 */
import { HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { s3ObjectDeleter } from "../../functions/chat/objects";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { type LocalStack, startLocalStack } from "../support/local-stack";
import { isGlm, TEST_PROVIDER, testClient } from "../support/provider";
import { parseSse, type ServedApp, serveApp, TOKEN } from "./support";

let stack: LocalStack;
let emulator: RunningEmulator;
let served: ServedApp;
let store: DynamoDocumentStore;

const filler = (topic: string, n: number, seed = 0) =>
  Array.from(
    { length: n },
    (_, i) =>
      `Section ${i + seed} of the ${topic} handbook describes ordinary procedures for ${topic} staff and visitors.\n\n`,
  ).join("");

const auth = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
/** The provider's default model and a small one whose window the documents overflow. */
const MODEL = isGlm ? "glm-4.6" : "kimi-k2.6";
const WINDOWS = { [MODEL]: isGlm ? 200_000 : 262_144, "small-8k": 8192 };

beforeAll(async () => {
  [stack, emulator] = await Promise.all([
    startLocalStack({ prefix: "chat-it" }),
    startEmulator({
      profile: TEST_PROVIDER,
      models: Object.entries(WINDOWS).map(([id, context_length]) => ({ id, context_length })),
    }),
  ]);
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  const provider = testClient({
    baseURL: emulator.baseURL,
    apiKey: async () => "sk-local",
    retry: { maxAttempts: 1 },
    // GLM has no model list: its windows are configuration (Moonshot's come from GET /models).
    ...(isGlm ? { models: WINDOWS } : {}),
  });
  const app = createChatApp({
    store,
    provider,
    objects: s3ObjectDeleter(stack.s3Client),
    defaultModel: MODEL,
    authenticate: bearerAuthenticator(async () => TOKEN),
    logger: { info() {}, warn() {}, error() {} },
  });
  served = await serveApp(app);

  await store.putDocumentText(
    { documentId: "zoo", key: "city/zoo.txt", bucket: stack.bucket },
    `${filler("zoo", 4)}The zoo's oldest tortoise, Methuselah, turned 152 years old in March.\n\n${filler("zoo", 4, 10)}`,
  );
  await store.putDocumentText(
    { documentId: "library", key: "city/library.txt", bucket: stack.bucket },
    `${filler("library", 4)}The library's rarest book is a 1493 Nuremberg Chronicle kept in vault seven.\n\n`,
  );
  await store.putDocumentText(
    { documentId: "secret", key: "private/secret.txt", bucket: stack.bucket },
    "The tortoise password for the private archive is swordfish-armadillo.\n\n",
  );
  // Many documents, far over the small model's window; the answer sits in one chunk of one of them.
  for (let i = 0; i < 12; i++) {
    const n = String(i).padStart(2, "0");
    const needle =
      i === 7 ? "The harbour pilot on duty during the October storm was Captain Eleni Markou.\n\n" : "";
    await store.putDocumentText(
      { documentId: `port-${n}`, key: `port/${n}.txt`, bucket: stack.bucket },
      `${filler(`port${n}`, 40)}${needle}${filler(`port${n}`, 40, 100)}`,
    );
  }
}, 60_000);

afterAll(async () => {
  await served?.close();
  await emulator?.close();
  await stack?.close();
});

const chat = (body: unknown) =>
  fetch(`${served.url}/chat`, { method: "POST", headers: auth, body: JSON.stringify(body) });

describe("answers come from the right document", () => {
  it("quotes the selected document and never an unselected one", async () => {
    const res = await chat({
      question: "How old is the tortoise Methuselah?",
      documentIds: ["zoo", "library"],
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.answer).toContain("city/zoo.txt");
    expect(body.answer).toContain("turned 152 years old");
    expect(body.answer).not.toContain("swordfish");
    expect(body.sources.map((s: { key: string }) => s.key)).toEqual(["city/zoo.txt", "city/library.txt"]);
    expect(body.usage.promptTokens).toBeGreaterThan(0);

    // The same question over the prefix holding the secret does reach it.
    const other = await (
      await chat({ question: "What is the tortoise password?", prefix: "private/" })
    ).json();
    expect(other.answer).toContain("swordfish-armadillo");
  });

  it("with many documents over budget, the chunk holding the answer is chosen", async () => {
    const res = await chat({
      question: "Who was the harbour pilot during the October storm?",
      prefix: "port/",
      model: "small-8k",
      maxTokens: 512,
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.context.mode).toBe("ranked");
    expect(body.context.chunksSent).toBeLessThan(body.context.chunksTotal);
    expect(body.context.promptTokens + 512).toBeLessThanOrEqual(8192);
    expect(body.answer).toContain("Captain Eleni Markou");
    expect(body.answer).toContain("port/07.txt");
  });

  it("streams every delta and a final event with usage and sources", async () => {
    const res = await chat({
      question: "Where is the Nuremberg Chronicle kept?",
      prefix: "city/",
      stream: true,
    });
    expect(res.status).toBe(200);
    const frames = parseSse(await res.text());
    const deltas = frames.filter((f) => f.event === "delta").map((f) => JSON.parse(f.data));
    const done = frames.find((f) => f.event === "done");
    expect(done).toBeDefined();
    const final = JSON.parse(done!.data);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.map((d) => d.content ?? "").join("")).toBe(final.answer);
    expect(final.answer).toContain("vault seven");
    expect(final.usage.totalTokens).toBeGreaterThan(0);
    expect(final.sources.map((s: { key: string }) => s.key)).toEqual(["city/library.txt", "city/zoo.txt"]);
  });
});

describe("OpenAI-compatible endpoint with the official client", () => {
  const client = () => new OpenAI({ baseURL: `${served.url}/v1`, apiKey: TOKEN, maxRetries: 0 });

  it("plain completion, with document selection in the body and the caller's system prompt kept", async () => {
    const completion = await client().chat.completions.create({
      model: MODEL,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Which book is the rarest in the library?" },
      ],
      // Extra body fields: the client sends them as given.
      ...({ documents: ["library", "zoo"] } as object),
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]!.message.content).toContain("Nuremberg Chronicle");
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
    const extra = completion as unknown as { sources: { key: string }[] };
    expect(extra.sources.map((s) => s.key)).toEqual(["city/library.txt", "city/zoo.txt"]);
  });

  it("streaming completion: sources on the finishing chunk (refs, no text), usage in a last chunk of its own", async () => {
    const stream = await client().chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "How old did the tortoise Methuselah turn?" }],
      stream: true,
      stream_options: { include_usage: true },
      ...({ prefix: "city/" } as object),
    });
    let text = "";
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(chunks.length).toBeGreaterThan(2);
    expect(text).toContain("152 years old");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage?.total_tokens).toBeGreaterThan(0);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    const finishing = chunks.at(-2) as OpenAI.Chat.ChatCompletionChunk & {
      sources: { key: string; chunks: Record<string, unknown>[] }[];
    };
    expect(finishing.choices[0]!.finish_reason).toBe("stop");
    expect(finishing.sources).toHaveLength(2);
    expect(finishing.sources[0]!.chunks[0]).toEqual({ index: 0, tokens: expect.any(Number) });
  });

  it("errors reach the client as typed APIErrors", async () => {
    await expect(
      client().chat.completions.create({
        model: "no-such-model",
        messages: [{ role: "user", content: "hi" }],
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining("not offered") });
    const wrongKey = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    await expect(
      wrongKey.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    ).rejects.toMatchObject({ status: 401 });
  });
});

describe("provider faults through the emulator", () => {
  it("429 passes Retry-After through (GLM sends none); 500 becomes 502", async () => {
    emulator.setFaults({ rate429: 1, operations: ["chat"], retryAfterSeconds: 4 });
    try {
      const res = await chat({ question: "tortoise?", documentIds: ["zoo"] });
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe(isGlm ? null : "4");
      expect((await res.json()).error.type).toBe("rate_limit_error");
      emulator.setFaults({ rate429: 0, rate500: 1, operations: ["chat"] });
      const outage = await chat({ question: "tortoise?", documentIds: ["zoo"] });
      expect(outage.status).toBe(502);
      expect((await outage.json()).error.type).toBe("provider_error");
    } finally {
      emulator.setFaults({ rate429: 0, rate500: 0 });
    }
  });
});

describe("documents", () => {
  it("lists by prefix and deletes the S3 object", async () => {
    const list = await (await fetch(`${served.url}/documents?prefix=city/`, { headers: auth })).json();
    expect(list.items.map((d: { key: string }) => d.key)).toEqual(["city/library.txt", "city/zoo.txt"]);
    await stack.s3Client.send(
      new PutObjectCommand({ Bucket: stack.bucket, Key: "city/zoo.txt", Body: "zoo" }),
    );
    const res = await fetch(`${served.url}/documents/zoo`, { method: "DELETE", headers: auth });
    expect(res.status).toBe(202);
    await expect(
      stack.s3Client.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: "city/zoo.txt" })),
    ).rejects.toThrow();
  });
});

describe("bad selectors and paths against the real store", () => {
  const raw = (path: string, init: { method?: string; body?: unknown } = {}) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      // A raw socket: fetch and URL would normalise the dot segments away before sending.
      import("node:net").then((net) => {
        const url = new URL(served.url);
        const payload = init.body === undefined ? "" : JSON.stringify(init.body);
        const sock = net.connect(Number(url.port), url.hostname, () =>
          sock.write(
            `${init.method ?? "GET"} ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${auth.authorization}\r\n` +
              `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\nConnection: close\r\n\r\n${payload}`,
          ),
        );
        let data = "";
        sock.on("data", (d) => {
          data += d;
        });
        sock.on("error", reject);
        sock.on("end", () =>
          resolve({ status: Number(data.split(" ")[1]), body: data.split("\r\n\r\n")[1] ?? "" }),
        );
      }, reject);
    });

  it("answers 400, never 500, for ids and prefixes the database cannot take", async () => {
    const cases: [unknown, string][] = [
      [{ question: "x", documentIds: ["x".repeat(3000)] }, "documentIds"],
      [{ question: "x", documentIds: ["a/b"] }, "documentIds"],
      [{ question: "x", documentIds: ["zoo\u0000"] }, "documentIds"],
      [{ question: "x", prefix: "é".repeat(600) }, "prefix"],
      [{ question: "x", prefix: "city/\u0007" }, "prefix"],
    ];
    for (const [body, param] of cases) {
      const res = await chat(body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      const error = (await res.json()).error;
      expect(error.type).toBe("invalid_request_error");
      expect(error.param).toMatch(new RegExp(`^${param}`));
    }
    const completion = await fetch(`${served.url}/v1/chat/completions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ messages: [{ role: "user", content: "x" }], documents: ["y".repeat(3000)] }),
    });
    expect(completion.status).toBe(400);
    const list = await fetch(`${served.url}/documents?prefix=${encodeURIComponent("é".repeat(600))}`, {
      headers: auth,
    });
    expect(list.status).toBe(400);
  });

  it("refuses dot segments and encoded slashes before routing", async () => {
    for (const path of [
      "/documents/../chat",
      "/documents/%2e%2e/health",
      "/documents/./zoo",
      "/documents/%2E",
      "/documents/a%2Fb",
      "/documents/a%5cb",
      "/documents/zoo%2f..%2fhealth",
    ]) {
      const res = await raw(path);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.body).error.type, path).toBe("invalid_request_error");
    }
    expect((await raw("/documents/library")).status).toBe(200);
  });
});
