/**
 * The MCP tools without HTTP: paging through a document with get_document (every chunk exactly once,
 * each call within the byte bound, whatever the chunk sizes), failures that must stay tool errors
 * (a store outage, a bug) and never escape as a 5xx, and the protocol-version rule for bad arguments.
 */
import { describe, expect, it } from "vitest";
import {
  callTool,
  INVALID_PARAMS,
  MAX_DOCUMENT_TEXT_BYTES,
  type McpToolContext,
  readDocumentResource,
} from "../../functions/chat/mcp/tools";
import { DEFAULT_PRICES } from "../../functions/core/chat/prices";
import type { ChatService } from "../../functions/core/chat/service";
import type { DocumentReader, DocumentRecord, TextChunk } from "../../functions/core/documents/model";
import type { ProviderApi } from "../../functions/core/provider/types";
import { noMetrics } from "../../functions/core/runtime/telemetry";
import type { SearchService } from "../../functions/core/search/service";
import { MemoryStore } from "../chat/support";

function context(reader: DocumentReader, errors: unknown[] = []): McpToolContext {
  return {
    reader,
    select: (selector) => ({ reader, selector }),
    search: {} as SearchService,
    chat: {} as ChatService,
    provider: {} as ProviderApi,
    call: {},
    log: { info() {}, warn() {}, error: (_m, a) => errors.push(a) },
    metrics: noMetrics,
    prices: DEFAULT_PRICES,
  };
}

/** A store whose chunks have the given sizes in bytes (deterministic text). */
function storeWithChunks(sizes: number[]): MemoryStore {
  const store = new MemoryStore();
  store.add({ documentId: "doc", key: "doc.txt", chunkCount: sizes.length });
  store.chunks.set(
    "doc",
    sizes.map(
      (n, index): TextChunk => ({
        documentId: "doc",
        generation: "g1",
        index,
        text: `${index}:`.padEnd(n, "x"),
        tokens: Math.ceil(n / 4),
      }),
    ),
  );
  return store;
}

const structured = <T>(r: { structuredContent?: Record<string, unknown>; isError?: boolean }): T => {
  expect(r.isError).toBeFalsy();
  return r.structuredContent as T;
};

describe("get_document paging", () => {
  // Small, large, and single chunks larger than the whole bound (a chunk may be up to 100 KiB).
  const shapes: Record<string, number[]> = {
    small: Array.from({ length: 45 }, (_, i) => 500 + ((i * 7919) % 3000)),
    large: Array.from({ length: 30 }, (_, i) => 8000 + ((i * 104_729) % 30_000)),
    oversized: [70_000, 100 * 1024, 10, 65_536, 65_535, 4, 100 * 1024],
  };
  for (const [name, sizes] of Object.entries(shapes)) {
    for (const maxChunks of [1, 3, 20]) {
      it(`${name} chunks, maxChunks ${maxChunks}: every chunk once, in order, each call within the bound`, async () => {
        const ctx = context(storeWithChunks(sizes));
        const seen: number[] = [];
        let from: number | null = 0;
        let calls = 0;
        while (from !== null) {
          calls++;
          expect(calls).toBeLessThanOrEqual(sizes.length);
          const out: { chunks: { index: number; text: string }[]; nextChunk: number | null } = structured(
            await callTool(
              "get_document",
              { documentId: "doc", fromChunk: from, maxChunks },
              ctx,
              "2025-11-25",
            ),
          );
          expect(out.chunks.length).toBeGreaterThan(0);
          expect(out.chunks.length).toBeLessThanOrEqual(maxChunks);
          const bytes = out.chunks.reduce((n, c) => n + Buffer.byteLength(c.text), 0);
          // Over the bound only when one chunk alone is larger than it.
          if (out.chunks.length > 1) expect(bytes).toBeLessThanOrEqual(MAX_DOCUMENT_TEXT_BYTES);
          for (const c of out.chunks) expect(c.text.length).toBe(sizes[c.index]);
          seen.push(...out.chunks.map((c) => c.index));
          from = out.nextChunk;
        }
        expect(seen).toEqual(sizes.map((_, i) => i));
      });
    }
  }
});

describe("failures stay tool errors", () => {
  const failing = (err: unknown): DocumentReader => ({
    get: async () => {
      throw err;
    },
    list: async () => {
      throw err;
    },
    getChunks: async () => [],
    readText: async () => {
      throw err;
    },
  });

  it("a bug or an outage is a generic tool error, logged with its stack, not a thrown error", async () => {
    const errors: unknown[] = [];
    const bug = new TypeError("Cannot read properties of undefined (reading 'key')");
    const result = await callTool(
      "get_document",
      { documentId: "doc" },
      context(failing(bug), errors),
      "2025-11-25",
    );
    expect(result.isError).toBe(true);
    expect(result.content[0]!.text).toContain("internal_error");
    expect(result.content[0]!.text).not.toContain("Cannot read properties");
    expect(errors).toEqual([expect.objectContaining({ tool: "get_document", status: 500 })]);

    const throttled = Object.assign(new Error("Rate exceeded"), {
      name: "ProvisionedThroughputExceededException",
    });
    const listed = await callTool("list_documents", {}, context(failing(throttled)), "2025-11-25");
    expect(listed.isError).toBe(true);
  });

  it("bad arguments: a tool error from 2025-11-25 on, a JSON-RPC invalid-params error before", async () => {
    const ctx = context(new MemoryStore());
    const current = await callTool("search_documents", { query: "" }, ctx, "2025-11-25");
    expect(current).toMatchObject({ isError: true });
    expect(current.content[0]!.text).toBe(
      "Invalid arguments for search_documents: query: must not be empty: give some words to search for",
    );
    for (const older of ["2025-06-18", "2025-03-26", undefined]) {
      const err = await callTool("search_documents", { query: "" }, ctx, older).catch((e: unknown) => e);
      expect(err, String(older)).toMatchObject({
        mcpCode: INVALID_PARAMS,
        message: current.content[0]!.text,
      });
    }
  });

  it("a resource that is not a document URI is not found, without a store call", async () => {
    let calls = 0;
    const reader: DocumentReader = {
      get: async () => {
        calls++;
        return undefined as DocumentRecord | undefined;
      },
      list: async () => ({ items: [] }),
      getChunks: async () => [],
      readText: async () => ({ ok: false, record: undefined, status: "deleted", reason: "none" }),
    };
    for (const uri of ["file:///etc/passwd", "kdp://documents/../x", "kdp://documents/"]) {
      const err = await readDocumentResource(context(reader), uri).catch((e: unknown) => e);
      expect(err, uri).toMatchObject({ mcpCode: -32002 });
    }
    expect(calls).toBe(0);
  });
});
