/**
 * The best `k` chunks for a query over the term-partitioned segments, scored exactly as one MiniSearch
 * index over every chunk would score them (BM25+ per term, summed, times the number of query terms
 * matched: MiniSearch 7's `search` with OR), but without scoring every posting.
 *
 * MiniSearch's own `search` scores every posting of every query term and builds and sorts a result for
 * every chunk that matches any of them. Posting lists grow with the corpus (a common word is in a
 * quarter of 78,000 chunks at 10,000 documents), so that cost did too: 124-197 ms a question there.
 * Here the terms are taken rarest first (highest possible score first) and every chunk met is scored
 * in full by looking its other terms up (postings are maps); before each further term, if no chunk
 * that holds none of the terms taken so far could reach the k-th best score found, the rest are left
 * unscanned (MaxScore, Turtle & Flood 1995). A question's rare words then decide it after their own
 * short posting lists, whatever the corpus size. The result is exact: same chunks, same scores.
 *
 * It reads MiniSearch 7's index maps (not in its typings); `internalsOf` throws a clear error if they
 * change, and test/search/top-k.test.ts compares every result with MiniSearch's own search.
 */
import type MiniSearch from "minisearch";

/** MiniSearch's BM25+ parameters (its defaults; the segments set none). */
const BM25 = { k: 1.2, b: 0.7, d: 0.5 };
/** The most one posting can score per unit of idf: tf -> infinity, any length. */
const MAX_TERM_FACTOR = BM25.d + BM25.k + 1;

/** The parts of MiniSearch 7's index that scoring reads. */
interface ScoringInternals {
  _index: { get(term: string): Map<number, Map<number, number>> | undefined };
  _documentIds: Map<number, unknown>;
  _idToShortId: Map<unknown, number>;
  _fieldLength: Map<number, number[]>;
  _avgFieldLength: number[];
  _documentCount: number;
  _fieldIds: Record<string, number>;
}

function internalsOf(segment: MiniSearch<never> | MiniSearch<unknown>): ScoringInternals {
  const s = segment as unknown as ScoringInternals;
  if (
    typeof s._index?.get !== "function" ||
    !(s._documentIds instanceof Map) ||
    !(s._idToShortId instanceof Map) ||
    !(s._fieldLength instanceof Map) ||
    !Array.isArray(s._avgFieldLength) ||
    typeof s._documentCount !== "number" ||
    typeof s._fieldIds !== "object"
  ) {
    throw new Error("search index: minisearch internals changed; check top-k.ts");
  }
  return s;
}

/** A query term and the segment holding its postings. */
export interface TermSource {
  term: string;
  // biome-ignore lint/suspicious/noExplicitAny: any MiniSearch document type
  segment: MiniSearch<any>;
}

interface ScoredTerm {
  postings: Map<number, number>;
  seg: ScoringInternals;
  field: number;
  idf: number;
  avg: number;
  /** Highest score one chunk can get from this term. */
  bound: number;
}

export interface TopHit {
  id: number;
  score: number;
}

/** What a search did, for tests and benchmarks. */
export interface TopChunksStats {
  /** Postings of the query's terms, and of the terms actually scanned. */
  postings: number;
  postingsScanned: number;
}

/**
 * The `k` best chunks for `sources` (one per distinct query term; a term's segment holds no discarded
 * postings for it: see segments.ts `dropDiscardedPostings`), best first, ties by chunk id. `allow`
 * excludes chunks inside the scan (filters are applied in the index, not after it).
 */
export function topChunks(
  sources: readonly TermSource[],
  k: number,
  allow?: (id: number) => boolean,
  stats?: TopChunksStats,
  field = "tokens",
): TopHit[] {
  if (k <= 0) return [];
  const terms: ScoredTerm[] = [];
  for (const { term, segment } of sources) {
    const seg = internalsOf(segment);
    const fieldId = seg._fieldIds[field];
    if (fieldId === undefined) throw new Error(`search index: no field ${field} in a segment`);
    const postings = seg._index.get(term)?.get(fieldId);
    if (!postings || postings.size === 0) continue;
    const n = seg._documentCount;
    const df = postings.size;
    const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
    terms.push({
      postings,
      seg,
      field: fieldId,
      idf,
      avg: seg._avgFieldLength[fieldId] ?? 0,
      bound: idf * MAX_TERM_FACTOR,
    });
  }
  if (terms.length === 0) return [];
  if (stats) for (const t of terms) stats.postings += t.postings.size;

  // Scan order: highest bound (rarest) first. rest[i]: the most a chunk holding none of the terms
  // before i can score (the sum of the remaining bounds, times as many matched terms).
  const order = [...terms].sort((a, b) => b.bound - a.bound);
  const rest: number[] = new Array(order.length);
  let sum = 0;
  for (let i = order.length - 1; i >= 0; i--) {
    sum += order[i]!.bound;
    rest[i] = sum * (order.length - i);
  }

  const seen = new Map<number, number>(); // chunk id -> score (NaN: not allowed)
  const best = new MinHeap(k);
  for (let i = 0; i < order.length; i++) {
    if (best.full && rest[i]! < best.min) break;
    const t = order[i]!;
    if (stats) stats.postingsScanned += t.postings.size;
    for (const shortId of t.postings.keys()) {
      const id = t.seg._documentIds.get(shortId) as number | undefined;
      if (id === undefined || seen.has(id)) continue;
      if (allow && !allow(id)) {
        seen.set(id, Number.NaN);
        continue;
      }
      // Every term, in query order (the same order whatever the scan: the score is deterministic).
      let total = 0;
      let matched = 0;
      for (const q of terms) {
        const sid = q === t ? shortId : q.seg._idToShortId.get(id);
        if (sid === undefined) continue;
        const tf = q.postings.get(sid);
        if (tf === undefined) continue;
        const length = q.seg._fieldLength.get(sid)?.[q.field] ?? 0;
        total +=
          q.idf * (BM25.d + (tf * (BM25.k + 1)) / (tf + BM25.k * (1 - BM25.b + (BM25.b * length) / q.avg)));
        matched++;
      }
      const score = total * matched;
      seen.set(id, score);
      best.offer(score);
    }
  }
  if (!best.full && best.size === 0) return [];
  const floor = best.full ? best.min : Number.NEGATIVE_INFINITY;
  const out: TopHit[] = [];
  for (const [id, score] of seen) if (score >= floor) out.push({ id, score });
  out.sort((a, b) => b.score - a.score || a.id - b.id);
  return out.slice(0, k);
}

/** The k largest numbers offered, smallest on top. */
class MinHeap {
  private readonly a: number[] = [];
  constructor(private readonly k: number) {}
  get size(): number {
    return this.a.length;
  }
  get full(): boolean {
    return this.a.length >= this.k;
  }
  get min(): number {
    return this.a[0] ?? Number.NEGATIVE_INFINITY;
  }
  offer(x: number): void {
    const a = this.a;
    if (a.length < this.k) {
      a.push(x);
      let i = a.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (a[p]! <= a[i]!) break;
        [a[p], a[i]] = [a[i]!, a[p]!];
        i = p;
      }
      return;
    }
    if (x <= a[0]!) return;
    a[0] = x;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]! < a[m]!) m = l;
      if (r < a.length && a[r]! < a[m]!) m = r;
      if (m === i) break;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}
