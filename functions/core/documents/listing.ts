/**
 * Listing documents in key order over the sharded `byKey` index (table.ts): one Query per shard, each
 * bounded in the items it evaluates, merged by key. A page holds the matches up to the point every
 * shard has been read to (the frontier), at most `limit` of them, and a cursor to go on from there:
 * so a status filter that matches little costs a bounded read per page and comes back early, with a
 * cursor, instead of reading on until it has `limit` matches (or through the whole table).
 *
 * Keys compare as DynamoDB compares them (UTF-8 bytes), not as JavaScript compares strings (UTF-16).
 * The cursor is the last key a page covers; keys are unique per table (one bucket per table).
 */

/** Index items a page reads per shard when filtering by status: 8 shards x 125 = 1,000 per page. */
export const EVALUATED_PER_SHARD = 125;

/** What one shard's Query returned. */
export interface ShardPage {
  /** Matching index items, in key order. */
  items: { documentId: string; key: string }[];
  /** Sort key of the last item evaluated, when the shard has more beyond it. */
  last?: string;
}

/** DynamoDB's string order: UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** The least string greater than every string starting with `prefix` (undefined: none). */
export function prefixSuccessor(prefix: string): string | undefined {
  const points = Array.from(prefix, (c) => c.codePointAt(0)!);
  while (points.length > 0) {
    const last = points.pop()!;
    if (last >= 0x10ffff) continue;
    const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
    return String.fromCodePoint(...points, next);
  }
  return undefined;
}

/**
 * The sort-key condition for keys under `prefix` and after `after` (exclusive): `begins_with` when
 * there is no cursor, else a range from the cursor to the prefix's end (the bounds are inclusive, so
 * the merge drops the cursor's own key and anything outside the prefix).
 */
export function sortKeyCondition(
  sk: string,
  prefix: string | undefined,
  after: string | undefined,
): { expression?: string; values: Record<string, string> } {
  if (after === undefined) {
    return prefix
      ? { expression: `begins_with(${sk}, :prefix)`, values: { ":prefix": prefix } }
      : { values: {} };
  }
  const end = prefix ? prefixSuccessor(prefix) : undefined;
  if (end === undefined) return { expression: `${sk} > :after`, values: { ":after": after } };
  return { expression: `${sk} BETWEEN :after AND :end`, values: { ":after": after, ":end": end } };
}

/**
 * Merges the shards' pages: the matches at or before the frontier (the least `last` of the shards
 * that have more), after the cursor and under the prefix, in key order, at most `limit`. `next` is
 * where the following page starts: the last key returned when the page is full, else the frontier
 * (undefined when every shard is done).
 */
export function mergeShardPages(
  pages: readonly ShardPage[],
  opts: { limit: number; after?: string; prefix?: string },
): { items: { documentId: string; key: string }[]; next?: string } {
  let frontier: string | undefined;
  for (const p of pages) {
    if (p.last !== undefined && (frontier === undefined || compareKeys(p.last, frontier) < 0))
      frontier = p.last;
  }
  const candidates = pages
    .flatMap((p) => p.items)
    .filter(
      (i) =>
        (frontier === undefined || compareKeys(i.key, frontier) <= 0) &&
        (opts.after === undefined || compareKeys(i.key, opts.after) > 0) &&
        (!opts.prefix || i.key.startsWith(opts.prefix)),
    )
    .sort((a, b) => compareKeys(a.key, b.key));
  if (candidates.length > opts.limit) {
    const items = candidates.slice(0, opts.limit);
    return { items, next: items[items.length - 1]!.key };
  }
  return { items: candidates, next: frontier };
}

/** Thrown by `list` for a cursor it did not issue. */
export class InvalidCursorError extends Error {
  override readonly name = "InvalidCursorError";
  constructor() {
    super("invalid cursor");
  }
}

export function encodeListCursor(after: string | undefined): string | undefined {
  return after === undefined
    ? undefined
    : Buffer.from(JSON.stringify({ after }), "utf8").toString("base64url");
}

/** The key a cursor resumes after; cursors of the unsharded layout (a LastEvaluatedKey) still work. */
export function decodeListCursor(cursor: string | undefined, sortKeyName: string): string | undefined {
  if (!cursor) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Record<string, unknown>;
    if (value && typeof value === "object" && !Array.isArray(value)) {
      if (typeof value.after === "string") return value.after;
      if (typeof value[sortKeyName] === "string") return value[sortKeyName] as string;
    }
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}
