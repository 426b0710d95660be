/**
 * Document routes:
 * - GET /documents?prefix=&status=&limit=&cursor=  one page, in key order; `cursor` of the response
 *   fetches the next page (absent on the last one).
 * - GET /documents/{id}  the record, its status and failure reason.
 * - DELETE /documents/{id}  deletes the S3 object (202); ingestion's delete path then removes the
 *   stored text and the remote file.
 */
import { Hono } from "hono";
import * as z from "zod/mini";
import { badRequest, notFound } from "../../core/chat/errors";
import { documentIdProblem } from "../../core/documents/ids";
import { type DocumentRecord, textVersionOf } from "../../core/documents/model";
import type { ChatAppContext, ChatEnv } from "../context";
import { parseWith } from "../http";
import { describeRoute, documentSchema, errorResponses, jsonResponse, queryParameters } from "../openapi";
import { readerFor } from "../scope";
import { prefixField } from "./selection";

const STATUSES = ["processing", "ready", "failed", "deleted"] as const;

const listQuery = z.strictObject({
  prefix: prefixField(),
  status: z.optional(z.enum(STATUSES, { error: `must be one of ${STATUSES.join(", ")}` })),
  limit: z.optional(
    z.coerce
      .number({ error: "must be a number" })
      .check(
        z.refine(Number.isSafeInteger, "must be a whole number"),
        z.minimum(1, "must be at least 1"),
        z.maximum(100, "must be at most 100"),
      ),
  ),
  cursor: z.optional(z.string().check(z.minLength(1, "must not be empty"))),
});

/** The public view of a record: what a user needs, without internal bookkeeping (sequencer, attempts). */
export function publicDocument(r: DocumentRecord) {
  return {
    documentId: r.documentId,
    key: r.key,
    bucket: r.bucket,
    status: r.status,
    size: r.size,
    contentType: r.contentType,
    eTag: r.eTag,
    versionId: r.versionId,
    // While a newer version processes, the text figures are the previous ready version's.
    textVersion: textVersionOf(r),
    chunkCount: r.chunkCount,
    textBytes: r.textBytes,
    tokenEstimate: r.tokenEstimate,
    error: r.error,
    remoteFile: r.remoteFileId
      ? { id: r.remoteFileId, bytes: r.remoteFileBytes, createdAt: r.remoteFileCreatedAt }
      : r.remoteFileReleasedAt
        ? { releasedAt: r.remoteFileReleasedAt }
        : undefined,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

function checkId(id: string): string {
  if (documentIdProblem(id))
    throw badRequest(`"${id.slice(0, 80)}" is not a document id; ids come from GET /documents.`, "id");
  return id;
}

const idParameter = {
  name: "id",
  in: "path" as const,
  required: true,
  schema: { type: "string", minLength: 1, maxLength: 200 },
};
const listSchema = z.object({ items: z.array(documentSchema), cursor: z.nullable(z.string()) });
const deletingSchema = z.object({
  documentId: z.string(),
  key: z.string(),
  status: z.literal("deleting"),
  message: z.string(),
});

export function documentsRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  const { objects } = ctx.deps;

  routes.get(
    "/documents",
    describeRoute({
      summary: "List documents in the caller's scope (key order, paginated)",
      tags: ["documents"],
      parameters: queryParameters(listQuery),
      responses: { 200: jsonResponse("One page of documents", listSchema), ...errorResponses(400, 403) },
    }),
    async (c) => {
      const q = parseWith(listQuery, c.req.query(), "query string");
      const store = readerFor(c, ctx);
      let page: Awaited<ReturnType<typeof store.list>>;
      try {
        page = await store.list(q);
      } catch (err) {
        // A cursor the store cannot decode is the caller's mistake, not an outage.
        if (q.cursor && isBadCursor(err))
          throw badRequest("Invalid cursor: pass the cursor of the previous page unchanged.", "cursor");
        throw err;
      }
      return c.json({ items: page.items.map(publicDocument), cursor: page.cursor ?? null });
    },
  );

  routes.get(
    "/documents/:id",
    describeRoute({
      summary: "One document: status, failure reason, text size",
      tags: ["documents"],
      parameters: [idParameter],
      responses: { 200: jsonResponse("The document", documentSchema), ...errorResponses(400, 404) },
    }),
    async (c) => {
      const id = checkId(c.req.param("id"));
      // Another tenant's document is unknown to this caller: 404, as for an id that does not exist.
      const record = await readerFor(c, ctx).get(id);
      if (!record) throw notFound(`Unknown document id: ${id}.`, "id");
      return c.json(publicDocument(record));
    },
  );

  routes.delete(
    "/documents/:id",
    describeRoute({
      summary: "Delete a document (its S3 object; ingestion removes the rest)",
      tags: ["documents"],
      parameters: [idParameter],
      responses: { 202: jsonResponse("Deletion started", deletingSchema), ...errorResponses(400, 404) },
    }),
    async (c) => {
      const id = checkId(c.req.param("id"));
      const record = await readerFor(c, ctx).get(id);
      // A deleted document is a tombstone that the store hides, so a second DELETE is a 404.
      if (!record) throw notFound(`Unknown document id: ${id}.`, "id");
      await objects.deleteObject(record.bucket, record.key);
      ctx.log.info("deleted document object", { documentId: id, bucket: record.bucket, key: record.key });
      return c.json(
        {
          documentId: id,
          key: record.key,
          status: "deleting",
          message: `Deleted s3://${record.bucket}/${record.key}; ingestion removes its stored text and remote file shortly (GET /documents/${id} then shows status "deleted").`,
        },
        202,
      );
    },
  );

  return routes;
}

/** Whether a store error means the caller passed a cursor it cannot decode (a 400, not an outage). */
export function isBadCursor(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return (
    e?.name === "InvalidCursorError" ||
    e?.name === "ValidationException" ||
    e?.name === "SyntaxError" ||
    e?.name === "TypeError" ||
    /cursor|ExclusiveStartKey|base64|JSON/i.test(e?.message ?? "")
  );
}
