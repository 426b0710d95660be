/**
 * Documents stuck in `processing`. Ingestion fails a document itself on the queue's last delivery,
 * unless that delivery never gets to run its code to the end (the ingest Lambda timed out or crashed):
 * SQS then moves the event to the dead-letter queue and no attempt is left to finish the record, which
 * would stay `processing` forever, its upload protected from the janitor. Past a bound no ingestion
 * can still be running (the queue's visibility timeout x maxReceiveCount from the version's first
 * claim), the janitor's sweep marks such a version failed (`retries_exhausted`). The bound is a guess
 * (a queue backlog or quota waits can delay a redelivery past it), so the failure is not final: a
 * delivery of that version that does arrive revives it and finishes it (transitions.ts, decideClaim).
 * Pure functions; the conditional write is the store's (failStuckProcessing).
 */
import type { DocumentFailure, DocumentRecord } from "../documents/model";

/**
 * Default bound, minutes: the constructs' defaults, a 30 min visibility timeout (6 x the 5 min ingest
 * timeout) x 5 receives. The Janitor construct sets STUCK_PROCESSING_MINUTES from the real queue.
 */
export const DEFAULT_STUCK_PROCESSING_MINUTES = 150;

/** A processing record past the bound. */
export interface StuckDocument {
  documentId: string;
  key: string;
  sequencer: string;
  /** ISO time this version's processing started (its first claim). */
  startedAt: string;
  /** Delivery attempts recorded by the last claim. */
  attempts?: number;
  /** Its remote file, if the upload was recorded. */
  remoteFileId?: string;
}

/** When a record's current version started processing: its upload intent, else its last update. */
export function processingStartedAt(record: DocumentRecord): string {
  return record.uploadStartedAt ?? record.updatedAt;
}

/** The processing records whose version started `minutes` or more before `now` (epoch ms), oldest first. */
export function findStuckDocuments(
  records: readonly DocumentRecord[],
  now: number,
  minutes: number,
): StuckDocument[] {
  const bound = now - minutes * 60_000;
  return records
    .filter((r) => r.status === "processing" && Date.parse(processingStartedAt(r)) <= bound)
    .map((r) => ({
      documentId: r.documentId,
      key: r.key,
      sequencer: r.sequencer,
      startedAt: processingStartedAt(r),
      ...(r.attempts !== undefined ? { attempts: r.attempts } : {}),
      ...(r.remoteFileId !== undefined ? { remoteFileId: r.remoteFileId } : {}),
    }))
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** The failure recorded on a stuck document, in words a user can act on. */
export function stuckFailure(doc: Pick<StuckDocument, "attempts">, minutes: number): DocumentFailure {
  const attempts =
    doc.attempts === undefined ? "its retries" : `${doc.attempts} attempt${doc.attempts === 1 ? "" : "s"}`;
  return {
    code: "retries_exhausted",
    message:
      `ingestion did not finish after ${attempts} (still processing after ${minutes} minutes; the last ` +
      "attempt most likely timed out); the event is in the dead-letter queue: redrive it from there, or " +
      "upload the object again, to retry",
  };
}
