/**
 * The read side of the index, for the chat function and `POST /search`. Kept across warm invocations:
 * the manifest is revalidated (conditional GET on its ETag) at most every `refreshMs`; the document
 * table and segments are immutable objects cached by key, so a new manifest costs only the objects it
 * changed that a query then needs. Segments are loaded on demand (only those holding a query's terms)
 * and evicted least-recently-used beyond `maxCachedBytes`. A run that did not fold changes only the
 * delta (delta.ts): the searcher loads that one small object and patches the cached segments with
 * what changed since it last patched them (discard the delta's tombstones, add its new chunks), so
 * the scores stay those of one index over everything and the base segments are not read again.
 */
import { queryTerms } from "../text/terms";
import { type DeltaObject, IndexDelta, splitTokens } from "./delta";
import {
  type DocumentEntry,
  type DocumentTableObject,
  decodeDocuments,
  MANIFEST_KEY,
  type Manifest,
} from "./layout";
import type {
  IndexedDocument,
  SearchHit,
  SearchIndex,
  SearchQuery,
  SearchScope,
  UnsearchableDocument,
} from "./model";
import {
  addRouted,
  chunkIndexOf,
  docNumberOf,
  dropDiscardedPostings,
  loadSegment,
  type RoutedChunk,
  routeChunks,
  type SegmentDocument,
  segmentOf,
  TermRouter,
} from "./segments";
import { type IndexObjects, unpackJson, unpackText } from "./storage";
import { type TermSource, topChunks } from "./top-k";

export interface IndexSearcherOptions {
  objects: IndexObjects;
  /** Longest a manifest is used without asking whether it changed. @default 1000 ms */
  refreshMs?: number;
  /**
   * Decompressed JSON bytes of segments kept in memory. Their heap is about 5x this, so the default
   * keeps the cache within a few hundred MB of a 1 GB function; one query loads at most this much
   * (see `plan`). @default 96 MiB
   */
  maxCachedBytes?: number;
  now?: () => number;
}

/** What the searcher read from storage, for benchmarks and logs. */
export interface SearcherStats {
  manifestChecks: number;
  objectsLoaded: number;
  bytesLoaded: number;
  segmentsCached: number;
  /** Decompressed JSON bytes of the cached segments (see maxCachedBytes). */
  cachedJsonBytes: number;
  /** Deltas loaded (one per index change that did not fold), and their bytes. */
  deltasLoaded: number;
  deltaBytesLoaded: number;
  /** Chunks added to cached segments from deltas (patch work). */
  chunksPatched: number;
  /** The last search: ms waiting for its segments, ms patching and scoring, postings of its terms and how many were scanned. */
  lastSearch?: {
    segmentsMs: number;
    scoreMs: number;
    postings: number;
    postingsScanned: number;
    /** Query terms left out: their segments would have passed the cache cap (see plan). */
    termsDropped: number;
  };
}

interface State {
  manifest: Manifest;
  etag?: string;
  checkedAt: number;
  /** The base table (from documentsKey) and the delta over it. */
  base: Map<string, DocumentEntry>;
  delta: PatchDelta;
  /** base + delta. */
  table: DocumentTable;
}

/** A loaded delta, as the patches need it. */
interface PatchDelta {
  key: string;
  chunks: ReadonlyMap<number, string>;
  /** Base chunk ids the delta replaced or removed. */
  tombstones: number[];
  /** The delta's chunks routed to segments, filled as patches need them (each chunk routed once). */
  routed: Map<number, RoutedChunk>;
}

const NO_DELTA: PatchDelta = { key: "", chunks: new Map(), tombstones: [], routed: new Map() };

/** A cached segment and what of the deltas it holds. */
interface CachedSegment {
  /** Its term partition. */
  index: number;
  segment: Promise<Segment>;
  loaded?: Segment;
  bytes: number;
  /** Manifest version the patch follows; never moved back (a query on an older manifest uses it as is). */
  version: number;
  /** Delta chunks added, base chunks discarded. */
  added: Set<number>;
  discarded: Set<number>;
  /** Terms whose postings hold no discarded chunk (cleared when a patch discards one). */
  cleanTerms: Set<string>;
}

/** The index's documents: the searchable ones, and apart those it knows but cannot search. */
class DocumentTable {
  readonly byId = new Map<string, DocumentEntry>();
  readonly byNumber = new Map<number, DocumentEntry>();
  readonly sorted: DocumentEntry[] = [];
  readonly unsearchable: DocumentEntry[] = [];
  constructor(entries: DocumentEntry[]) {
    for (const d of entries) {
      if (d.status) {
        this.unsearchable.push(d);
        continue;
      }
      this.sorted.push(d);
      this.byId.set(d.documentId, d);
      this.byNumber.set(d.number, d);
    }
  }
}

