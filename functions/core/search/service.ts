/**
 * `POST /search`: the best chunks for a query over the whole corpus, a key prefix or chosen documents.
 * The scope is checked against the store first (an unknown id or a prefix matching no document is a
 * 404, as for /chat), then applied inside the index; only the hits' chunk items are read.
 */

import { ApiError, badRequest, notFound } from "../chat/errors";
import { mapLimit } from "../chat/selection";
import type { DocumentReader } from "../documents/model";
import type { SearchIndex, SearchScope } from "./model";

export interface SearchRequest extends SearchScope {
  query: string;
  /** 1-100. */
  limit: number;
}

export interface SearchResultItem {
  documentId: string;
  key: string;
  chunkIndex: number;
  score: number;
  text: string;
}

/** Extra hits asked of the index, for chunks whose text was replaced since it was indexed. */
const SLACK = 10;

export class SearchService {
  constructor(private readonly deps: { store: DocumentReader; index?: SearchIndex }) {}

  /** `reader`: the documents the caller may see (a tenant's scoped view); default the whole store. */
  async search(req: SearchRequest, reader?: DocumentReader): Promise<{ results: SearchResultItem[] }> {
    const { store, index } = this.deps;
    if (!index || !store.getChunksAt) {
      throw new ApiError(
        503,
        "configuration_error",
        "Search is not configured on this deployment (no index).",
      );
    }
    await this.checkScope(req, reader ?? store);
    const hits = await index.search({ ...req, limit: req.limit + SLACK });
    const chunks = await store.getChunksAt(hits.map((h) => ({ ...h, index: h.chunkIndex })));
    const results: SearchResultItem[] = [];
    hits.forEach((h, i) => {
      const c = chunks[i];
      if (!c || results.length >= req.limit) return;
      results.push({
        documentId: h.documentId,
        key: h.key,
        chunkIndex: h.chunkIndex,
        score: h.score,
        text: c.text,
      });
    });
    return { results };
  }

  /** 400/404 for a scope that cannot match, in the words /chat uses. */
  private async checkScope(scope: SearchScope, store: DocumentReader): Promise<void> {
    if (scope.documentIds && scope.prefix !== undefined) {
      throw badRequest('Give either "documentIds" or "prefix", not both.', "prefix");
    }
    if (scope.documentIds) {
      const ids = [...new Set(scope.documentIds)];
      const found = await mapLimit(ids, 16, (id) => store.get(id));
      const unknown = ids.filter((_, i) => !found[i] || found[i]!.status === "deleted");
      if (unknown.length > 0) {
        throw notFound(
          `Unknown document id${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}. List documents with GET /documents.`,
          "documentIds",
        );
      }
    }
    if (scope.prefix) {
      const page = await store.list({ prefix: scope.prefix, limit: 1 });
      if (page.items.length === 0)
        throw notFound(`No documents have keys starting with "${scope.prefix}".`, "prefix");
    }
  }
}
