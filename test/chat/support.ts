/**
 * Test helpers for the chat API: an in-memory DocumentReader, a scriptable ProviderApi fake, and a
 * way to serve the Hono app on 127.0.0.1:0 with @hono/node-server.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { Hono } from "hono";
import {
  type DocumentPage,
  type DocumentReader,
  type DocumentRecord,
  type ListDocumentsQuery,
  type TextChunk,
  type TextRead,
  textVersionOf,
} from "../../functions/core/documents/model";
import type {
  ChatDelta,
  ChatRequest,
  ChatResult,
  ModelInfo,
  ProviderApi,
} from "../../functions/core/provider/types";
import { chunkText } from "../../functions/core/text/chunking";
import { estimateTokens } from "../../functions/core/text/tokens";

/** Documents and chunks in memory, listed in key order like the DynamoDB store. */
export class MemoryStore implements DocumentReader {
  readonly records = new Map<string, DocumentRecord>();
  readonly chunks = new Map<string, TextChunk[]>();

  add(
    record: Partial<DocumentRecord> & Pick<DocumentRecord, "documentId" | "key">,
    text = "",
    chunking?: Parameters<typeof chunkText>[1],
  ): DocumentRecord {
    const pieces = text ? chunkText(text, chunking) : [];
    const now = new Date().toISOString();
    const full: DocumentRecord = {
      bucket: "docs",
      status: "ready",
      size: text.length,
      sequencer: "0",
      createdAt: now,
      updatedAt: now,
      // A record that is not ready and was given no text (a first version still processing, a
      // failure) has no generation: chat must not answer from it.
      ...(text || (record.status ?? "ready") === "ready" ? { textGeneration: "g1" } : {}),
      chunkCount: pieces.length,
      tokenEstimate: pieces.reduce((n, c) => n + c.tokens, 0),
      ...record,
    };
    this.records.set(full.documentId, full);
    this.chunks.set(
      full.documentId,
      pieces.map((p, index) => ({
        documentId: full.documentId,
        generation: "g1",
        index,
        text: p.text,
        tokens: p.tokens,
      })),
    );
    return full;
  }

  async get(id: string): Promise<DocumentRecord | undefined> {
    const r = this.records.get(id);
    return r && r.status !== "deleted" ? r : undefined;
  }

  async list(q: ListDocumentsQuery = {}): Promise<DocumentPage> {
    const all = [...this.records.values()]
      .filter((r) => r.status !== "deleted")
      .filter((r) => (q.prefix ? r.key.startsWith(q.prefix) : true))
      .filter((r) => (q.status ? r.status === q.status : true))
      .sort((a, b) => a.key.localeCompare(b.key));
    const start = q.cursor ? Number.parseInt(q.cursor, 10) : 0;
    if (Number.isNaN(start)) throw Object.assign(new Error("invalid cursor"), { name: "InvalidCursorError" });
    const limit = q.limit ?? 100;
    const items = all.slice(start, start + limit);
    return { items, cursor: start + limit < all.length ? String(start + limit) : undefined };
  }

  async readText(record: DocumentRecord): Promise<TextRead> {
    const current = this.records.get(record.documentId);
    const version = current ? textVersionOf(current) : undefined;
    if (!current || !version) {
      return { ok: false, record: current, status: current?.status ?? "deleted", reason: "no text" };
    }
    return { ok: true, record: current, version, chunks: this.chunks.get(record.documentId) ?? [] };
  }

  async getChunks(record: DocumentRecord): Promise<TextChunk[]> {
    return this.chunks.get(record.documentId) ?? [];
  }
}

/**
 * A ProviderApi fake: answers with the labels of the documents it received (so tests can see what
 * was sent), counts tokens like the local estimate times `tokenRatio`, and throws `fail` when set.
 */
export class FakeMoonshot implements ProviderApi {
  models: ModelInfo[] = [
    { id: "kimi-k2.6", context_length: 262_144 },
    { id: "tiny-4k", context_length: 4096 },
  ];
  tokenRatio = 1;
  fail?: { on: "chat" | "estimate" | "models" | "stream-first" | "stream-mid"; error: Error };
  readonly chatRequests: ChatRequest[] = [];
  listModelsCalls = 0;

  private maybeFail(on: NonNullable<FakeMoonshot["fail"]>["on"]) {
    if (this.fail?.on === on) throw this.fail.error;
  }

  async listModels(): Promise<ModelInfo[]> {
    this.listModelsCalls++;
    this.maybeFail("models");
    return this.models;
  }

  async estimateTokenCount(req: Pick<ChatRequest, "model" | "messages">): Promise<number> {
    this.maybeFail("estimate");
    let n = 3;
    for (const m of req.messages) n += 4 + estimateTokens(m.content);
    return Math.ceil(n * this.tokenRatio);
  }

  private reply(req: ChatRequest): string {
    const labels = req.messages
      .filter((m) => m.role === "system" && m.content.startsWith("Document: "))
      .map((m) => m.content.split("\n")[0]!.slice("Document: ".length));
    return `Seen: ${labels.join(", ") || "(none)"}.`;
  }

  async chat(req: ChatRequest): Promise<ChatResult> {
    this.chatRequests.push(req);
    this.maybeFail("chat");
    const content = this.reply(req);
    return {
      id: "chatcmpl-fake",
      model: req.model,
      content,
      finishReason: "stop",
      choices: [{ index: 0, content, finishReason: "stop" }],
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
    };
  }

  async *chatStream(req: ChatRequest): AsyncGenerator<ChatDelta> {
    this.chatRequests.push(req);
    this.maybeFail("stream-first");
    const words = this.reply(req).split(/(?<= )/);
    for (const [i, w] of words.entries()) {
      if (i === 1) this.maybeFail("stream-mid");
      yield { content: w };
    }
    yield {
      finishReason: "stop",
      usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
      done: true,
    };
  }

  async uploadFile(): Promise<never> {
    throw new Error("not used by the chat API");
  }
  async getFileContent(): Promise<never> {
    throw new Error("not used by the chat API");
  }
  async retrieveFile(): Promise<never> {
    throw new Error("not used by the chat API");
  }
  async listFiles(): Promise<never> {
    throw new Error("not used by the chat API");
  }
  async deleteFile(): Promise<never> {
    throw new Error("not used by the chat API");
  }
}

export interface ServedApp {
  url: string;
  close(): Promise<void>;
}

/** Serves a Hono app on 127.0.0.1 with a random port. */
export async function serveApp(
  app: { fetch: Hono["fetch"] } | { fetch: (req: Request) => Response | Promise<Response> },
): Promise<ServedApp> {
  return new Promise((resolve) => {
    const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, (info: AddressInfo) => {
      resolve({
        url: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done) => {
            (server as import("node:http").Server).closeAllConnections?.();
            server.close(() => done());
          }),
      });
    });
  });
}

/** Parses an SSE body into { event, data } frames. */
export function parseSse(body: string): { event: string; data: string }[] {
  return body
    .split("\n\n")
    .filter((f) => f.trim() !== "")
    .map((frame) => {
      let event = "message";
      const data: string[] = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      return { event, data: data.join("\n") };
    });
}

export const TOKEN = "test-token-0123456789";
export const authHeader = { authorization: `Bearer ${TOKEN}` };
