/**
 * The index's single writer. A run takes the to-do list (todos.ts), reads each document's record
 * (strongly consistent), and brings the index in line with it: the current text generation of a
 * searchable record is indexed, anything else the index holds for the document is discarded. It reads
 * the *current* state, never an event, so duplicate, late or out-of-order changes all converge, and a
 * run that crashes changes nothing (its new objects are unreferenced until the manifest points at
 * them; the to-dos stay until then; a later run sweeps them).
 *
 * Upkeep follows the change, not the corpus: a run rewrites only the delta (delta.ts: the changed
 * documents' entries and tokens since the last fold) and the manifest. Once the delta passes
 * `foldTextChars` or `foldDocuments`, the run folds it into new base segments (every segment
 * rewritten, as a bulk load does), so a reader's patch work and the delta's size stay bounded.
 * Runs batch: up to `maxDocuments` to-dos or `maxTextBytes` of new text each; the rest waits for the
 * next run. A bulk load (more to-dos than one batch) takes batches that grow with the index
 * (`bulkGrowth` x its documents, up to `bulkMaxDocuments` / `bulkMaxTextBytes` and the run's time
 * budget): each bulk run folds, so fixed batches would rewrite the whole index N / 500 times for N
 * documents (quadratic); growing ones fold about log2(N / 500) times until the caps bind. Exactly one run at a time is the deployment's job (a FIFO queue with one message group in
 * AWS, one local queue worker in `npm start`); the manifest holds no lock.
 */
import { randomUUID } from "node:crypto";
import { mapLimit } from "../chat/selection";
import type { DocumentReader, DocumentRecord } from "../documents/model";
import { type LoggerPort, silentLogger } from "../runtime/telemetry";
import { tokenize } from "../text/terms";
import { type DeltaObject, IndexDelta } from "./delta";
import {
  type DocumentEntry,
  type DocumentTableObject,
  decodeDocuments,
  emptyManifest,
  encodeDocuments,
  MANIFEST_FORMAT,
  MANIFEST_KEY,
  type Manifest,
  manifestObjects,
} from "./layout";
import { isSearchable } from "./model";
import {
  addRouted,
  chunkId,
  createSegment,
  loadSegment,
  routeChunks,
  TermRouter,
  vacuumIfDirty,
} from "./segments";
import { type IndexObjects, packJson, packText, unpackJson, unpackText } from "./storage";
import type { SearchTodo, SearchTodoList } from "./todos";

export interface IndexerConfig {
  /**
   * Term partitions of a new index (an existing index keeps its own). More partitions: a question
   * loads less (a segment is ~1/n of the postings plus every chunk's id and length), a fold writes
   * more. At 10,000 documents 64 against 32: cold first question 12.4 vs 21.9 MB read, no question's
   * segments past the chat's cache cap, indexer ~1.2x the time (bench/results.md). @default 64
   */
  segments: number;
  /** To-dos taken per run. @default 500 */
  maxDocuments: number;
  /** New text per run (UTF-8 bytes); at least one document is always taken. @default 64 MiB */
  maxTextBytes: number;
  /** How long replaced objects stay readable. @default 10 minutes */
  retireGraceMs: number;
  /**
   * A to-do whose announced write never landed (the write was refused: superseded, stale) is
   * dropped after this long. @default 15 minutes
   */
  staleTodoMs: number;
  /**
   * A to-do is kept at least this long even when its write has landed, and re-checked by later runs
   * (cheap: an unchanged document is only read). It guards against clock skew between writers: a
   * record stamped by a faster clock could look "at least as new" as a to-do whose write is still on
   * its way. The index itself is updated at once. @default 30 s
   */
  todoSettleMs: number;
  /** Parallel record and chunk reads. @default 8 */
  readConcurrency: number;
  /**
   * The delta is folded into new base segments once its chunks' token text passes this many
   * characters (about the text's size)... @default 4 Mi characters
   */
  foldTextChars: number;
  /** ...or once it names this many documents. @default 1000 */
  foldDocuments: number;
  /**
   * Bulk load (the to-do list is longer than `maxDocuments`): a run takes up to this many times the
   * index's document count in to-dos (at least `maxDocuments`), so the folds of a bulk load rewrite a
   * geometrically growing index a logarithmic number of times. @default 1
   */
  bulkGrowth: number;
  /** Cap of a bulk run's to-dos. @default 20000 */
  bulkMaxDocuments: number;
  /**
   * Cap of a bulk run's new text (UTF-8 bytes). Memory: the batch's tokens (joined, about the text's
   * size, then routed) next to one segment at a time; measured live heap 415 MB for a 128 MiB batch
   * into a 437 MB index (bench/search.ts at 10,000 documents), in the 2 GB function. @default 128 MiB
   */
  bulkMaxTextBytes: number;
  /**
   * An object no manifest names (a run crashed before its manifest) is deleted by a later run once
   * it is this old; a run in progress is never that slow. @default 1 hour
   */
  orphanGraceMs: number;
}

