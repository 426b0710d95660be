import MiniSearch from "minisearch";
import { describe, expect, it } from "vitest";
import {
  ChunkRanker,
  type ContextDocument,
  ContextPlan,
  documentBudget,
  ELISION,
  estimateMessagesTokens,
  normalizeTerm,
  queryTerms,
  rankChunks,
  tokenize,
} from "../../functions/core/chat/context";
import type { TextChunk } from "../../functions/core/documents/model";
import { chunkText } from "../../functions/core/text/chunking";
import { estimateTokens } from "../../functions/core/text/tokens";

function doc(id: string, key: string, text: string, targetTokens = 60): ContextDocument {
  const chunks: TextChunk[] = chunkText(text, { targetTokens, maxTokens: targetTokens * 2 }).map(
    (c, index) => ({
      documentId: id,
      generation: "g",
      index,
      text: c.text,
      tokens: c.tokens,
    }),
  );
  return { record: { documentId: id, key }, chunks };
}

const filler = (topic: string, n: number) =>
  Array.from(
    { length: n },
    (_, i) =>
      `Paragraph ${i} about ${topic} covers routine matters of ${topic} administration and upkeep.\n\n`,
  ).join("");

describe("ContextPlan", () => {
  it("sends every chunk, in document order, when everything fits", () => {
    const docs = [doc("a", "alpha.txt", filler("gardens", 5)), doc("b", "beta.txt", filler("harbours", 5))];
    const plan = ContextPlan.plan(docs, "anything", 100_000);
    expect(plan.mode).toBe("all");
    const messages = plan.messages();
    expect(messages).toHaveLength(2);
    expect(messages[0]!.role).toBe("system");
    expect(messages[0]!.content.split("\n")[0]).toBe("Document: alpha.txt");
    expect(messages[0]!.content.split("\n")[1]).toBe("");
    // Chunks join back to the exact text.
    expect(messages[0]!.content).toBe(`Document: alpha.txt\n\n${filler("gardens", 5)}`);
    expect(messages[1]!.content.startsWith("Document: beta.txt\n\n")).toBe(true);
    const sources = plan.sources();
    expect(sources.map((s) => s.key)).toEqual(["alpha.txt", "beta.txt"]);
    expect(sources.every((s) => s.complete)).toBe(true);
    expect(sources[0]!.chunks.map((c) => c.index)).toEqual(docs[0]!.chunks.map((c) => c.index));
  });

  it("over budget, picks the chunk holding the answer and keeps document order", () => {
    const needle = "The lighthouse keeper of Vardø island is named Ingrid Solberg.";
    const docs = Array.from({ length: 20 }, (_, i) =>
      doc(`d${i}`, `docs/${String(i).padStart(2, "0")}.txt`, filler(`topic${i}`, 30)),
    );
    // Put the answer in the middle of document 13.
    const t13 = `${filler("topic13", 15)}${needle}\n\n${filler("topic13", 15)}`;
    docs[13] = doc("d13", "docs/13.txt", t13);
    const total = docs.reduce((n, d) => n + d.chunks.reduce((m, c) => m + c.tokens, 0), 0);
    const budget = 600;
    expect(total).toBeGreaterThan(budget * 10);

    const plan = ContextPlan.plan(docs, "Who is the lighthouse keeper of Vardø island?", budget);
    expect(plan.mode).toBe("ranked");
    expect(plan.estimatedTokens).toBeLessThanOrEqual(budget);
    const messages = plan.messages();
    expect(messages.some((m) => m.content.includes("Ingrid Solberg"))).toBe(true);
    const sources = plan.sources();
    const s13 = sources.find((s) => s.key === "docs/13.txt");
    expect(s13?.complete).toBe(false);
    expect(s13?.chunks.some((c) => c.text.includes(needle))).toBe(true);
    // Document order is kept among what was sent, and chunk indexes ascend within a document.
    const keys = sources.map((s) => s.key);
    expect([...keys].sort()).toEqual(keys);
    for (const s of sources) {
      const idx = s.chunks.map((c) => c.index);
      expect([...idx].sort((a, b) => a - b)).toEqual(idx);
    }
  });

  it("marks gaps between non-adjacent chunks with an elision", () => {
    const text = `${filler("alpha", 10)}The zebra code is 4411.\n\n${filler("alpha", 10)}The zebra colour is teal.\n\n${filler("alpha", 10)}`;
    const d = doc("z", "zebra.txt", text, 40);
    expect(d.chunks.length).toBeGreaterThan(6);
    const plan = ContextPlan.plan([d], "zebra code colour", 300);
    expect(plan.mode).toBe("ranked");
    const content = plan.messages()[0]!.content;
    expect(content).toContain("4411");
    expect(content).toContain("teal");
    expect(content).toContain(ELISION);
  });

  it("spreads chunks across documents when the question has no searchable terms", () => {
    const docs = [doc("a", "a.txt", filler("apples", 40)), doc("b", "b.txt", filler("bananas", 40))];
    const plan = ContextPlan.plan(docs, "what is this?", 300);
    expect(plan.mode).toBe("ranked");
    expect(plan.sources().map((s) => s.key)).toEqual(["a.txt", "b.txt"]);
    expect(plan.sources().every((s) => s.chunks[0]!.index === 0)).toBe(true);
  });

  it("shrink drops the lowest-ranked chunks first", () => {
    const docs = [
      doc("a", "a.txt", `${filler("cats", 10)}Cats purr loudly at dusk.\n\n`),
      doc("b", "b.txt", filler("dogs", 10)),
    ];
    const plan = ContextPlan.plan(docs, "when do cats purr", 100_000);
    expect(plan.mode).toBe("all");
    const before = plan.chunkCount;
    const dropped = plan.shrink(plan.estimatedTokens - 80);
    expect(dropped).toBeGreaterThan(0);
    expect(plan.chunkCount).toBe(before - dropped);
    expect(
      plan
        .messages()
        .map((m) => m.content)
        .join(""),
    ).toContain("Cats purr loudly at dusk.");
    const remaining = plan.chunkCount;
    expect(plan.shrink(1_000_000)).toBe(remaining);
    expect(plan.chunkCount).toBe(0);
    expect(plan.messages()).toEqual([]);
  });

  it("grow adds the next-best chunks within the extra tokens, and a later shrink drops them first", () => {
    const docs = [
      doc("a", "a.txt", `${filler("cats", 30)}Cats purr loudly at dusk.\n\n`),
      doc("b", "b.txt", filler("dogs", 30)),
    ];
    const plan = ContextPlan.plan(docs, "when do cats purr", 300);
    expect(plan.mode).toBe("ranked");
    const picked = () => plan.sources().flatMap((s) => s.chunks.map((c) => `${s.key}#${c.index}`));
    const first = picked();
    const before = plan.estimatedTokens;
    const added = plan.grow(200);
    expect(added).toBeGreaterThan(0);
    expect(plan.estimatedTokens - before).toBeLessThanOrEqual(200);
    expect(picked()).toEqual(expect.arrayContaining(first));
    // Chunks here are of similar size, so the grown ones are the next in rank: shrinking them away
    // restores the first selection.
    plan.shrink(1);
    expect(plan.chunkCount).toBe(first.length + added - 1);
    while (plan.chunkCount > first.length) plan.shrink(1);
    expect(picked()).toEqual(first);
    // "all" mode has nothing left out.
    expect(ContextPlan.plan(docs, "cats", 1_000_000).grow(1000)).toBe(0);
  });

  it("budget is window - max_tokens - conversation - margin", () => {
    expect(
      documentBudget({ contextLength: 10_000, maxTokens: 1000, conversationTokens: 500, safetyMargin: 100 }),
    ).toBe(8400);
    expect(documentBudget({ contextLength: 100_000, maxTokens: 0, conversationTokens: 0 })).toBe(97_000);
    expect(estimateMessagesTokens([{ role: "user", content: "hello there" }])).toBe(
      8 + estimateTokens("hello there"),
    );
  });

  it("ranking documents added while reading (any order) equals ranking them at once", () => {
    const docs = Array.from({ length: 6 }, (_, i) =>
      doc(
        `d${i}`,
        `k${i}`,
        `${filler(`topic${i}`, 12)}${i === 4 ? "Orchids bloom in the glasshouse.\n\n" : ""}`,
      ),
    );
    const refs = docs.flatMap((d, di) => d.chunks.map((c, pos) => ({ doc: di, pos, tokens: c.tokens })));
    const incremental = new ChunkRanker("where do orchids bloom? topic2");
    for (const i of [3, 0, 5, 1]) incremental.add(i, docs[i]!.chunks);
    const a = incremental.order(docs, refs);
    const b = rankChunks(docs, refs, "where do orchids bloom? topic2");
    expect(a).toEqual(b);
    expect(docs[a[0]!.doc]!.chunks[a[0]!.pos]!.text).toContain("Orchids");
  });

  it("ranks like a full BM25 index of every chunk (only chunks holding a query word are indexed)", () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const vocab = [
      "amber",
      "basalt",
      "cedar",
      "delta",
      "ember",
      "fjord",
      "garnet",
      "harbour",
      "iris",
      "juniper",
    ];
    const docs = Array.from({ length: 8 }, (_, d) => {
      let text = "";
      for (let p = 0; p < 40; p++) {
        const n = 10 + Math.floor(rand() * 30);
        text += `${Array.from({ length: n }, () => vocab[Math.floor(rand() * vocab.length)]).join(" ")}.\n\n`;
        if (rand() < 0.05) text += "The pilots logged storms near the quay.\n\n";
      }
      return doc(`d${d}`, `k${d}`, text, 80);
    });
    const refs = docs.flatMap((d, di) => d.chunks.map((c, pos) => ({ doc: di, pos, tokens: c.tokens })));
    const query = "Which pilot logged a storm at the quay?";
    const ours = rankChunks(docs, refs, query);
    // Reference: minisearch over every chunk, all terms indexed.
    const full = new MiniSearch<{ id: number; text: string }>({
      fields: ["text"],
      tokenize,
      processTerm: normalizeTerm,
    });
    refs.forEach((r, id) => {
      full.add({ id, text: docs[r.doc]!.chunks[r.pos]!.text });
    });
    const hits = full.search(queryTerms(query).join(" "), { combineWith: "OR" });
    expect(hits.length).toBeGreaterThan(3);
    // Exactly the chunks the full index scores are ranked above the rest.
    const key = (r: { doc: number; pos: number }) => `${r.doc}:${r.pos}`;
    const expected = hits.map((h) => key(refs[h.id as number]!));
    expect(ours.slice(0, hits.length).map(key).sort()).toEqual([...expected].sort());
    // The best chunk is the same, and our top 5 are as good by the full index's scores (within 5%:
    // the only approximation is the average chunk length, taken over the indexed chunks).
    expect(key(ours[0]!)).toBe(expected[0]);
    const fullScore = new Map(hits.map((h) => [key(refs[h.id as number]!), h.score]));
    const mean = (keys: string[]) => keys.reduce((n, k) => n + (fullScore.get(k) ?? 0), 0) / keys.length;
    expect(mean(ours.slice(0, 5).map(key))).toBeGreaterThanOrEqual(0.95 * mean(expected.slice(0, 5)));
  });

  it("tokenizes words lower-cased and CJK per character", () => {
    expect(tokenize("Hello, World! 42x")).toEqual(["hello", "world", "42x"]);
    expect(tokenize("東京タワーはabc高い")).toEqual(["東", "京", "タ", "ワ", "ー", "は", "abc", "高", "い"]);
  });

  it("query terms drop stop words and fold plurals", () => {
    expect(queryTerms("What are the Invoices of the cats?")).toEqual(["invoice", "cat"]);
  });
});
