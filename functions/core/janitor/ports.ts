/**
 * What the janitor needs from the document store. `DynamoDocumentStore`
 * (functions/core/documents/dynamo-store.ts) implements it; tests use in-memory fakes.
 */
import type { DocumentFailure, DocumentRecord } from "../documents/model";

export interface JanitorStore {
  /**
   * Every record that holds a remote file (`remoteFileId`), is acquiring one (`uploadTag`) or has
   * files queued for deletion (`staleFileIds`, `staleUploadTags`), tombstones included. May lag
   * writes by a moment (DynamoDB reads it from an index): the policy's grace periods and the
   * conditional release cover that.
   */
  listWithRemoteFiles(): Promise<DocumentRecord[]>;
  /**
   * Before deleting the record's `remoteFileId`: moves it to `staleFileIds` (queued for deletion) and
   * sets `remoteFileReleasedAt = at` (ISO time), only if the record still holds `fileId`. Resolves
   * false when it no longer does (a concurrent ingest, or another janitor, got there first): the
   * caller must then leave the file alone.
   */
  releaseRemoteFile(documentId: string, fileId: string, at: string): Promise<boolean>;
  /** After deleting a queued file (or finding it gone): removes it from the record's `staleFileIds`. */
  forgetDeletedFile(documentId: string, fileId: string): Promise<void>;
  /**
   * Marks a version failed whose ingestion never finished: only while the record is still `processing`
   * `sequencer`, started at or before `startedBefore`, with no live claim. Resolves the updated record
   * (its remote file and upload tag queued for deletion, as after an ingestion failure), or undefined
   * when the record moved on. Optional: stores without it (the quota room maker's, benchmarks') leave
   * stuck documents to the scheduled sweep.
   */
  /**
   * Deletes the chunk generations the record has queued for deletion (`staleGenerations`) and takes
   * them off it; resolves how many. Optional: stores without chunks (fakes) leave it out.
   */
  deleteStaleGenerations?(documentId: string): Promise<number>;
  /** Takes upload tags off the record's `staleUploadTags` (no file carries them any more). Optional. */
  forgetUploadTags?(documentId: string, tags: string[]): Promise<void>;
  failStuckProcessing?(input: {
    documentId: string;
    sequencer: string;
    startedBefore: Date;
    failure: DocumentFailure;
    now: Date;
  }): Promise<DocumentRecord | undefined>;
}