export const DEFAULT_INDEXER_CONFIG: IndexerConfig = {
  segments: 64,
  maxDocuments: 500,
  maxTextBytes: 64 * 1024 * 1024,
  retireGraceMs: 10 * 60_000,
  staleTodoMs: 15 * 60_000,
  todoSettleMs: 30_000,
  readConcurrency: 8,
  foldTextChars: 4 * 1024 * 1024,
  foldDocuments: 1000,
  bulkGrowth: 1,
  bulkMaxDocuments: 20_000,
  bulkMaxTextBytes: 128 * 1024 * 1024,
  orphanGraceMs: 60 * 60_000,
};

/** What the indexer reads: records *including* tombstones (a delete must be seen as landed), and chunks. */
export interface IndexerStore extends Pick<DocumentReader, "getChunks"> {
  getState(documentId: string): Promise<DocumentRecord | undefined>;
}

export interface IndexerDeps {
  store: IndexerStore;
  todos: SearchTodoList;
  objects: IndexObjects;
  config?: Partial<IndexerConfig>;
  logger?: LoggerPort;
  now?: () => Date;
}

export interface IndexRunReport {
  todos: number;
  added: number;
  removed: number;
  unchanged: number;
  /** To-dos left for a later run (batch limits, a write not landed yet, read errors). */
  deferred: number;
  version: number;
  chunks: number;
  documents: number;
  /** Oldest to-do this run completed, ms from its write to the new manifest (the index lag). */
  maxLagMs: number;
  /** Whether this run folded the delta into new base segments. */
  folded: boolean;
  /** Documents in the delta after this run (0 after a fold). */
  deltaDocuments: number;
  /** Bytes this run wrote to the index's storage (delta and manifest; the segments too when it folded). */
  bytesWritten: number;
  /** Objects no manifest names that this run deleted (left by a crashed run). */
  orphansDeleted: number;
  /** Whether the run took a bulk batch (its to-do list was longer than `maxDocuments`). */
  bulk: boolean;
  /** New text this run indexed (UTF-8 bytes). */
  textBytes: number;
  ms: number;
}

export interface IndexRunOptions {
  /**
   * Time this run may take (ms). A bulk run sizes its batch to fit it, from this process's last
   * folding run (a bound on its cost, see bulkLimits); without one it takes the ordinary batch.
   * Undefined: no time limit (benchmarks, tests).
   */
  budgetMs?: number;
}

/** What is stored: the manifest, the base document table and the delta over it. */
export interface IndexState {
  manifest: Manifest;
  base: Map<string, DocumentEntry>;
  delta: IndexDelta;
  /** base + delta: what the index holds now. */
  documents: Map<string, DocumentEntry>;
}

/**
 * A chunk read for indexing: its raw tokens (tokenised once per run, held joined by single spaces:
 * about the text's size, where the token arrays are ~5x), UTF-8 size and token estimate.
 */
interface IndexedChunk {
  index: number;
  joined: string;
  bytes: number;
  estimate: number;
}

interface Planned {
  todo: SearchTodo;
  /** The to-do may be removed once the manifest is written. */
  complete: boolean;
}

