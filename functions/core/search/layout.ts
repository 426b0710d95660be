/**
 * The index's objects: one manifest (`manifest.json`, overwritten by each indexer run), pointing at
 * immutable objects: the base (a document table `documents/<run>.json.gz` and one segment per term
 * partition `segments/<n>/<run>.json.gz`, written by the run that last folded) and the recent changes
 * on top of it (`delta/<run>.json.gz`, rewritten by each run that changes something; see delta.ts).
 * Objects a run replaced are listed as retired and deleted a grace period later, so a reader that
 * fetched the previous manifest can still load what it points at. Objects no manifest ever named (a
 * run that crashed before its manifest) are swept by a later run (indexer.ts).
 */
import type { IndexedDocument, UnsearchableDocument } from "./model";

export const MANIFEST_KEY = "manifest.json";
export const MANIFEST_FORMAT = 1;

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  /** Incremented by every run that changed the index. */
  version: number;
  /** Number of term partitions (fixed when the index is created). */
  segments: number;
  /** Object key of each segment; "" while a segment was never written. */
  segmentKeys: string[];
  /** Decompressed JSON bytes of each segment as written (readers plan a query's loads by them). */
  segmentBytes?: number[];
  documentsKey: string;
  /** The recent changes over the base (delta.ts); "" or absent when there are none. */
  deltaKey?: string;
  /** Next document number to assign (numbers are never reused). */
  nextDocNumber: number;
  documents: number;
  chunks: number;
  updatedAt: string;
  /** Objects replaced by a later run, deleted once `at` is older than the grace period. */
  retired: { key: string; at: string }[];
}

export const emptyManifest = (segments: number): Manifest => ({
  format: MANIFEST_FORMAT,
  version: 0,
  segments,
  segmentKeys: Array.from({ length: segments }, () => ""),
  documentsKey: "",
  deltaKey: "",
  nextDocNumber: 1,
  documents: 0,
  chunks: 0,
  updatedAt: new Date(0).toISOString(),
  retired: [],
});

/** Every object a manifest points at (base, delta). */
export const manifestObjects = (m: Manifest): string[] =>
  [m.documentsKey, m.deltaKey ?? "", ...m.segmentKeys].filter(Boolean);

/**
 * A document in the table, with the number its chunk ids are built from. A document the index knows
 * but cannot search (its ingestion failed) has an entry too, with `status` and no chunks (number 0),
 * so a scope taken from the index can name it in `skipped` as a listed scope does.
 */
export interface DocumentEntry extends IndexedDocument {
  number: number;
  /** Absent for a searchable document; else why it is not (`failed`), with the record's error message. */
  status?: UnsearchableDocument["status"];
  error?: string;
}

/**
 * Stored form: rows of [documentId, number, key, generation, chunkCount, tokenEstimate] (searchable)
 * or the same with [status, error] after them (not searchable), in key order.
 */
export interface DocumentTableObject {
  format: 1;
  rows: DocumentRow[];
}

export type DocumentRow =
  | [string, number, string, string, number, number]
  | [string, number, string, string, number, number, string, string];

export const toRow = (d: DocumentEntry): DocumentRow =>
  d.status
    ? [d.documentId, d.number, d.key, d.generation, d.chunkCount, d.tokenEstimate, d.status, d.error ?? ""]
    : [d.documentId, d.number, d.key, d.generation, d.chunkCount, d.tokenEstimate];

export const fromRow = (row: DocumentRow): DocumentEntry => {
  const [documentId, number, key, generation, chunkCount, tokenEstimate, status, error] = row;
  const entry: DocumentEntry = { documentId, number, key, generation, chunkCount, tokenEstimate };
  if (status) {
    entry.status = status as DocumentEntry["status"];
    if (error) entry.error = error;
  }
  return entry;
};

export function encodeDocuments(entries: Iterable<DocumentEntry>): DocumentTableObject {
  const rows = [...entries]
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.documentId < b.documentId ? -1 : 1))
    .map(toRow);
  return { format: 1, rows };
}

export function decodeDocuments(obj: DocumentTableObject): DocumentEntry[] {
  return obj.rows.map(fromRow);
}
