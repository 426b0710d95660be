/**
 * What the janitor needs from the document store. `DynamoDocumentStore`
 * (functions/core/documents/dynamo-store.ts) implements it; tests use in-memory fakes.
 */
import type { DocumentRecord } from "../documents/model";

export interface JanitorStore {
  /**
   * Every record that holds a remote file (`remoteFileId` set) or is acquiring one (`processing`),
   * tombstones included. Read strongly consistent where the store allows it.
   */
  listWithRemoteFiles(): Promise<DocumentRecord[]>;
  /**
   * Clears `remoteFileId` and sets `remoteFileReleasedAt = at` (ISO time), only if the record still
   * points at `fileId`. Resolves false when it no longer does (a concurrent ingest changed it): the
   * caller must then leave the file alone.
   */
  releaseRemoteFile(documentId: string, fileId: string, at: string): Promise<boolean>;
}