export class SearchIndexer {
  readonly config: IndexerConfig;
  private readonly log: LoggerPort;
  private readonly now: () => Date;
  /** This process's last folding run: chunks indexed before it, chunks it added, its time. */
  private lastFold?: { indexChunks: number; batchChunks: number; ms: number };

  constructor(private readonly deps: IndexerDeps) {
    this.config = { ...DEFAULT_INDEXER_CONFIG, ...deps.config };
    this.log = deps.logger ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
  }

  /** The manifest, base table and delta as stored (an empty index when none is). */
  async readState(): Promise<IndexState> {
    const stored = await this.deps.objects.get(MANIFEST_KEY);
    const manifest =
      stored && stored !== "unchanged"
        ? (JSON.parse(stored.body.toString("utf8")) as Manifest)
        : emptyManifest(this.config.segments);
    const base = new Map<string, DocumentEntry>();
    if (manifest.documentsKey) {
      const obj = await this.deps.objects.get(manifest.documentsKey);
      if (!obj || obj === "unchanged") throw new Error(`search index: ${manifest.documentsKey} is missing`);
      for (const d of decodeDocuments(unpackJson<DocumentTableObject>(obj.body))) base.set(d.documentId, d);
    }
    let delta = new IndexDelta();
    if (manifest.deltaKey) {
      const obj = await this.deps.objects.get(manifest.deltaKey);
      if (!obj || obj === "unchanged") throw new Error(`search index: ${manifest.deltaKey} is missing`);
      delta = IndexDelta.decode(unpackJson<DeltaObject>(obj.body));
    }
    return { manifest, base, delta, documents: delta.merge(base.values()) };
  }

