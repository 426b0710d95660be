/**
 * Pending upload intents, as the janitor sees them. Before uploading, ingestion records a tag
 * (derived from documentId + sequencer) on the document and names the upload `<tag>__<basename>`, so
 * a listed file whose record write is not visible yet can still be tied to its document: a file
 * carrying the tag of a `processing` record is referenced, never an orphan.
 */
import type { DocumentRecord } from "../documents/model";

/** Separator between the tag and the original basename in an uploaded file's name. */
export const UPLOAD_TAG_SEPARATOR = "__";

/** The upload tag recorded on a document, if any. */
export function uploadTagOf(record: DocumentRecord): string | undefined {
  return record.uploadTag ? record.uploadTag : undefined;
}

/** The tag an uploaded filename carries (`<tag>__<basename>`), or undefined for an untagged name. */
export function uploadTagOfFilename(filename: string): string | undefined {
  const at = filename.indexOf(UPLOAD_TAG_SEPARATOR);
  return at > 0 ? filename.slice(0, at) : undefined;
}
