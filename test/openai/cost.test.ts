/**
 * What an answer costs: cached prompt tokens from the emulator's prefix cache (both of the provider's
 * usage shapes), the cost from the price table, the metrics, and how `kdp ask` prints it.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatSources } from "../../cli/commands";
import { formatUsd } from "../../cli/format";
import { CHAT_METRICS } from "../../functions/core/chat/metrics";
import { costUsd, DEFAULT_PRICES, parsePriceTable, priceTable } from "../../functions/core/chat/prices";
import { RecordingMetrics } from "../../functions/core/runtime/telemetry";
import { type OpenAiHarness, startOpenAiHarness, TOKEN } from "./harness";

let h: OpenAiHarness;
const metrics = new RecordingMetrics();
beforeAll(async () => {
  h = await startOpenAiHarness({
    // A price for one moonshot-v1 model only: the other has none, so its cost is unknown.
    app: {
      metrics,
      prices: priceTable({ "moonshot-v1-32k": { input: 1, cachedInput: 0.25, output: 2 } }),
    },
    emulator: { promptCache: { minTokens: 16 } },
  });
});
afterAll(async () => {
  await h?.close();
});

const chat = async (body: Record<string, unknown>) => {
  const res = await fetch(`${h.url}/chat`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    model: string;
    usage: {
      promptTokens: number;
      completionTokens: number;
      totalTokens: number;
      cachedTokens: number;
      costUsd: number | null;
    };
  };
};

describe("usage on /chat", () => {
  it("reports cached prompt tokens and the cost at the published price", async () => {
    const first = await chat({ question: "How old did the tortoise Methuselah turn?", prefix: "city/" });
    expect(first.usage.cachedTokens).toBe(0);
    expect(first.usage.costUsd).toBeCloseTo(
      (first.usage.promptTokens * 0.6 + first.usage.completionTokens * 3) / 1e6,
      12,
    );
    // A follow-up over the same documents: the prefix up to the question is served from the cache.
    const second = await chat({
      question: "Where is the Nuremberg Chronicle kept?",
      prefix: "city/",
      messages: [{ role: "user", content: "How old did the tortoise Methuselah turn?" }],
    });
    const u = second.usage;
    expect(u.cachedTokens).toBeGreaterThan(0);
    expect(u.cachedTokens).toBeLessThan(u.promptTokens);
    expect(u.costUsd).toBeCloseTo(
      ((u.promptTokens - u.cachedTokens) * 0.6 + u.cachedTokens * 0.1 + u.completionTokens * 3) / 1e6,
      12,
    );
    expect(metrics.counts.get(CHAT_METRICS.cachedPromptTokens)).toBe(u.cachedTokens);
    expect(metrics.counts.get(CHAT_METRICS.costUsd)).toBeCloseTo(
      (first.usage.costUsd ?? 0) + (u.costUsd ?? 0),
      12,
    );
  });

  it("normalises moonshot-v1's top-level cached_tokens, and a model without a price costs null", async () => {
    const ask = { question: "Which book is the rarest in the library?", documentIds: ["library", "zoo"] };
    await chat({ ...ask, model: "moonshot-v1-8k" });
    const again = await chat({ ...ask, model: "moonshot-v1-8k" });
    expect(again.usage.cachedTokens).toBeGreaterThan(0);
    expect(again.usage.costUsd).toBeNull();
    const priced = await chat({ ...ask, model: "moonshot-v1-32k" });
    expect(priced.usage.costUsd).toBeCloseTo(
      (priced.usage.promptTokens * 1 + priced.usage.completionTokens * 2) / 1e6,
      12,
    );
  });

  it("the streamed done event carries the same usage", async () => {
    const res = await fetch(`${h.url}/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        question: "How old did the tortoise Methuselah turn?",
        prefix: "city/",
        stream: true,
      }),
    });
    const text = await res.text();
    const done = JSON.parse(text.split("event: done\ndata: ")[1]!.split("\n")[0]!);
    expect(done.usage.cachedTokens).toBeGreaterThan(0); // asked before: the whole prompt is cached
    expect(typeof done.usage.costUsd).toBe("number");
  });
});

describe("usage on /v1/chat/completions", () => {
  it("passes cached tokens through as prompt_tokens_details.cached_tokens, whichever shape the provider used", async () => {
    const client = new OpenAI({ baseURL: h.baseURL, apiKey: TOKEN, maxRetries: 0 });
    for (const model of ["kimi-k2.6", "moonshot-v1-8k"]) {
      const ask = () =>
        client.chat.completions.create({
          model,
          messages: [{ role: "user", content: "Where is the Nuremberg Chronicle kept?" }],
          ...({ documents: ["library"] } as object),
        });
      await ask();
      const usage = (await ask()).usage!;
      expect(usage.prompt_tokens_details?.cached_tokens).toBeGreaterThan(0);
      expect(usage).not.toHaveProperty("cached_tokens");
    }
  });
});

describe("price table", () => {
  it("costs uncached, cached and completion tokens at their prices", () => {
    const usage = { prompt_tokens: 1_000_000, completion_tokens: 1_000_000, total_tokens: 2_000_000 };
    expect(costUsd(DEFAULT_PRICES, "kimi-k2.6", usage)).toBe(3.6);
    expect(costUsd(DEFAULT_PRICES, "kimi-k2.6", { ...usage, cached_tokens: 1_000_000 })).toBe(3.1);
    expect(costUsd(DEFAULT_PRICES, "moonshot-v1-8k", usage)).toBeNull();
    expect(costUsd(DEFAULT_PRICES, "toString", usage)).toBeNull();
  });

  it("refuses a table it cannot use, naming the field", () => {
    expect(() => parsePriceTable("[1]")).toThrow(/must be an object keyed by model id/);
    expect(() => parsePriceTable({ m: { input: 1, cachedInput: "x", output: 1 } })).toThrow(
      /modelPrices\.m\.cachedInput must be a number >= 0/,
    );
    expect(parsePriceTable('{"m":{"input":1,"cachedInput":0,"output":2}}')).toEqual({
      m: { input: 1, cachedInput: 0, output: 2 },
    });
  });

  it("kdp ask prints tokens, cached tokens and the cost", () => {
    const base = { answer: "", model: "kimi-k2.6", sources: [] };
    expect(
      formatSources({
        ...base,
        usage: {
          promptTokens: 1200,
          completionTokens: 40,
          totalTokens: 1240,
          cachedTokens: 1000,
          costUsd: 0.00024,
        },
      }),
    ).toContain("kimi-k2.6, 1200 prompt (1000 cached) + 40 completion tokens, $0.0002400");
    expect(
      formatSources({
        ...base,
        usage: { promptTokens: 10, completionTokens: 1, totalTokens: 11, costUsd: null },
      }),
    ).toContain("cost unknown (no price for kimi-k2.6)");
    expect(formatUsd(0.145)).toBe("$0.1450");
    expect(formatUsd(12.3)).toBe("$12.30");
  });
});
