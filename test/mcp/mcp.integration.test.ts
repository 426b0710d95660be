/**
 * The MCP endpoint end to end on this machine, driven by the SDK's own client (`Client` +
 * `StreamableHTTPClientTransport`): documents in local DynamoDB (dynalite), the search index in local
 * S3 (s3rver), the Moonshot emulator over HTTP (it answers by quoting the best-matching sentence of the
 * documents it was sent), the chat app served with @hono/node-server. Raw `fetch` checks what the
 * client hides: HTTP statuses, headers, and errors that must never be a 5xx.
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { MAX_DOCUMENT_TEXT_BYTES, MAX_RESOURCE_TEXT_BYTES } from "../../functions/chat/mcp/tools";
import { s3ObjectDeleter } from "../../functions/chat/objects";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { S3IndexObjects } from "../../functions/core/search/storage";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { type ServedApp, serveApp, TOKEN } from "../chat/support";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let emulator: RunningEmulator;
let served: ServedApp;
let client: Client;
const logged: { level: string; message: string }[] = [];

const filler = (topic: string, n: number, seed = 0) =>
  Array.from(
    { length: n },
    (_, i) => `Paragraph ${i + seed} of the ${topic} records lists ordinary entries about ${topic} work.\n\n`,
  ).join("");

const FACT = "The ferry to Lundholm leaves from pier nine at 06:40 every weekday.";

beforeAll(async () => {
  [stack, emulator] = await Promise.all([
    startLocalStack({ prefix: "mcp-it" }),
    startEmulator({ models: [{ id: "kimi-k2.6", context_length: 262_144 }] }),
  ]);
  const store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  await stack.s3Client.send(new CreateBucketCommand({ Bucket: "mcp-index" }));
  const indexObjects = new S3IndexObjects({ client: stack.s3Client, bucket: "mcp-index" });

  await store.putDocumentText(
    { documentId: "ferry", key: "travel/ferry.txt", bucket: stack.bucket },
    `${filler("harbour", 3)}${FACT}\n\n${filler("harbour", 3, 10)}`,
  );
  await store.putDocumentText(
    { documentId: "trains", key: "travel/trains.txt", bucket: stack.bucket },
    "The night train to the coast stops at Arnholt and Vest.\n\n",
  );
  await store.putDocumentText(
    { documentId: "memo", key: "office/memo.txt", bucket: stack.bucket },
    "The office closes at noon on the last Friday of each month.\n\n",
  );
  // About 200 chunks of ~8 KB: more than one get_document call or one resource read returns.
  await store.putDocumentText(
    { documentId: "atlas", key: "office/atlas.txt", bucket: stack.bucket },
    filler("atlas", 16_000),
  );
  await store.putDocumentText(
    {
      documentId: "broken",
      key: "office/broken.exe",
      bucket: stack.bucket,
      status: "failed",
      error: { code: "unsupported_type", message: '".exe" files are not supported' },
    },
    "",
  );
  const indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects: indexObjects,
    config: { segments: 4 },
  });
  while ((await indexer.run()).todos > 0);

  const app = createChatApp({
    store,
    provider: new MoonshotClient({
      baseURL: emulator.baseURL,
      apiKey: async () => "sk-local",
      retry: { maxAttempts: 1 },
    }),
    objects: s3ObjectDeleter(stack.s3Client),
    search: new IndexSearcher({ objects: indexObjects, refreshMs: 0 }),
    defaultModel: "kimi-k2.6",
    authenticate: bearerAuthenticator(async () => TOKEN),
    logger: {
      info() {},
      warn(message) {
        logged.push({ level: "warn", message });
      },
      error(message) {
        logged.push({ level: "error", message });
      },
    },
    loadMcpServer: () => import("../../functions/chat/mcp/server"),
  });
  served = await serveApp(app);
  client = await connect();
}, 120_000);

afterAll(async () => {
  await client?.close();
  await served?.close();
  await emulator?.close();
  await stack?.close();
});

async function connect(token = TOKEN): Promise<Client> {
  const c = new Client({ name: "mcp-integration-test", version: "1.0.0" });
  await c.connect(
    new StreamableHTTPClientTransport(new URL(`${served.url}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  return c;
}

/** A tool's structured result (the SDK client has already checked it against the outputSchema). */
async function call<T>(name: string, args: Record<string, unknown>): Promise<T> {
  const res = await client.callTool({ name, arguments: args });
  expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
  // The same result as text for clients that only read content.
  const text = (res.content as { type: string; text: string }[])[0]!;
  expect(JSON.parse(text.text)).toEqual(res.structuredContent);
  return res.structuredContent as T;
}

