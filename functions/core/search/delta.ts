/**
 * The index's recent changes: one small object (`delta/<run>.json.gz`) next to the base segments, so
 * a run that changes a few documents writes only this and the manifest, not every segment.
 *
 * The delta holds, per changed document, its new table entry (or null: removed from the base) and the
 * raw tokens of the new entry's chunks. A reader applies it to each base segment it loads: the chunks
 * of base documents the delta names are discarded (tombstones), the delta's chunks are added. The
 * patched segment is then exactly the segment a full rewrite would have produced (the same MiniSearch
 * operations in the same order), so BM25's corpus-wide N, average length and document frequencies
 * stay exact across base + delta; nothing is approximated.
 *
 * The indexer folds the delta into new base segments once it passes a size or document-count
 * threshold (indexer.ts); until then a run's cost follows the delta, not the corpus.
 */
import { type DocumentEntry, type DocumentRow, fromRow, toRow } from "./layout";
import { chunkId, type SegmentDocument } from "./segments";

/** Stored form. */
export interface DeltaObject {
  format: 1;
  /** Documents this delta adds or replaces (a table row), or removes from the base (null). */
  entries: [string, DocumentRow | null][];
  /** The chunks of the delta's entries: [chunk id, raw tokens joined by single spaces]. */
  chunks: [number, string][];
}

export class IndexDelta {
  /** documentId -> its entry now, or null when the base's entry is gone. */
  readonly entries = new Map<string, DocumentEntry | null>();
  /** Chunk id -> raw tokens joined by spaces (tokens never hold a space: text/terms.ts). */
  readonly chunks = new Map<number, string>();
  /** Characters of token text held (the fold threshold's size measure). */
  textChars = 0;

  static decode(obj: DeltaObject): IndexDelta {
    const d = new IndexDelta();
    for (const [id, row] of obj.entries) d.entries.set(id, row ? fromRow(row) : null);
    for (const [id, tokens] of obj.chunks) {
      d.chunks.set(id, tokens);
      d.textChars += tokens.length;
    }
    return d;
  }

  encode(): DeltaObject {
    return {
      format: 1,
      entries: [...this.entries].map(([id, e]) => [id, e ? toRow(e) : null]),
      chunks: [...this.chunks],
    };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The delta's document entries over the base table's: what the index holds now. */
  merge(base: Iterable<DocumentEntry>): Map<string, DocumentEntry> {
    const out = new Map<string, DocumentEntry>();
    for (const d of base) if (!this.entries.has(d.documentId)) out.set(d.documentId, d);
    for (const [id, d] of this.entries) if (d) out.set(id, d);
    return out;
  }

  /** Chunk ids of base documents the delta replaced or removed (discarded from every base segment). */
  tombstones(base: ReadonlyMap<string, DocumentEntry>): number[] {
    const out: number[] = [];
    for (const id of this.entries.keys()) {
      const b = base.get(id);
      if (b) for (let i = 0; i < b.chunkCount; i++) out.push(chunkId(b.number, i));
    }
    return out;
  }

  /** Drops what the index holds for `documentId` (a delta entry and its chunks, or the base's entry). */
  remove(documentId: string, inBase: boolean): void {
    const had = this.entries.get(documentId);
    if (had) this.dropChunks(had);
    if (inBase) this.entries.set(documentId, null);
    else this.entries.delete(documentId);
  }

  /** Adds a document's new entry and its chunks' raw tokens (joined by single spaces). */
  add(entry: DocumentEntry, chunks: readonly { id: number; joined: string }[]): void {
    const had = this.entries.get(entry.documentId);
    if (had) this.dropChunks(had);
    this.entries.set(entry.documentId, entry);
    for (const c of chunks) {
      this.chunks.set(c.id, c.joined);
      this.textChars += c.joined.length;
    }
  }

  /**
   * The delta's chunks as segment documents, split one at a time as they are consumed: a bulk fold
   * holds the joined strings (about the text's size), not every token array at once (~5x).
   */
  *documents(): Generator<SegmentDocument> {
    for (const [id, joined] of this.chunks) yield { id, tokens: splitTokens(joined) };
  }

  private dropChunks(entry: DocumentEntry): void {
    for (let i = 0; i < entry.chunkCount; i++) {
      const id = chunkId(entry.number, i);
      const joined = this.chunks.get(id);
      if (joined === undefined) continue;
      this.textChars -= joined.length;
      this.chunks.delete(id);
    }
  }
}

export const splitTokens = (joined: string): string[] => (joined === "" ? [] : joined.split(" "));
