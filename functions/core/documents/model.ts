/**
 * The document model shared by ingestion, the chat API, the janitor and local mode.
 *
 * DynamoDB layout (one table, on-demand; see lib/ and the DynamoDocumentStore adapter):
 * - document record:  pk = `DOC#<documentId>`, sk = `DOC`;
 *   GSI `byKey`: gsi1pk = `DOCS`, gsi1sk = `<key>` (list by prefix, in key order);
 *   sparse GSI `holdsFiles`: gsi2pk = `FILES` while the record holds remote files (janitor's read)
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
 * Read side of the document store, used by the chat API and the janitor. The ingest path's
 * write operations live on the same adapter (see dynamo-store.ts).
 */
export interface DocumentReader {
  get(documentId: string): Promise<DocumentRecord | undefined>;
  list(query?: ListDocumentsQuery): Promise<DocumentPage>;
  /** The chunks of the record's current text generation, in order. */
  getChunks(record: DocumentRecord): Promise<TextChunk[]>;
  /**
   * Chosen chunks by key (search hits, a ranked context), in the order asked; undefined for a chunk
   * that no longer exists. Optional: without it the chat reads whole documents.
   */
  getChunksAt?(
    keys: readonly { documentId: string; generation: string; index: number }[],
  ): Promise<(TextChunk | undefined)[]>;
}
