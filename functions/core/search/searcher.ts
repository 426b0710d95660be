/**
 * The read side of the index, for the chat function and `POST /search`. Kept across warm invocations:
 * the manifest is revalidated (conditional GET on its ETag) at most every `refreshMs`; the document
 * table and segments are immutable objects cached by key, so a new manifest costs only the objects it
 * changed that a query then needs. Segments are loaded on demand (only those holding a query's terms)
 * and evicted least-recently-used beyond `maxCachedBytes`.
 */
import { queryTerms } from "../text/terms";
import {
  type DocumentEntry,
  type DocumentTableObject,
  decodeDocuments,
  MANIFEST_KEY,
  type Manifest,
} from "./layout";
import type { IndexedDocument, SearchHit, SearchIndex, SearchQuery, SearchScope } from "./model";
import {
  chunkIndexOf,
  combine,
  docNumberOf,
  loadSegment,
  type PartialScore,
  searchSegment,
  segmentOf,
} from "./segments";
import { type IndexObjects, unpackJson, unpackText } from "./storage";

export interface IndexSearcherOptions {
  objects: IndexObjects;
  /** Longest a manifest is used without asking whether it changed. @default 1000 ms */
  refreshMs?: number;
  /**
   * Decompressed JSON bytes of segments kept in memory. Their heap is about 2-3x this, so the default
   * keeps the cache within a few hundred MB of a 1 GB function. @default 96 MiB
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
}

interface State {
  manifest: Manifest;
  etag?: string;
  checkedAt: number;
  table: DocumentTable;
}

class DocumentTable {
  readonly byId = new Map<string, DocumentEntry>();
  readonly byNumber = new Map<number, DocumentEntry>();
  constructor(readonly sorted: DocumentEntry[]) {
    for (const d of sorted) {
      this.byId.set(d.documentId, d);
      this.byNumber.set(d.number, d);
    }
  }
}

const EMPTY_TABLE = new DocumentTable([]);

type Segment = ReturnType<typeof loadSegment>;

export class IndexSearcher implements SearchIndex {
  private state?: State;
  private refreshing?: Promise<State>;
  private readonly segments = new Map<string, { segment: Promise<Segment>; bytes: number }>();
  private cachedBytes = 0;
  readonly stats: SearcherStats = {
    manifestChecks: 0,
    objectsLoaded: 0,
    bytesLoaded: 0,
    segmentsCached: 0,
    cachedJsonBytes: 0,
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
    let docs = table.sorted;
    if (scope.documentIds) {
      const ids = new Set(scope.documentIds);
      docs = docs.filter((d) => ids.has(d.documentId));
    }
    if (scope.prefix) docs = docs.filter((d) => d.key.startsWith(scope.prefix as string));
    return docs.map(({ number: _n, ...d }) => d);
  }

  async search(q: SearchQuery): Promise<SearchHit[]> {
    const terms = queryTerms(q.query);
    if (terms.length === 0 || q.limit <= 0) return [];
    const { manifest, table } = await this.current();
    if (manifest.version === 0 || table.sorted.length === 0) return [];

    let allow: ((id: number) => boolean) | undefined;
    if (q.documentIds) {
      const numbers = new Set<number>();
      for (const id of q.documentIds) {
        const d = table.byId.get(id);
        if (d) numbers.add(d.number);
      }
      if (numbers.size === 0) return [];
      allow = (id) => numbers.has(docNumberOf(id));
    }
    if (q.prefix) {
      const prefix = q.prefix;
      const inner = allow;
      allow = (id) => (!inner || inner(id)) && !!table.byNumber.get(docNumberOf(id))?.key.startsWith(prefix);
    }

    const bySegment = new Map<number, string[]>();
    for (const t of terms) {
      const s = segmentOf(t, manifest.segments);
      const list = bySegment.get(s);
      if (list) list.push(t);
      else bySegment.set(s, [t]);
    }
    const loaded = await Promise.all(
      [...bySegment.keys()].map(async (s) => ({ s, segment: await this.segment(manifest.segmentKeys[s]) })),
    );
    const partial = new Map<number, PartialScore>();
    for (const { s, segment } of loaded) {
      if (segment) searchSegment(segment, bySegment.get(s)!, allow, partial);
    }
    const hits: { id: number; score: number }[] = [];
    for (const [id, p] of partial) hits.push({ id, score: combine(p) });
    hits.sort((a, b) => b.score - a.score || a.id - b.id);
    const out: SearchHit[] = [];
    for (const h of hits) {
      if (out.length >= q.limit) break;
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
        table: EMPTY_TABLE,
      };
      return this.state;
    }
    this.stats.bytesLoaded += got.body.length;
    const manifest = JSON.parse(got.body.toString("utf8")) as Manifest;
    let table = prev?.table ?? EMPTY_TABLE;
    if (manifest.documentsKey !== prev?.manifest.documentsKey) {
      const obj = manifest.documentsKey ? await this.opts.objects.get(manifest.documentsKey) : undefined;
      if (obj && obj !== "unchanged") {
        this.stats.objectsLoaded++;
        this.stats.bytesLoaded += obj.body.length;
        table = new DocumentTable(decodeDocuments(unpackJson<DocumentTableObject>(obj.body)));
      } else table = EMPTY_TABLE;
    }
    // Segments the new manifest no longer names can go (a query still running keeps its own reference).
    const live = new Set(manifest.segmentKeys);
    for (const [key, entry] of this.segments) {
      if (!live.has(key)) {
        this.segments.delete(key);
        this.cachedBytes -= entry.bytes;
      }
    }
    this.state = { manifest, etag: got.etag, checkedAt: this.now(), table };
    return this.state;
  }

  private async segment(key: string | undefined): Promise<Segment | undefined> {
    if (!key) return undefined;
    const hit = this.segments.get(key);
    if (hit) {
      // Most recently used last.
      this.segments.delete(key);
      this.segments.set(key, hit);
      return hit.segment;
    }
    const entry = { segment: this.loadSegment(key), bytes: 0 };
    this.segments.set(key, entry);
    try {
      const segment = await entry.segment;
      return segment;
    } catch (err) {
      this.segments.delete(key);
      throw err;
    }
  }

  private async loadSegment(key: string): Promise<Segment> {
    const obj = await this.opts.objects.get(key);
    if (!obj || obj === "unchanged") throw new Error(`search index: segment ${key} is missing`);
    const json = unpackText(obj.body);
    this.stats.objectsLoaded++;
    this.stats.bytesLoaded += obj.body.length;
    const segment = loadSegment(json);
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
