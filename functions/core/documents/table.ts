/**
 * The documents table's shape, in one place: the CDK construct and local mode both create the table
 * from this definition, and the store adapter builds its keys with the helpers below.
 *
 * Index sizing. A GSI partition takes about 1,000 write units a second, and a table write is held
 * back when an index cannot take its share. So both indexes are sharded over INDEX_SHARDS partition
 * values (by a hash of the document id, so a document always lands in the same shard), and project
 * only what their readers filter on: the record is then read from the table, strongly consistent.
 * A write that changes no projected attribute costs the index nothing, so an ingest writes `byKey`
 * twice (claim, then ready or failed) instead of on every record write, and `holdsFiles` once on
 * entering and once on leaving. With 8 shards the indexes take ~8,000 writes a second: an
 * `ingestConcurrency` of 1,000 (the event source's maximum) claiming at once is ~1,000 index writes in
 * a second, spread over all shards. Readers query every shard and merge (list.ts).
 */
export const TABLE_KEYS = {
  partitionKey: "pk",
  sortKey: "sk",
  /**
   * GSI listing document records in key order (prefix queries with begins_with), sharded: partition
   * `DOCS` / `DOCS#<shard>` for live documents, `GONE#<shard>` for tombstones (status=deleted).
   * Projects `status` (what listing filters on) besides the keys.
   */
  byKeyIndex: {
    name: "byKeySharded",
    partitionKey: "gsi1pk",
    sortKey: "gsi1sk",
    projected: ["status"] as readonly string[],
  },
  /**
   * Sparse GSI of the records that hold (or may hold) remote files, or owe cleanup: the janitor and the
   * quota room maker read these instead of scanning every record and chunk. `gsi2pk` (`FILES` /
   * `FILES#<shard>`) is set by every write that gives a record a file, upload tag, stale file or stale
   * generation, and removed once it holds none. Keys only.
   */
  holdsFilesIndex: { name: "holdsFilesSharded", partitionKey: "gsi2pk" },
  /**
   * The indexes of tables made before the sharded ones (same key attributes, every attribute
   * projected). A stack being upgraded keeps them until the sharded ones are built; readers fall back
   * to them while the new ones are missing or still backfilling.
   */
  legacyIndexNames: { byKey: "byKey", holdsFiles: "holdsFiles" },
  /** Tombstones of deleted documents expire through this TTL attribute (epoch seconds). */
  ttlAttribute: "expiresAt",
} as const;

/** Partition values each index is spread over. */
export const INDEX_SHARDS = 8;

/** Shard 0's partition values are the single values of the unsharded layout: old items stay listed. */
export const DOCUMENTS_PARTITION = "DOCS";
export const FILES_PARTITION = "FILES";
export const DELETED_PARTITION = "GONE";

/** A stable shard for a document id (FNV-1a). */
export function shardOf(documentId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < documentId.length; i++) {
    hash ^= documentId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % INDEX_SHARDS;
}

const shardValue = (base: string, shard: number) => (shard === 0 ? base : `${base}#${shard}`);
const allShards = (base: string) =>
  Array.from({ length: INDEX_SHARDS }, (_, shard) => shardValue(base, shard));

/** `byKey` partition of a live document. */
export const documentsPartition = (documentId: string): string =>
  shardValue(DOCUMENTS_PARTITION, shardOf(documentId));
/** `byKey` partition of a tombstone. */
export const deletedPartition = (documentId: string): string => `${DELETED_PARTITION}#${shardOf(documentId)}`;
/** `holdsFiles` partition of a document. */
export const filesPartition = (documentId: string): string =>
  shardValue(FILES_PARTITION, shardOf(documentId));
/** Every `byKey` partition of live documents (or of tombstones). */
export const documentsPartitions = (deleted = false): string[] =>
  deleted
    ? Array.from({ length: INDEX_SHARDS }, (_, shard) => `${DELETED_PARTITION}#${shard}`)
    : allShards(DOCUMENTS_PARTITION);
/** Every `holdsFiles` partition. */
export const filesPartitions = (): string[] => allShards(FILES_PARTITION);

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
/** The document id of a record or chunk item's partition key. */
export const documentIdOfPk = (pk: string): string => pk.slice("DOC#".length);
export const DOCUMENT_SK = "DOC";
export const CHUNK_SK_PREFIX = "CHUNK#";
/** Chunk sort keys sort by generation then index (zero-padded), so one Query returns a text in order. */
export const chunkSk = (generation: string, index: number): string =>
  `${CHUNK_SK_PREFIX}${generation}#${String(index).padStart(6, "0")}`;
export const chunkSkPrefix = (generation: string): string => `${CHUNK_SK_PREFIX}${generation}#`;
