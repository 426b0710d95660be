/**
 * The client libraries people use, against the chat API served over HTTP with the Moonshot emulator
 * behind it: the official `openai` client, the Vercel AI SDK (`@ai-sdk/openai-compatible`) and
 * LangChain (`@langchain/openai`), each plain and streamed, each reading usage (cached tokens
 * included: every question is asked twice, so the second prompt is served from the prefix cache).
 */
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, streamText } from "ai";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OpenAiHarness, startOpenAiHarness, TOKEN } from "./harness";

let h: OpenAiHarness;
beforeAll(async () => {
  h = await startOpenAiHarness({ emulator: { promptCache: { minTokens: 64 } } });
});
afterAll(async () => {
  await h?.close();
});

const QUESTION = "How old did the tortoise Methuselah turn?";

describe("official openai client", () => {
  const client = () => new OpenAI({ baseURL: h.baseURL, apiKey: TOKEN, maxRetries: 0 });

  it("plain: answer, usage with cached tokens on a repeat", async () => {
    const ask = () =>
      client().chat.completions.create({
        model: "kimi-k2.6",
        messages: [{ role: "user", content: QUESTION }],
        ...({ prefix: "city/" } as object),
      });
    await ask();
    const completion = await ask();
    expect(completion.choices[0]!.message.content).toContain("152 years old");
    expect(completion.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(completion.usage!.prompt_tokens_details!.cached_tokens).toBe(completion.usage!.prompt_tokens);
  });

  it("streamed with include_usage: text and a usage chunk", async () => {
    const stream = await client().chat.completions.create({
      model: "kimi-k2.6",
      messages: [{ role: "user", content: QUESTION }],
      stream: true,
      stream_options: { include_usage: true },
      ...({ prefix: "city/" } as object),
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toContain("152 years old");
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
    expect(usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(0);
  });
});

describe("Vercel AI SDK (@ai-sdk/openai-compatible)", () => {
  const provider = () =>
    createOpenAICompatible({ name: "kdp", baseURL: h.baseURL, apiKey: TOKEN, includeUsage: true });
  const options = { kdp: { prefix: "city/" } };

  it("generateText: answer and usage (cached input tokens on a repeat)", async () => {
    const ask = () =>
      generateText({
        model: provider()("kimi-k2.6"),
        prompt: "Where is the Nuremberg Chronicle kept?",
        providerOptions: options,
        maxRetries: 0,
      });
    await ask();
    const result = await ask();
    expect(result.text).toContain("vault seven");
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    expect(result.usage.inputTokenDetails.cacheReadTokens).toBe(result.usage.inputTokens);
  });

  it("streamText: streamed text and usage", async () => {
    const result = streamText({
      model: provider()("kimi-k2.6"),
      system: "You are terse.",
      prompt: "Where is the Nuremberg Chronicle kept?",
      providerOptions: options,
      maxRetries: 0,
    });
    let text = "";
    for await (const delta of result.textStream) text += delta;
    expect(text).toContain("vault seven");
    const usage = await result.usage;
    expect(usage.inputTokens).toBeGreaterThan(0);
    expect(usage.totalTokens).toBe((usage.inputTokens ?? 0) + (usage.outputTokens ?? 0));
    expect(h.sent.at(-1)!.messages[0]).toEqual({ role: "system", content: "You are terse." });
  });
});

describe("LangChain (@langchain/openai)", () => {
  const model = () =>
    new ChatOpenAI({
      model: "kimi-k2.6",
      apiKey: TOKEN,
      configuration: { baseURL: h.baseURL },
      modelKwargs: { prefix: "city/" },
      maxRetries: 0,
    });

  it("invoke: answer and usage_metadata (cache reads on a repeat)", async () => {
    await model().invoke(QUESTION);
    const message = await model().invoke(QUESTION);
    expect(message.content).toContain("152 years old");
    expect(message.usage_metadata!.input_tokens).toBeGreaterThan(0);
    expect(message.usage_metadata!.total_tokens).toBe(
      message.usage_metadata!.input_tokens + message.usage_metadata!.output_tokens,
    );
    expect(message.usage_metadata!.input_token_details?.cache_read).toBe(
      message.usage_metadata!.input_tokens,
    );
  });

  it("stream: chunks concatenate to the answer, usage arrives", async () => {
    let text = "";
    let input = 0;
    for await (const chunk of await model().stream("Where is the Nuremberg Chronicle kept?")) {
      text += typeof chunk.content === "string" ? chunk.content : "";
      input += chunk.usage_metadata?.input_tokens ?? 0;
    }
    expect(text).toContain("vault seven");
    expect(input).toBeGreaterThan(0);
  });
});
