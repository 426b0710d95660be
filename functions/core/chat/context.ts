/**
 * Context assembly: which document text goes into a chat request, as what messages. Pure (no I/O), so
 * the rules below are tested directly and the service around it only fetches and checks.
 *
 * - Each document is its own `system` message whose first line is `Document: <key>`, a blank line,
 *   then its text (the provider's recommended pattern; the label lets the model, and our emulator,
 *   name where an answer came from).
 * - Budget = context window - max_tokens - conversation - safety margin (all in local estimates).
 * - If every selected chunk fits, everything is sent in document order. Otherwise chunks are ranked
 *   against the question with BM25 (minisearch) and the best ones are packed, then sent back in
 *   document order. Non-adjacent chunks of one document are separated by an elision marker.
 * - `shrink` drops the lowest-ranked chunks when the provider's token count says the request is
 *   still too big.
 */
import MiniSearch from "minisearch";
import type { DocumentRecord, TextChunk, TextVersion } from "../documents/model";
import type { ChatMessage } from "../provider/types";
import { CJK_CHAR, normalizeTerm, queryTerms, tokenize } from "../text/terms";
import { estimateTokens } from "../text/tokens";

export { normalizeTerm, queryTerms, tokenize };

/** Tokens the chat template spends per message (role markers, separators); a safe over-estimate. */
export const MESSAGE_OVERHEAD_TOKENS = 8;
/** Marks text left out between two sent chunks of the same document. */
export const ELISION = "\n\n[…]\n\n";
const ELISION_TOKENS = estimateTokens(ELISION);

/** The label line every document message starts with. */
export const documentLabel = (key: string): string => `Document: ${key}`;

/** One selected document with its chunks in order (the chunk's `index` is its position in the text). */
export interface ContextDocument {
  record: Pick<DocumentRecord, "documentId" | "key">;
  chunks: TextChunk[];
  /** Chunks the whole text has, when `chunks` holds only some of them (read from the search index). */
  chunkCount?: number;
  /** Which version the chunks are (default `current`): `previous` while a newer one processes. */
  version?: TextVersion;
}

export interface ContextSourceChunk {
  index: number;
  tokens: number;
  text: string;
}

/** What was sent from one document, so a user can check the answer. */
export interface ContextSource {
  documentId: string;
  key: string;
  /** True when every chunk of the document was sent. */
  complete: boolean;
  /**
   * `current`: the document's ready text. `previous`: a newer version of the object is still being
   * processed, and this is the text of the last version that was ready (kept until it is replaced).
   */
  version: TextVersion;
  chunks: ContextSourceChunk[];
}

export interface BudgetInput {
  contextLength: number;
  maxTokens: number;
  /** Local estimate of every non-document message (system prompts, turns, the question). */
  conversationTokens: number;
  /** Defaults to max(256, 3% of the window): slack for estimate-vs-tokenizer disagreement. */
  safetyMargin?: number;
}

/** Default safety margin for a context window. */
export const defaultSafetyMargin = (contextLength: number): number =>
  Math.max(256, Math.ceil(contextLength * 0.03));

/** Tokens left for document messages (may be <= 0: nothing fits). */
export function documentBudget(input: BudgetInput): number {
  const margin = input.safetyMargin ?? defaultSafetyMargin(input.contextLength);
  return input.contextLength - input.maxTokens - input.conversationTokens - margin;
}

/** Local estimate of a list of messages (content plus per-message overhead). */
export function estimateMessagesTokens(messages: readonly ChatMessage[]): number {
  let total = 0;
  for (const m of messages) total += MESSAGE_OVERHEAD_TOKENS + estimateTokens(m.content);
  return total;
}

/** A chunk by position: `documents[doc].chunks[pos]`. */
export interface ChunkRef {
  doc: number;
  /** Position in `documents[doc].chunks`. */
  pos: number;
  tokens: number;
}

export type ContextMode = "all" | "ranked";

export interface ContextSummary {
  mode: ContextMode;
  documents: number;
  documentsSent: number;
  chunksTotal: number;
  chunksSent: number;
  /** Local estimate of the document messages sent. */
  estimatedTokens: number;
  budgetTokens: number;
}

const labelTokens = (key: string): number =>
  MESSAGE_OVERHEAD_TOKENS + estimateTokens(`${documentLabel(key)}\n\n`);