  /** One run; see the module comment. Returns what it did. */
  async run(options: IndexRunOptions = {}): Promise<IndexRunReport> {
    const started = performance.now();
    let todos = await this.deps.todos.list(this.config.maxDocuments);
    const report: IndexRunReport = {
      todos: todos.length,
      added: 0,
      removed: 0,
      unchanged: 0,
      deferred: 0,
      version: 0,
      chunks: 0,
      documents: 0,
      maxLagMs: 0,
      folded: false,
      deltaDocuments: 0,
      bytesWritten: 0,
      orphansDeleted: 0,
      bulk: false,
      textBytes: 0,
      ms: 0,
    };
    if (todos.length === 0) {
      report.ms = performance.now() - started;
      return report;
    }
    const state = await this.readState();
    const { manifest, documents } = state;
    report.version = manifest.version;
    report.deltaDocuments = state.delta.size;

    // Batch limits: the ordinary batch, or a bulk batch that grows with the index (module comment).
    let maxTextBytes = this.config.maxTextBytes;
    let maxChunks = Number.POSITIVE_INFINITY;
    let maxChanged = Number.POSITIVE_INFINITY;
    if (todos.length >= this.config.maxDocuments) {
      const bulk = this.bulkLimits(documents.size, manifest.chunks, options.budgetMs);
      if (bulk) {
        report.bulk = true;
        maxTextBytes = bulk.textBytes;
        maxChunks = bulk.chunks;
        // Listed twice the batch: the head of the list may be the previous batch's to-dos, indexed but
        // kept for `todoSettleMs`; they must not fill the batch (a bulk load would stall on them).
        maxChanged = bulk.documents;
        todos = await this.deps.todos.list((this.config.todoSettleMs > 0 ? 2 : 1) * bulk.documents);
        report.todos = todos.length;
      }
    }

    const removals: DocumentEntry[] = [];
    const additions: { entry: DocumentEntry; chunks: IndexedChunk[] }[] = [];
    let reservedBytes = 0;
    let reservedChunks = 0;
    let reservedDocuments = 0;
    let nextNumber = manifest.nextDocNumber;
    const nowMs = this.now().getTime();
    // Records and chunks are read in parallel; decisions are applied in to-do order below. A document
    // whose text would pass the batch's limits is not read (deferred; at least one always is). Chunks
    // are tokenised as they arrive, so the batch's text itself is not held.
    const reads = await mapLimit(todos, this.config.readConcurrency, async (todo) => {
      try {
        const record = await this.deps.store.getState(todo.documentId);
        if (!isSearchable(record) || !this.differs(documents.get(todo.documentId), record)) {
          return { todo, record, chunks: undefined };
        }
        const bytes = record.textBytes ?? 0;
        const count = record.chunkCount ?? 0;
        if (
          reservedDocuments >= maxChanged ||
          ((reservedBytes > 0 || reservedChunks > 0) &&
            (reservedBytes + bytes > maxTextBytes || reservedChunks + count > maxChunks))
        ) {
          return { todo, record, overLimit: true as const };
        }
        reservedDocuments++;
        reservedBytes += bytes;
        reservedChunks += count;
        const text = await this.deps.store.getChunks(record);
        // getChunks follows a text replaced while it is read (or throws when none is left): index
        // only the generation the record names; a newer one has its own to-do.
        if (text.some((c) => c.generation !== record.textGeneration)) {
          throw new Error("the document's text changed while it was read");
        }
        const chunks = text.map(
          (c): IndexedChunk => ({
            index: c.index,
            joined: tokenize(c.text).join(" "),
            bytes: Buffer.byteLength(c.text, "utf8"),
            estimate: c.tokens,
          }),
        );
        return { todo, record, chunks };
      } catch (err) {
        this.log.warn("search index: could not read a document; retried next run", {
          documentId: todo.documentId,
          error: (err as Error)?.message,
        });
        return { todo, failed: true as const };
      }
    });
    const planned: Planned[] = [];
    for (const read of reads) {
      if ("failed" in read) {
        report.deferred++;
        continue;
      }
      if ("overLimit" in read) {
        report.deferred++;
        continue; // next run
      }
      const { todo, record, chunks } = read;
      // The write this to-do announced has landed once the record is at least as new as the to-do.
      const age = nowMs - Date.parse(todo.at);
      const landed =
        (!!record && record.updatedAt >= todo.at && age >= this.config.todoSettleMs) ||
        age >= this.config.staleTodoMs;
      const have = documents.get(todo.documentId);
      const unsearchable = unsearchableEntry(record);
      if (
        (isSearchable(record) && !this.differs(have, record)) ||
        (unsearchable && sameUnsearchable(have, unsearchable))
      ) {
        report.unchanged++;
        planned.push({ todo, complete: landed });
        continue;
      }
      if (!have && !chunks?.length && !unsearchable) {
        report.unchanged++; // nothing held, nothing to hold
        planned.push({ todo, complete: landed });
        continue;
      }
      if (have) {
        removals.push(have);
        documents.delete(todo.documentId);
        if (!have.status) report.removed++;
      }
      if (unsearchable) {
        // Known, named in `skipped` of scopes taken from the index; no chunks.
        documents.set(unsearchable.documentId, unsearchable);
        additions.push({ entry: unsearchable, chunks: [] });
      } else if (isSearchable(record) && chunks?.length) {
        const entry: DocumentEntry = {
          documentId: record.documentId,
          number: nextNumber++,
          key: record.key,
          generation: record.textGeneration,
          chunkCount: chunks.length,
          tokenEstimate: record.tokenEstimate ?? chunks.reduce((n, c) => n + c.estimate, 0),
        };
        documents.set(entry.documentId, entry);
        additions.push({ entry, chunks });
        for (const c of chunks) report.textBytes += c.bytes;
        report.added++;
      }
      planned.push({ todo, complete: landed });
    }

    let written = manifest;
    if (removals.length > 0 || additions.length > 0) {
      written = await this.write(state, removals, additions, nextNumber, report);
    }
    report.version = written.version;
    report.chunks = written.chunks;
    report.documents = written.documents;
    const committedAt = this.now().getTime();
    for (const p of planned) {
      if (!p.complete) {
        report.deferred++;
        continue;
      }
      if (await this.deps.todos.done(p.todo)) {
        report.maxLagMs = Math.max(report.maxLagMs, committedAt - Date.parse(p.todo.at));
      }
    }
    if (written !== manifest) {
      try {
        report.orphansDeleted = await this.sweep(written);
      } catch (err) {
        // The index is committed; leftovers wait for the next run's sweep.
        this.log.warn("search index: sweep of unreferenced objects failed", {
          error: (err as Error)?.message,
        });
      }
    }
    report.ms = performance.now() - started;
    const batchChunks = additions.reduce((n, a) => n + a.chunks.length, 0);
    if (report.folded && batchChunks > 0) {
      this.lastFold = { indexChunks: manifest.chunks, batchChunks, ms: report.ms };
    }
    this.log.info("search index run", { ...report });
    return report;
  }

