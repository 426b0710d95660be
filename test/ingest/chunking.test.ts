import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CHUNKING_DEFAULTS,
  type ChunkingOptions,
  ChunkStream,
  chunkText,
} from "../../functions/core/text/chunking";
import { estimateTokens } from "../../functions/core/text/tokens";

/** Deterministic PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABETS = {
  latin: "abcdefghijklmnopqrstuvwxyz     ,.;!?\n",
  cjk: "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动。，！？\n",
  mixed: "aé文😀 .\n\u00a0\t한カ",
  noSpace: "abcdefghij0123456789",
};

function randomText(next: () => number, alphabet: string, length: number): string {
  const chars = Array.from(alphabet);
  let out = "";
  while (out.length < length) {
    const r = next();
    if (r < 0.01) out += "\n\n";
    else out += chars[Math.floor(next() * chars.length)];
  }
  return out;
}

function checkInvariants(text: string, opts: Required<ChunkingOptions> = CHUNKING_DEFAULTS) {
  const chunks = chunkText(text, opts);
  expect(chunks.map((c) => c.text).join("")).toBe(text);
  for (const c of chunks) {
    expect(c.text.length).toBeGreaterThan(0);
    expect(c.tokens).toBe(estimateTokens(c.text));
    expect(c.tokens).toBeLessThanOrEqual(opts.maxTokens);
    expect(Buffer.byteLength(c.text)).toBe(c.bytes);
    expect(c.bytes).toBeLessThanOrEqual(opts.maxBytes);
    // Never a lone surrogate at either end.
    expect(c.text).toBe(Buffer.from(c.text, "utf8").toString("utf8"));
  }
  return chunks;
}

describe("estimateTokens", () => {
  it("is deterministic and follows the documented rates", () => {
    expect(estimateTokens("")).toBe(0);
    expect(estimateTokens("a")).toBe(1);
    expect(estimateTokens("a".repeat(35))).toBe(10);
    expect(estimateTokens("文".repeat(10))).toBe(10);
    expect(estimateTokens("😀😀")).toBe(4);
    expect(estimateTokens("ééé")).toBe(2);
  });
  it("over-estimates typical English compared with ~4 chars per token", () => {
    const english = "The quick brown fox jumps over the lazy dog. ".repeat(100);
    expect(estimateTokens(english)).toBeGreaterThan(english.length / 4);
  });
});

describe("chunkText", () => {
  it("returns nothing for empty text and one chunk for short text", () => {
    expect(chunkText("")).toEqual([]);
    expect(chunkText("Hello.\n\nWorld.").map((c) => c.text)).toEqual(["Hello.\n\nWorld."]);
  });

  it("reassembles exactly and respects limits on random texts (property)", () => {
    const next = rng(42);
    for (const [name, alphabet] of Object.entries(ALPHABETS)) {
      for (let i = 0; i < 6; i++) {
        const length = Math.floor(next() * 60_000);
        const text = randomText(next, alphabet, length);
        const chunks = checkInvariants(text);
        if (estimateTokens(text) > CHUNKING_DEFAULTS.maxTokens)
          expect(chunks.length, name).toBeGreaterThan(1);
      }
    }
  });

  it("honours small limits, including a byte cap tighter than the token cap", () => {
    const next = rng(7);
    const opts = { targetTokens: 20, maxTokens: 30, maxBytes: 40 };
    for (const alphabet of Object.values(ALPHABETS)) {
      for (let i = 0; i < 20; i++) checkInvariants(randomText(next, alphabet, 2_000), opts);
    }
  });

  it("prefers paragraph, then sentence boundaries", () => {
    const paragraph = `${"Sentence number one is here. ".repeat(60).trim()}\n\n`;
    const text = paragraph.repeat(20);
    const chunks = checkInvariants(text);
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks.slice(0, -1)) expect(c.text.endsWith("\n\n")).toBe(true);
    for (const c of chunks.slice(0, -1)) expect(c.tokens).toBeGreaterThanOrEqual(1_500);

    const oneParagraph = "Sentence number one is here. ".repeat(2_000);
    for (const c of checkInvariants(oneParagraph).slice(0, -1)) expect(c.text.endsWith(". ")).toBe(true);
  });

  it("splits CJK and whitespace-free text without breaking characters", () => {
    checkInvariants("文".repeat(20_000));
    checkInvariants("😀".repeat(20_000));
    checkInvariants("x".repeat(200_000));
    const chunks = checkInvariants("中文句子。".repeat(5_000));
    for (const c of chunks.slice(0, -1)) expect(c.text.endsWith("。")).toBe(true);
  });

  it("handles several MB quickly", () => {
    const text = randomText(rng(1), ALPHABETS.latin, 4_000_000);
    const started = performance.now();
    const chunks = checkInvariants(text);
    expect(chunks.length).toBeGreaterThan(300);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe("chunkText on very long texts", () => {
  it("splits a 12 MB text of 200,000 short lines without exhausting the call stack", () => {
    // One paragraph of many single-line sentences: the sentence level yields ~200k pieces.
    const text = Array.from({ length: 200_000 }, (_, i) => `line ${i} of a log file with some words`).join(
      "\n",
    );
    const chunks = chunkText(text);
    expect(chunks.map((c) => c.text).join("")).toBe(text);
    expect(chunks.length).toBeGreaterThan(100);
    for (const c of chunks) expect(c.tokens).toBeLessThanOrEqual(CHUNKING_DEFAULTS.maxTokens);
  });
});

describe("ChunkStream (a text chunked as it arrives)", () => {
  const options = { targetTokens: 20, maxTokens: 30, maxBytes: 120 };
  const word = fc.constantFrom("alpha", "beta", "gamma", "δέλτα", "文字", "😀", "a.", "b!", "c?");
  const sep = fc.constantFrom(" ", " ", " ", "\n", "\n\n", "\n \n  ", ". ");
  const paragraphText = fc
    .array(fc.tuple(word, sep), { maxLength: 400 })
    .map((parts) => parts.map(([w, s]) => w + s).join(""));

  it("makes exactly chunkText's chunks of a text with paragraphs, wherever it is cut into pieces", () => {
    fc.assert(
      fc.property(paragraphText, fc.array(fc.nat(), { maxLength: 20 }), (text, cuts) => {
        const stream = new ChunkStream(options, 300);
        const got = [];
        let from = 0;
        for (const c of [...new Set(cuts.map((x) => x % (text.length + 1)))].sort((a, b) => a - b)) {
          got.push(...stream.push(text.slice(from, c)));
          from = c;
        }
        got.push(...stream.push(text.slice(from)), ...stream.end());
        expect(got).toEqual(chunkText(text, options));
      }),
      { numRuns: 200 },
    );
  });

  it("keeps every character and the limits for any text, long paragraphs included", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 2_000 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (text, cuts) => {
          const stream = new ChunkStream(options, 100);
          const got = [];
          let from = 0;
          for (const c of [...new Set(cuts.map((x) => x % (text.length + 1)))].sort((a, b) => a - b)) {
            got.push(...stream.push(text.slice(from, c)));
            from = c;
          }
          got.push(...stream.push(text.slice(from)), ...stream.end());
          expect(got.map((c) => c.text).join("")).toBe(text);
          for (const c of got) {
            expect(c.tokens).toBeLessThanOrEqual(options.maxTokens);
            expect(Buffer.byteLength(c.text)).toBeLessThanOrEqual(options.maxBytes);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