/**
 * A context selection over a fixed set of documents. Created by `planContext`; `shrink` narrows it,
 * `grow` widens it again.
 */
export class ContextPlan {
  /** Selected chunk refs, best first (for "all" mode: ranked lazily when first shrunk). */
  private selected: ChunkRef[];
  private ranked: boolean;

  private constructor(
    private readonly documents: readonly ContextDocument[],
    private readonly ranker: ChunkRanker,
    readonly mode: ContextMode,
    selected: ChunkRef[],
    ranked: boolean,
    readonly budgetTokens: number,
    /** Every chunk, best first ("ranked" mode): where `grow` finds the next ones. */
    private readonly order?: readonly ChunkRef[],
  ) {
    this.selected = selected;
    this.ranked = ranked;
  }

  /**
   * Plans the context for `documents` (in the order they should appear) within `budgetTokens`.
   * `ranker` may already hold some or all documents (indexed while they were read); missing ones are
   * indexed on demand.
   */
  static plan(
    documents: readonly ContextDocument[],
    query: string,
    budgetTokens: number,
    ranker: ChunkRanker = new ChunkRanker(query),
  ): ContextPlan {
    const refs: ChunkRef[] = [];
    let total = 0;
    documents.forEach((d, doc) => {
      if (d.chunks.length > 0) total += labelTokens(d.record.key);
      d.chunks.forEach((c, pos) => {
        refs.push({ doc, pos, tokens: c.tokens });
        total += c.tokens;
      });
    });
    if (total <= budgetTokens) return new ContextPlan(documents, ranker, "all", refs, false, budgetTokens);
    const order = ranker.order(documents, refs);
    return new ContextPlan(
      documents,
      ranker,
      "ranked",
      pack(documents, order, budgetTokens),
      true,
      budgetTokens,
      order,
    );
  }

  /**
   * Plans from chunks already ranked elsewhere (the search index): `order` (best first) is packed
   * within `budgetTokens` as ranked mode does; `shrink` and `grow` follow the same order.
   */
  static planRanked(
    documents: readonly ContextDocument[],
    order: readonly ChunkRef[],
    budgetTokens: number,
    query = "",
  ): ContextPlan {
    return new ContextPlan(
      documents,
      new ChunkRanker(query),
      "ranked",
      pack(documents, order, budgetTokens),
      true,
      budgetTokens,
      order,
    );
  }

  /** Local estimate of the document messages this plan renders to. */
  get estimatedTokens(): number {
    return estimateSelection(this.documents, this.selected);
  }

  get chunkCount(): number {
    return this.selected.length;
  }

  /**
   * Drops the lowest-ranked chunks until at least `tokens` (local estimate) are gone. Returns the
   * number of chunks dropped (0 when nothing is left to drop).
   */
  shrink(tokens: number): number {
    if (!this.ranked) {
      const order = this.ranker.order(this.documents, this.selected);
      this.selected = order;
      this.ranked = true;
    }
    let dropped = 0;
    let freed = 0;
    while (this.selected.length > 0 && freed < tokens) {
      const ref = this.selected.pop()!;
      freed += ref.tokens;
      dropped++;
    }
    // A document that lost its last chunk also frees its label; the estimate is recomputed by callers.
    return dropped;
  }

  /**
   * Adds the best-ranked chunks left out so far while they fit in `tokens` more (local estimate,
   * labels and elision markers included): for when the provider counts the prompt well under the
   * local estimate, which errs high on purpose. Returns the number of chunks added.
   */
  grow(tokens: number): number {
    if (!this.order) return 0;
    const chosen = new Set(this.selected);
    const opened = new Set(this.selected.map((r) => r.doc));
    let used = 0;
    let added = 0;
    for (const ref of this.order) {
      if (chosen.has(ref)) continue;
      const cost =
        ref.tokens +
        ELISION_TOKENS +
        (opened.has(ref.doc) ? 0 : labelTokens(this.documents[ref.doc]!.record.key));
      if (used + cost > tokens) continue;
      used += cost;
      opened.add(ref.doc);
      chosen.add(ref);
      added++;
    }
    // Still best first, so a later shrink drops the lowest-ranked.
    if (added > 0) this.selected = this.order.filter((r) => chosen.has(r));
    return added;
  }

