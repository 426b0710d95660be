/**
 * GET /openapi.json: an OpenAPI 3.1 document of this API, generated from the routes themselves. Each
 * route carries a `describeRoute(...)` middleware (a no-op at request time) holding its summary and
 * the zod schemas it validates with; `openapiDocument(app)` walks the app's routes and converts those
 * schemas with zod's own `toJSONSchema` (JSON Schema 2020-12, OpenAPI 3.1's dialect), so the document
 * cannot drift from what the routes accept. Public, like the console page: it holds no data.
 *
 * Not hono-openapi, though it works with zod/mini: it reaches zod through `import("zod/v4/core")`,
 * which pulls all of zod and its 40-odd locales into the chat bundle (398 KB -> 769 KB minified,
 * the import time doubled in the cold-start bench). zod/mini's own `toJSONSchema` tree-shakes.
 *
 * Response schemas below describe what the routes answer; test/openapi checks the document against
 * the app's routes and fuzzes every operation from it.
 */
import type { Hono, MiddlewareHandler } from "hono";
import * as z from "zod/mini";
import type { ApiErrorType } from "../core/chat/errors";

type JsonSchema = Record<string, unknown>;
/** A media type's schema: a zod schema (converted when the document is built) or plain JSON Schema. */
type SchemaLike = z.ZodMiniType | JsonSchema;

interface MediaType {
  schema?: SchemaLike;
}
interface ResponseDoc {
  description: string;
  content?: Record<string, MediaType>;
}
interface ParameterDoc {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  description?: string;
  schema?: JsonSchema;
}

/** What `describeRoute` records about one operation. */
export interface RouteDoc {
  summary?: string;
  description?: string;
  tags?: string[];
  /** `[]` for a public operation (the document's default is the bearer token). */
  security?: unknown[];
  /** Leave the route out of the document (the console page). */
  hide?: boolean;
  parameters?: ParameterDoc[];
  requestBody?: { required?: boolean; description?: string; content: Record<string, MediaType> };
  responses?: Record<string | number, ResponseDoc>;
}

const ROUTE_DOC = Symbol.for("kdp.openapi.route");

/** Marks a route with its documentation: a middleware that only passes the request on. */
export function describeRoute(doc: RouteDoc): MiddlewareHandler {
  const middleware: MiddlewareHandler = async (_c, next) => {
    await next();
  };
  return Object.assign(middleware, { [ROUTE_DOC]: doc });
}

/** Every `error.type` (checked against ApiErrorType both ways at compile time). */
const API_ERROR_TYPES = [
  "invalid_request_error",
  "authentication_error",
  "permission_error",
  "not_found_error",
  "conflict_error",
  "request_too_large",
  "rate_limit_error",
  "insufficient_quota",
  "provider_error",
  "provider_unavailable",
  "provider_timeout",
  "provider_not_configured",
  "configuration_error",
  "internal_error",
] as const satisfies readonly ApiErrorType[];
/** Fails to compile when ApiErrorType gains a type this list lacks. */
const _everyErrorType: Exclude<ApiErrorType, (typeof API_ERROR_TYPES)[number]> extends never ? true : never =
  true;

/** Every error body: `{ error: { type, message, param?, code? } }`. */
export const errorSchema = z.object({
  error: z.object({
    type: z.enum(API_ERROR_TYPES),
    message: z.string(),
    param: z.optional(z.string()),
    code: z.optional(z.string()),
  }),
});

const ERROR_REF = { $ref: "#/components/schemas/Error" };

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request: the message says what to fix, `param` names the field",
  401: "Missing or wrong bearer token",
  403: "Outside the caller's scope (a scoped API key), or an admin route",
  404: "Unknown document, model or route",
  409: "Conflict: the object exists (send overwrite: true)",
  413: "Request body over the size limit",
  415: "File type not accepted",
  429: "Provider rate limit (Retry-After passed through) or account out of credit",
  502: "Provider error",
  503: "Provider unreachable or not configured",
  504: "Provider too slow",
};

/** The error responses of an operation (401 always), all with the one error shape. */
export function errorResponses(...statuses: number[]): Record<string, ResponseDoc> {
  const out: Record<string, ResponseDoc> = {};
  for (const status of [401, ...statuses].sort()) {
    out[String(status)] = {
      description: ERROR_DESCRIPTIONS[status] ?? "Error",
      content: { "application/json": { schema: ERROR_REF } },
    };
  }
  return out;
}

/** A JSON response described by a zod schema. */
export function jsonResponse(description: string, schema: z.ZodMiniType): ResponseDoc {
  return { description, content: { "application/json": { schema } } };
}

/** A 200 that is JSON, or Server-Sent Events with `stream: true` (frames described in API.md). */
export function jsonOrSseResponse(description: string, schema: z.ZodMiniType): ResponseDoc {
  return {
    description,
    content: { "application/json": { schema }, "text/event-stream": { schema: { type: "string" } } },
  };
}

/** A JSON request body validated by `schema` (the same one the route parses with). */
export function jsonBody(schema: z.ZodMiniType, description?: string): RouteDoc["requestBody"] {
  return {
    required: true,
    ...(description ? { description } : {}),
    content: { "application/json": { schema } },
  };
}

