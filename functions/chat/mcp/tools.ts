/**
 * The MCP tools and document resources: what an agent (Claude, Cursor, Kimi...) may do with the stored
 * documents, each tool a zod schema (its JSON Schema is what `tools/list` shows), a description written
 * for a model choosing among them, and a handler that calls the same services as the HTTP routes:
 * - `search_documents` -> SearchService, as `POST /search`;
 * - `ask` -> ChatService.prepare + the provider's chat, as `POST /chat`;
 * - `list_documents` / `get_document` -> the document reader, as `GET /documents[/{id}]`.
 *
 * Nothing here imports the MCP SDK (functions/chat/mcp/server.ts does, and is loaded only for /mcp), so
 * this module costs the chat function's cold start only its own few kilobytes.
 *
 * Every handler reads documents through `ctx.reader`, the documents this caller may see: the one place
 * a tenant scope applies (the route passes the caller's scoped reader, as every HTTP route does).
 */
import * as z from "zod/mini";
import { badRequest, notFound, toApiError } from "../../core/chat/errors";
import type { PriceTable } from "../../core/chat/prices";
import type { DocumentSelector } from "../../core/chat/selection";
import type { ChatService } from "../../core/chat/service";
import type { DocumentReader, DocumentRecord, TextChunk } from "../../core/documents/model";
import type { CallOptions, ProviderApi } from "../../core/provider/types";
import type { MetricsPort } from "../../core/runtime/telemetry";
import type { SearchService } from "../../core/search/service";
import { type AppLogger, countAnswer, countError, parseWith } from "../http";
import { CHAT_SYSTEM_PROMPT } from "../routes/chat";
import { isBadCursor } from "../routes/documents";
import { MAX_QUERY_BYTES } from "../routes/search";
import { documentIdsField, prefixField } from "../routes/selection";

/** What one MCP request's tools work with. */
export interface McpToolContext {
  /** The documents this caller may see (the tenant scope applies here). */
  reader: DocumentReader;
  /**
   * A selection narrowed to the caller's scope, as the HTTP routes make it (`selectionFor`): the scoped
   * reader, and the prefix narrowed (none: the scope's; outside it: a 403 error).
   */
  select(asked: DocumentSelector): { reader: DocumentReader; selector: DocumentSelector };
  search: SearchService;
  chat: ChatService;
  provider: ProviderApi;
  /** The request's abort signal and the Lambda deadline, passed to provider calls. */
  call: CallOptions;
  log: AppLogger;
  metrics: MetricsPort;
  /** Prices per model, for the answer's cost. */
  prices: PriceTable;
}

/** A tool as `tools/list` shows it (MCP `Tool`). */
export interface ToolDefinition {
  name: string;
  title: string;
  description: string;
  inputSchema: { type: "object"; [key: string]: unknown };
  outputSchema: { type: "object"; [key: string]: unknown };
  annotations: { title: string; readOnlyHint: boolean; openWorldHint: boolean; idempotentHint: boolean };
}

/** A `tools/call` result (MCP `CallToolResult`). */
export interface ToolResult {
  [key: string]: unknown;
  content: { type: "text"; text: string }[];
  structuredContent?: Record<string, unknown>;
  isError?: boolean;
}

