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
  type TextVersion,
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

/** A document as a reader of chosen chunks found it (see readChosenChunks). */
export type ChosenRead =
  | { ok: true; record: DocumentRecord; version: TextVersion }
  | { ok: false; record: DocumentRecord | undefined; status: DocumentStatus; reason: string };

export interface ChosenChunksPorts {
  /** The chunks at these keys, in order; undefined where none is stored. */
  getChunksAt(keys: readonly ChunkKeyOf[]): Promise<(TextChunk | undefined)[]>;
  /** The records now (strongly consistent), tombstones included, by document id. */
  getRecords(documentIds: readonly string[]): Promise<Map<string, DocumentRecord>>;
}

export interface ChunkKeyOf {
  documentId: string;
  generation: string;
  index: number;
}

/**
 * Chosen chunks (a ranked context from the search index) read while writers work. The records are
 * read after the chunks, strongly consistent, and each document is judged: a document without text
 * any more (deleted, failed), or none of whose chunks came back (its generation went), is `ok: false`
 * with why, and its chunks are dropped, so the caller can list it in `skipped` instead of losing it.
 * Chunks of a generation the record no longer reads are an older version's text: `version:
 * "previous"`, like the text a processing record keeps. Never a mix: every key of a document names
 * the one generation the index holds for it.
 */
export async function readChosenChunks(
  ports: ChosenChunksPorts,
  keys: readonly ChunkKeyOf[],
): Promise<{ chunks: (TextChunk | undefined)[]; documents: Map<string, ChosenRead> }> {
  const chunks = await ports.getChunksAt(keys);
  const ids = [...new Set(keys.map((k) => k.documentId))];
  const records = await ports.getRecords(ids);
  const documents = new Map<string, ChosenRead>();
  for (const id of ids) {
    const record = records.get(id);
    const asked = keys.findIndex((k) => k.documentId === id);
    const generation = keys[asked]!.generation;
    const got = keys.some((k, i) => k.documentId === id && chunks[i] !== undefined);
    const version = record ? textVersionOf(record) : undefined;
    if (!record || !version) documents.set(id, { ok: false, record, ...noTextReason(record) });
    else if (!got) {
      documents.set(id, {
        ok: false,
        record,
        status: record.status,
        reason: "its text was replaced while the question was being answered; retry in a moment",
      });
    } else
      documents.set(id, {
        ok: true,
        record,
        version: record.textGeneration === generation ? version : "previous",
      });
  }
  return {
    chunks: chunks.map((c, i) => (documents.get(keys[i]!.documentId)?.ok ? c : undefined)),
    documents,
  };
}
