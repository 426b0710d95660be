/**
 * Tenants as an attacker would try them, against the real local servers: documents in dynalite,
 * objects in s3rver, answers from the Moonshot emulator (which quotes the text it was sent, so a leak
 * would show in the answer), scoped API keys in their own dynalite table, the app served over HTTP
 * exactly as `npm start` builds it (keyAuthenticator: the check the Lambda authorizer makes).
 *
 * Tenant A holds `team/`, tenant B `team2/` (A's prefix is a string prefix of B's: the classic
 * mistake). Every attempt of A on B's documents must fail without telling A that they exist.
 */

import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { s3ObjectDeleter } from "../../functions/chat/objects";
import { DynamoApiKeyStore, keyAuthenticator } from "../../functions/core/auth/api-keys";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { S3IndexObjects } from "../../functions/core/search/storage";
import { ensureApiKeysTable } from "../../local/aws/dynamo";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { type LocalStack, startLocalStack } from "../support/local-stack";
import { type ServedApp, serveApp } from "./support";

const ADMIN = "kdp_admin-token-for-tenant-tests";
let stack: LocalStack;
let emulator: RunningEmulator;
let served: ServedApp;
let keys: DynamoApiKeyStore;
let keyA: string;
let keyB: string;
let idA: string;

const DOCS = {
  a: {
    documentId: "doc-team-a",
    key: "team/plan.txt",
    text: "Team A plans to launch the heron project in May.",
  },
  b: { documentId: "doc-bbb", key: "team2/secret.txt", text: "Team B's vault code is pelican-4471." },
  c: {
    documentId: "doc-other-c",
    key: "other/notes.txt",
    text: "The other folder holds the flamingo budget.",
  },
  // A key that is a string prefix trick: "team/../team2/" is literally under team/ (string match).
  d: { documentId: "doc-team-sub", key: "team/sub/deep.txt", text: "Team A's sub folder mentions the ibis." },
};