/** An error the MCP layer answers as a JSON-RPC error (MCP "protocol error"), not as a tool result. */
export class McpProtocolError extends Error {
  override readonly name = "McpProtocolError";
  /** Duck-typed by functions/chat/mcp/server.ts, which turns it into the SDK's McpError. */
  constructor(
    readonly mcpCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** JSON-RPC "Invalid params" (unknown tool, malformed arguments for older protocol versions). */
export const INVALID_PARAMS = -32602;
/** MCP "Resource not found". */
export const RESOURCE_NOT_FOUND = -32002;

/**
 * Protocol versions from which a tool's bad arguments are reported as a tool error the model can read
 * and correct (MCP 2025-11-25, SEP-1303); before it they were JSON-RPC errors, as older clients expect.
 */
export const ARGUMENT_ERRORS_AS_TOOL_RESULTS_SINCE = "2025-11-25";

/** Most text `get_document` returns in one call (a few model pages, far below any context window). */
export const MAX_DOCUMENT_TEXT_BYTES = 64 * 1024;
/** Most chunks `get_document` returns in one call. */
export const MAX_CHUNKS_PER_CALL = 20;
/** Most text one document resource read returns (the rest through `get_document`). */
export const MAX_RESOURCE_TEXT_BYTES = 256 * 1024;
/** Scheme of document resources: `kdp://documents/{documentId}`. */
export const DOCUMENT_URI_PREFIX = "kdp://documents/";

const STATUSES = ["processing", "ready", "failed", "deleted"] as const;

const limitField = (max: number, fallback: number, what: string) =>
  z.optional(
    z
      .number({ error: "must be a number" })
      .check(
        z.int({ error: "must be a whole number" }),
        z.minimum(1, `must be from 1 to ${max}`),
        z.maximum(max, `must be from 1 to ${max}`),
        z.describe(`How many ${what} to return, 1-${max} (default ${fallback}).`),
      ),
  );

const scopeFields = {
  prefix: z.optional(
    prefixField().check(
      z.describe(
        'Only documents whose key (path in the bucket) starts with this, e.g. "policies/" or "reports/2024-". Omit for every document. Do not combine with documentIds.',
      ),
    ),
  ),
  documentIds: z.optional(
    documentIdsField().check(
      z.describe(
        "Only these documents (ids from list_documents or an earlier search). Omit for every document. Do not combine with prefix.",
      ),
    ),
  ),
};

const documentIdField = z
  .string({ error: "must be a string" })
  .check(
    z.regex(/^[A-Za-z0-9_.:-]{1,200}$/, "must be a document id as list_documents returns it"),
    z.describe("The document's id (documentId from list_documents or search_documents)."),
  );

// --- outputs -------------------------------------------------------------------------------------

const documentSummary = z.object({
  documentId: z.string(),
  key: z.string(),
  status: z.enum(STATUSES),
  size: z.number(),
  contentType: z.optional(z.string()),
  chunkCount: z.optional(z.number()),
  textBytes: z.optional(z.number()),
  tokenEstimate: z.optional(z.number()),
  error: z.optional(z.object({ code: z.string(), message: z.string() })),
  updatedAt: z.string(),
});
type DocumentSummary = z.infer<typeof documentSummary>;

/** A record as the tools show it: what a model needs to pick and cite a document, nothing internal. */
export function documentSummaryOf(r: DocumentRecord): DocumentSummary {
  const out: DocumentSummary = {
    documentId: r.documentId,
    key: r.key,
    status: r.status,
    size: r.size,
    updatedAt: r.updatedAt,
  };
  if (r.contentType) out.contentType = r.contentType;
  if (r.chunkCount !== undefined) out.chunkCount = r.chunkCount;
  if (r.textBytes !== undefined) out.textBytes = r.textBytes;
  if (r.tokenEstimate !== undefined) out.tokenEstimate = r.tokenEstimate;
  if (r.error) out.error = { code: r.error.code, message: r.error.message };
  return out;
}

// --- the tools -----------------------------------------------------------------------------------

interface Tool<I extends z.ZodMiniType, O extends z.ZodMiniType> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  /** Reads only, or calls the model provider (open world: answers vary, costs tokens). */
  openWorld: boolean;
  run(args: z.infer<I>, ctx: McpToolContext): Promise<z.infer<O>>;
}

const tool = <I extends z.ZodMiniType, O extends z.ZodMiniType>(t: Tool<I, O>) => t;

const searchDocuments = tool({
  name: "search_documents",
  title: "Search documents",
  description:
    "Keyword search (BM25) over the text of every stored document: returns the best-matching passages, best first, each with its document's key and id and the passage's chunk index. " +
    "Use it to find where something is said, to gather quotes, or to find which documents to read or ask about; read more around a hit with get_document (fromChunk = chunkIndex). " +
    "Write the query as the words that would appear in the text (names, terms, phrases), not as a question.",
  input: z.strictObject({
    query: z.string({ error: "must be a string" }).check(
      z.trim(),
      z.minLength(1, "must not be empty: give some words to search for"),
      z.refine((q) => Buffer.byteLength(q, "utf8") <= MAX_QUERY_BYTES, "must be at most 4 KB"),
      z.describe("Words to search for, e.g. 'refund policy enterprise customers'."),
    ),
    ...scopeFields,
    limit: limitField(50, 10, "passages"),
  }),
  output: z.object({
    results: z.array(
      z.object({
        documentId: z.string(),
        key: z.string(),
        chunkIndex: z.number(),
        score: z.number(),
        text: z.string(),
      }),
    ),
  }),
  openWorld: false,
  async run(args, ctx) {
    const { reader, selector } = ctx.select({ documentIds: args.documentIds, prefix: args.prefix });
    return ctx.search.search({ query: args.query, ...selector, limit: args.limit ?? 10 }, reader);
  },
});

const ask = tool({
  name: "ask",
  title: "Ask the documents",
  description:
    "Answers a question from the stored documents with the Kimi model, grounded only in their text, and says which documents and chunks it used. " +
    "Narrow the documents with prefix or documentIds when you know where the answer is (faster, cheaper, more precise); otherwise every ready document is considered. " +
    "Takes seconds to a few minutes and costs model tokens: for finding passages use search_documents instead.",
  input: z.strictObject({
    question: z
      .string({ error: "must be a string" })
      .check(
        z.trim(),
        z.minLength(1, "must not be empty: ask a question"),
        z.maxLength(32_000, "must be at most 32,000 characters"),
        z.describe("The question, in full sentences, as a person would ask it."),
      ),
    ...scopeFields,
    model: z.optional(
      z
        .string({ error: "must be a string" })
        .check(
          z.minLength(1, "must not be empty"),
          z.describe("A model id the provider offers; omit for the deployment's default model."),
        ),
    ),
    maxTokens: z.optional(
      z
        .number({ error: "must be a number" })
        .check(
          z.int({ error: "must be a whole number" }),
          z.minimum(1, "must be at least 1"),
          z.maximum(1_000_000, "is too large"),
          z.describe("Upper bound on the answer's tokens (reasoning included); omit for the default."),
        ),
    ),
  }),
  output: z.object({
    answer: z.string(),
    model: z.string(),
    finishReason: z.nullable(z.string()),
    usage: z.optional(
      z.object({
        promptTokens: z.number(),
        completionTokens: z.number(),
        totalTokens: z.number(),
        cachedTokens: z.number(),
        costUsd: z.nullable(z.number()),
      }),
    ),
    sources: z.array(
      z.object({
        documentId: z.string(),
        key: z.string(),
        complete: z.boolean(),
        chunks: z.array(z.number()),
      }),
    ),
    skipped: z.array(
      z.object({ documentId: z.string(), key: z.string(), status: z.string(), reason: z.string() }),
    ),
  }),
  openWorld: true,
  async run(args, ctx) {
    const prepared = await ctx.chat.prepare(
      {
        model: args.model,
        ...ctx.select({ documentIds: args.documentIds, prefix: args.prefix }),
        messages: [
          { role: "system", content: CHAT_SYSTEM_PROMPT },
          { role: "user", content: args.question },
        ],
        documentsAt: 1,
        query: args.question,
        maxTokens: args.maxTokens,
      },
      ctx.call,
    );
    ctx.log.info("mcp ask prepared", { model: prepared.model.id, context: prepared.context });
    const result = await ctx.provider.chat(prepared.request, ctx.call);
    const costUsd = countAnswer(ctx.metrics, ctx.prices, prepared.model.id, result.usage);
    const u = result.usage;
    return {
      answer: result.content,
      model: result.model || prepared.model.id,
      finishReason: result.finishReason,
      ...(u
        ? {
            usage: {
              promptTokens: u.prompt_tokens,
              completionTokens: u.completion_tokens,
              totalTokens: u.total_tokens,
              cachedTokens: u.cached_tokens ?? 0,
              costUsd,
            },
          }
        : {}),
      // References, not the text: the sent chunks can be a whole context window; get_document reads them.
      sources: prepared.sources.map((s) => ({
        documentId: s.documentId,
        key: s.key,
        complete: s.complete,
        chunks: s.chunks.map((c) => c.index),
      })),
      skipped: prepared.skipped.map((s) => ({
        documentId: s.documentId,
        key: s.key,
        status: s.status,
        reason: s.reason,
      })),
    };
  },
});

const listDocuments = tool({
  name: "list_documents",
  title: "List documents",
  description:
    "Lists stored documents in key order with their id, key (path), status (processing, ready, failed, deleted), size and text size. " +
    "Use it to see what is available, to find ids for get_document, ask or search_documents, or to check why a document failed. " +
    "Pages: pass the returned cursor to get the next page; cursor is null on the last page.",
  input: z.strictObject({
    prefix: scopeFields.prefix,
    status: z.optional(
      z
        .enum(STATUSES, { error: `must be one of ${STATUSES.join(", ")}` })
        .check(z.describe("Only documents with this status, e.g. 'ready' or 'failed'.")),
    ),
    limit: limitField(100, 50, "documents"),
    cursor: z.optional(
      z
        .string({ error: "must be a string" })
        .check(
          z.minLength(1, "must not be empty"),
          z.describe("The cursor of the previous page, unchanged; omit for the first page."),
        ),
    ),
  }),
  output: z.object({ documents: z.array(documentSummary), cursor: z.nullable(z.string()) }),
  openWorld: false,
  async run(args, ctx) {
    let page: Awaited<ReturnType<DocumentReader["list"]>>;
    try {
      page = await ctx.reader.list({
        prefix: args.prefix,
        status: args.status,
        limit: args.limit ?? 50,
        cursor: args.cursor,
      });
    } catch (err) {
      if (args.cursor && isBadCursor(err))
        throw badRequest("Invalid cursor: pass the cursor of the previous page unchanged.", "cursor");
      throw err;
    }
    return { documents: page.items.map(documentSummaryOf), cursor: page.cursor ?? null };
  },
});

const documentTextOutput = z.object({
  document: documentSummary,
  chunks: z.array(z.object({ index: z.number(), text: z.string() })),
  nextChunk: z.nullable(z.number()),
  note: z.optional(z.string()),
});

const getDocument = tool({
  name: "get_document",
  title: "Read a document",
  description:
    "Returns one document's metadata and its extracted text, a range of chunks at a time (a chunk is about 2,000 tokens; at most 64 KB of text per call). " +
    "Start at fromChunk 0, or at a search hit's chunkIndex; nextChunk in the result is where the next call continues (null at the end).",
  input: z.strictObject({
    documentId: documentIdField,
    fromChunk: z.optional(
      z
        .number({ error: "must be a number" })
        .check(
          z.int({ error: "must be a whole number" }),
          z.minimum(0, "must be 0 or more"),
          z.describe("First chunk to return, counting from 0 (default 0)."),
        ),
    ),
    maxChunks: limitField(MAX_CHUNKS_PER_CALL, 5, "chunks"),
  }),
  output: documentTextOutput,
  openWorld: false,
  async run(args, ctx) {
    const record = await ctx.reader.get(args.documentId);
    if (!record || record.status === "deleted")
      throw notFound(
        `Unknown document id: ${args.documentId}. List documents with list_documents.`,
        "documentId",
      );
    const document = documentSummaryOf(record);
    const total = record.chunkCount ?? 0;
    if (!record.textGeneration || total === 0) {
      return { document, chunks: [], nextChunk: null, note: noTextNote(record) };
    }
    const from = args.fromChunk ?? 0;
    if (from >= total)
      throw badRequest(
        `fromChunk ${from} is past the end: this document has ${total} chunk${total === 1 ? "" : "s"} (0 to ${total - 1}).`,
        "fromChunk",
      );
    const want = Math.min(args.maxChunks ?? 5, total - from);
    const chunks = await readChunks(ctx.reader, record, from, want);
    const out: { index: number; text: string }[] = [];
    let bytes = 0;
    for (const c of chunks) {
      const size = Buffer.byteLength(c.text, "utf8");
      // Always at least one chunk (each is far below DynamoDB's item limit), then only what fits.
      if (out.length > 0 && bytes + size > MAX_DOCUMENT_TEXT_BYTES) break;
      out.push({ index: c.index, text: c.text });
      bytes += size;
    }
    const last = out.length > 0 ? out[out.length - 1]!.index : from - 1;
    const result: z.infer<typeof documentTextOutput> = {
      document,
      chunks: out,
      nextChunk: last + 1 < total ? last + 1 : null,
    };
    if (record.status !== "ready") result.note = noTextNote(record);
    return result;
  },
});

function noTextNote(r: DocumentRecord): string {
  switch (r.status) {
    case "processing":
      return r.textGeneration
        ? "A newer version is being processed; this is the text of the previous version."
        : "Still being processed: its text is not stored yet. Try again in a moment.";
    case "failed":
      return `Ingestion failed (${r.error?.code ?? "unknown"}): ${r.error?.message ?? "no reason recorded"}. No text is stored.`;
    default:
      return "No text is stored for this document.";
  }
}

/** Chunks from..from+count-1 of the record's current text: only those items when the store can. */
async function readChunks(
  reader: DocumentReader,
  record: DocumentRecord,
  from: number,
  count: number,
): Promise<TextChunk[]> {
  if (reader.getChunksAt && record.textGeneration) {
    const keys = Array.from({ length: count }, (_, i) => ({
      documentId: record.documentId,
      generation: record.textGeneration!,
      index: from + i,
    }));
    const got = await reader.getChunksAt(keys);
    return got.filter((c): c is TextChunk => c !== undefined);
  }
  return (await reader.getChunks(record)).slice(from, from + count);
}

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of tools, each checked where it is defined
const TOOLS: Tool<any, any>[] = [searchDocuments, ask, listDocuments, getDocument];

/** The tools as `tools/list` shows them. */
export function toolDefinitions(): ToolDefinition[] {
  return TOOLS.map((t) => ({
    name: t.name,
    title: t.title,
    description: t.description,
    inputSchema: jsonSchemaOf(t.input, "input"),
    outputSchema: jsonSchemaOf(t.output, "output"),
    annotations: {
      title: t.title,
      readOnlyHint: true,
      openWorldHint: t.openWorld,
      idempotentHint: !t.openWorld,
    },
  }));
}

function jsonSchemaOf(schema: z.ZodMiniType, io: "input" | "output"): ToolDefinition["inputSchema"] {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { io }) as Record<string, unknown>;
  return { ...json, type: "object" };
}

