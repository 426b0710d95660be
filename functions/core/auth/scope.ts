/**
 * Tenancy: what one caller may see. Every caller has a scope, a key prefix: the stack's API token (and
 * a JWT without a tenant claim, where allowed) has the empty prefix (every document); a scoped API key
 * or a JWT with a tenant claim has its own prefix, always ending in "/" (so `team/` never covers
 * `team2/`). Only the API token is `admin` (manages keys).
 *
 * Every route reads documents through `scopedReader` (one line per route), so a document outside the
 * scope does not exist for the caller (404, never 403: a tenant cannot learn another's ids exist), and
 * a prefix asked for is narrowed to the scope: narrower is fine, wider or elsewhere is a 403 that says
 * which scope the key has.
 */
import { ApiError, badRequest } from "../chat/errors";
import type { DocumentPage, DocumentReader, DocumentRecord, ListDocumentsQuery } from "../documents/model";

export interface Scope {
  /** Key prefix every document this caller sees starts with; "" = every document. */
  prefix: string;
  /** The stack's API token: may manage API keys. */
  admin: boolean;
  /** Who is asking (for logs): "api-token", "key:<id>", "jwt:<sub>". */
  principal: string;
}

/** The scope of the stack's API token. */
export const ADMIN_SCOPE: Scope = { prefix: "", admin: true, principal: "api-token" };

/** True when a document key is inside the scope. */
export function inScope(scope: Scope, key: string): boolean {
  return key.startsWith(scope.prefix);
}

/**
 * A tenant prefix as stored on a key or read from a claim: segments joined by "/", ending in "/";
 * no empty, "." or ".." segments, no control characters or backslashes, at most 512 UTF-8 bytes.
 * Throws a 400 naming `param` otherwise.
 */
export function normaliseScopePrefix(raw: string, param = "prefix"): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(raw))
    throw badRequest(`${param} must not contain control characters or backslashes.`, param);
  const parts = raw.split("/").filter((p) => p !== "");
  if (parts.length === 0) throw badRequest(`${param} must name at least one folder, e.g. "team-a/".`, param);
  if (parts.some((p) => p === "." || p === ".." || p.trim() !== p))
    throw badRequest(
      `${param} must not contain "." or ".." segments or spaces around a segment; got ${JSON.stringify(raw)}.`,
      param,
    );
  const prefix = `${parts.join("/")}/`;
  if (Buffer.byteLength(prefix, "utf8") > 512) throw badRequest(`${param} must be at most 512 bytes.`, param);
  return prefix;
}

/** The 403 for a prefix the caller's scope does not cover. */
export function outsideScope(scope: Scope, asked: string, param = "prefix"): ApiError {
  return new ApiError(
    403,
    "permission_error",
    `${param} ${JSON.stringify(asked)} is outside this key's scope: use a prefix starting with ${JSON.stringify(scope.prefix)}.`,
    { param },
  );
}

/**
 * The prefix a request may use: the scope's own when none (or "") is asked; the asked one when it lies inside
 * the scope (narrower); a 403 when it is wider or elsewhere.
 */
export function narrowPrefix(scope: Scope, asked: string | undefined, param = "prefix"): string | undefined {
  // An empty prefix filters nothing: the caller's whole scope.
  if (asked === undefined || asked === "") return scope.prefix === "" ? asked : scope.prefix;
  if (!asked.startsWith(scope.prefix)) throw outsideScope(scope, asked, param);
  return asked;
}

/**
 * The store as the caller sees it: `get` answers undefined for a document outside the scope (the route
 * then says 404, as for an unknown id), `list` is confined to the scope (narrowPrefix). Chunks are read
 * only for records this reader returned. The admin scope is the store itself.
 */
export function scopedReader(store: DocumentReader, scope: Scope): DocumentReader {
  if (scope.prefix === "") return store;
  return {
    async get(documentId: string): Promise<DocumentRecord | undefined> {
      const record = await store.get(documentId);
      return record && inScope(scope, record.key) ? record : undefined;
    },
    async list(query: ListDocumentsQuery = {}): Promise<DocumentPage> {
      const prefix = narrowPrefix(scope, query.prefix);
      const page = await store.list({ ...query, prefix });
      // The store filtered by prefix already; this is the belt to its braces.
      return { ...page, items: page.items.filter((r) => inScope(scope, r.key)) };
    },
    getChunks: (record) => {
      if (!inScope(scope, record.key)) return Promise.resolve([]);
      return store.getChunks(record);
    },
    readText: async (record) => {
      if (!inScope(scope, record.key)) {
        return { ok: false, record: undefined, status: "deleted", reason: "no such document in this scope" };
      }
      // A re-read follows the same document (same key), so it stays in scope.
      return store.readText(record);
    },
  };
}
