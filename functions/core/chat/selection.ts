/**
 * Which stored documents a chat request covers: explicit ids, every document under a key prefix, or
 * every document. Documents with text to read are used: `ready` ones, and `processing` ones that still
 * hold their previous version's text (textVersionOf); the others in scope are named in the response
 * so the user knows what was left out and why.
 */
import {
  type DocumentReader,
  type DocumentRecord,
  type DocumentStatus,
  textVersionOf,
} from "../documents/model";
import { badRequest, notFound } from "./errors";

export interface DocumentSelector {
  /** Exact document ids; each must exist (404 otherwise). */
  documentIds?: string[];
  /** Every document whose key starts with this. */
  prefix?: string;
}

/** A document in scope that was not used. */
export interface SkippedDocument {
  documentId: string;
  key: string;
  status: DocumentStatus;
  reason: string;
}

export interface Selection {
  /** Documents with text, in the order they will appear in the prompt (ids: as given; else key order). */
  documents: DocumentRecord[];
  skipped: SkippedDocument[];
  /** Skipped documents beyond those listed (the list is capped). */
  skippedNotListed: number;
}

export interface SelectionLimits {
  /** More documents than this in scope is a 400 asking to narrow it. Default 1,000. */
  maxDocuments?: number;
  /** Skipped documents named individually. Default 50. */
  maxSkippedListed?: number;
  /** Parallel `get` calls for explicit ids. Default 16. */
  concurrency?: number;
}

const PAGE = 1000;
/** Skipped documents named individually in a response (the rest are counted). */
export const MAX_SKIPPED_LISTED = 50;

/** Resolves a selector to ready documents plus the skipped ones. */
export async function selectDocuments(
  store: DocumentReader,
  selector: DocumentSelector,
  limits: SelectionLimits = {},
): Promise<Selection> {
  const maxDocuments = limits.maxDocuments ?? 1000;
  const maxSkipped = limits.maxSkippedListed ?? MAX_SKIPPED_LISTED;
  if (selector.documentIds && selector.prefix !== undefined) {
    throw badRequest('Give either "documentIds" or "prefix", not both.', "prefix");
  }
  let records: DocumentRecord[];
  if (selector.documentIds) {
    const ids = [...new Set(selector.documentIds)];
    if (ids.length > maxDocuments) {
      throw badRequest(
        `At most ${maxDocuments} document ids per request (got ${ids.length}).`,
        "documentIds",
      );
    }
    const found = await mapLimit(ids, limits.concurrency ?? 16, (id) => store.get(id));
    const unknown = ids.filter((_, i) => !found[i] || found[i]!.status === "deleted");
    if (unknown.length > 0) {
      throw notFound(
        `Unknown document id${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}. List documents with GET /documents.`,
        "documentIds",
      );
    }
    records = found as DocumentRecord[];
  } else {
    records = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ prefix: selector.prefix, limit: PAGE, cursor });
      for (const r of page.items) if (r.status !== "deleted") records.push(r);
      if (records.length > maxDocuments) {
        throw badRequest(
          `More than ${maxDocuments} documents are in scope; narrow it with "prefix" or "documentIds".`,
          selector.prefix !== undefined ? "prefix" : "documentIds",
        );
      }
      cursor = page.cursor;
    } while (cursor);
    if (selector.prefix !== undefined && selector.prefix !== "" && records.length === 0) {
      throw notFound(`No documents have keys starting with "${selector.prefix}".`, "prefix");
    }
  }

  const documents: DocumentRecord[] = [];
  const skipped: SkippedDocument[] = [];
  let skippedNotListed = 0;
  for (const r of records) {
    // Ready documents, and overwritten ones whose new version is still processing: they are answered
    // from their previous ready text (marked `version: "previous"` in sources) until it is replaced.
    if (textVersionOf(r)) {
      documents.push(r);
      continue;
    }
    if (skipped.length >= maxSkipped) {
      skippedNotListed++;
      continue;
    }
    skipped.push({ documentId: r.documentId, key: r.key, status: r.status, reason: skipReason(r) });
  }
  return { documents, skipped, skippedNotListed };
}

const skipReason = (r: DocumentRecord): string => skipReasonOf(r.status, r.error?.message);

/** Why a document in scope is not used, from its status and its ingestion error's message. */
export function skipReasonOf(status: DocumentRecord["status"], error: string | undefined): string {
  switch (status) {
    case "processing":
      return "still being processed; retry in a moment";
    case "failed":
      return `ingestion failed: ${error ?? "unknown reason"}`;
    default:
      return `status ${status}`;
  }
}

/** Maps with at most `limit` calls in flight, keeping order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