/**
 * Runs a tool. Failures of the tool itself (unknown document, provider outage, a bad argument on a
 * current protocol) come back as a result with `isError: true` and a message the model can act on;
 * an unknown tool, or a bad argument on a protocol before 2025-11-25, throws McpProtocolError.
 */
export async function callTool(
  name: string,
  args: unknown,
  ctx: McpToolContext,
  protocolVersion: string | undefined,
): Promise<ToolResult> {
  const t = TOOLS.find((x) => x.name === name);
  if (!t)
    throw new McpProtocolError(
      INVALID_PARAMS,
      `Unknown tool "${name}". Tools: ${TOOLS.map((x) => x.name).join(", ")}.`,
    );
  let input: unknown;
  try {
    input = parseWith(t.input, args ?? {}, "arguments");
  } catch (err) {
    const message = `Invalid arguments for ${name}: ${(err as Error).message.replace(/^Invalid arguments: /, "")}`;
    if ((protocolVersion ?? "") < ARGUMENT_ERRORS_AS_TOOL_RESULTS_SINCE)
      throw new McpProtocolError(INVALID_PARAMS, message);
    return toolError(message);
  }
  try {
    const output = (await t.run(input, ctx)) as Record<string, unknown>;
    return { content: [{ type: "text", text: JSON.stringify(output) }], structuredContent: output };
  } catch (err) {
    countError(ctx.metrics, err);
    const e = toApiError(err);
    if (e.status >= 500)
      ctx.log.error("mcp tool failed", {
        tool: name,
        status: e.status,
        type: e.type,
        error: { name: (err as Error)?.name, message: (err as Error)?.message, stack: (err as Error)?.stack },
      });
    return toolError(`${e.message} (${e.type}${e.status === 429 ? "; retry later" : ""})`);
  }
}

