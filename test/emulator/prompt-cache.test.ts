/**
 * The emulator's model of the provider's automatic prefix cache: a prompt that starts with the
 * messages of one answered recently reports those tokens as cached (kimi-k2 and moonshot-v1 shapes),
 * short prefixes and expired entries do not count, token estimates do not fill it, and it can be off.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { countChatTokens } from "../../local/emulator/tokens";
import { call } from "./helpers";

let emu: RunningEmulator;
let off: RunningEmulator;
beforeAll(async () => {
  const models = [
    { id: "moonshot-v1-32k", context_length: 32768 },
    { id: "kimi-k2.6", context_length: 262144 },
  ];
  [emu, off] = await Promise.all([
    startEmulator({ models, promptCache: { ttlSeconds: 60, minTokens: 100 } }),
    startEmulator({ models, promptCache: false }),
  ]);
});
afterAll(async () => {
  await Promise.all([emu?.close(), off?.close()]);
});

const doc = (name: string, n: number) => ({
  role: "system",
  content: `Document: ${name}\n\n${Array.from({ length: n }, (_, i) => `Paragraph ${i} of ${name} about harbour ledgers.`).join("\n")}`,
});
const question = (q: string) => ({ role: "user", content: q });

interface Usage {
  prompt_tokens: number;
  cached_tokens?: number;
  prompt_tokens_details?: { cached_tokens: number };
}
async function usage(e: RunningEmulator, model: string, messages: unknown[]): Promise<Usage> {
  const r = await call(e, "POST", "/v1/chat/completions", { body: { model, messages } });
  expect(r.status).toBe(200);
  return (r.body as { usage: Usage }).usage;
}

describe("prefix cache", () => {
  it("reports the shared prefix of a recent prompt as cached, in each family's shape", async () => {
    const docs = [doc("a.txt", 40), doc("b.txt", 40)];
    const first = await usage(emu, "kimi-k2.6", [...docs, question("Which ledger?")]);
    expect(first.prompt_tokens_details).toEqual({ cached_tokens: 0 });
    const again = await usage(emu, "kimi-k2.6", [...docs, question("Which ledger?")]);
    expect(again.prompt_tokens_details!.cached_tokens).toBe(again.prompt_tokens);
    const followUp = await usage(emu, "kimi-k2.6", [
      ...docs,
      question("Which ledger?"),
      { role: "assistant", content: "A." },
      question("And b?"),
    ]);
    expect(followUp.prompt_tokens_details!.cached_tokens).toBe(first.prompt_tokens);
    const other = await usage(emu, "kimi-k2.6", [...docs, question("Another question")]);
    // Up to the last document: the question differs.
    expect(other.prompt_tokens_details!.cached_tokens).toBe(countChatTokens(docs));

    // moonshot-v1: a top-level cached_tokens; and each model has its own cache.
    const v1 = await usage(emu, "moonshot-v1-32k", [...docs, question("Which ledger?")]);
    expect(v1.cached_tokens).toBe(0);
    expect((await usage(emu, "moonshot-v1-32k", [...docs, question("Which ledger?")])).cached_tokens).toBe(
      v1.prompt_tokens,
    );
  });

  it("a changed first message, a short prefix or an expired entry is not cached", async () => {
    const docs = [doc("c.txt", 40)];
    await usage(emu, "kimi-k2.6", [...docs, question("q")]);
    const changed = await usage(emu, "kimi-k2.6", [doc("c2.txt", 40), question("q")]);
    expect(changed.prompt_tokens_details!.cached_tokens).toBe(0);
    const short = [doc("d.txt", 1)];
    await usage(emu, "kimi-k2.6", [...short, question("q1")]);
    expect(
      (await usage(emu, "kimi-k2.6", [...short, question("q2")])).prompt_tokens_details!.cached_tokens,
    ).toBe(0);

    await usage(emu, "kimi-k2.6", [doc("e.txt", 40), question("q")]);
    emu.setClockOffset(61);
    try {
      expect(
        (await usage(emu, "kimi-k2.6", [doc("e.txt", 40), question("q")])).prompt_tokens_details!
          .cached_tokens,
      ).toBe(0);
    } finally {
      emu.setClockOffset(0);
    }
  });

  it("token estimates do not fill the cache; promptCache: false never reports cached tokens", async () => {
    const messages = [doc("f.txt", 40), question("q")];
    const est = await call(emu, "POST", "/v1/tokenizers/estimate-token-count", {
      body: { model: "kimi-k2.6", messages },
    });
    expect(est.status).toBe(200);
    expect((await usage(emu, "kimi-k2.6", messages)).prompt_tokens_details!.cached_tokens).toBe(0);

    await usage(off, "kimi-k2.6", messages);
    expect((await usage(off, "kimi-k2.6", messages)).prompt_tokens_details!.cached_tokens).toBe(0);
  });

  it("reset forgets every cached prompt", async () => {
    const messages = [doc("g.txt", 40), question("q")];
    await usage(emu, "kimi-k2.6", messages);
    await emu.reset();
    expect((await usage(emu, "kimi-k2.6", messages)).prompt_tokens_details!.cached_tokens).toBe(0);
  });
});
