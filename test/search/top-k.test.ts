/**
 * Property test of the pruned top-k search (core/search/top-k.ts): over random corpora split into
 * term-partitioned segments (some chunks discarded afterwards, as a reader's delta patch does), random
 * queries, k and filters, it must return what MiniSearch's own search over one index of the same
 * chunks returns: the same scores, best first, and only chunks the filter allows. A unit test: the
 * index's storage and upkeep are tested against the local servers in index.test.ts and delta.test.ts.
 */
import fc from "fast-check";
import MiniSearch from "minisearch";
import { describe, expect, it } from "vitest";
import {
  addRouted,
  createSegment,
  dropDiscardedPostings,
  routeChunks,
  segmentOf,
  TermRouter,
} from "../../functions/core/search/segments";
import { type TermSource, type TopChunksStats, topChunks } from "../../functions/core/search/top-k";
import { normalizeTerm, queryTerms } from "../../functions/core/text/terms";

// A skewed vocabulary: the first words are in most chunks, the last ones in a few.
const VOCABULARY = Array.from({ length: 40 }, (_, i) => `w${i}`);

interface Corpus {
  chunks: { id: number; tokens: string[] }[];
  segments: number;
  discarded: number[];
}

const corpus: fc.Arbitrary<Corpus> = fc
  .record({
    chunks: fc.array(
      fc.array(
        fc.integer({ min: 0, max: 39 }).map((i) => VOCABULARY[Math.floor((i * i) / 40)]!),
        { minLength: 1, maxLength: 40 },
      ),
      { minLength: 1, maxLength: 60 },
    ),
    segments: fc.integer({ min: 1, max: 5 }),
    discardEvery: fc.integer({ min: 0, max: 5 }),
  })
  .map(({ chunks, segments, discardEvery }) => ({
    chunks: chunks.map((tokens, i) => ({ id: (1 + (i >> 2)) * 2 ** 20 + (i & 3), tokens })),
    segments,
    discarded: discardEvery ? chunks.flatMap((_, i) => (i % (discardEvery + 1) === 1 ? [i] : [])) : [],
  }));

function build(c: Corpus) {
  const router = new TermRouter(c.segments);
  const routed = routeChunks(c.chunks, router);
  const segments = Array.from({ length: c.segments }, (_, s) => {
    const segment = createSegment(router, s);
    addRouted(segment, s, routed);
    return segment;
  });
  const gone = new Set(c.discarded.map((i) => c.chunks[i]!.id));
  for (const segment of segments) for (const id of gone) segment.discard(id);
  const reference = new MiniSearch<{ id: number; tokens: string[] }>({
    fields: ["tokens"],
    extractField: (d, f) => (f === "tokens" ? d.tokens.join(" ") : (d as never)[f]),
    processTerm: (t) => normalizeTerm(t),
    searchOptions: { combineWith: "OR", prefix: false, fuzzy: false },
  });
  reference.addAll(c.chunks.filter((d) => !gone.has(d.id)));
  return { segments, reference };
}

function sourcesFor(segments: ReturnType<typeof build>["segments"], query: string): TermSource[] {
  return queryTerms(query).map((term) => {
    const segment = segments[segmentOf(term, segments.length)]!;
    dropDiscardedPostings(segment, [term]);
    return { term, segment };
  });
}

describe("top-k search over term-partitioned segments", () => {
  it("returns MiniSearch's own best k: same scores, best first, only allowed chunks", () => {
    fc.assert(
      fc.property(
        corpus,
        fc.array(fc.integer({ min: 0, max: 39 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 12 }),
        fc.option(fc.integer({ min: 2, max: 4 }), { nil: undefined }),
        (c, words, k, keepEvery) => {
          const { segments, reference } = build(c);
          const query = words.map((i) => VOCABULARY[i]!).join(" ");
          const allow = keepEvery ? (id: number) => Math.floor(id / 2 ** 20) % keepEvery === 0 : undefined;
          const got = topChunks(sourcesFor(segments, query), k, allow);
          // The index takes a query's distinct terms (text/terms.ts queryTerms); so does the reference.
          const all = reference.search(
            queryTerms(query).join(" "),
            allow ? { boostDocument: (id) => (allow(id) ? 1 : 0) } : {},
          );
          const byId = new Map(all.map((r) => [r.id as number, r.score]));
          expect(got).toHaveLength(Math.min(k, all.length));
          got.forEach((h, i) => {
            expect(h.score).toBeCloseTo(all[i]!.score, 9);
            expect(byId.get(h.id)).toBeCloseTo(h.score, 9);
            if (allow) expect(allow(h.id)).toBe(true);
          });
          for (let i = 1; i < got.length; i++) {
            const [a, b] = [got[i - 1]!, got[i]!];
            expect(a.score > b.score || (a.score === b.score && a.id < b.id)).toBe(true);
          }
        },
      ),
      {
        numRuns: 5000,
        // Counterexamples found for a bound without the matched-terms factor, and one per term.
        examples: [
          [
            {
              chunks: [
                { id: 2 ** 20, tokens: ["w21", "w2"] },
                { id: 2 ** 20 + 1, tokens: ["w2", "w0", "w3"] },
              ],
              segments: 1,
              discarded: [],
            },
            [0, 21, 2],
            1,
            undefined,
          ],
          [
            {
              chunks: [
                { id: 2 ** 20, tokens: ["w21", "w0"] },
                { id: 2 ** 20 + 1, tokens: ["w3", "w0", "w4"] },
              ],
              segments: 1,
              discarded: [],
            },
            [3, 0, 21],
            1,
            undefined,
          ],
        ],
      },
    );
  });

  it("leaves the common terms' postings unscanned once rare terms decide the top k", () => {
    const chunks = Array.from({ length: 2000 }, (_, i) => ({
      id: (i + 1) * 2 ** 20,
      tokens: ["common", "frequent", ...(i % 3 ? ["usual"] : []), ...(i === 1234 ? ["needle"] : [])],
    }));
    const { segments, reference } = build({ chunks, segments: 4, discarded: [] });
    const stats: TopChunksStats = { postings: 0, postingsScanned: 0 };
    const got = topChunks(sourcesFor(segments, "needle common frequent usual"), 3, undefined, stats);
    expect(got[0]!.id).toBe(1235 * 2 ** 20);
    const all = reference.search("needle common frequent usual");
    got.forEach((h, i) => {
      expect(h.score).toBeCloseTo(all[i]!.score, 9);
    });
    expect(stats.postings).toBe(1 + 2000 + 2000 + 1333);
    // The needle, and the next term: its chunks set the bar no chunk without the needle can pass.
    expect(stats.postingsScanned).toBeLessThan(stats.postings / 2);
  });
});