const toolError = (text: string): ToolResult => ({ content: [{ type: "text", text }], isError: true });

// --- resources -----------------------------------------------------------------------------------

/** A document as `resources/list` shows it (MCP `Resource`). */
export interface DocumentResource {
  uri: string;
  name: string;
  title: string;
  mimeType: string;
  size?: number;
  description: string;
}

/** The one resource template: every document by id. */
export const DOCUMENT_RESOURCE_TEMPLATE = {
  uriTemplate: `${DOCUMENT_URI_PREFIX}{documentId}`,
  name: "document",
  title: "Stored document",
  mimeType: "text/plain",
  description:
    "The extracted text of one stored document (at most 256 KB; read longer documents with the get_document tool).",
};

/** Ready documents as resources, one page at a time (the store's own cursor). */
export async function listDocumentResources(
  ctx: McpToolContext,
  cursor: string | undefined,
): Promise<{ resources: DocumentResource[]; nextCursor?: string }> {
  let page: Awaited<ReturnType<DocumentReader["list"]>>;
  try {
    page = await ctx.reader.list({ status: "ready", limit: 100, cursor });
  } catch (err) {
    if (cursor && isBadCursor(err))
      throw new McpProtocolError(INVALID_PARAMS, "Invalid cursor: pass nextCursor of the previous page.");
    throw err;
  }
  return {
    resources: page.items.map((r) => ({
      uri: `${DOCUMENT_URI_PREFIX}${r.documentId}`,
      name: r.key,
      title: r.key,
      mimeType: "text/plain",
      ...(r.textBytes !== undefined ? { size: r.textBytes } : {}),
      description: `Extracted text of ${r.key} (${r.chunkCount ?? 0} chunks, about ${r.tokenEstimate ?? 0} tokens).`,
    })),
    ...(page.cursor ? { nextCursor: page.cursor } : {}),
  };
}

