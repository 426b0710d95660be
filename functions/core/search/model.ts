/**
 * Retrieval over the whole corpus: the port the chat API and `POST /search` use, and what the index
 * holds. The engine behind it today is MiniSearch's BM25 in term-partitioned segments stored in S3
 * (see segments.ts, indexer.ts, searcher.ts); a distributed engine (OpenSearch Serverless, or vectors
 * for semantic search) would be another implementation of `SearchIndex`, fed by the same to-do list.
 */
import type { DocumentRecord } from "../documents/model";

/** What a search may be restricted to. Applied inside the index (documents outside never score). */
export interface SearchScope {
  /** Only chunks of documents whose key starts with this. */
  prefix?: string;
  /** Only chunks of these documents. */
  documentIds?: readonly string[];
}

export interface SearchQuery extends SearchScope {
  /** Free text; tokenised like the indexed text (functions/core/text/terms.ts). */
  query: string;
  /** Most hits returned, best first. */
  limit: number;
}

/** One chunk that matched, without its text (read it from the store with `generation` + `chunkIndex`). */
export interface SearchHit {
  documentId: string;
  key: string;
  generation: string;
  chunkIndex: number;
  /** MiniSearch's BM25 score (higher is better; comparable within one query only). */
  score: number;
}

/** A document as the index knows it: the text generation it holds, and its stored sizes. */
export interface IndexedDocument {
  documentId: string;
  key: string;
  generation: string;
  chunkCount: number;
  /** Local token estimate of the whole text (as on the record). */
  tokenEstimate: number;
}

/** A document the index knows but cannot search: its ingestion failed (the record's error message). */
export interface UnsearchableDocument {
  documentId: string;
  key: string;
  status: "failed" | "processing";
  error?: string;
}

/** The read side: search, and what is indexed (for scope sizes without reading any record). */
export interface SearchIndex {
  search(query: SearchQuery): Promise<SearchHit[]>;
  /** The searchable documents the index holds now, in key order, optionally under a key prefix. */
  documents(scope?: SearchScope): Promise<IndexedDocument[]>;
  /**
   * The documents in scope the index knows but cannot search (failed ingestion), in key order: what
   * a scope taken from the index names in `skipped`. A first version still processing is not known
   * to the index until it is ready or failed.
   */
  unsearchable?(scope?: SearchScope): Promise<UnsearchableDocument[]>;
}

/**
 * Whether a record's text belongs in the index: it has a current text generation and is not failed or
 * deleted. A `processing` record keeps the text of its previous ready version until the new one flips
 * it (the record's `textGeneration` is what readers read), so that text stays searchable meanwhile.
 */
export function isSearchable(record: DocumentRecord | undefined): record is DocumentRecord & {
  textGeneration: string;
} {
  return (
    !!record &&
    !!record.textGeneration &&
    (record.status === "ready" || record.status === "processing") &&
    (record.chunkCount ?? 0) > 0
  );
}