const call = (token: string, method: string, path: string, body?: unknown) =>
  fetch(`${served.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

beforeAll(async () => {
  [stack, emulator] = await Promise.all([startLocalStack({ prefix: "tenants" }), startEmulator()]);
  const keysTable = `${stack.tableName}-keys`;
  await ensureApiKeysTable(stack.dynamoClient, keysTable);
  keys = new DynamoApiKeyStore(
    DynamoDBDocumentClient.from(stack.dynamoClient, { marshallOptions: { removeUndefinedValues: true } }),
    keysTable,
  );
  const store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
  const indexBucket = `${stack.bucket}-index`;
  await stack.s3Client.send(new CreateBucketCommand({ Bucket: indexBucket }));
  const objects = new S3IndexObjects({ client: stack.s3Client, bucket: indexBucket });
  const app = createChatApp({
    store,
    provider: new MoonshotClient({
      baseURL: emulator.baseURL,
      apiKey: async () => "sk-local",
      retry: { maxAttempts: 1 },
    }),
    objects: s3ObjectDeleter(stack.s3Client),
    defaultModel: "kimi-k2.6",
    authenticate: keyAuthenticator({ getToken: async () => ADMIN, keys }),
    keys,
    search: new IndexSearcher({ objects, refreshMs: 0 }),
    // Every scope larger than 1 document is read from the index: the index path is attacked too.
    maxDocuments: 1,
    logger: { info() {}, warn() {}, error() {} },
    loadMcpServer: () => import("../../functions/chat/mcp/server"),
  });
  // Uploads against the test bucket (the app's own mount reads BUCKET_NAME from the environment).
  process.env.BUCKET_NAME = stack.bucket;
  process.env.AWS_ENDPOINT_URL_S3 = stack.s3Endpoint;
  process.env.S3_FORCE_PATH_STYLE = "true";
  process.env.AWS_REGION ??= "us-east-1";
  process.env.AWS_ACCESS_KEY_ID ??= "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY ??= "S3RVER";
  served = await serveApp(app);
  for (const d of Object.values(DOCS)) {
    await store.putDocumentText(
      { documentId: d.documentId, key: d.key, bucket: stack.bucket },
      `${d.text}\n\n`,
    );
    await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: d.key, Body: d.text }));
  }
  const indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects,
    config: { segments: 2, todoSettleMs: 0 },
  });
  while ((await indexer.run()).todos > 0);
  const make = async (prefix: string, name: string) => {
    const res = await call(ADMIN, "POST", "/keys", { prefix, name });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; key: string; prefix: string };
  };
  const a = await make("team", "tenant A");
  const b = await make("team2/", "tenant B");
  expect(a.prefix).toBe("team/"); // normalised: `team` never covers `team2/`
  [keyA, keyB, idA] = [a.key, b.key, a.id];
}, 60_000);

afterAll(async () => {
  await served?.close();
  await emulator?.close();
  await stack?.close();
});

const keysOf = (body: { items: { key: string }[] }) => body.items.map((d) => d.key).sort();

describe("key management", () => {
  it("only the API token manages keys; a key is shown once and only its hash is stored", async () => {
    for (const [method, path, body] of [
      ["POST", "/keys", { prefix: "team/" }],
      ["GET", "/keys"],
      ["DELETE", `/keys/${idA}`],
    ] as const) {
      const res = await call(keyA, method, path, body);
      expect(res.status, `${method} ${path}`).toBe(403);
      expect((await res.json()).error.type).toBe("permission_error");
    }
    const listed = await (await call(ADMIN, "GET", "/keys")).json();
    expect(listed.items.map((k: { prefix: string }) => k.prefix).sort()).toEqual(["team/", "team2/"]);
    expect(JSON.stringify(listed)).not.toContain(keyA.split(".")[1]);
    const stored = await keys.get(idA);
    expect(stored?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain(keyA.split(".")[1]);
    for (const prefix of ["", "/", "a/../b/", "./x/", "bad\u0000/"]) {
      const res = await call(ADMIN, "POST", "/keys", { prefix });
      expect(res.status, JSON.stringify(prefix)).toBe(400);
    }
  });
});

describe("tenant A against tenant B's documents: 0 leaks", () => {
  it("lists only its own prefix; narrower is fine, wider or elsewhere is a 403", async () => {
    expect(keysOf(await (await call(keyA, "GET", "/documents")).json())).toEqual([
      "team/plan.txt",
      "team/sub/deep.txt",
    ]);
    expect(keysOf(await (await call(keyA, "GET", "/documents?prefix=team/sub/")).json())).toEqual([
      "team/sub/deep.txt",
    ]);
    // A "tеam/" with a Cyrillic e, B's prefix, a wider one, a prefix of both, and the admin's everything.
    for (const prefix of ["team2/", "te", "tеam/", "other/", "", "team"]) {
      const res = await call(keyA, "GET", `/documents?prefix=${encodeURIComponent(prefix)}`);
      // An empty prefix is no filter: the key's own scope.
      expect(res.status, JSON.stringify(prefix)).toBe(prefix === "" ? 200 : 403);
      const text = await res.text();
      expect(text).not.toContain("team2/secret");
      expect(text).not.toContain("other/notes");
    }
    for (const prefix of ["team/../team2/", "team/./x"]) {
      const res = await call(keyA, "GET", `/documents?prefix=${encodeURIComponent(prefix)}`);
      expect(res.status, prefix).toBe(400);
    }
    // Paging through a status filter stays inside too.
    const ready = await (await call(keyA, "GET", "/documents?status=ready&limit=1")).json();
    expect(ready.items.map((d: { key: string }) => d.key)).toEqual(["team/plan.txt"]);
    expect(keysOf(await (await call(keyB, "GET", "/documents")).json())).toEqual(["team2/secret.txt"]);
  });

  it("gets and deletes B's document as if it did not exist (404, never 403), and nothing is deleted", async () => {
    for (const method of ["GET", "DELETE"]) {
      const res = await call(keyA, method, `/documents/${DOCS.b.documentId}`);
      expect(res.status, method).toBe(404);
      const body = await res.json();
      expect(body.error.type).toBe("not_found_error");
      expect(JSON.stringify(body)).not.toContain("team2");
      // Exactly the answer for an id that never existed.
      const unknown = await (await call(keyA, method, "/documents/never-existed-id")).json();
      expect(body.error.message.replace(DOCS.b.documentId, "X")).toBe(
        unknown.error.message.replace("never-existed-id", "X"),
      );
    }
    await stack.s3Client.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: DOCS.b.key }));
    expect((await call(keyA, "GET", `/documents/${DOCS.a.documentId}`)).status).toBe(200);
  });

  it("chat with B's ids or prefix: 404 / 403; by default only A's documents reach the model", async () => {
    const ask = (body: Record<string, unknown>) =>
      call(keyA, "POST", "/chat", { question: "What is the vault code?", ...body });
    const byIds = await ask({ documentIds: [DOCS.b.documentId] });
    expect(byIds.status).toBe(404);
    expect(await byIds.text()).not.toContain("pelican");
    // Two ids are over this app's 1-document listing limit: refused before any lookup.
    const mixed = await ask({ documentIds: [DOCS.a.documentId, DOCS.b.documentId] });
    expect(mixed.status).toBe(400);
    expect(await mixed.text()).not.toContain("pelican");
    for (const prefix of ["team2/", "te", "tеam/"]) {
      const res = await ask({ prefix });
      expect(res.status, prefix).toBe(403);
    }
    expect((await ask({ prefix: "team/../team2/" })).status).toBe(400);
    const own = await ask({});
    expect(own.status).toBe(200);
    const body = await own.json();
    // A's two documents are over this app's listing limit (1), so the scope was listed from the search
    // index (ChatService.select), queried with the prefix narrowed to team/.
    expect(body.sources.map((s: { key: string }) => s.key).sort()).toEqual([
      "team/plan.txt",
      "team/sub/deep.txt",
    ]);
    expect(JSON.stringify(body)).not.toContain("pelican");
    expect(JSON.stringify(body)).not.toContain("flamingo");
    const streamed = await (await ask({ stream: true })).text();
    expect(streamed).not.toContain("pelican");
    expect(streamed).toContain("team/plan.txt");
  });

  it("the OpenAI-compatible route: the same scope with the official client", async () => {
    const client = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: keyA, maxRetries: 0 });
    const create = (extra: object) =>
      client.chat.completions.create({
        model: "kimi-k2.6",
        messages: [{ role: "user", content: "What is the vault code?" }],
        ...(extra as object),
      });
    await expect(create({ documents: [DOCS.b.documentId] })).rejects.toMatchObject({ status: 404 });
    await expect(create({ prefix: "team2/" })).rejects.toMatchObject({ status: 403 });
    const own = (await create({})) as unknown as {
      sources: { key: string }[];
      choices: { message: { content: string } }[];
    };
    expect(own.sources.map((s) => s.key).sort()).toEqual(["team/plan.txt", "team/sub/deep.txt"]);
    expect(own.choices[0]!.message.content).not.toContain("pelican");
  });

  it("search: B's ids are unknown, B's prefix is a 403, and no hit ever comes from outside A's prefix", async () => {
    const search = (body: Record<string, unknown>) =>
      call(keyA, "POST", "/search", { query: "vault code pelican heron ibis flamingo", ...body });
    const all = await search({});
    expect(all.status).toBe(200);
    const hits = (await all.json()).results as { key: string; text: string }[];
    expect(hits.length).toBeGreaterThan(0);
    for (const h of hits) expect(h.key.startsWith("team/"), h.key).toBe(true);
    expect(JSON.stringify(hits)).not.toContain("pelican");
    expect((await search({ documentIds: [DOCS.b.documentId] })).status).toBe(404);
    for (const prefix of ["team2/", "te", "tеam/"])
      expect((await search({ prefix })).status, prefix).toBe(403);
    expect((await search({ prefix: "team/../team2/" })).status).toBe(400);
    // The admin's search does reach B's text: the index holds it.
    const admin = await call(ADMIN, "POST", "/search", { query: "vault code pelican" });
    expect(JSON.stringify(await admin.json())).toContain("pelican");
  });

  it("MCP: every tool and resource keeps A inside its prefix", async () => {
    let id = 0;
    const rpc = async (method: string, params: Record<string, unknown>) => {
      const res = await fetch(`${served.url}/mcp`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${keyA}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2025-11-25",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        result?: { isError?: boolean; structuredContent?: unknown; contents?: unknown; resources?: unknown };
        error?: { message: string };
      };
    };
    const tool = (name: string, args: Record<string, unknown>) =>
      rpc("tools/call", { name, arguments: args });

    const found = await tool("search_documents", { query: "vault code pelican heron ibis flamingo" });
    expect(found.result?.isError).toBeFalsy();
    const hits =
      (found.result?.structuredContent as { results: { key: string }[] } | undefined)?.results ?? [];
    expect(hits.length).toBeGreaterThan(0);
    for (const h of hits) expect(h.key.startsWith("team/"), h.key).toBe(true);
    for (const args of [{ documentIds: [DOCS.b.documentId] }, { prefix: "team2/" }, { prefix: "tеam/" }])
      expect(
        (await tool("search_documents", { query: "pelican", ...args })).result?.isError,
        JSON.stringify(args),
      ).toBe(true);

    const asked = await tool("ask", { question: "What is the vault code?" });
    expect(asked.result?.isError).toBeFalsy();
    expect(JSON.stringify(asked.result)).not.toContain("pelican");
    expect(
      (await tool("ask", { question: "vault?", documentIds: [DOCS.b.documentId] })).result?.isError,
    ).toBe(true);
    expect((await tool("ask", { question: "vault?", prefix: "team2/" })).result?.isError).toBe(true);

    const listed = await tool("list_documents", {});
    const docs =
      (listed.result?.structuredContent as { documents: { key: string }[] } | undefined)?.documents ?? [];
    expect(docs.map((d) => d.key).sort()).toEqual([DOCS.a.key, DOCS.d.key].sort());
    expect((await tool("list_documents", { prefix: "team2/" })).result?.isError).toBe(true);

    const got = await tool("get_document", { documentId: DOCS.b.documentId });
    expect(got.result?.isError).toBe(true);
    expect(JSON.stringify(got)).not.toContain("pelican");
    expect(JSON.stringify(got)).toContain("Unknown document id");

    const resources = await rpc("resources/list", {});
    expect(JSON.stringify(resources)).not.toContain(DOCS.b.documentId);
    const read = await rpc("resources/read", { uri: `kdp://documents/${DOCS.b.documentId}` });
    expect(JSON.stringify(read)).not.toContain("pelican");
    expect(read.error ?? read.result?.isError).toBeTruthy();
  });

  it("uploads land under the key's prefix; another prefix is a 403", async () => {
    const up = (body: object) => call(keyA, "POST", "/uploads", { filename: "x.pdf", size: 10, ...body });
    const own = await up({});
    expect(own.status).toBe(201);
    expect((await own.json()).key).toBe("team/x.pdf");
    const sub = await up({ prefix: "team/sub" });
    expect((await sub.json()).key).toBe("team/sub/x.pdf");
    for (const prefix of ["team2/", "other/"]) expect((await up({ prefix })).status, prefix).toBe(403);
    expect((await up({ prefix: "team/../team2" })).status).toBe(400);
    expect(
      ((await (await call(keyA, "GET", "/uploads")).json()) as { scopePrefix: string }).scopePrefix,
    ).toBe("team/");
  });

  it("a revoked key stops at once; an expired or malformed key never works", async () => {
    const made = await (await call(ADMIN, "POST", "/keys", { prefix: "temp/" })).json();
    expect((await call(made.key, "GET", "/documents")).status).toBe(200);
    const revoked = await call(ADMIN, "DELETE", `/keys/${made.id}`);
    expect(revoked.status).toBe(200);
    expect((await call(made.key, "GET", "/documents")).status).toBe(401);
    expect((await call(ADMIN, "DELETE", "/keys/nosuchkey123")).status).toBe(404);

    const expired = await (await call(ADMIN, "POST", "/keys", { prefix: "temp/", expiresInDays: 1 })).json();
    const record = await keys.get(expired.id);
    await keys.put({ ...record!, id: "expiredkey01", expiresAt: new Date(Date.now() - 1000).toISOString() });
    const expiredKey = `kdpk_expiredkey01.${expired.key.split(".")[1]}`;
    expect((await call(expiredKey, "GET", "/documents")).status).toBe(401);
    // The same secret under another id, a tampered secret, the hash itself.
    const secret = keyA.split(".")[1]!;
    for (const bad of [
      `kdpk_${expired.id.slice(0, 11)}x.${secret}`,
      `${keyA.slice(0, -1)}${keyA.endsWith("A") ? "B" : "A"}`,
      `kdpk_${idA}.${(await keys.get(idA))!.hash}`,
    ]) {
      expect((await call(bad, "GET", "/documents")).status).toBe(401);
    }
  });
});

describe("every route goes through the scope", () => {
  it("no route module reads the store, the index or the services without the caller's scope", async () => {
    const { readdir, readFile } = await import("node:fs/promises");
    const dir = new URL("../../functions/chat/routes/", import.meta.url);
    const offenders: string[] = [];
    for (const name of await readdir(dir)) {
      const text = await readFile(new URL(name, dir), "utf8");
      // Straight to the unscoped store or index: a route added later must use readerFor/selectionFor.
      if (/deps\.(store|search)\b|\{\s*store\b[^}]*\}\s*=\s*ctx\.deps/.test(text))
        offenders.push(`${name}: reads deps.store/search`);
      // A chat or search service call must carry the scoped selection.
      if (/service\.prepare\(|search\.search\(/.test(text) && !/selectionFor\(/.test(text))
        offenders.push(`${name}: calls a service without selectionFor`);
    }
    expect(offenders).toEqual([]);
  });
});
