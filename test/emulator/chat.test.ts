/**
 * The offline "model": answers quote the best-matching sentence of the system messages with its
 * source, a wrong context is visible, context windows are enforced per model, usage matches the
 * token estimate, and SSE streaming ends with a usage chunk and [DONE].
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { countChatTokens, countTokens } from "../../local/emulator/tokens";
import { call, errorOf, KEY } from "./helpers";

let emu: RunningEmulator;
beforeAll(async () => {
  emu = await startEmulator({
    models: [
      { id: "moonshot-v1-8k", context_length: 8192 },
      { id: "kimi-k2.6", context_length: 262144 },
      { id: "kimi-k2-thinking", context_length: 262144 },
      { id: "tiny", context_length: 64 },
    ],
  });
});
afterAll(async () => {
  await emu?.close();
});

const INVOICES =
  "Document: invoices.pdf\nInvoices are payable within thirty days of receipt. Late payments incur a two percent fee.";
const HOLIDAYS =
  "Document: handbook.docx\nEmployees receive twenty five days of paid holiday per year. Holiday requests go to the team lead.";

interface Completion {
  choices: { message: { content: string; reasoning_content?: string }; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

async function chat(body: Record<string, unknown>): Promise<Completion> {
  const r = await call(emu, "POST", "/v1/chat/completions", { body: { model: "moonshot-v1-8k", ...body } });
  expect(r.status).toBe(200);
  return r.body as Completion;
}

const ask = (question: string, ...system: string[]) => [
  ...system.map((content) => ({ role: "system", content })),
  { role: "user", content: question },
];

describe("answers from the system messages", () => {
  it("quotes the best sentence and names its document", async () => {
    const c = await chat({
      messages: ask("How many days of paid holiday do employees get?", INVOICES, HOLIDAYS),
    });
    expect(c.choices[0]!.message.content).toBe(
      'According to handbook.docx: "Employees receive twenty five days of paid holiday per year."',
    );
    expect(c.choices[0]!.finish_reason).toBe("stop");
    const fee = await chat({ messages: ask("What fee applies to late payments?", INVOICES, HOLIDAYS) });
    expect(fee.choices[0]!.message.content).toContain("invoices.pdf");
    expect(fee.choices[0]!.message.content).toContain("Late payments incur a two percent fee.");
  });

  it("makes a wrong context visible: text of a document not sent never appears", async () => {
    const c = await chat({ messages: ask("How many days of paid holiday do employees get?", INVOICES) });
    const content = c.choices[0]!.message.content;
    expect(content).not.toContain("twenty five days");
    expect(content).not.toContain("handbook.docx");
    const unrelated = await chat({ messages: ask("Which holiday allowance applies?", INVOICES) });
    expect(unrelated.choices[0]!.message.content).toBe(
      "I could not find anything relevant to the question in the provided documents.",
    );
  });

  it("accepts unlabelled system messages and multi-part content", async () => {
    const c = await chat({
      messages: [
        { role: "system", content: "You are Kimi." },
        { role: "system", content: [{ type: "text", text: "The server room code is 4411." }] },
        { role: "user", content: [{ type: "text", text: "What is the server room code?" }] },
      ],
    });
    expect(c.choices[0]!.message.content).toBe(
      'According to system message 2: "The server room code is 4411."',
    );
  });

  it("does not quote unlabelled instructions when labelled documents are present", async () => {
    const instruction =
      "Answer using the documents given in the following system messages; each begins with a line 'Document: <key>'.";
    const c = await chat({ messages: ask("Which line begins each message?", instruction, INVOICES) });
    expect(c.choices[0]!.message.content).toBe(
      "I could not find anything relevant to the question in the provided documents.",
    );
    const fee = await chat({ messages: ask("What fee applies to late payments?", instruction, INVOICES) });
    expect(fee.choices[0]!.message.content).toContain("invoices.pdf");
  });

  it("says so when no documents were sent", async () => {
    const c = await chat({ messages: [{ role: "user", content: "What is the policy?" }] });
    expect(c.choices[0]!.message.content).toMatch(/^No documents were provided/);
  });

  it("is deterministic and reports usage consistent with the token estimate", async () => {
    const messages = ask("What fee applies to late payments?", INVOICES, HOLIDAYS);
    const a = await chat({ messages });
    const b = await chat({ messages });
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    const est = await call(emu, "POST", "/v1/tokenizers/estimate-token-count", {
      body: { model: "moonshot-v1-8k", messages },
    });
    const total = (est.body as { data: { total_tokens: number } }).data.total_tokens;
    expect(a.usage.prompt_tokens).toBe(total);
    expect(a.usage.prompt_tokens).toBe(countChatTokens(messages));
    expect(a.usage.completion_tokens).toBe(countTokens(a.choices[0]!.message.content));
    expect(a.usage.total_tokens).toBe(a.usage.prompt_tokens + a.usage.completion_tokens);
  });

  it("stops at max_tokens with finish_reason length", async () => {
    const c = await chat({ messages: ask("What fee applies to late payments?", INVOICES), max_tokens: 5 });
    expect(c.choices[0]!.finish_reason).toBe("length");
    expect(c.usage.completion_tokens).toBeLessThanOrEqual(5);
    expect(c.choices[0]!.message.content.length).toBeGreaterThan(0);
  });

  it("thinking models add reasoning_content; kimi-k2.6 thinks unless disabled", async () => {
    const messages = ask("What fee applies to late payments?", INVOICES);
    const thinking = await chat({ model: "kimi-k2-thinking", messages });
    expect(thinking.choices[0]!.message.reasoning_content).toMatch(/^Searched 2 sentences from 1 source/);
    expect(thinking.choices[0]!.message.reasoning_content).not.toContain("two percent");
    const plain = await chat({ model: "kimi-k2.6", messages, thinking: { type: "disabled" } });
    expect(plain.choices[0]!.message.reasoning_content).toBeUndefined();
    expect(plain.choices[0]!.message.content).toBe(thinking.choices[0]!.message.content);
  });
});

describe("context windows", () => {
  const big = `Document: big.txt\n${"The archive holds many quarterly statements. ".repeat(1400)}`;

  it("400 with the provider's message when the prompt overflows the window", async () => {
    const messages = ask("What does the archive hold?", big);
    expect(countChatTokens(messages)).toBeGreaterThan(8192);
    const r = await call(emu, "POST", "/v1/chat/completions", {
      body: { model: "moonshot-v1-8k", messages },
    });
    expect(r.status).toBe(400);
    expect(errorOf(r)).toEqual({
      type: "invalid_request_error",
      message: "Your request exceeded model token limit : 8192",
    });
    // The same prompt fits a 256K model.
    expect((await chat({ model: "kimi-k2.6", messages })).choices[0]!.message.content).toContain("big.txt");
  });

  it("counts max_tokens against the window", async () => {
    const messages = ask("Hello there?", "Document: a.txt\nShort text.");
    const prompt = countChatTokens(messages);
    const fits = await call(emu, "POST", "/v1/chat/completions", {
      body: { model: "tiny", messages, max_tokens: 64 - prompt },
    });
    expect(fits.status).toBe(200);
    const over = await call(emu, "POST", "/v1/chat/completions", {
      body: { model: "tiny", messages, max_completion_tokens: 64 - prompt + 1 },
    });
    expect(over.status).toBe(400);
    expect(errorOf(over).message).toBe("Your request exceeded model token limit : 64");
  });

  it("models list carries the configured context lengths", async () => {
    const r = await call(emu, "GET", "/v1/models");
    const data = (r.body as { data: { id: string; context_length: number }[] }).data;
    expect(data.map((m) => [m.id, m.context_length])).toEqual([
      ["moonshot-v1-8k", 8192],
      ["kimi-k2.6", 262144],
      ["kimi-k2-thinking", 262144],
      ["tiny", 64],
    ]);
  });
});

describe("streaming", () => {
  async function stream(body: Record<string, unknown>) {
    const res = await fetch(`${emu.baseURL}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "moonshot-v1-8k", stream: true, ...body }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const raw = await res.text();
    const events = raw.split("\n\n").filter((e) => e.length > 0);
    for (const e of events) expect(e).toMatch(/^data: /);
    const payloads = events.map((e) => e.slice("data: ".length));
    return { raw, payloads };
  }

  it("sends data frames, a final chunk with finish_reason and usage, then [DONE]", async () => {
    const messages = ask("How many days of paid holiday do employees get?", INVOICES, HOLIDAYS);
    const plain = await chat({ messages });
    const { payloads } = await stream({ messages });
    expect(payloads.at(-1)).toBe("[DONE]");
    const chunks = payloads.slice(0, -1).map((p) => JSON.parse(p));
    expect(chunks.length).toBeGreaterThan(3);
    for (const c of chunks) expect(c.object).toBe("chat.completion.chunk");
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(text).toBe(plain.choices[0]!.message.content);
    const last = chunks.at(-1);
    expect(last.choices[0].finish_reason).toBe("stop");
    expect(last.usage).toEqual(plain.usage);
    expect(last.choices[0].usage).toEqual(plain.usage);
    for (const c of chunks.slice(0, -1)) expect(c.choices[0].finish_reason).toBeNull();
  });

  it("streams reasoning_content for thinking models and honours include_usage", async () => {
    const { payloads } = await stream({
      model: "kimi-k2-thinking",
      messages: ask("What fee applies to late payments?", INVOICES),
      stream_options: { include_usage: true },
    });
    const chunks = payloads.slice(0, -1).map((p) => JSON.parse(p));
    const reasoning = chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? "").join("");
    expect(reasoning).toMatch(/^Searched/);
    const usageOnly = chunks.at(-1);
    expect(usageOnly.choices).toEqual([]);
    expect(usageOnly.usage.total_tokens).toBeGreaterThan(0);
  });

  it("paces frames with streamDelayMs, so a buffering proxy would be visible", async () => {
    emu.setFaults({ streamDelayMs: 60 });
    try {
      const res = await fetch(`${emu.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "moonshot-v1-8k",
          stream: true,
          messages: ask("What fee applies?", INVOICES),
        }),
      });
      const arrivals: number[] = [];
      const reader = res.body!.getReader();
      while (!(await reader.read()).done) arrivals.push(Date.now());
      expect(arrivals.length).toBeGreaterThan(2);
      expect(arrivals.at(-1)! - arrivals[0]!).toBeGreaterThanOrEqual(4 * 60);
    } finally {
      emu.setFaults({ streamDelayMs: 0 });
    }
  });

  it("rateStreamCut drops the connection mid-answer: no usage, no [DONE]", async () => {
    emu.setFaults({ rateStreamCut: 1 });
    try {
      const res = await fetch(`${emu.baseURL}/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "moonshot-v1-8k",
          stream: true,
          messages: ask("What fee applies?", INVOICES),
        }),
      });
      expect(res.status).toBe(200);
      let received = "";
      const decoder = new TextDecoder();
      const reader = res.body!.getReader();
      const read = (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          received += decoder.decode(value, { stream: true });
        }
      })();
      await expect(read).rejects.toThrow();
      expect(received).toContain('"content":"According');
      expect(received).not.toContain("[DONE]");
      expect(received).not.toContain('"usage"');
      // Plain completions are unaffected.
      await chat({ messages: ask("What fee applies?", INVOICES) });
    } finally {
      emu.setFaults({ rateStreamCut: 0 });
    }
  });

  it("errors before streaming are plain JSON errors", async () => {
    const r = await call(emu, "POST", "/v1/chat/completions", {
      body: { model: "nope", stream: true, messages: ask("hi") },
    });
    expect(r.status).toBe(404);
  });
});

describe("token counting", () => {
  it("approximates a BPE tokenizer deterministically", () => {
    expect(countTokens("")).toBe(0);
    expect(countTokens("hello")).toBe(1);
    expect(countTokens("international")).toBe(3);
    expect(countTokens("hi there")).toBe(2);
    expect(countTokens("你好世界")).toBe(4);
    expect(countTokens("Total: 12345.")).toBe(5);
    expect(countTokens("a\n\nb")).toBe(3);
    expect(countChatTokens([{ role: "user", content: "hi" }])).toBe(3 + 4 + 1 + 1);
    const long = "word ".repeat(1000);
    expect(countTokens(long)).toBe(1000);
  });
});
