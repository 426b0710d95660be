/**
 * Reading a document's text whole while writers replace and delete it.
 *
 * A generation's chunks are all written before a record points at it, and deleted only after no
 * record does (transitions.ts), so a reader holding a record that is a moment old may find its
 * generation half deleted: an overwrite flipped the record to a new generation, or a delete
 * tombstoned it. The reader checks that chunks 0..chunkCount-1 all came back; when they did not, it
 * reads the record again (strongly consistent) and follows it: the new generation is read instead, a
 * document that has no text any more is reported with why. Bounded: a document replaced on every
 * read is reported too, rather than read forever.
 */
import type { ChunkItem } from "./chunk-items";
import {
  type DocumentRecord,
  type DocumentStatus,
  type TextChunk,
  type TextRead,
  textVersionOf,
} from "./model";

/** Reads of one document before giving up on a text that keeps changing under the reader. */
export const MAX_TEXT_READS = 4;

export interface TextReadPorts {
  /** A generation's chunk items in index order (strongly consistent). */
  queryGeneration(documentId: string, generation: string): Promise<ChunkItem[]>;
  /** The record now (strongly consistent), tombstones included; undefined when it never existed. */
  getRecord(documentId: string): Promise<DocumentRecord | undefined>;
}

/**
 * The record's chunks when items hold every index 0..chunkCount-1 (leftovers beyond chunkCount, from
 * an interrupted attempt, are never part of the text), else undefined.
 */
export function wholeChunks(record: DocumentRecord, items: readonly ChunkItem[]): TextChunk[] | undefined {
  const count = record.chunkCount ?? items.length;
  const chunks: TextChunk[] = [];
  for (const item of items) {
    if (item.index >= count) continue;
    if (item.index !== chunks.length || typeof item.text !== "string") return undefined;
    chunks.push({
      documentId: record.documentId,
      generation: record.textGeneration as string,
      index: item.index,
      text: item.text,
      tokens: typeof item.tokens === "number" ? item.tokens : 0,
    });
  }
  return chunks.length === count ? chunks : undefined;
}

/** Why a record offers no text to read, in a user's words. */
export function noTextReason(record: DocumentRecord | undefined): { status: DocumentStatus; reason: string } {
  if (!record || record.status === "deleted") {
    return { status: "deleted", reason: "deleted while the question was being answered" };
  }
  switch (record.status) {
    case "processing":
      return { status: "processing", reason: "still being processed; retry in a moment" };
    case "failed":
      return { status: "failed", reason: `ingestion failed: ${record.error?.message ?? "unknown reason"}` };
    default:
      return { status: record.status, reason: "its text is not stored" };
  }
}

/** See the module comment. */
export async function readWholeText(ports: TextReadPorts, given: DocumentRecord): Promise<TextRead> {
  let record: DocumentRecord | undefined = given;
  for (let read = 1; ; read++) {
    const version = record ? textVersionOf(record) : undefined;
    if (!record || !version) return { ok: false, record, ...noTextReason(record) };
    const items = await ports.queryGeneration(record.documentId, record.textGeneration as string);
    const chunks = wholeChunks(record, items);
    if (chunks) return { ok: true, record, version, chunks };
    const fresh = await ports.getRecord(record.documentId);
    const unchanged =
      fresh?.status === record.status &&
      fresh.textGeneration === record.textGeneration &&
      fresh.chunkCount === record.chunkCount;
    if (unchanged || read >= MAX_TEXT_READS) {
      // A record pointing at an incomplete generation breaks the store's rules: say so, never guess.
      return {
        ok: false,
        record: fresh,
        status: fresh?.status ?? "deleted",
        reason: unchanged
          ? "its stored text is incomplete; upload the document again"
          : "it changed on every read while the question was being answered; retry in a moment",
      };
    }
    record = fresh;
  }
}