  /**
   * A bulk run's limits: `bulkGrowth` x the index's documents (at least the ordinary batch), within
   * the bulk caps and, given a time budget, within what this process's last fold says fits it.
   * Undefined: take the ordinary batch (a budget but no fold measured yet in this process).
   */
  private bulkLimits(
    indexDocuments: number,
    indexChunks: number,
    budgetMs: number | undefined,
  ): { documents: number; textBytes: number; chunks: number } | undefined {
    const c = this.config;
    let chunks = Number.POSITIVE_INFINITY;
    if (budgetMs !== undefined) {
      const last = this.lastFold;
      if (!last || last.ms <= 0) return undefined;
      // A folding run costs about a x (chunks indexed) + b x (chunks added), with a <= b (an added
      // chunk is read, tokenised, added, and then rewritten like the others). Whatever a and b were,
      // the last run's time T bounds a new run's by T x max(C'/C, (B'+C')/(B+C)); C' is the largest
      // batch that bound fits in the budget.
      const { indexChunks: b, batchChunks: c, ms } = last;
      chunks = Math.floor(Math.min((budgetMs * c) / ms, (budgetMs * (b + c)) / ms - indexChunks));
      if (chunks <= 0) return undefined; // even the index alone does not fit: the ordinary batch
    }
    const documents = Math.min(
      c.bulkMaxDocuments,
      Math.max(c.maxDocuments, Math.floor(c.bulkGrowth * indexDocuments)),
    );
    return { documents, textBytes: Math.max(c.maxTextBytes, c.bulkMaxTextBytes), chunks };
  }

  private differs(
    have: DocumentEntry | undefined,
    record: { textGeneration?: string; key: string },
  ): boolean {
    return !have || have.generation !== record.textGeneration || have.key !== record.key;
  }

