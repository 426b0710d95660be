/**
 * The context budget against the emulator over HTTP: the deployment's default, a request's
 * maxContextTokens / max_context_tokens, both capped by the model's window, and bad values refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MAX_CONTEXT_TOKENS, parseMaxContextTokens } from "../../functions/core/chat/budget";
import { filler, type OpenAiHarness, startOpenAiHarness, TOKEN } from "./harness";

let h: OpenAiHarness;
beforeAll(async () => {
  h = await startOpenAiHarness({ app: { maxContextTokens: 4000 } });
  // 12 documents of ~2,500 tokens each: far over the deployment's budget of 4,000.
  for (let i = 0; i < 12; i++) {
    const n = String(i).padStart(2, "0");
    const needle =
      i === 7 ? "The harbour pilot on duty during the October storm was Captain Eleni Markou.\n\n" : "";
    h.store.add(
      { documentId: `port-${n}`, key: `port/${n}.txt` },
      `${filler(`port${n}`, 60)}${needle}${filler(`port${n}`, 60, 100)}`,
    );
  }
});
afterAll(async () => {
  await h?.close();
});

const post = async (path: string, body: unknown) => {
  const res = await fetch(`${h.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};
const question = "Who was the harbour pilot during the October storm?";

/** Prompt tokens of the same request without documents: what the budget does not count. */
const conversationTokens = 120;

describe("context budget", () => {
  it("the deployment's default caps the document text; the answer's chunk is still chosen", async () => {
    const { status, body } = await post("/chat", { question, prefix: "port/" });
    expect(status).toBe(200);
    expect(body.context).toMatchObject({ mode: "ranked", budgetTokens: 4000, maxContextTokens: 4000 });
    expect(body.context.promptTokens).toBeLessThanOrEqual(4000 + conversationTokens);
    expect(body.context.chunksSent).toBeLessThan(body.context.chunksTotal);
    expect(body.answer).toContain("Captain Eleni Markou");
  });

  it("a request's maxContextTokens overrides it, up to the model's window", async () => {
    const more = await post("/chat", { question, prefix: "port/", maxContextTokens: 12_000 });
    expect(more.body.context).toMatchObject({ budgetTokens: 12_000, maxContextTokens: 12_000 });
    expect(more.body.context.promptTokens).toBeGreaterThan(4000 + conversationTokens);
    expect(more.body.context.promptTokens).toBeLessThanOrEqual(12_000 + conversationTokens);

    const all = await post("/chat", { question, prefix: "port/", maxContextTokens: 1_000_000 });
    expect(all.body.context.mode).toBe("all");
    expect(all.body.context.chunksSent).toBe(all.body.context.chunksTotal);

    // moonshot-v1-8k: the window wins over a budget larger than it.
    const small = await post("/chat", {
      question,
      prefix: "port/",
      model: "moonshot-v1-8k",
      maxTokens: 512,
      maxContextTokens: 1_000_000,
    });
    expect(small.status).toBe(200);
    expect(small.body.context.budgetTokens).toBeLessThan(8192 - 512);
    expect(small.body.context.promptTokens + 512).toBeLessThanOrEqual(8192);
  });

  it("max_context_tokens on /v1/chat/completions", async () => {
    const { status, body } = await post("/v1/chat/completions", {
      messages: [{ role: "user", content: question }],
      prefix: "port/",
      max_context_tokens: 6000,
    });
    expect(status).toBe(200);
    expect(body.context).toMatchObject({ budgetTokens: 6000, maxContextTokens: 6000 });
    expect(body.usage.prompt_tokens).toBeLessThanOrEqual(6000 + conversationTokens);
  });

  it.each([
    ["/chat", { question, maxContextTokens: 10 }, "maxContextTokens"],
    ["/chat", { question, maxContextTokens: 5000.5 }, "maxContextTokens"],
    [
      "/v1/chat/completions",
      { messages: [{ role: "user", content: question }], max_context_tokens: "lots" },
      "max_context_tokens",
    ],
  ])("refuses a bad budget on %s", async (path, body, param) => {
    const res = await post(path, body);
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe(param);
  });

  it("the deployment setting is checked once, with a message naming it", () => {
    expect(parseMaxContextTokens(undefined)).toBe(DEFAULT_MAX_CONTEXT_TOKENS);
    expect(parseMaxContextTokens(" 65536 ")).toBe(65536);
    expect(() => parseMaxContextTokens("32k")).toThrow(
      /MAX_CONTEXT_TOKENS must be a whole number of tokens >= 1000/,
    );
    expect(() => parseMaxContextTokens(999)).toThrow(/>= 1000/);
  });
});