/** The text of one document resource, cut at MAX_RESOURCE_TEXT_BYTES with a note saying how to read on. */
export async function readDocumentResource(
  ctx: McpToolContext,
  uri: string,
): Promise<{ contents: { uri: string; mimeType: string; text: string }[] }> {
  const id = uri.startsWith(DOCUMENT_URI_PREFIX) ? uri.slice(DOCUMENT_URI_PREFIX.length) : "";
  const record = /^[A-Za-z0-9_.:-]{1,200}$/.test(id) ? await ctx.reader.get(id) : undefined;
  if (!record || record.status === "deleted")
    throw new McpProtocolError(
      RESOURCE_NOT_FOUND,
      `Resource not found: ${uri.slice(0, 300)}. Document resources are ${DOCUMENT_URI_PREFIX}<documentId>.`,
    );
  if (!record.textGeneration || !record.chunkCount)
    return { contents: [{ uri, mimeType: "text/plain", text: `[${noTextNote(record)}]` }] };
  const parts: string[] = [];
  let bytes = 0;
  let read = 0;
  let full = false;
  // Whole chunks in batches, until the cap: a long document is never read past what is returned.
  while (read < record.chunkCount && !full) {
    const batch = await readChunks(
      ctx.reader,
      record,
      read,
      Math.min(MAX_CHUNKS_PER_CALL, record.chunkCount - read),
    );
    if (batch.length === 0) break;
    for (const c of batch) {
      const size = Buffer.byteLength(c.text, "utf8");
      if (parts.length > 0 && bytes + size > MAX_RESOURCE_TEXT_BYTES) {
        full = true;
        break;
      }
      parts.push(c.text);
      bytes += size;
      read = c.index + 1;
    }
  }
  let text = parts.join("\n\n");
  if (read < record.chunkCount)
    text += `\n\n[Truncated after chunk ${read - 1} of ${record.chunkCount}: read on with the get_document tool, documentId "${record.documentId}", fromChunk ${read}.]`;
  return { contents: [{ uri, mimeType: "text/plain", text }] };
}
