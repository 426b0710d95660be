/**
 * POST /search over real local servers (dynalite, s3rver) and the real index: results best first with
 * their text, filters, and every bad input with its 4xx.
 */

import { CreateBucketCommand } from "@aws-sdk/client-s3";
import type { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { ADMIN_SCOPE } from "../../functions/core/auth/scope";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import type { ProviderApi } from "../../functions/core/provider/types";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { S3IndexObjects } from "../../functions/core/search/storage";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let app: Hono;
const TOKEN = "search-test-token";

beforeAll(async () => {
  stack = await startLocalStack({ prefix: "searchapi" });
  const store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  await stack.s3Client.send(new CreateBucketCommand({ Bucket: "index" }));
  const objects = new S3IndexObjects({ client: stack.s3Client, bucket: "index" });
  await store.putDocumentText(
    { documentId: "d1", key: "manuals/pump.txt" },
    "The pump primes in ten seconds.\n\nClean the impeller monthly.",
  );
  await store.putDocumentText(
    { documentId: "d2", key: "manuals/valve.txt" },
    "The valve seals under pressure.",
  );
  await store.putDocumentText({ documentId: "d3", key: "notes/pump-log.txt" }, "Pump failed twice in March.");
  const indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects,
    config: { segments: 4, todoSettleMs: 0 },
  });
  while ((await indexer.run()).todos > 0);
  // Ready but not indexed yet: scoped search finds no hit, but the id is known (no 404).
  await store.putDocumentText({ documentId: "d4", key: "notes/late.txt" }, "Late pump note.");
  app = createChatApp({
    store,
    provider: {} as ProviderApi,
    objects: { deleteObject: async () => {} },
    search: new IndexSearcher({ objects, refreshMs: 0 }),
    defaultModel: "kimi-k2.6",
    authenticate: async (h) => (h === `Bearer ${TOKEN}` ? ADMIN_SCOPE : undefined),
  }) as unknown as Hono;
});
afterAll(async () => {
  await stack?.close();
});

const post = (body: unknown, auth = true) =>
  app.request("/search", {
    method: "POST",
    headers: { "content-type": "application/json", ...(auth ? { authorization: `Bearer ${TOKEN}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("POST /search", () => {
  it("returns chunks best first with their text", async () => {
    const res = await post({ query: "pump impeller" });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: Record<string, unknown>[] };
    expect(results[0]).toMatchObject({ documentId: "d1", key: "manuals/pump.txt", chunkIndex: 0 });
    expect(results[0]!.text).toContain("impeller");
    expect(results.map((r) => r.documentId)).toEqual(["d1", "d3"]);
    expect((results[0]!.score as number) > (results[1]!.score as number)).toBe(true);
  });

  it("filters by prefix and document ids inside the search, and honours limit", async () => {
    const byPrefix = (await (await post({ query: "pump", prefix: "notes/" })).json()) as {
      results: { key: string }[];
    };
    expect(byPrefix.results.map((r) => r.key)).toEqual(["notes/pump-log.txt"]);
    const byIds = (await (await post({ query: "pump valve", documentIds: ["d2"] })).json()) as {
      results: { documentId: string }[];
    };
    expect(byIds.results.map((r) => r.documentId)).toEqual(["d2"]);
    const one = (await (await post({ query: "pump valve", limit: 1 })).json()) as { results: unknown[] };
    expect(one.results).toHaveLength(1);
    const late = await post({ query: "pump", documentIds: ["d4"] });
    expect(late.status).toBe(200);
  });

  it("a query of stop words only is 200 with no results", async () => {
    const res = await post({ query: "the of and what is" });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ results: [] });
  });

  const bad: [string, unknown, number, RegExp][] = [
    ["empty query", { query: "" }, 400, /query: must not be empty/],
    ["whitespace query", { query: "   \n\t" }, 400, /query: must not be empty/],
    ["query over 4 KB", { query: "x".repeat(4097) }, 400, /query: must be at most 4 KB/],
    ["missing query", {}, 400, /query/],
    ["limit 0", { query: "pump", limit: 0 }, 400, /limit: must be from 1 to 100/],
    ["limit 101", { query: "pump", limit: 101 }, 400, /limit: must be from 1 to 100/],
    ["limit 2.5", { query: "pump", limit: 2.5 }, 400, /limit: must be a whole number/],
    ["limit as text", { query: "pump", limit: "5" }, 400, /limit: must be a number/],
    ["unknown id", { query: "pump", documentIds: ["nope"] }, 404, /Unknown document id: nope/],
    [
      "prefix matching nothing",
      { query: "pump", prefix: "zzz/" },
      404,
      /No documents have keys starting with "zzz\/"/,
    ],
    [
      "ids and prefix",
      { query: "pump", prefix: "notes/", documentIds: ["d1"] },
      400,
      /either "documentIds" or "prefix"/,
    ],
    ["unknown field", { query: "pump", top_k: 3 }, 400, /Unrecognized key/],
    ["malformed JSON", "{", 400, /not valid JSON/],
  ];
  for (const [name, body, status, message] of bad) {
    it(`bad input: ${name} -> ${status}`, async () => {
      const res = await post(body);
      expect(res.status).toBe(status);
      const json = (await res.json()) as { error: { message: string } };
      expect(json.error.message).toMatch(message);
    });
  }

  it("needs the token", async () => {
    expect((await post({ query: "pump" }, false)).status).toBe(401);
  });
});