  /** The `system` messages, one per document with at least one selected chunk, in document order. */
  messages(): ChatMessage[] {
    return this.grouped().map(({ doc, positions }) => ({
      role: "system" as const,
      content: renderDocument(this.documents[doc]!, positions),
    }));
  }

  /** Which documents and chunks are sent. */
  sources(): ContextSource[] {
    return this.grouped().map(({ doc, positions }) => {
      const d = this.documents[doc]!;
      return {
        documentId: d.record.documentId,
        key: d.record.key,
        complete: positions.length === (d.chunkCount ?? d.chunks.length),
        version: d.version ?? "current",
        chunks: positions.map((p) => {
          const c = d.chunks[p]!;
          return { index: c.index, tokens: c.tokens, text: c.text };
        }),
      };
    });
  }

  summary(): ContextSummary {
    const grouped = this.grouped();
    return {
      mode: this.mode,
      documents: this.documents.length,
      documentsSent: grouped.length,
      chunksTotal: this.documents.reduce((n, d) => n + (d.chunkCount ?? d.chunks.length), 0),
      chunksSent: this.selected.length,
      estimatedTokens: this.estimatedTokens,
      budgetTokens: this.budgetTokens,
    };
  }

  private grouped(): { doc: number; positions: number[] }[] {
    const byDoc = new Map<number, number[]>();
    for (const ref of this.selected) {
      const list = byDoc.get(ref.doc);
      if (list) list.push(ref.pos);
      else byDoc.set(ref.doc, [ref.pos]);
    }
    return [...byDoc.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([doc, positions]) => ({ doc, positions: positions.sort((a, b) => a - b) }));
  }
}

/** Convenience wrapper for `ContextPlan.plan`. */
export const planContext = ContextPlan.plan;

/** `Document: <key>`, a blank line, then the chunks (adjacent ones joined as-is, gaps elided). */
export function renderDocument(doc: ContextDocument, positions: readonly number[]): string {
  let body = "";
  let previousIndex: number | undefined;
  for (const p of positions) {
    const chunk = doc.chunks[p]!;
    if (previousIndex !== undefined && chunk.index !== previousIndex + 1) body += ELISION;
    body += chunk.text;
    previousIndex = chunk.index;
  }
  return `${documentLabel(doc.record.key)}\n\n${body}`;
}

function estimateSelection(documents: readonly ContextDocument[], selected: readonly ChunkRef[]): number {
  const docs = new Set<number>();
  let total = 0;
  for (const ref of selected) {
    total += ref.tokens;
    docs.add(ref.doc);
  }
  for (const doc of docs) total += labelTokens(documents[doc]!.record.key);
  // Gaps cost an elision marker each; counting one per selected chunk is a cheap upper bound.
  if (selected.length > docs.size) total += (selected.length - docs.size) * ELISION_TOKENS;
  return total;
}

/**
 * Greedy packing by rank: take each chunk that still fits (paying the document's label the first
 * time one of its chunks is taken). Returns the taken refs, best first.
 */
function pack(documents: readonly ContextDocument[], order: readonly ChunkRef[], budget: number): ChunkRef[] {
  const taken: ChunkRef[] = [];
  const opened = new Set<number>();
  let used = 0;
  for (const ref of order) {
    const cost =
      ref.tokens + ELISION_TOKENS + (opened.has(ref.doc) ? 0 : labelTokens(documents[ref.doc]!.record.key));
    if (used + cost > budget) continue;
    used += cost;
    opened.add(ref.doc);
    taken.push(ref);
  }
  return taken;
}

// --- ranking ---------------------------------------------------------------------------------------

/** Room for chunk positions in a numeric id (`doc * ID_STRIDE + pos`). */
const ID_STRIDE = 1_000_000;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Ranks chunks against a query with BM25 (minisearch). Documents can be added as they are read, so
 * indexing overlaps the remaining reads; `order` indexes whatever was not added yet.
 *
 * Only what can score is indexed, so 40 MB of text costs a regex scan rather than a full index:
 * - a chunk goes into the index only if it contains a query term as a word (one regex test on the
 *   lower-cased text, a superset of what the tokenizer would match); any other chunk has BM25 score
 *   0 and is only counted;
 * - within an indexed chunk only the query's own terms are kept (`processTerm`), while minisearch
 *   still takes the chunk's length from the full token list;
 * - each term's IDF is corrected to the whole set of chunks (`boostTerm` = full-set IDF / indexed-set
 *   IDF; document frequencies are exact because every chunk holding a term is indexed). The average
 *   length is that of the indexed chunks, close to the whole set's since chunks are cut to a common
 *   target size.
 *
 * Chunks without any query term follow the matches, spread across documents (every document's first
 * chunk, then every second chunk...), so a question with no searchable words still sees each
 * document's beginning rather than one document's whole text.
 */
