/**
 * A fuzz run of the chat API, generated from its own OpenAPI document (GET /openapi.json): requests for
 * every documented operation with fast-check (valid bodies, bodies gone wrong in one way, any JSON,
 * broken JSON, odd path and query values, missing or wrong tokens), sent to the app wired to the
 * Moonshot emulator over HTTP, local DynamoDB and the real search index. Every response must be documented: no 5xx, a status the operation
 * lists, a JSON body that validates against the documented schema (every 4xx in the error shape), and
 * no error frame inside a 200 stream.
 *
 * `npm test` runs a short run (test/openapi/fuzz.test.ts); `npm run soak` runs thousands.
 */
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020";
import addFormats from "ajv-formats";
import fc from "fast-check";
import { createChatApp } from "../../functions/chat/app";
import { DynamoApiKeyStore } from "../../functions/core/auth/api-keys";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { MemoryIndexObjects } from "../../functions/core/search/storage";
import { ensureApiKeysTable } from "../../local/aws/dynamo";
import { startEmulator } from "../../local/emulator/server";
import { TOKEN } from "../chat/support";
import { arbitraryOf, type Hints, invalidOf, type JsonSchema } from "../support/json-schema-arbitrary";
import { type LocalStack, startLocalStack } from "../support/local-stack";

export interface FuzzOptions {
  /** Requests to send. */
  runs: number;
  seed?: number;
  /** Stop early after this long (the run is bounded in count and in time). Default 120 s. */
  maxSeconds?: number;
  log?: (line: string) => void;
}

export interface FuzzReport {
  seed: number;
  requests: number;
  byStatus: Record<string, number>;
  byOperation: Record<string, number>;
  /** The first failures (request and what was wrong), at most 20. */
  failures: string[];
  failureCount: number;
  ok: boolean;
}

interface Operation {
  method: string;
  path: string;
  parameters?: { name: string; in: string; schema?: JsonSchema }[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema?: JsonSchema }> }>;
}

interface FuzzRequest {
  op: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

const MODELS = [
  { id: "kimi-k2.6", context_length: 262_144 },
  { id: "moonshot-v1-8k", context_length: 8192 },
  { id: "kimi-k2-0905-preview", context_length: 262_144 },
];
const IDS = ["zoo", "library", "port-1"];
const QUESTIONS = ["How old is the tortoise Methuselah?", "Where is the Nuremberg Chronicle kept?", "?"];

const hints: Hints = {
  model: fc.oneof(fc.constantFrom(...MODELS.map((m) => m.id)), fc.string({ maxLength: 12 })),
  documentIds: fc.oneof(
    fc.subarray(IDS, { minLength: 1 }),
    fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  ),
  documents: fc.oneof(
    fc.subarray(IDS, { minLength: 1 }),
    fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
  ),
  prefix: fc.constantFrom("city/", "port/", "", "nowhere/"),
  question: fc.oneof(fc.constantFrom(...QUESTIONS), fc.string({ maxLength: 40 })),
  messages: fc.oneof(
    fc.constant([{ role: "user", content: QUESTIONS[0] }]),
    fc.constant([
      { role: "system", content: "Be brief." },
      { role: "user", content: QUESTIONS[1] },
      { role: "assistant", content: "In a vault." },
      { role: "user", content: "Which one?" },
    ]),
    fc.array(
      fc.record({
        role: fc.constantFrom("user", "assistant", "system", "developer", "tool", "robot"),
        content: fc.oneof(
          fc.string({ maxLength: 30 }),
          fc.constant(null),
          fc.constant([{ type: "text", text: "hi" }]),
        ),
      }),
      { maxLength: 4 },
    ),
  ),
  filename: fc.oneof(
    fc.constantFrom("report.pdf", "notes.md", "virus.exe", "../up.txt", "noext"),
    fc.string({ maxLength: 20 }),
  ),
  size: fc.oneof(fc.integer({ min: 0, max: 200 * 1024 * 1024 }), fc.double()),
};

/** JSON-RPC messages an MCP client sends (the transport refuses the rest with a JSON-RPC error). */
const MCP_MESSAGES = [
  {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "fuzz", version: "1" } },
  },
  { jsonrpc: "2.0", id: 2, method: "tools/list" },
  {
    jsonrpc: "2.0",
    id: 3,
    method: "tools/call",
    params: { name: "search_documents", arguments: { query: "tortoise" } },
  },
  {
    jsonrpc: "2.0",
    id: 4,
    method: "tools/call",
    params: { name: "ask", arguments: { question: QUESTIONS[0], prefix: "city/" } },
  },
  { jsonrpc: "2.0", method: "notifications/initialized" },
].map((m) => JSON.stringify(m));