async function callError(name: string, args: Record<string, unknown>): Promise<string> {
  const res = await client.callTool({ name, arguments: args });
  expect(res.isError).toBe(true);
  expect(res.structuredContent).toBeUndefined();
  return (res.content as { text: string }[])[0]!.text;
}

/** One raw JSON-RPC POST, as a client on `protocolVersion` would send it after initialising. */
function rawPost(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${served.url}/mcp`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${TOKEN}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-11-25",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("the MCP server as the SDK client sees it", () => {
  it("initialises statelessly with instructions, tools and resources", () => {
    expect(client.getServerVersion()).toMatchObject({ name: "kimi-doc-pipeline" });
    expect(client.getServerCapabilities()).toMatchObject({ tools: {}, resources: {} });
    expect(client.getInstructions()).toContain("search_documents");
  });

  it("lists four tools, each with a description and a JSON Schema for its arguments and result", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([
      "ask",
      "get_document",
      "list_documents",
      "search_documents",
    ]);
    for (const t of tools) {
      expect(t.description!.length, t.name).toBeGreaterThan(100);
      expect(t.inputSchema.type).toBe("object");
      expect(t.outputSchema?.type).toBe("object");
      expect(t.annotations?.readOnlyHint).toBe(true);
      for (const [field, schema] of Object.entries(t.inputSchema.properties ?? {}))
        expect((schema as { description?: string }).description, `${t.name}.${field}`).toBeTruthy();
    }
    const search = tools.find((t) => t.name === "search_documents")!;
    expect(search.inputSchema.required).toEqual(["query"]);
    expect(search.inputSchema.properties).toMatchObject({
      limit: { type: "integer", minimum: 1, maximum: 50 },
      documentIds: { type: "array", items: { type: "string" } },
    });
    expect(tools.find((t) => t.name === "ask")!.annotations?.openWorldHint).toBe(true);
  });

  it("search_documents: ranked passages with key, id and chunk index, filtered by prefix and ids", async () => {
    const all = await call<{
      results: { documentId: string; key: string; chunkIndex: number; text: string }[];
    }>("search_documents", { query: "ferry Lundholm pier" });
    expect(all.results[0]).toMatchObject({ documentId: "ferry", key: "travel/ferry.txt", chunkIndex: 0 });
    expect(all.results[0]!.text).toContain(FACT);
    const scoped = await call<{ results: { key: string }[] }>("search_documents", {
      query: "office closes noon",
      prefix: "travel/",
    });
    expect(scoped.results).toEqual([]);
    const byId = await call<{ results: { documentId: string }[] }>("search_documents", {
      query: "train coast",
      documentIds: ["trains"],
      limit: 1,
    });
    expect(byId.results.map((r) => r.documentId)).toEqual(["trains"]);
  });

  it("ask: answers from the documents through the chat service, with sources as references", async () => {
    const out = await call<{
      answer: string;
      model: string;
      sources: { documentId: string; key: string; chunks: number[] }[];
      usage: { totalTokens: number };
    }>("ask", { question: "When does the ferry to Lundholm leave?", prefix: "travel/" });
    expect(out.answer).toContain("pier nine at 06:40");
    expect(out.model).toBe("kimi-k2.6");
    expect(out.sources.map((s) => s.key)).toEqual(["travel/ferry.txt", "travel/trains.txt"]);
    expect(out.sources[0]!.chunks).toEqual([0]);
    expect(out.usage.totalTokens).toBeGreaterThan(0);
    // Scoped away from the fact, the answer cannot know it.
    const scoped = await call<{ answer: string; sources: { documentId: string }[] }>("ask", {
      question: "When does the ferry to Lundholm leave?",
      documentIds: ["memo"],
    });
    expect(scoped.answer).not.toContain("06:40");
    expect(scoped.sources.map((s) => s.documentId)).toEqual(["memo"]);
  });

  it("list_documents: pages with a cursor, filters by prefix and status, says why a document failed", async () => {
    const first = await call<{ documents: { key: string }[]; cursor: string | null }>("list_documents", {
      prefix: "office/",
      limit: 2,
    });
    expect(first.documents.map((d) => d.key)).toEqual(["office/atlas.txt", "office/broken.exe"]);
    expect(first.cursor).toEqual(expect.any(String));
    const second = await call<{ documents: { key: string }[]; cursor: string | null }>("list_documents", {
      prefix: "office/",
      limit: 2,
      cursor: first.cursor,
    });
    expect(second.documents.map((d) => d.key)).toEqual(["office/memo.txt"]);
    expect(second.cursor).toBeNull();
    const failed = await call<{ documents: { documentId: string; error: { code: string } }[] }>(
      "list_documents",
      { status: "failed" },
    );
    expect(failed.documents).toEqual([
      expect.objectContaining({
        documentId: "broken",
        error: expect.objectContaining({ code: "unsupported_type" }),
      }),
    ]);
    expect(await callError("list_documents", { cursor: "not-a-cursor" })).toContain("Invalid cursor");
  });

  it("get_document: metadata and a bounded range of chunks, with where to continue", async () => {
    const small = await call<{
      document: { key: string; chunkCount: number };
      chunks: { index: number; text: string }[];
      nextChunk: number | null;
    }>("get_document", { documentId: "ferry" });
    expect(small.document).toMatchObject({ key: "travel/ferry.txt", chunkCount: 1 });
    expect(small.chunks).toEqual([{ index: 0, text: expect.stringContaining(FACT) }]);
    expect(small.nextChunk).toBeNull();

    const big = await call<{
      document: { chunkCount: number };
      chunks: { index: number; text: string }[];
      nextChunk: number | null;
    }>("get_document", { documentId: "atlas", fromChunk: 3, maxChunks: 20 });
    expect(big.document.chunkCount).toBeGreaterThan(30);
    expect(big.chunks[0]!.index).toBe(3);
    const bytes = big.chunks.reduce((n, c) => n + Buffer.byteLength(c.text, "utf8"), 0);
    expect(bytes).toBeLessThanOrEqual(MAX_DOCUMENT_TEXT_BYTES);
    expect(big.chunks.length).toBeLessThan(20); // the byte bound, not maxChunks, stopped it
    expect(big.nextChunk).toBe(3 + big.chunks.length);
    // Consecutive indexes, continuing exactly where nextChunk says.
    expect(big.chunks.map((c) => c.index)).toEqual(big.chunks.map((_, i) => 3 + i));

    const failed = await call<{ chunks: unknown[]; note: string }>("get_document", { documentId: "broken" });
    expect(failed.chunks).toEqual([]);
    expect(failed.note).toContain("unsupported_type");

    expect(await callError("get_document", { documentId: "nope" })).toContain("Unknown document id: nope");
    expect(await callError("get_document", { documentId: "ferry", fromChunk: 1 })).toContain(
      "fromChunk 1 is past the end: this document has 1 chunk (0 to 0)",
    );
  });

  it("resources: ready documents by URI, a template, and a read bounded in size", async () => {
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toEqual([
      "kdp://documents/atlas",
      "kdp://documents/memo",
      "kdp://documents/ferry",
      "kdp://documents/trains",
    ]);
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates[0]!.uriTemplate).toBe("kdp://documents/{documentId}");
    const memo = await client.readResource({ uri: "kdp://documents/memo" });
    expect(memo.contents[0]).toMatchObject({ mimeType: "text/plain", text: expect.stringContaining("noon") });
    const atlas = await client.readResource({ uri: "kdp://documents/atlas" });
    const text = (atlas.contents[0] as { text: string }).text;
    expect(Buffer.byteLength(text, "utf8")).toBeLessThan(MAX_RESOURCE_TEXT_BYTES + 500);
    expect(text).toMatch(/\[Truncated after chunk \d+ of \d+: read on with the get_document tool/);
    const missing = await client.readResource({ uri: "kdp://documents/nope" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(McpError);
    expect((missing as McpError).code).toBe(-32002);
  });
});

describe("errors come back as MCP errors, never as a 5xx", () => {
  it("an unknown tool is a JSON-RPC invalid-params error naming the tools", async () => {
    const err = await client.callTool({ name: "delete_everything", arguments: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(ErrorCode.InvalidParams);
    expect((err as McpError).message).toContain("search_documents, ask, list_documents, get_document");
  });

  it("bad arguments are a tool error naming the field (MCP 2025-11-25), so the model can correct them", async () => {
    expect(await callError("search_documents", { query: "x", limit: 500 })).toBe(
      "Invalid arguments for search_documents: limit: must be from 1 to 50",
    );
    expect(await callError("search_documents", {})).toContain("query: must be a string");
    expect(await callError("ask", { question: "hi", prefix: "travel/", documentIds: ["ferry"] })).toContain(
      'Give either "documentIds" or "prefix", not both.',
    );
    expect(await callError("list_documents", { status: "done", colour: "red" })).toMatch(
      /status: must be one of processing, ready, failed, deleted.*Unrecognized key: "colour"/,
    );
    expect(await callError("ask", { question: "hi", model: "gpt-9" })).toContain("gpt-9");
  });

  it("bad arguments from a client on an older protocol are a JSON-RPC error, as that version says", async () => {
    const res = await rawPost(
      {
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: { name: "get_document", arguments: { documentId: 5 } },
      },
      { "mcp-protocol-version": "2025-06-18" },
    );
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toMatchObject({
      id: 7,
      error: { code: -32602, message: expect.stringContaining("documentId") },
    });
  });

  it("HTTP: 401 without the token, 405 for GET and DELETE, 4xx for malformed requests", async () => {
    const noToken = await fetch(`${served.url}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(noToken.status).toBe(401);
    expect(noToken.headers.get("www-authenticate")).toMatch(/^Bearer/);
    expect(
      (await rawPost({ jsonrpc: "2.0", id: 1, method: "tools/list" }, { authorization: "Bearer wrong" }))
        .status,
    ).toBe(401);

    for (const method of ["GET", "DELETE"]) {
      const res = await fetch(`${served.url}/mcp`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" },
      });
      expect(res.status, method).toBe(405);
      expect(res.headers.get("allow")).toBe("POST");
      expect((await res.json()).error.message).toContain("stateless");
    }

    const malformed = await rawPost("{not json");
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).error.code).toBe(-32700);
    const notRpc = await rawPost({ hello: "world" });
    expect(notRpc.status).toBe(400);
    const noAccept = await rawPost(
      { jsonrpc: "2.0", id: 1, method: "tools/list" },
      { accept: "application/json" },
    );
    expect(noAccept.status).toBe(406);
    const notJson = await rawPost("{}", { "content-type": "text/plain" });
    expect(notJson.status).toBe(415);
    const notification = await rawPost({ jsonrpc: "2.0", method: "notifications/initialized" });
    expect(notification.status).toBe(202);
    const unknownMethod = await rawPost({ jsonrpc: "2.0", id: 2, method: "prompts/list" });
    expect(unknownMethod.status).toBe(200);
    expect((await unknownMethod.json()).error.code).toBe(ErrorCode.MethodNotFound);
    expect(logged.filter((l) => l.level === "error")).toEqual([]);
  });

  it("the SDK client without a token fails to connect with the 401", async () => {
    const err = await connect("wrong-token").catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 401,
      message: expect.stringContaining("Missing or invalid API token"),
    });
  });
  // Last: undici may later reuse the socket of an upload the server answered early (local mode only).
  it("a body over 1 MiB is a 413 before the SDK reads it", async () => {
    const question = "x".repeat(1_100_000);
    const tooBig = await rawPost({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "ask", arguments: { question } },
    });
    expect(tooBig.status).toBe(413);
    expect((await tooBig.json()).error.type).toBe("request_too_large");
  });
});