/** zod -> JSON Schema 2020-12 as the route reads its input (defaults optional, transforms' input). */
export function jsonSchemaOf(schema: SchemaLike): JsonSchema {
  if (!(schema && typeof schema === "object" && "_zod" in schema)) return schema as JsonSchema;
  const { $schema: _, ...json } = z.toJSONSchema(schema as z.ZodMiniType, {
    io: "input",
    unrepresentable: "any",
  }) as JsonSchema;
  return json;
}

/** Query parameters from the zod object a route parses its query string with (all optional). */
export function queryParameters(schema: { def: { shape: Record<string, z.ZodMiniType> } }): ParameterDoc[] {
  return Object.entries(schema.def.shape).map(([name, field]) => ({
    name,
    in: "query" as const,
    required: false,
    schema: jsonSchemaOf(field),
  }));
}

/** Errors every operation that calls the provider can answer. */
export const PROVIDER_ERRORS = [429, 502, 503, 504] as const;

/** Hono's path syntax to OpenAPI's: `/v1/models/:id{.+}` -> `/v1/models/{id}`. */
export const openapiPath = (path: string): string => path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}");

const convertContent = (content: Record<string, MediaType> | undefined) =>
  content &&
  Object.fromEntries(
    Object.entries(content).map(([type, media]) => [
      type,
      media.schema === undefined ? {} : { schema: jsonSchemaOf(media.schema) },
    ]),
  );

/** The OpenAPI 3.1 document of an app whose routes carry `describeRoute(...)`. */
export function openapiDocument(app: Hono): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of app.routes) {
    const doc = (route.handler as { [ROUTE_DOC]?: RouteDoc })[ROUTE_DOC];
    if (!doc || doc.hide) continue;
    const path = openapiPath(route.path);
    const method = route.method.toLowerCase();
    const operation: Record<string, unknown> = {
      operationId: `${method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? "").toUpperCase())}`,
    };
    if (doc.summary) operation.summary = doc.summary;
    if (doc.description) operation.description = doc.description;
    if (doc.tags) operation.tags = doc.tags;
    if (doc.security) operation.security = doc.security;
    if (doc.parameters) operation.parameters = doc.parameters;
    if (doc.requestBody)
      operation.requestBody = { ...doc.requestBody, content: convertContent(doc.requestBody.content) };
    operation.responses = Object.fromEntries(
      Object.entries(doc.responses ?? {}).map(([status, r]) => [
        status,
        { description: r.description, ...(r.content ? { content: convertContent(r.content) } : {}) },
      ]),
    );
    paths[path] = { ...paths[path], [method]: operation };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "kimi-doc-pipeline chat API",
      version: "1",
      description:
        "Questions over stored documents (POST /chat), an OpenAI-compatible surface (/v1), search, document and upload routes. Reference: functions/chat/API.md.",
    },
    components: {
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", description: "The API token (or a JWT in JWT mode)" },
      },
      schemas: {
        Error: { ...jsonSchemaOf(errorSchema), description: "Every error response has this shape." },
      },
    },
    security: [{ bearerAuth: [] }],
    paths,
  };
}

// --- response shapes ---------------------------------------------------------------------------

const sourceSchema = z.object({
  documentId: z.string(),
  key: z.string(),
  complete: z.boolean(),
  chunks: z.array(
    z.object({
      index: z.number(),
      tokens: z.number(),
      text: z.optional(z.string()),
    }),
  ),
});

const skippedSchema = z.object({
  documentId: z.string(),
  key: z.string(),
  status: z.string(),
  reason: z.optional(z.string()),
});

const contextSchema = z.looseObject({
  mode: z.enum(["all", "ranked"]),
  documents: z.number(),
  documentsSent: z.number(),
  chunksTotal: z.number(),
  chunksSent: z.number(),
  estimatedTokens: z.number(),
  budgetTokens: z.number(),
  promptTokens: z.number(),
  maxContextTokens: z.number(),
  retrieval: z.enum(["index", "read"]),
});

/** What was sent with an answer: `sources`, `skipped`, `context`. */
const answerMeta = {
  sources: z.array(sourceSchema),
  skipped: z.array(skippedSchema),
  skippedNotListed: z.optional(z.number()),
  context: contextSchema,
};

export const chatResponseSchema = z.object({
  answer: z.string(),
  reasoning: z.optional(z.string()),
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
  ...answerMeta,
});

export const completionResponseSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({
      index: z.number(),
      message: z.object({
        role: z.literal("assistant"),
        content: z.nullable(z.string()),
        reasoning_content: z.optional(z.string()),
      }),
      finish_reason: z.string(),
      logprobs: z.null(),
    }),
  ),
  usage: z.optional(
    z.object({
      prompt_tokens: z.number(),
      completion_tokens: z.number(),
      total_tokens: z.number(),
      prompt_tokens_details: z.optional(z.object({ cached_tokens: z.number() })),
    }),
  ),
  ...answerMeta,
});

export const modelSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.number(),
  owned_by: z.string(),
  context_length: z.number(),
});

export const documentSchema = z.object({
  documentId: z.string(),
  key: z.string(),
  bucket: z.string(),
  status: z.enum(["processing", "ready", "failed", "deleted"]),
  size: z.optional(z.number()),
  contentType: z.optional(z.string()),
  chunkCount: z.optional(z.number()),
  textBytes: z.optional(z.number()),
  tokenEstimate: z.optional(z.number()),
  error: z.optional(z.object({ code: z.string(), message: z.string() })),
  createdAt: z.optional(z.string()),
  updatedAt: z.optional(z.string()),
});
