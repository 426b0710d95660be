/**
 * The document model shared by ingestion, the chat API, the janitor and local mode.
 *
 * DynamoDB layout (one table, on-demand; see lib/ and the DynamoDocumentStore adapter):
 * - document record:  pk = `DOC#<documentId>`, sk = `DOC`;
 *   GSI `byKey`: gsi1pk = `DOCS[#shard]` (tombstones `GONE#shard`), gsi1sk = `<key>` (list by
 *   prefix, in key order); sparse GSI `holdsFiles`: gsi2pk = `FILES[#shard]` while the record holds
 *   remote files or owes cleanup (janitor's read). Sharding and projections: table.ts.
 * - text chunk:       pk = `DOC#<documentId>`, sk = `CHUNK#<generation>#<index, 6 digits>`
 *   (a new object version writes a new generation, flips the record to it, then deletes the old one,
 *   so readers never see a half-replaced text)
 * No item is allowed near DynamoDB's 400 KB limit: chunks are capped well below it.
 */

export type DocumentStatus = "processing" | "ready" | "failed" | "deleted";

/** Why a document failed, in words a user can act on; `code` is stable for programs and metrics. */
export type FailureCode =
  | "unsupported_type"
  | "too_large"
  | "empty"
  | "extraction_failed"
  | "quota"
  | "provider_not_configured"
  | "provider_rejected"
  | "retries_exhausted";

export interface DocumentFailure {
  code: FailureCode;
  message: string;
}

export interface DocumentRecord {
  /** Stable for a bucket + key (see documentIdFor). */
  documentId: string;
  bucket: string;
  /** The decoded S3 key. */
  key: string;
  status: DocumentStatus;
  size: number;
  contentType?: string;
  eTag?: string;
  versionId?: string;
  /** S3 event sequencer of the object version this record describes, normalised for string comparison. */
  sequencer: string;
  /** The Moonshot file id holding this version's upload, while it exists remotely. */
  remoteFileId?: string;
  remoteFileBytes?: number;
  /** ISO time the remote file was uploaded. */
  remoteFileCreatedAt?: string;
  /** ISO time the janitor (or ingestion) deleted the remote file; `remoteFileId` is then unset. */
  remoteFileReleasedAt?: string;
  /** Generation whose chunks hold the current text. */
  textGeneration?: string;
  chunkCount?: number;
  /** UTF-8 bytes of the extracted text. */
  textBytes?: number;
  /** Local token estimate of the whole text (sum of chunk estimates). */
  tokenEstimate?: number;
  error?: DocumentFailure;
  /** Delivery attempts for the current version (for "gave up after retries"). */
  attempts?: number;
  /**
   * Upload intent: a tag derived from documentId + sequencer, recorded before uploading and embedded
   * in the remote filename (`<tag>__<basename>`), so a retry after a crash finds the earlier upload.
   * Unset once the upload is recorded in `remoteFileId` or cleaned up.
   */
  uploadTag?: string;
  /** ISO time the current upload intent was recorded. */
  uploadStartedAt?: string;
  /** Remote files of superseded versions still to be deleted (normally empty within seconds). */
  staleFileIds?: string[];
  /** Upload tags of superseded in-flight versions whose remote files (if any) are still to be deleted. */
  staleUploadTags?: string[];
  /**
   * Text generations no record reads any more, whose chunk items are still to be deleted: a replaced
   * text, or the chunks of an attempt that never finished its version (superseded, deleted, failed).
   */
  staleGenerations?: string[];
  createdAt: string;
  updatedAt: string;
}

export interface TextChunk {
  documentId: string;
  generation: string;
  index: number;
  text: string;
  /** Local token estimate for this chunk. */
  tokens: number;
}

export interface ListDocumentsQuery {
  prefix?: string;
  status?: DocumentStatus;
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface DocumentPage {
  items: DocumentRecord[];
  cursor?: string;
}

/**
 * Which version of a document a text is: `current` (the document is `ready`), or `previous` (a newer
 * version of the object is `processing`; the last ready text is kept and served until it is replaced).
 */
export type TextVersion = "current" | "previous";

/** The version a reader gets from this record, or undefined when the record has no text to read. */
export function textVersionOf(
  record: Pick<DocumentRecord, "status" | "textGeneration">,
): TextVersion | undefined {
  if (!record.textGeneration) return undefined;
  if (record.status === "ready") return "current";
  return record.status === "processing" ? "previous" : undefined;
}

/** A document's text as a reader got it: whole, or not at all (never with holes). */
export type TextRead =
  | {
      ok: true;
      /** The record the text belongs to (re-read when the one given had moved on). */
      record: DocumentRecord;
      version: TextVersion;
      /** Every chunk 0..chunkCount-1 of one generation, in order. */
      chunks: TextChunk[];
    }
  | {
      ok: false;
      /** The record as last read (undefined: it no longer exists). */
      record: DocumentRecord | undefined;
      /** Its status as last read (`deleted` when gone). */
      status: DocumentStatus;
      /** Why there is no text, in words a user can act on. */
      reason: string;
    };

/** `getChunks` could not return a whole text (see TextRead): the document changed or has none. */
export class TextUnavailableError extends Error {
  override readonly name = "TextUnavailableError";
  constructor(readonly read: Extract<TextRead, { ok: false }>) {
    super(read.reason);
  }
}

/**
 * Read side of the document store, used by the chat API and the janitor. The ingest path's
 * write operations live on the same adapter (see dynamo-store.ts).
 */
export interface DocumentReader {
  get(documentId: string): Promise<DocumentRecord | undefined>;
  list(query?: ListDocumentsQuery): Promise<DocumentPage>;
  /**
   * The record's text, whole: chunks 0..chunkCount-1 of one generation, checked. A generation that
   * is being replaced or deleted while it is read (chunks missing) makes the reader read the record
   * again, strongly consistent, and read its new text instead; a document left without text (deleted,
   * failed) is `ok: false` with the reason. Never a text with holes, never silently nothing.
   */
  readText(record: DocumentRecord): Promise<TextRead>;
  /** `readText`'s chunks; throws TextUnavailableError when there is no whole text to return. */
  getChunks(record: DocumentRecord): Promise<TextChunk[]>;
  /**
   * Chosen chunks by key (search hits, a ranked context), in the order asked; undefined for a chunk
   * that no longer exists. Optional: without it the chat reads whole documents.
   */
  getChunksAt?(
    keys: readonly { documentId: string; generation: string; index: number }[],
  ): Promise<(TextChunk | undefined)[]>;
  /**
   * getChunksAt plus a strongly consistent look at each document afterwards (text-read.ts,
   * readChosenChunks): per document, the version the chunks are (`current`, or `previous` when the
   * record moved on or a newer version is processing), or why it has no text any more (its chunks
   * are then dropped). Optional, like getChunksAt.
   */
  readChunksAt?(keys: readonly { documentId: string; generation: string; index: number }[]): Promise<{
    chunks: (TextChunk | undefined)[];
    documents: Map<
      string,
      | { ok: true; record: DocumentRecord; version: TextVersion }
      | { ok: false; record: DocumentRecord | undefined; status: DocumentStatus; reason: string }
    >;
  }>;
}
