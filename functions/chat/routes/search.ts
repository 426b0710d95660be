/**
 * POST /search: the best-matching chunks of stored documents (keyword search, BM25), best first.
 *
 * Request (JSON, unknown fields rejected): { "query": string (1 character to 4 KB),
 *   "prefix"?: string, "documentIds"?: string[], "limit"?: 1-100 (default 10) }
 * Response: { "results": [{ "documentId", "key", "chunkIndex", "score", "text" }] }; a query of stop
 * words only is 200 with no results. Same auth, validation and error shape as /chat.
 */
import { Hono } from "hono";
import * as z from "zod/mini";
import type { ChatAppContext, ChatEnv } from "../context";
import { parseWith, readJson } from "../http";
import { describeRoute, errorResponses, jsonBody, jsonResponse } from "../openapi";
import { selectionFor } from "../scope";
import { documentIdsField, prefixField } from "./selection";

export const MAX_QUERY_BYTES = 4096;

export const searchRequest = z.strictObject({
  query: z.string({ error: "must be a string" }).check(
    z.trim(),
    z.minLength(1, "must not be empty or only spaces: give some words to search for"),
    z.refine(
      (q) => Buffer.byteLength(q, "utf8") <= MAX_QUERY_BYTES,
      "must be at most 4 KB (4,096 bytes of UTF-8)",
    ),
  ),
  documentIds: documentIdsField(),
  prefix: prefixField(),
  limit: z.optional(
    z
      .number({ error: "must be a number" })
      .check(
        z.refine(Number.isSafeInteger, "must be a whole number"),
        z.minimum(1, "must be from 1 to 100"),
        z.maximum(100, "must be from 1 to 100"),
      ),
  ),
});

const searchResponse = z.object({
  results: z.array(
    z.object({
      documentId: z.string(),
      key: z.string(),
      chunkIndex: z.number(),
      score: z.number(),
      text: z.string(),
    }),
  ),
});

export function searchRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  routes.post(
    "/search",
    describeRoute({
      summary: "Best-matching chunks of stored documents (BM25 over the search index), best first",
      tags: ["search"],
      requestBody: jsonBody(searchRequest),
      responses: {
        200: jsonResponse("The hits, best first", searchResponse),
        ...errorResponses(400, 404, 413, 503),
      },
    }),
    async (c) => {
      const body = parseWith(searchRequest, await readJson(c));
      const started = performance.now();
      const { reader, selector } = selectionFor(c, ctx, {
        documentIds: body.documentIds,
        prefix: body.prefix,
      });
      const out = await ctx.search.search(
        { query: body.query, ...selector, limit: body.limit ?? 10 },
        reader,
      );
      ctx.log.info("search", { results: out.results.length, ms: Math.round(performance.now() - started) });
      return c.json(out);
    },
  );
  return routes;
}
