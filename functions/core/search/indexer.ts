/**
 * The index's single writer. A run takes the to-do list (todos.ts), reads each document's record
 * (strongly consistent), and brings the index in line with it: the current text generation of a
 * searchable record is indexed, anything else the index holds for the document is discarded. It reads
 * the *current* state, never an event, so duplicate, late or out-of-order changes all converge, and a
 * run that crashes changes nothing (its new objects are unreferenced until the manifest points at
 * them; the to-dos stay until then).
 *
 * Every run that changes something rewrites every segment (see segments.ts for why), so runs batch:
 * up to `maxDocuments` to-dos or `maxTextBytes` of new text each; the rest waits for the next run.
 * Exactly one run at a time is the deployment's job (a FIFO queue with one message group in AWS, one
 * local queue worker in `npm start`); the manifest holds no lock.
 */
import { randomUUID } from "node:crypto";
import { mapLimit } from "../chat/selection";
import type { DocumentReader, DocumentRecord, TextChunk } from "../documents/model";
import { type LoggerPort, silentLogger } from "../runtime/telemetry";
import { tokenize } from "../text/terms";
import {
  type DocumentEntry,
  type DocumentTableObject,
  decodeDocuments,
  emptyManifest,
  encodeDocuments,
  MANIFEST_KEY,
  type Manifest,
} from "./layout";
import { isSearchable } from "./model";
import {
  chunkId,
  createSegment,
  loadSegment,
  type SegmentDocument,
  TermRouter,
  vacuumIfDirty,
} from "./segments";
import { type IndexObjects, packJson, unpackJson, unpackText } from "./storage";
import type { SearchTodo, SearchTodoList } from "./todos";

export interface IndexerConfig {
  /** Term partitions of a new index. @default 32 */
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
}

