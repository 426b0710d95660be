/**
 * The index's layout: MiniSearch indexes partitioned by *term*. Segment `b` of `n` holds every chunk
 * of the corpus (its id and length) but only the terms whose hash falls in `b`. So:
 *
 * - every segment has the corpus-wide document count, field lengths and average length, and the full
 *   posting list of each of its terms: MiniSearch's BM25 for a term is the same in its segment as in
 *   one index over everything. A query reads only the segments of its own terms (a few of `n`), and
 *   the per-segment results add up to exactly what a single index would score (see `combine`);
 * - a reader's memory follows the segments its queries touch, not the corpus (the 1 GB chat function
 *   cannot hold a whole MiniSearch index of 500 MB of text: about 1.2 GB of heap);
 * - the price is on the write side: a new chunk changes every segment's statistics. Runs therefore
 *   write a small delta that readers apply to the segments they load (delta.ts), and rewrite every
 *   segment only when they fold that delta in (indexer.ts).
 *
 * Chunk ids are numbers: `docNumber * 2^20 + chunkIndex`, where the document number is assigned by
 * the indexer per indexed text generation and never reused (a discarded id can never come back).
 */
import MiniSearch, { type Options } from "minisearch";
import { normalizeTerm } from "../text/terms";

/** Room for chunk positions in a chunk id (a 100 MB text makes about 17,000 chunks). */
export const CHUNK_SLOTS = 2 ** 20;
export const chunkId = (docNumber: number, chunkIndex: number): number =>
  docNumber * CHUNK_SLOTS + chunkIndex;
export const docNumberOf = (id: number): number => Math.floor(id / CHUNK_SLOTS);
export const chunkIndexOf = (id: number): number => id % CHUNK_SLOTS;

/** Which segment holds `term` (FNV-1a over its UTF-16 units; stable across versions and platforms). */
export function segmentOf(term: string, segments: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < term.length; i++) {
    h ^= term.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % segments;
}

/** A chunk to index: its raw tokens (text/terms.ts `tokenize`), whose count is its BM25 length. */
export interface SegmentDocument {
  id: number;
  tokens: string[];
}

type Segment = MiniSearch<SegmentDocument>;

/** Maps raw tokens to (normalised term, segment) once per run; every segment pass reuses it. */
export class TermRouter {
  private readonly cache = new Map<string, number>();
  private readonly tokens = new Map<string, string[]>();
  private readonly normal = new Map<string, string>();
  constructor(readonly segments: number) {}

  /** The normalised term if `raw` belongs to `segment`, else null (stop words belong to none). */
  termIn(raw: string, segment: number): string | null {
    return this.segmentOfRaw(raw) === segment ? (this.normal.get(raw) as string) : null;
  }

  /** The segment of a raw token's normalised term; -1 for a stop word. */
  segmentOfRaw(raw: string): number {
    let s = this.cache.get(raw);
    if (s === undefined) {
      const term = normalizeTerm(raw);
      s = term === null ? -1 : segmentOf(term, this.segments);
      this.cache.set(raw, s);
      if (term !== null) this.normal.set(raw, term);
    }
    return s;
  }

  /** The normalised term of a raw token `segmentOfRaw` placed in a segment. */
  termOf(raw: string): string {
    return this.normal.get(raw) as string;
  }

  /** The chunks about to be added: each segment pass takes their token arrays from here. */
  setDocuments(docs: readonly SegmentDocument[]): void {
    this.tokens.clear();
    for (const d of docs) this.tokens.set(fieldKey(d.id), d.tokens);
  }

  /** Forgets the terms seen so far (a long-lived router's cache follows its recent documents only). */
  forgetTerms(): void {
    this.cache.clear();
    this.normal.clear();
  }

  tokensOf(key: string): string[] {
    return this.tokens.get(key) ?? [];
  }
}

/**
 * MiniSearch passes a field through `String(...)` before tokenising it; the field value is therefore
 * a short key, and `tokenize` returns the chunk's token array (tokenised once per run, not per segment).
 */
const fieldKey = (id: number): string => `#${id}`;

const BASE_OPTIONS = {
  fields: ["tokens"],
  idField: "id",
  storeFields: [] as string[],
  extractField: (doc: SegmentDocument, field: string) =>
    field === "tokens" ? fieldKey(doc.id) : (doc as unknown as Record<string, unknown>)[field],
  autoVacuum: false as const,
  searchOptions: { combineWith: "OR" as const, prefix: false, fuzzy: false as const },
};

function optionsFor(
  processTerm: (raw: string) => string | null,
  router?: TermRouter,
): Options<SegmentDocument> {
  return {
    ...BASE_OPTIONS,
    tokenize: (key: string) => router?.tokensOf(key) ?? [],
    processTerm,
  } as unknown as Options<SegmentDocument>;
}

/** An empty segment that will index the terms `router` assigns to `segment`. */
export function createSegment(router: TermRouter, segment: number): Segment {
  return new MiniSearch<SegmentDocument>(optionsFor((raw) => router.termIn(raw, segment), router));
}