function inScope<T extends { documentId: string; key: string }>(docs: T[], scope: SearchScope): T[] {
  let out = docs;
  if (scope.documentIds) {
    const ids = new Set(scope.documentIds);
    out = out.filter((d) => ids.has(d.documentId));
  }
  if (scope.prefix) out = out.filter((d) => d.key.startsWith(scope.prefix as string));
  return out;
}

const EMPTY_TABLE = new DocumentTable([]);

const byKey = (a: DocumentEntry, b: DocumentEntry) =>
  a.key < b.key ? -1 : a.key > b.key ? 1 : a.documentId < b.documentId ? -1 : 1;

type Segment = ReturnType<typeof loadSegment>;

export class IndexSearcher implements SearchIndex {
  private state?: State;
  private refreshing?: Promise<State>;
  private readonly segments = new Map<string, CachedSegment>();
  private router?: TermRouter;
  private cachedBytes = 0;
  readonly stats: SearcherStats = {
    manifestChecks: 0,
    objectsLoaded: 0,
    bytesLoaded: 0,
    segmentsCached: 0,
    cachedJsonBytes: 0,
    deltasLoaded: 0,
    deltaBytesLoaded: 0,
    chunksPatched: 0,
  };
  private readonly refreshMs: number;
  private readonly maxCachedBytes: number;
  private readonly now: () => number;

  constructor(private readonly opts: IndexSearcherOptions) {
    this.refreshMs = opts.refreshMs ?? 1000;
    this.maxCachedBytes = opts.maxCachedBytes ?? 96 * 1024 * 1024;
    this.now = opts.now ?? Date.now;
  }

  /** The manifest in use (refreshed when older than refreshMs); undefined before the first index run. */
  async manifest(): Promise<Manifest | undefined> {
    const s = await this.current();
    return s.manifest.version > 0 ? s.manifest : undefined;
  }

  async documents(scope: SearchScope = {}): Promise<IndexedDocument[]> {
    const { table } = await this.current();
    return inScope(table.sorted, scope).map(({ number: _n, ...d }) => d);
  }

  async unsearchable(scope: SearchScope = {}): Promise<UnsearchableDocument[]> {
    const { table } = await this.current();
    return inScope(table.unsearchable, scope).map(({ documentId, key, status, error }) => ({
      documentId,
      key,
      status: status as UnsearchableDocument["status"],
      ...(error ? { error } : {}),
    }));
  }

  async search(q: SearchQuery): Promise<SearchHit[]> {
    const terms = queryTerms(q.query);
    if (terms.length === 0 || q.limit <= 0) return [];
    const state = await this.current();
    const { manifest, table } = state;
    if (manifest.version === 0 || table.sorted.length === 0) return [];

    // Chunks outside the scope, or of a document the table no longer has, are skipped inside the scan.
    let numbers: Set<number> | undefined;
    if (q.documentIds) {
      numbers = new Set<number>();
      for (const id of q.documentIds) {
        const d = table.byId.get(id);
        if (d) numbers.add(d.number);
      }
      if (numbers.size === 0) return [];
    }
    const prefix = q.prefix;
    const allow = (id: number): boolean => {
      const n = docNumberOf(id);
      if (numbers && !numbers.has(n)) return false;
      const d = table.byNumber.get(n);
      return !!d && (!prefix || d.key.startsWith(prefix));
    };

    const { bySegment, termsDropped } = this.plan(terms, manifest);
    const started = performance.now();
    const loaded = await Promise.all(
      [...bySegment.keys()].map(async (s) => ({
        s,
        entry: await this.segment(manifest.segmentKeys[s], manifest.segments, s),
      })),
    );
    const segmentsAt = performance.now();
    // From here to the end of the search nothing awaits: the patches and the search see one state.
    const sources: TermSource[] = [];
    for (const { s, entry } of loaded) {
      const segment = entry?.loaded;
      if (!entry || !segment) continue;
      this.patch(entry, state);
      const own = bySegment.get(s)!;
      const dirty = own.filter((t) => !entry.cleanTerms.has(t));
      if (dirty.length) {
        dropDiscardedPostings(segment, dirty);
        for (const t of dirty) entry.cleanTerms.add(t);
      }
      for (const term of own) sources.push({ term, segment });
    }
    // In query order: the score of a chunk sums its terms in that order, whatever the segments.
    const rank = new Map(terms.map((t, i) => [t, i]));
    sources.sort((a, b) => rank.get(a.term)! - rank.get(b.term)!);
    const scanned = { postings: 0, postingsScanned: 0 };
    const hits = topChunks(sources, q.limit, allow, scanned);
    this.stats.lastSearch = {
      segmentsMs: segmentsAt - started,
      scoreMs: performance.now() - segmentsAt,
      ...scanned,
      termsDropped,
    };
    const out: SearchHit[] = [];
    for (const h of hits) {
      const d = table.byNumber.get(docNumberOf(h.id));
      if (!d) continue;
      out.push({
        documentId: d.documentId,
        key: d.key,
        generation: d.generation,
        chunkIndex: chunkIndexOf(h.id),
        score: h.score,
      });
    }
    return out;
  }