  /**
   * Applies the changes to the delta, then writes either the delta alone or (past the fold threshold,
   * or when there is no base yet) new base segments and table; the manifest last.
   */
  private async write(
    state: IndexState,
    removals: DocumentEntry[],
    additions: { entry: DocumentEntry; chunks: IndexedChunk[] }[],
    nextDocNumber: number,
    report: IndexRunReport,
  ): Promise<Manifest> {
    const { manifest, base, delta, documents } = state;
    const run = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
    const put = async (key: string, body: Buffer, type: string) => {
      await this.deps.objects.put(key, body, type);
      report.bytesWritten += body.length;
    };
    for (const have of removals) delta.remove(have.documentId, base.has(have.documentId));
    for (const { entry, chunks } of additions) {
      // Tokenised once, when read; a fold routes each chunk to its segments once (segments.ts).
      delta.add(
        entry,
        chunks.map((c) => ({ id: chunkId(entry.number, c.index), joined: c.joined })),
      );
    }
    const fold =
      !manifest.documentsKey ||
      delta.textChars > this.config.foldTextChars ||
      delta.size > this.config.foldDocuments;

    let next: Manifest;
    const now = this.now();
    if (fold) {
      const router = new TermRouter(manifest.segments);
      // Routed once: each segment pass adds only its own terms (segments.ts addRouted).
      const routed = routeChunks(delta.documents(), router);
      const tombstones = delta.tombstones(base);
      const segmentKeys: string[] = [];
      const segmentBytes: number[] = [];
      let chunks = 0;
      for (let s = 0; s < manifest.segments; s++) {
        const key = manifest.segmentKeys[s];
        let segment: ReturnType<typeof createSegment>;
        if (key) {
          const obj = await this.deps.objects.get(key);
          if (!obj || obj === "unchanged") throw new Error(`search index: segment ${key} is missing`);
          segment = loadSegment(unpackText(obj.body), router, s);
        } else segment = createSegment(router, s);
        for (const id of tombstones) if (segment.has(id)) segment.discard(id);
        addRouted(segment, s, routed);
        await vacuumIfDirty(segment);
        chunks = segment.documentCount;
        const newKey = `segments/${s}/${run}.json.gz`;
        const json = JSON.stringify(segment);
        await put(newKey, packText(json), "application/gzip");
        segmentKeys.push(newKey);
        segmentBytes.push(json.length);
      }
      const documentsKey = `documents/${run}.json.gz`;
      await put(documentsKey, packJson(encodeDocuments(documents.values())), "application/gzip");
      next = { ...manifest, segmentKeys, segmentBytes, documentsKey, deltaKey: "", chunks };
      report.folded = true;
      report.deltaDocuments = 0;
    } else {
      const deltaKey = `delta/${run}.json.gz`;
      await put(deltaKey, packJson(delta.encode()), "application/gzip");
      let chunks = 0;
      for (const d of documents.values()) chunks += d.chunkCount;
      next = { ...manifest, deltaKey, chunks };
      report.deltaDocuments = delta.size;
    }

    const graceEnd = now.getTime() - this.config.retireGraceMs;
    const kept = new Set(manifestObjects(next));
    const replaced = manifestObjects(manifest).filter((k) => !kept.has(k));
    const expired = manifest.retired.filter((r) => Date.parse(r.at) < graceEnd);
    next = {
      ...next,
      format: MANIFEST_FORMAT,
      version: manifest.version + 1,
      nextDocNumber,
      documents: searchableCount(documents.values()),
      updatedAt: now.toISOString(),
      retired: [
        ...manifest.retired.filter((r) => Date.parse(r.at) >= graceEnd),
        ...replaced.map((key) => ({ key, at: now.toISOString() })),
      ],
    };
    await put(MANIFEST_KEY, Buffer.from(JSON.stringify(next)), "application/json");
    // After the manifest: a crash here leaves unreferenced objects, never a manifest pointing at nothing.
    if (expired.length) await this.deps.objects.delete(expired.map((r) => r.key));
    return next;
  }

  /**
   * Deletes objects that neither the manifest nor its retired list names and that are older than
   * `orphanGraceMs`: what a run that crashed before its manifest wrote. The retired list holds the
   * previous manifests' objects (deleted on their own schedule), so only true leftovers go.
   */
  private async sweep(manifest: Manifest): Promise<number> {
    const named = new Set([
      MANIFEST_KEY,
      ...manifestObjects(manifest),
      ...manifest.retired.map((r) => r.key),
    ]);
    const cutoff = this.now().getTime() - this.config.orphanGraceMs;
    const orphans = (await this.deps.objects.list())
      .filter((o) => !named.has(o.key) && o.lastModified.getTime() < cutoff)
      .map((o) => o.key);
    if (orphans.length) {
      await this.deps.objects.delete(orphans);
      this.log.info("search index: deleted objects no manifest names", { count: orphans.length });
    }
    return orphans.length;
  }
}

/**
 * The table entry of a document the index knows but cannot search: ingestion failed (or a version is
 * processing with no text to keep). Deleted documents have none; neither has a ready empty text.
 */
function unsearchableEntry(record: DocumentRecord | undefined): DocumentEntry | undefined {
  if (!record || isSearchable(record) || (record.status !== "failed" && record.status !== "processing")) {
    return undefined;
  }
  return {
    documentId: record.documentId,
    number: 0,
    key: record.key,
    generation: "",
    chunkCount: 0,
    tokenEstimate: 0,
    status: record.status,
    ...(record.error?.message ? { error: record.error.message } : {}),
  };
}

const sameUnsearchable = (have: DocumentEntry | undefined, want: DocumentEntry): boolean =>
  !!have && have.status === want.status && have.key === want.key && (have.error ?? "") === (want.error ?? "");

function searchableCount(entries: Iterable<DocumentEntry>): number {
  let n = 0;
  for (const d of entries) if (!d.status) n++;
  return n;
}
