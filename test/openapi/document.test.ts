/**
 * GET /openapi.json matches the app: public, OpenAPI 3.1, every route documented and nothing else, and
 * each request body is the zod schema its route validates with (generated, never copied by hand).
 */
import { describe, expect, it } from "vitest";
import * as z from "zod/mini";
import { createChatApp } from "../../functions/chat/app";
import { chatRequest } from "../../functions/chat/routes/chat";
import { completionRequest } from "../../functions/chat/routes/completions";
import { uploadRequest } from "../../functions/chat/routes/uploads";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { FakeMoonshot, MemoryStore, TOKEN } from "../chat/support";

const app = createChatApp({
  store: new MemoryStore(),
  provider: new FakeMoonshot(),
  objects: { deleteObject: async () => {} },
  defaultModel: "kimi-k2.6",
  authenticate: bearerAuthenticator(async () => TOKEN),
});

interface Doc {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: unknown }> } }>>;
  components: { securitySchemes: Record<string, unknown> };
  security: unknown[];
}
const fetchDoc = async () => {
  const res = await app.request("/openapi.json");
  expect(res.status).toBe(200);
  return (await res.json()) as Doc;
};

/** Hono's path syntax to OpenAPI's: `/v1/models/:id{.+}` -> `/v1/models/{id}`. */
const openapiPath = (path: string) => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");

/** Routes that are deliberately not part of the API's document: the console page and its assets. */
const NOT_API = new Set(["get /", "get /assets/{path}"]);

describe("GET /openapi.json", () => {
  it("is public (no token), OpenAPI 3.1, with the bearer scheme on every operation but itself", async () => {
    const doc = await fetchDoc();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
    expect((doc.paths["/openapi.json"]!.get as { security?: unknown }).security).toEqual([]);
    // Every other route still needs the token.
    expect((await app.request("/v1/models")).status).toBe(401);
  });

  it("documents exactly the routes the app serves", async () => {
    const doc = await fetchDoc();
    const served = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method.toLowerCase()} ${openapiPath(r.path)}`)
        .filter((k) => !NOT_API.has(k)),
    );
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m} ${path}`)),
    );
    expect([...documented].sort()).toEqual([...served].sort());
    expect(served.size).toBeGreaterThanOrEqual(11);
  });

  it("request bodies are the very schemas the routes validate with", async () => {
    const doc = await fetchDoc();
    const body = (path: string) => doc.paths[path]!.post!.requestBody!.content["application/json"]!.schema;
    const asDoc = (schema: z.ZodMiniType) => {
      const { $schema: _, ...json } = z.toJSONSchema(schema, {
        io: "input",
        unrepresentable: "any",
      }) as Record<string, unknown>;
      return json;
    };
    expect(body("/chat")).toEqual(asDoc(chatRequest));
    expect(body("/v1/chat/completions")).toEqual(asDoc(completionRequest));
    expect(body("/uploads")).toEqual(asDoc(uploadRequest));
    // The extra fields of this API are documented with their limits.
    expect(body("/chat")).toMatchObject({
      properties: { maxContextTokens: { type: "integer", minimum: 1000 } },
      additionalProperties: false,
    });
  });
});