  /**
   * The segments a query loads, with its terms in each. A question's terms usually sit in a few
   * segments; a long one (a pasted page) could name every segment, and the whole index does not fit a
   * 1 GB function at 10,000 documents. So a query loads at most `maxCachedBytes` of segments (by the
   * sizes the manifest records; without them, a quarter of the segments): those holding the most of
   * its terms first. Terms left out do not score (`stats.lastSearch.termsDropped`); short questions
   * are never cut.
   */
  private plan(
    terms: readonly string[],
    manifest: Manifest,
  ): { bySegment: Map<number, string[]>; termsDropped: number } {
    const bySegment = new Map<number, string[]>();
    for (const t of terms) {
      const s = segmentOf(t, manifest.segments);
      const list = bySegment.get(s);
      if (list) list.push(t);
      else bySegment.set(s, [t]);
    }
    const sizes = manifest.segmentBytes;
    const order = [...bySegment.keys()].sort(
      (a, b) => bySegment.get(b)!.length - bySegment.get(a)!.length || a - b,
    );
    const chosen: number[] = [];
    let bytes = 0;
    let dropped = 0;
    for (const s of order) {
      const size = sizes?.[s] ?? 0;
      const fits = sizes
        ? bytes + size <= this.maxCachedBytes
        : chosen.length < Math.max(1, Math.floor(manifest.segments / 4));
      if (chosen.length === 0 || fits) {
        chosen.push(s);
        bytes += size;
      } else dropped += bySegment.get(s)!.length;
    }
    return { bySegment: new Map(chosen.map((s) => [s, bySegment.get(s)!])), termsDropped: dropped };
  }

