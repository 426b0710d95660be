/**
 * The documents table's shape, in one place: the CDK construct and local mode both create the table
 * from this definition, and the store adapter builds its keys with the helpers below.
 */
export const TABLE_KEYS = {
  partitionKey: "pk",
  sortKey: "sk",
  /** GSI listing every document record in key order (prefix queries with begins_with). */
  byKeyIndex: { name: "byKey", partitionKey: "gsi1pk", sortKey: "gsi1sk" },
  /**
   * Sparse GSI of the records that hold (or may hold) remote files: the janitor and the quota room
   * maker read these instead of scanning every record and chunk. `gsi2pk` is set to FILES_PARTITION
   * by every write that gives a record a file, upload tag or stale file, and removed once it holds none.
   */
  holdsFilesIndex: { name: "holdsFiles", partitionKey: "gsi2pk" },
  /** Tombstones of deleted documents expire through this TTL attribute (epoch seconds). */
  ttlAttribute: "expiresAt",
} as const;

export const DOCUMENTS_PARTITION = "DOCS";
export const FILES_PARTITION = "FILES";
/**
 * Record attributes through which a document holds remote files, or owes cleanup (what puts it in
 * `holdsFiles`, where the janitor finds it): chunk generations queued for deletion count too.
 */
export const HOLDING_ATTRIBUTES = [
  "remoteFileId",
  "uploadTag",
  "staleFileIds",
  "staleUploadTags",
  "staleGenerations",
] as const;

export const documentPk = (documentId: string): string => `DOC#${documentId}`;
export const DOCUMENT_SK = "DOC";
export const CHUNK_SK_PREFIX = "CHUNK#";
/** Chunk sort keys sort by generation then index (zero-padded), so one Query returns a text in order. */
export const chunkSk = (generation: string, index: number): string =>
  `${CHUNK_SK_PREFIX}${generation}#${String(index).padStart(6, "0")}`;
export const chunkSkPrefix = (generation: string): string => `${CHUNK_SK_PREFIX}${generation}#`;
