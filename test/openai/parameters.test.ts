/**
 * The OpenAI-compatible surface against the emulator over HTTP: GET /v1/models, every parameter
 * forwarded or refused with a 400 naming it, `n`, JSON mode and `stop` applied by the provider, and
 * the streamed shape (usage in a last chunk of its own; sources as refs unless `source_text`).
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSse } from "../chat/support";
import { type OpenAiHarness, startOpenAiHarness, TOKEN } from "./harness";

let h: OpenAiHarness;
let client: OpenAI;
beforeAll(async () => {
  h = await startOpenAiHarness();
  client = new OpenAI({ baseURL: h.baseURL, apiKey: TOKEN, maxRetries: 0 });
});
afterAll(async () => {
  await h?.close();
});

const post = (body: unknown) =>
  fetch(`${h.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const question = [{ role: "user" as const, content: "How old did the tortoise Methuselah turn?" }];

describe("GET /v1/models", () => {
  it("lists the provider's models in OpenAI's shape, with context_length", async () => {
    const page = await client.models.list();
    const models = page.data as (OpenAI.Models.Model & { context_length: number })[];
    expect(models.map((m) => m.id)).toEqual(["kimi-k2.6", "moonshot-v1-32k", "moonshot-v1-8k"]);
    for (const m of models) expect(m).toMatchObject({ object: "model", owned_by: "moonshot" });
    expect(models.find((m) => m.id === "moonshot-v1-8k")!.context_length).toBe(8192);
    const one = (await client.models.retrieve("kimi-k2.6")) as OpenAI.Models.Model & {
      context_length: number;
    };
    expect(one.context_length).toBe(262_144);
  });

  it("answers an unknown model with a 404 naming it, and needs the token", async () => {
    const res = await fetch(`${h.baseURL}/models/gpt-nope`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: expect.objectContaining({ type: "not_found_error", param: "model", code: "model_not_found" }),
    });
    expect((await fetch(`${h.baseURL}/models`)).status).toBe(401);
  });
});

describe("parameters are forwarded", () => {
  it("sends stop, seed, penalties, prompt_cache_key and user (as safety_identifier) to the provider", async () => {
    const before = h.sent.length;
    const completion = await client.chat.completions.create({
      model: "moonshot-v1-32k",
      messages: question,
      stop: [":"],
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      temperature: 0.2,
      top_p: 0.9,
      prompt_cache_key: "conversation-1",
      user: "user-hash-1",
      ...({ prefix: "city/" } as object),
    });
    const sent = h.sent[before]!;
    expect(sent).toMatchObject({
      model: "moonshot-v1-32k",
      stop: [":"],
      seed: 7,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      temperature: 0.2,
      top_p: 0.9,
      prompt_cache_key: "conversation-1",
      safety_identifier: "user-hash-1",
    });
    // The emulator applies stop: its answer reads 'According to <key>: "<sentence>"'.
    expect(completion.choices[0]!.message.content).toBe("According to city/zoo.txt");
  });

  it("JSON mode: response_format json_object reaches the provider and the answer is a JSON object", async () => {
    const completion = await client.chat.completions.create({
      model: "kimi-k2.6",
      messages: question,
      response_format: { type: "json_object" },
      ...({ prefix: "city/" } as object),
    });
    const parsed = JSON.parse(completion.choices[0]!.message.content!);
    expect(parsed.answer).toContain("152 years old");
    expect(h.sent.at(-1)!.response_format).toEqual({ type: "json_object" });
  });

  it("n: several choices, plain and streamed, on a model that allows them", async () => {
    const plain = await client.chat.completions.create({
      model: "moonshot-v1-32k",
      messages: question,
      n: 3,
      ...({ prefix: "city/" } as object),
    });
    expect(plain.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of plain.choices) expect(c.message.content).toContain("152 years old");

    const stream = await client.chat.completions.create({
      model: "moonshot-v1-32k",
      messages: question,
      n: 2,
      stream: true,
      ...({ prefix: "city/" } as object),
    });
    const texts = ["", ""];
    const finished = new Set<number>();
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        texts[c.index] += c.delta?.content ?? "";
        if (c.finish_reason) finished.add(c.index);
      }
    }
    expect(texts[0]).toContain("152 years old");
    expect(texts[1]).toBe(texts[0]);
    expect([...finished].sort()).toEqual([0, 1]);
  });

  it("accepts the values a model fixes (n: 1, penalties 0) without sending them", async () => {
    const res = await post({
      messages: question,
      n: 1,
      presence_penalty: 0,
      frequency_penalty: 0,
      prefix: "city/",
    });
    expect(res.status).toBe(200);
    const sent = h.sent.at(-1)!;
    expect(sent.n).toBeUndefined();
    expect(sent.presence_penalty).toBeUndefined();
  });
});

describe("parameters are refused with a 400 naming them", () => {
  it.each([
    ["tools", { tools: [{ type: "function", function: { name: "f", parameters: {} } }] }],
    ["tool_choice", { tool_choice: "required" }],
    ["logprobs", { logprobs: true }],
    ["top_logprobs", { top_logprobs: 3 }],
    ["logit_bias", { logit_bias: { "50256": -100 } }],
    ["audio", { audio: { voice: "alloy", format: "mp3" } }],
    ["modalities", { modalities: ["text", "audio"] }],
    ["reasoning_effort", { reasoning_effort: "high" }],
    ["store", { store: true }],
    ["web_search_options", { web_search_options: {} }],
    ["service_tier", { service_tier: "flex" }],
    ["foo", { foo: 1 }],
    ["temperature", { temperature: 0.3 }],
    ["n", { n: 2 }],
    ["presence_penalty", { presence_penalty: 1 }],
    ["stop", { stop: ["a", "b", "c", "d", "e", "f"] }],
    ["response_format", { response_format: { type: "yaml" } }],
    ["seed", { seed: 1.5 }],
  ])("%s", async (param, extra) => {
    const before = h.sent.length;
    const res = await post({ model: "kimi-k2.6", messages: question, ...extra });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { type: string; param?: string; message: string } };
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.param ?? body.error.message).toContain(param);
    expect(h.sent.length).toBe(before);
  });

  it("accepts the no-op values clients send by default", async () => {
    const res = await post({
      messages: question,
      tools: [],
      tool_choice: "none",
      parallel_tool_calls: false,
      logprobs: false,
      store: false,
      modalities: ["text"],
      service_tier: "auto",
      prefix: "city/",
    });
    expect(res.status).toBe(200);
  });
});

describe("streaming", () => {
  it("without include_usage: no usage anywhere; sources are refs on the finishing chunk", async () => {
    const res = await post({ messages: question, stream: true, prefix: "city/" });
    const frames = parseSse(await res.text());
    expect(frames.at(-1)!.data).toBe("[DONE]");
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f.data));
    expect(chunks.every((c) => !("usage" in c))).toBe(true);
    const finishing = chunks.at(-1);
    expect(finishing.choices[0].finish_reason).toBe("stop");
    expect(finishing.sources[0].chunks[0]).toEqual({ index: 0, tokens: expect.any(Number) });
  });

  it("source_text: true puts the chunks' text back; a plain response has it by default", async () => {
    const res = await post({ messages: question, stream: true, source_text: true, prefix: "city/" });
    const frames = parseSse(await res.text());
    const finishing = JSON.parse(frames.at(-2)!.data);
    expect(
      finishing.sources.map((s: { chunks: { text: string }[] }) => s.chunks[0]!.text).join(""),
    ).toContain("Section 0");
    const plain = await (await post({ messages: question, prefix: "city/" })).json();
    expect(plain.sources[0].chunks[0].text).toContain("Section 0");
    const refs = await (await post({ messages: question, prefix: "city/", source_text: false })).json();
    expect(refs.sources[0].chunks[0].text).toBeUndefined();
  });

  it("include_usage: a last chunk with choices: [] and usage, usage: null on every other chunk", async () => {
    const res = await post({
      messages: question,
      stream: true,
      stream_options: { include_usage: true },
      prefix: "city/",
    });
    const chunks = parseSse(await res.text())
      .slice(0, -1)
      .map((f) => JSON.parse(f.data));
    const last = chunks.at(-1);
    expect(last.choices).toEqual([]);
    expect(last.usage.prompt_tokens).toBeGreaterThan(0);
    expect(last.usage.total_tokens).toBe(last.usage.prompt_tokens + last.usage.completion_tokens);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });
});
