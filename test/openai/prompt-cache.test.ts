/**
 * Prompts that hit the provider's prefix cache, end to end against the emulator (which models the
 * automatic prefix cache): a 10-question conversation over a scope that fits the budget is served
 * mostly from the cache from the second question on; a ranked one keeps its turns cached.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { filler, type OpenAiHarness, startOpenAiHarness, TOKEN } from "./harness";

let h: OpenAiHarness;
beforeAll(async () => {
  h = await startOpenAiHarness({
    app: { maxContextTokens: 6000 },
    emulator: { promptCache: { minTokens: 64 } },
  });
  for (const [i, topic] of ["ferry", "lighthouse", "customs", "dock"].entries()) {
    h.store.add(
      { documentId: `harbour-${i}`, key: `harbour/${topic}.txt` },
      `${filler(topic, 12)}The ${topic} ledger number is ${1000 + i * 7}.\n\n${filler(topic, 12, 50)}`,
    );
    // A second scope, over the budget: ranked per question.
    h.store.add(
      { documentId: `archive-${i}`, key: `archive/${topic}.txt` },
      `${filler(`${topic} archive`, 120)}The ${topic} archive shelf is ${20 + i}.\n\n${filler(`${topic} archive`, 120, 500)}`,
    );
  }
});
afterAll(async () => {
  await h?.close();
});

interface Answer {
  answer: string;
  usage: { promptTokens: number; cachedTokens: number };
  context: { mode: string };
}

/** Asks `questions` one after another as one conversation; returns each answer. */
async function converse(prefix: string, questions: string[]): Promise<Answer[]> {
  const turns: { role: "user" | "assistant"; content: string }[] = [];
  const answers: Answer[] = [];
  for (const question of questions) {
    const res = await fetch(`${h.url}/chat`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ question, prefix, messages: turns }),
    });
    expect(res.status).toBe(200);
    const a = (await res.json()) as Answer;
    answers.push(a);
    turns.push({ role: "user", content: question }, { role: "assistant", content: a.answer });
  }
  return answers;
}

const topics = ["ferry", "lighthouse", "customs", "dock"];
const questions = (what: string) =>
  Array.from({ length: 10 }, (_, i) => `What is the ${topics[i % 4]} ${what}?`);

describe("prefix cache", () => {
  it("a conversation over a scope that fits: cached share >= 0.8 from the second question", async () => {
    const answers = await converse("harbour/", questions("ledger number"));
    expect(answers.every((a) => a.context.mode === "all")).toBe(true);
    expect(answers[0]!.usage.cachedTokens).toBe(0);
    for (const a of answers.slice(1)) {
      expect(a.usage.cachedTokens / a.usage.promptTokens).toBeGreaterThanOrEqual(0.8);
    }
    expect(answers[9]!.answer).toContain("1007"); // question 10 asks about the lighthouse
  });

  it("a ranked conversation keeps instructions and earlier turns cached", async () => {
    const answers = await converse("archive/", questions("archive shelf"));
    expect(answers.every((a) => a.context.mode === "ranked")).toBe(true);
    // From the third question the earlier turns are long enough to count (the cache's minimum).
    for (const a of answers.slice(2)) expect(a.usage.cachedTokens).toBeGreaterThan(0);
    const sent = h.sent.at(-1)!.messages;
    // Turns come before the documents, the question last.
    expect(sent.at(-1)!.content).toBe(questions("archive shelf")[9]);
    expect(sent.at(-2)!.content.startsWith("Document: archive/")).toBe(true);
    expect(sent[1]!.role).toBe("user");
  });
});