export class ChunkRanker {
  readonly terms: string[];
  private readonly index?: MiniSearch<{ id: number; text: string }>;
  private readonly matcher?: RegExp;
  private readonly added = new Set<number>();
  private chunkCount = 0;
  private scores?: Map<number, number>;

  constructor(query: string) {
    this.terms = queryTerms(query);
    if (this.terms.length === 0) return;
    const wanted = new Set(this.terms);
    // A term matches the word itself or its plural (the fold in normalizeTerm).
    const alternatives = this.terms.map((t) => `${escapeRegExp(t)}s?`).join("|");
    this.matcher = new RegExp(`(?<![\\p{L}\\p{N}])(?:${alternatives})(?![\\p{L}\\p{N}])`, "u");
    this.index = new MiniSearch<{ id: number; text: string }>({
      fields: ["text"],
      idField: "id",
      storeFields: [],
      tokenize,
      // Same as keeping `normalizeTerm(t)` when wanted (tokens arrive lower-cased and stop words are
      // never wanted), with set lookups only: this runs once per word of every indexed chunk.
      processTerm: (t) => {
        if (wanted.has(t)) return t;
        if (t.length > 3 && t.charCodeAt(t.length - 1) === 115 && !t.endsWith("ss")) {
          const folded = t.slice(0, -1);
          if (wanted.has(folded)) return folded;
        }
        return null;
      },
      searchOptions: { combineWith: "OR", prefix: false, fuzzy: false },
    });
  }

  /** Indexes the chunks of the document at position `doc` (once; later calls are ignored). */
  add(doc: number, chunks: readonly TextChunk[]): void {
    if (this.added.has(doc)) return;
    this.added.add(doc);
    this.scores = undefined;
    this.chunkCount += chunks.length;
    if (!this.index || !this.matcher) return;
    for (let pos = 0; pos < chunks.length; pos++) {
      const text = chunks[pos]!.text;
      // CJK words are split into characters by the tokenizer, which the word-boundary test cannot
      // see: such chunks are always indexed.
      if (this.matcher.test(text.toLowerCase()) || CJK_CHAR.test(text)) {
        this.index.add({ id: doc * ID_STRIDE + pos, text });
      }
    }
  }

  /** `refs` best first (indexing any of their documents not added yet). */
  order(documents: readonly ContextDocument[], refs: readonly ChunkRef[]): ChunkRef[] {
    for (const ref of refs) if (!this.added.has(ref.doc)) this.add(ref.doc, documents[ref.doc]!.chunks);
    if (!this.scores) this.scores = this.search();
    const scores = this.scores;
    const score = (r: ChunkRef) => scores.get(r.doc * ID_STRIDE + r.pos) ?? 0;
    return [...refs].sort((a, b) => score(b) - score(a) || a.pos - b.pos || a.doc - b.doc);
  }

  private search(): Map<number, number> {
    const scores = new Map<number, number>();
    const index = this.index;
    if (!index || index.documentCount === 0) return scores;
    const indexed = index.documentCount;
    const all = Math.max(this.chunkCount, indexed);
    const idf = (n: number, total: number) => Math.log(1 + (total - n + 0.5) / (n + 0.5));
    const boost = new Map<string, number>();
    for (const term of this.terms) {
      const n = index.search(term).length;
      if (n > 0) boost.set(term, idf(n, all) / idf(n, indexed));
    }
    const hits = index.search(this.terms.join(" "), { boostTerm: (term) => boost.get(term) ?? 1 });
    for (const hit of hits) scores.set(hit.id as number, hit.score);
    return scores;
  }
}

/** Ranks `refs` against `query` (a one-off ChunkRanker). */
export function rankChunks(
  documents: readonly ContextDocument[],
  refs: readonly ChunkRef[],
  query: string,
): ChunkRef[] {
  return new ChunkRanker(query).order(documents, refs);
}