/** A stored segment; `router` is needed only to add chunks to it. */
export function loadSegment(json: string, router?: TermRouter, segment = 0): Segment {
  return MiniSearch.loadJSON<SegmentDocument>(
    json,
    optionsFor(router ? (raw) => router.termIn(raw, segment) : (t) => t, router),
  );
}

/** A chunk routed once per run: its BM25 length and, per segment, its normalised terms there. */
export interface RoutedChunk {
  id: number;
  /** What MiniSearch takes as the field length: the number of distinct raw tokens. */
  length: number;
  /** terms[s]: the chunk's normalised terms (repeated as often as they occur) that segment s holds. */
  terms: string[][];
}

const NO_TERMS: string[] = [];

/**
 * Routes chunks once for all segments. Adding a chunk to each of n segments through MiniSearch's own
 * tokenising would pass over all its tokens n times (length and routing); routed once, each segment
 * pass handles only its own terms.
 */
export function routeChunks(docs: Iterable<SegmentDocument>, router: TermRouter): RoutedChunk[] {
  const n = router.segments;
  const out: RoutedChunk[] = [];
  for (const d of docs) {
    const terms: string[][] = Array.from({ length: n }, () => NO_TERMS);
    for (const raw of d.tokens) {
      const s = router.segmentOfRaw(raw);
      if (s < 0) continue;
      const list = terms[s]!;
      if (list === NO_TERMS) terms[s] = [router.termOf(raw)];
      else list.push(router.termOf(raw));
    }
    out.push({ id: d.id, length: new Set(d.tokens).size, terms });
  }
  return out;
}

/** The parts of MiniSearch 7 that `addRouted` steers (not in its typings). */
interface AddInternals {
  _options: { tokenize: unknown; processTerm: unknown };
  addFieldLength(documentId: number, fieldId: number, count: number, length: number): void;
}

/**
 * Adds routed chunks to segment `s` with MiniSearch's own `add`: the same document ids, postings and
 * field lengths (so the same running average) as adding the raw tokens, but its tokeniser hands it
 * only the segment's terms and the field length is the chunk's full one.
 */
export function addRouted(segment: Segment, s: number, chunks: readonly RoutedChunk[]): void {
  const inner = segment as unknown as AddInternals;
  if (
    typeof inner._options !== "object" ||
    typeof inner._options.tokenize !== "function" ||
    typeof inner.addFieldLength !== "function"
  ) {
    throw new Error("search index: minisearch internals changed; check addRouted");
  }
  const options = inner._options;
  const { tokenize, processTerm } = options;
  const addFieldLength = inner.addFieldLength;
  let current: RoutedChunk | undefined;
  options.tokenize = () => current?.terms[s] ?? NO_TERMS;
  options.processTerm = (term: string) => term;
  inner.addFieldLength = function (this: unknown, documentId, fieldId, count) {
    addFieldLength.call(this, documentId, fieldId, count, current?.length ?? 0);
  };
  try {
    for (const c of chunks) {
      current = c;
      segment.add({ id: c.id, tokens: NO_TERMS });
    }
  } finally {
    options.tokenize = tokenize;
    options.processTerm = processTerm;
    delete (inner as Partial<AddInternals>).addFieldLength; // the prototype's again
    current = undefined;
  }
}

/**
 * Removes the postings of discarded chunks (a fold rewrites the whole segment anyway): a stored
 * segment holds no dirt, so its document frequencies are exact (see searchSegment).
 */
export async function vacuumIfDirty(segment: Segment): Promise<void> {
  if (segment.dirtCount > 0) await segment.vacuum({ batchSize: 1e9, batchWait: 0 });
}

/** The parts of MiniSearch 7's index that `vacuum` itself cleans (not in its typings). */
interface SegmentInternals {
  _index: { get(term: string): Map<number, Map<number, number>> | undefined };
  _documentIds: Map<number, unknown>;
}

/**
 * A segment patched with a delta holds the postings of discarded chunks. MiniSearch skips them while
 * scoring but counts them in the term's document frequency until it meets them (and its lazy cleanup
 * only lowers their term frequency by one per search), so scores would drift from one clean index.
 * `vacuum` fixes that for the whole segment; this does what it does for the query's terms only, so
 * the query scores with exact frequencies at the cost of its own postings.
 */
export function dropDiscardedPostings(segment: Segment, terms: readonly string[]): void {
  if (segment.dirtCount === 0) return;
  const inner = segment as unknown as SegmentInternals;
  if (typeof inner._index?.get !== "function" || !(inner._documentIds instanceof Map)) {
    throw new Error("search index: minisearch internals changed; check dropDiscardedPostings");
  }
  for (const term of terms) {
    const fields = inner._index.get(term);
    if (!fields) continue;
    for (const postings of fields.values()) {
      for (const shortId of postings.keys()) if (!inner._documentIds.has(shortId)) postings.delete(shortId);
    }
  }
}