/** Runs the fuzz; resolves with what it saw (`ok` false when any response broke the contract). */
export async function runApiFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const seed = opts.seed ?? 1;
  const deadline = Date.now() + (opts.maxSeconds ?? 120) * 1000;
  const emulator = await startEmulator({ models: MODELS });
  let stack: LocalStack | undefined;
  const saved: Record<string, string | undefined> = {};
  try {
    // The documents in local DynamoDB, indexed by the real search indexer (objects in memory).
    stack = await startLocalStack({ prefix: "fuzz" });
    // Uploads presign against (and look for existing objects in) the local S3 server.
    const env = {
      BUCKET_NAME: stack.bucket,
      AWS_ENDPOINT_URL_S3: stack.s3Endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
    };
    for (const k of Object.keys(env)) saved[k] = process.env[k];
    Object.assign(process.env, env);
    const keysTable = `${stack.tableName}-keys`;
    await ensureApiKeysTable(stack.dynamoClient, keysTable);
    const keys = new DynamoApiKeyStore(stack.documentClient, keysTable);
    const store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
    const filler = (t: string, n: number) => `${t} handbook paragraph with ordinary words.\n\n`.repeat(n);
    await store.putDocumentText(
      { documentId: "zoo", key: "city/zoo.txt" },
      `${filler("zoo", 30)}The tortoise Methuselah turned 152.\n\n`,
    );
    await store.putDocumentText(
      { documentId: "library", key: "city/library.txt" },
      `The Nuremberg Chronicle is kept in vault seven.\n\n${filler("library", 30)}`,
    );
    await store.putDocumentText({ documentId: "port-1", key: "port/1.txt" }, filler("port", 400));
    const objects = new MemoryIndexObjects();
    const indexer = new SearchIndexer({ store, todos: store.searchTodos, objects, config: { segments: 2 } });
    while ((await indexer.run()).todos > 0);
    // The provider client as the chat Lambda configures it (functions/chat/handler.ts): a hiccup is
    // retried once. (Once, under heavy machine load, a single attempt met a dropped connection.)
    const app = createChatApp({
      store,
      search: new IndexSearcher({ objects, refreshMs: 0 }),
      keys,
      loadMcpServer: () => import("../../functions/chat/mcp/server"),
      provider: new MoonshotClient({
        baseURL: emulator.baseURL,
        apiKey: async () => "sk-fuzz",
        retry: { maxAttempts: 2, maxElapsedMs: 20_000 },
      }),
      objects: { deleteObject: async () => {} },
      defaultModel: "kimi-k2.6",
      authenticate: bearerAuthenticator(async () => TOKEN),
      maxBodyBytes: 64 * 1024,
      logger: { info() {}, warn() {}, error() {} },
    });
    const doc = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };

    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    ajv.addSchema({ ...doc, $id: "api.json" });
    const validators = new Map<string, ValidateFunction>();
    const validatorAt = (pointer: string) => {
      let v = validators.get(pointer);
      if (!v) {
        v = ajv.getSchema(`api.json#${pointer}`);
        if (!v) throw new Error(`no schema at ${pointer}`);
        validators.set(pointer, v);
      }
      return v;
    };
    const esc = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

    const operations: { key: string; path: string; method: string; op: Operation }[] = [];
    for (const [path, methods] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(methods))
        operations.push({ key: `${method} ${path}`, path, method, op });

    const requestOf = (o: (typeof operations)[number]): fc.Arbitrary<FuzzRequest> => {
      const auth = fc.oneof(
        { weight: 20, arbitrary: fc.constant(`Bearer ${TOKEN}`) },
        { weight: 1, arbitrary: fc.constantFrom(undefined, "Bearer wrong-token", "Basic abc") },
      );
      const pathParams = (o.op.parameters ?? []).filter((p) => p.in === "path");
      const queryParams = (o.op.parameters ?? []).filter((p) => p.in === "query");
      const pathArb = fc.tuple(
        ...pathParams.map((p) =>
          fc.oneof(
            fc.constantFrom(...IDS, ...MODELS.map((m) => m.id), "nope"),
            arbitraryOf(p.schema ?? { type: "string" }, doc as unknown as JsonSchema).map(String),
            fc.string({ minLength: 1, maxLength: 30, unit: "binary" }),
          ),
        ),
      );
      const queryArb = fc.tuple(
        ...queryParams.map((p) =>
          fc.option(
            fc.oneof(
              arbitraryOf(p.schema ?? {}, doc as unknown as JsonSchema, hints).map(String),
              fc.string({ maxLength: 12 }),
            ),
            { nil: undefined },
          ),
        ),
      );
      const schema = o.op.requestBody?.content["application/json"]?.schema;
      const bodyArb: fc.Arbitrary<string | undefined> = schema
        ? fc.oneof(
            ...(o.path === "/mcp" ? [{ weight: 4, arbitrary: fc.constantFrom(...MCP_MESSAGES) }] : []),
            {
              weight: 6,
              arbitrary: arbitraryOf(schema, doc as unknown as JsonSchema, hints).map((v) =>
                JSON.stringify(v),
              ),
            },
            {
              weight: 3,
              arbitrary: invalidOf(schema, doc as unknown as JsonSchema, hints).map((v) => JSON.stringify(v)),
            },
            {
              weight: 1,
              arbitrary: fc.constantFrom("", "{", "null", "[]", '{"question":', "x".repeat(70_000)),
            },
          )
        : fc.constant(undefined);
      return fc.tuple(auth, pathArb, queryArb, bodyArb).map(([authorization, values, query, body]) => {
        let url = o.path;
        pathParams.forEach((p, i) => {
          url = url.replace(`{${p.name}}`, encodeURIComponent(values[i]!));
        });
        const search = new URLSearchParams();
        queryParams.forEach((p, i) => {
          if (query[i] !== undefined) search.set(p.name, query[i]!);
        });
        const qs = search.toString();
        const headers: Record<string, string> = {};
        if (authorization) headers.authorization = authorization;
        if (body !== undefined) headers["content-type"] = "application/json";
        if (o.path === "/mcp") headers.accept = "application/json, text/event-stream";
        return {
          op: o.key,
          method: o.method.toUpperCase(),
          url: `${url}${qs ? `?${qs}` : ""}`,
          headers,
          body,
        };
      });
    };
    const requests = fc.sample(fc.oneof(...operations.map(requestOf)), { numRuns: opts.runs, seed });

    const report: FuzzReport = {
      seed,
      requests: 0,
      byStatus: {},
      byOperation: {},
      failures: [],
      failureCount: 0,
      ok: true,
    };
    const kinds = new Set<string>();
    const fail = (r: FuzzRequest, what: string) => {
      report.failureCount++;
      // One example of each kind of failure (operation and the start of what went wrong).
      const kind = `${r.op} ${what.slice(0, 40)}`;
      if (kinds.has(kind) || report.failures.length >= 20) return;
      kinds.add(kind);
      report.failures.push(
        `${r.method} ${r.url} ${r.body === undefined ? "" : r.body.slice(0, 1500)} -> ${what}`,
      );
    };
    for (const r of requests) {
      if (Date.now() > deadline) break;
      const res = await app.request(r.url, { method: r.method, headers: r.headers, body: r.body });
      report.requests++;
      report.byStatus[res.status] = (report.byStatus[res.status] ?? 0) + 1;
      report.byOperation[r.op] = (report.byOperation[r.op] ?? 0) + 1;
      const text = await res.text();
      if (res.status >= 500) {
        fail(r, `${res.status} ${text.slice(0, 300)}`);
        continue;
      }
      const [method, path] = r.op.split(" ") as [string, string];
      const documented = doc.paths[path]?.[method]?.responses?.[String(res.status)];
      if (!documented) {
        fail(r, `undocumented status ${res.status} ${text.slice(0, 200)}`);
        continue;
      }
      const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
      if (!documented.content && text === "") continue; // e.g. 202 without a body
      if (!documented.content?.[type]) {
        fail(r, `undocumented content type "${type}" for ${res.status}`);
        continue;
      }
      if (type === "application/json") {
        const pointer = `/paths/${esc(path)}/${method}/responses/${res.status}/content/${esc(type)}/schema`;
        if (!documented.content[type]?.schema) continue;
        const validate = validatorAt(pointer);
        if (!validate(JSON.parse(text)))
          fail(
            r,
            `${res.status} body off its schema: ${ajv.errorsText(validate.errors)}: ${text.slice(0, 200)}`,
          );
      } else if (type === "text/event-stream" && /^(event: error|data: \{"error")/m.test(text)) {
        fail(r, `error frame inside a 200 stream: ${text.slice(-300)}`);
      }
    }
    report.ok = report.failureCount === 0 && report.requests > 0;
    opts.log?.(
      `API fuzz: ${report.requests} requests (seed ${seed}), statuses ${JSON.stringify(report.byStatus)}, ${report.failureCount} broke the contract`,
    );
    return report;
  } finally {
    await emulator.close();
    await stack?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