  private async current(): Promise<State> {
    if (this.state && this.now() - this.state.checkedAt < this.refreshMs) return this.state;
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<State> {
    this.stats.manifestChecks++;
    const prev = this.state;
    const got = await this.opts.objects.get(MANIFEST_KEY, prev?.etag);
    if (got === "unchanged" && prev) {
      this.state = { ...prev, checkedAt: this.now() };
      return this.state;
    }
    if (!got || got === "unchanged") {
      this.state = {
        manifest: { version: 0 } as Manifest,
        checkedAt: this.now(),
        base: new Map(),
        delta: NO_DELTA,
        table: EMPTY_TABLE,
      };
      return this.state;
    }
    this.stats.bytesLoaded += got.body.length;
    const manifest = JSON.parse(got.body.toString("utf8")) as Manifest;
    let base = prev?.base ?? new Map<string, DocumentEntry>();
    const baseChanged = manifest.documentsKey !== prev?.manifest.documentsKey;
    if (baseChanged) {
      base = new Map();
      const obj = manifest.documentsKey ? await this.opts.objects.get(manifest.documentsKey) : undefined;
      if (obj && obj !== "unchanged") {
        this.stats.objectsLoaded++;
        this.stats.bytesLoaded += obj.body.length;
        for (const d of decodeDocuments(unpackJson<DocumentTableObject>(obj.body))) base.set(d.documentId, d);
      }
      this.router?.forgetTerms();
    }
    const deltaKey = manifest.deltaKey ?? "";
    let delta = prev?.delta ?? NO_DELTA;
    let table = prev?.table ?? EMPTY_TABLE;
    if (baseChanged || deltaKey !== delta.key) {
      let d = new IndexDelta();
      if (deltaKey) {
        const obj = await this.opts.objects.get(deltaKey);
        if (!obj || obj === "unchanged") throw new Error(`search index: ${deltaKey} is missing`);
        this.stats.objectsLoaded++;
        this.stats.deltasLoaded++;
        this.stats.deltaBytesLoaded += obj.body.length;
        this.stats.bytesLoaded += obj.body.length;
        d = IndexDelta.decode(unpackJson<DeltaObject>(obj.body));
      }
      delta = { key: deltaKey, chunks: d.chunks, tombstones: d.tombstones(base), routed: new Map() };
      table = new DocumentTable([...d.merge(base.values()).values()].sort(byKey));
    }
    // Segments the new manifest no longer names can go (a query still running keeps its own reference).
    const live = new Set(manifest.segmentKeys);
    for (const [key, entry] of this.segments) {
      if (!live.has(key)) {
        this.segments.delete(key);
        this.cachedBytes -= entry.bytes;
      }
    }
    this.state = { manifest, etag: got.etag, checkedAt: this.now(), base, delta, table };
    return this.state;
  }

  /**
   * Brings a cached segment to `state`'s delta: discards delta chunks gone since and base chunks newly
   * replaced, adds the delta's new chunks. Synchronous (MiniSearch's add/discard are), so a query
   * patches and searches one state. A segment already patched to a newer manifest is left as is.
   */
  private patch(entry: CachedSegment, state: State): void {
    const segment = entry.loaded;
    if (!segment || entry.version >= state.manifest.version) return;
    const { delta } = state;
    const dirt = segment.dirtCount;
    for (const id of entry.added) {
      if (delta.chunks.has(id)) continue;
      if (segment.has(id)) segment.discard(id);
      entry.added.delete(id);
    }
    for (const id of delta.tombstones) {
      if (entry.discarded.has(id)) continue;
      if (segment.has(id)) segment.discard(id);
      entry.discarded.add(id);
    }
    if (segment.dirtCount !== dirt) entry.cleanTerms.clear();
    // Each delta chunk is routed once (the first segment that needs it), then added to every segment
    // with only that segment's terms (segments.ts addRouted), in the delta's order.
    const docs: RoutedChunk[] = [];
    for (const [id, joined] of delta.chunks) {
      if (entry.added.has(id)) continue;
      let routed = delta.routed.get(id);
      if (!routed) {
        const doc: SegmentDocument = { id, tokens: splitTokens(joined) };
        routed = routeChunks([doc], this.routerFor(state.manifest.segments))[0]!;
        delta.routed.set(id, routed);
      }
      docs.push(routed);
    }
    if (docs.length) {
      addRouted(segment, entry.index, docs);
      for (const d of docs) entry.added.add(d.id);
      this.stats.chunksPatched += docs.length;
    }
    entry.version = state.manifest.version;
  }

  private routerFor(segments: number): TermRouter {
    if (this.router?.segments !== segments) this.router = new TermRouter(segments);
    return this.router;
  }

  private async segment(
    key: string | undefined,
    segments: number,
    s: number,
  ): Promise<CachedSegment | undefined> {
    if (!key) return undefined;
    const hit = this.segments.get(key);
    if (hit) {
      // Most recently used last.
      this.segments.delete(key);
      this.segments.set(key, hit);
      await hit.segment;
      return hit;
    }
    const entry: CachedSegment = {
      segment: this.loadSegment(key, segments, s),
      index: s,
      bytes: 0,
      version: 0,
      added: new Set(),
      discarded: new Set(),
      cleanTerms: new Set(),
    };
    this.segments.set(key, entry);
    try {
      entry.loaded = await entry.segment;
      return entry;
    } catch (err) {
      this.segments.delete(key);
      throw err;
    }
  }

  private async loadSegment(key: string, segments: number, s: number): Promise<Segment> {
    const obj = await this.opts.objects.get(key);
    if (!obj || obj === "unchanged") throw new Error(`search index: segment ${key} is missing`);
    const json = unpackText(obj.body);
    this.stats.objectsLoaded++;
    this.stats.bytesLoaded += obj.body.length;
    // With the router: a delta's chunks can be added to it (their terms routed like the indexer's).
    const segment = loadSegment(json, this.routerFor(segments), s);
    const entry = this.segments.get(key);
    if (entry) {
      entry.bytes = json.length;
      this.cachedBytes += json.length;
    }
    this.evict(key);
    this.stats.segmentsCached = this.segments.size;
    this.stats.cachedJsonBytes = this.cachedBytes;
    return segment;
  }

  private evict(keep: string): void {
    for (const [key, entry] of this.segments) {
      if (this.cachedBytes <= this.maxCachedBytes) break;
      if (key === keep || entry.bytes === 0) continue;
      this.segments.delete(key);
      this.cachedBytes -= entry.bytes;
    }
  }
}