export const DEFAULT_INDEXER_CONFIG: IndexerConfig = {
  segments: 32,
  maxDocuments: 500,
  maxTextBytes: 64 * 1024 * 1024,
  retireGraceMs: 10 * 60_000,
  staleTodoMs: 15 * 60_000,
  todoSettleMs: 30_000,
  readConcurrency: 8,
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
  ms: number;
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

  constructor(private readonly deps: IndexerDeps) {
    this.config = { ...DEFAULT_INDEXER_CONFIG, ...deps.config };
    this.log = deps.logger ?? silentLogger;
    this.now = deps.now ?? (() => new Date());
  }

  /** The manifest and document table as stored (an empty index when none is). */
  async readState(): Promise<{ manifest: Manifest; documents: Map<string, DocumentEntry> }> {
    const stored = await this.deps.objects.get(MANIFEST_KEY);
    const manifest =
      stored && stored !== "unchanged"
        ? (JSON.parse(stored.body.toString("utf8")) as Manifest)
        : emptyManifest(this.config.segments);
    const documents = new Map<string, DocumentEntry>();
    if (manifest.documentsKey) {
      const obj = await this.deps.objects.get(manifest.documentsKey);
      if (!obj || obj === "unchanged") throw new Error(`search index: ${manifest.documentsKey} is missing`);
      for (const d of decodeDocuments(unpackJson<DocumentTableObject>(obj.body)))
        documents.set(d.documentId, d);
    }
    return { manifest, documents };
  }

  /** One run; see the module comment. Returns what it did. */
  async run(): Promise<IndexRunReport> {
    const started = performance.now();
    const todos = await this.deps.todos.list(this.config.maxDocuments);
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
      ms: 0,
    };
    if (todos.length === 0) {
      report.ms = performance.now() - started;
      return report;
    }
    const { manifest, documents } = await this.readState();
    report.version = manifest.version;

    const removals: number[] = [];
    const additions: { entry: DocumentEntry; chunks: TextChunk[] }[] = [];
    let textBytes = 0;
    let nextNumber = manifest.nextDocNumber;
    const nowMs = this.now().getTime();
    // Records and chunks are read in parallel; decisions are applied in to-do order below.
    const reads = await mapLimit(todos, this.config.readConcurrency, async (todo) => {
      try {
        const record = await this.deps.store.getState(todo.documentId);
        const chunks =
          isSearchable(record) && this.differs(documents.get(todo.documentId), record)
            ? await this.deps.store.getChunks(record)
            : undefined;
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
      const { todo, record, chunks } = read;
      if (textBytes > 0 && textBytes >= this.config.maxTextBytes && chunks) {
        report.deferred++;
        continue; // next run
      }
      // The write this to-do announced has landed once the record is at least as new as the to-do.
      const age = nowMs - Date.parse(todo.at);
      const landed =
        (!!record && record.updatedAt >= todo.at && age >= this.config.todoSettleMs) ||
        age >= this.config.staleTodoMs;
      const have = documents.get(todo.documentId);
      if (isSearchable(record) && !this.differs(have, record)) {
        report.unchanged++;
        planned.push({ todo, complete: landed });
        continue;
      }
      if (!have && !chunks?.length) {
        report.unchanged++; // nothing held, nothing to hold
        planned.push({ todo, complete: landed });
        continue;
      }
      if (have) {
        for (let i = 0; i < have.chunkCount; i++) removals.push(chunkId(have.number, i));
        documents.delete(todo.documentId);
        report.removed++;
      }
      if (isSearchable(record) && chunks?.length) {
        const entry: DocumentEntry = {
          documentId: record.documentId,
          number: nextNumber++,
          key: record.key,
          generation: record.textGeneration,
          chunkCount: chunks.length,
          tokenEstimate: record.tokenEstimate ?? chunks.reduce((n, c) => n + c.tokens, 0),
        };
        documents.set(entry.documentId, entry);
        additions.push({ entry, chunks });
        for (const c of chunks) textBytes += Buffer.byteLength(c.text, "utf8");
        report.added++;
      }
      planned.push({ todo, complete: landed });
    }

    let written = manifest;
    if (removals.length > 0 || additions.length > 0) {
      written = await this.write(manifest, documents, removals, additions, nextNumber);
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
    report.ms = performance.now() - started;
    this.log.info("search index run", { ...report });
    return report;
  }

  private differs(
    have: DocumentEntry | undefined,
    record: { textGeneration?: string; key: string },
  ): boolean {
    return !have || have.generation !== record.textGeneration || have.key !== record.key;
  }

  /** Rewrites every segment with the changes, then the document table, then the manifest. */
  private async write(
    manifest: Manifest,
    documents: Map<string, DocumentEntry>,
    removals: number[],
    additions: { entry: DocumentEntry; chunks: TextChunk[] }[],
    nextDocNumber: number,
  ): Promise<Manifest> {
    const run = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
    const router = new TermRouter(manifest.segments);
    // Tokenised once; each segment keeps only its own terms of the same token arrays.
    const docs: SegmentDocument[] = [];
    for (const { entry, chunks } of additions) {
      for (const c of chunks) docs.push({ id: chunkId(entry.number, c.index), tokens: tokenize(c.text) });
    }
    router.setDocuments(docs);
    const segmentKeys: string[] = [];
    let chunks = 0;
    for (let s = 0; s < manifest.segments; s++) {
      const key = manifest.segmentKeys[s];
      let segment: ReturnType<typeof createSegment>;
      if (key) {
        const obj = await this.deps.objects.get(key);
        if (!obj || obj === "unchanged") throw new Error(`search index: segment ${key} is missing`);
        segment = loadSegment(unpackText(obj.body), router, s);
      } else segment = createSegment(router, s);
      for (const id of removals) if (segment.has(id)) segment.discard(id);
      segment.addAll(docs);
      await vacuumIfDirty(segment);
      chunks = segment.documentCount;
      const newKey = `segments/${s}/${run}.json.gz`;
      await this.deps.objects.put(newKey, packJson(segment), "application/gzip");
      segmentKeys.push(newKey);
    }
    const documentsKey = `documents/${run}.json.gz`;
    await this.deps.objects.put(
      documentsKey,
      packJson(encodeDocuments(documents.values())),
      "application/gzip",
    );

    const now = this.now();
    const graceEnd = now.getTime() - this.config.retireGraceMs;
    const replaced = [manifest.documentsKey, ...manifest.segmentKeys].filter(Boolean);
    const expired = manifest.retired.filter((r) => Date.parse(r.at) < graceEnd);
    const next: Manifest = {
      ...manifest,
      version: manifest.version + 1,
      segmentKeys,
      documentsKey,
      nextDocNumber,
      documents: documents.size,
      chunks,
      updatedAt: now.toISOString(),
      retired: [
        ...manifest.retired.filter((r) => Date.parse(r.at) >= graceEnd),
        ...replaced.map((key) => ({ key, at: now.toISOString() })),
      ],
    };
    await this.deps.objects.put(MANIFEST_KEY, Buffer.from(JSON.stringify(next)), "application/json");
    // After the manifest: a crash here leaves unreferenced objects, never a manifest pointing at nothing.
    if (expired.length) await this.deps.objects.delete(expired.map((r) => r.key));
    return next;
  }
}
