/**
 * Scoped API keys, managed with the stack's API token only (the admin key; any other caller gets a 403):
 * - POST /keys  `{ prefix, name?, expiresInDays? }` -> 201 `{ id, key, prefix, name, createdAt, expiresAt? }`;
 *   the key is in this answer only (only its hash is stored).
 * - GET /keys  `{ items: [{ id, name, prefix, createdAt, expiresAt?, revokedAt? }] }`.
 * - DELETE /keys/{id}  revokes: 200 `{ id, revokedAt }`; 404 for an unknown id. The key stops working at
 *   once locally, and within the authorizer's cache time (5 minutes by default) in AWS.
 * Why a route and not the CLI with AWS credentials: it works the same against `npm start` and a
 * deployed stack, needs no IAM access to the table, and keeps one place that decides what a key is.
 */
import { type Context, Hono } from "hono";
import * as z from "zod/mini";
import { createApiKey, keyInfo } from "../../core/auth/api-keys";
import { normaliseScopePrefix } from "../../core/auth/scope";
import { ApiError, notFound } from "../../core/chat/errors";
import type { ChatAppContext, ChatEnv } from "../context";
import { parseWith, readJson } from "../http";
import { describeRoute, errorResponses, jsonBody, jsonResponse } from "../openapi";
import { scopeOf } from "../scope";

export const createKeyRequest = z.strictObject({
  prefix: z
    .string({ error: 'must be a string such as "team-a/"' })
    .check(z.maxLength(512, "must be at most 512 characters")),
  name: z.optional(
    z.string({ error: "must be a string" }).check(z.maxLength(100, "must be at most 100 characters")),
  ),
  expiresInDays: z.optional(
    z
      .number({ error: "must be a number of days" })
      .check(
        z.refine(Number.isSafeInteger, "must be a whole number of days"),
        z.minimum(1, "must be at least 1"),
        z.maximum(3650, "must be at most 3650"),
      ),
  ),
});

const KEY_ID = /^[a-z0-9]{12}$/;

const keyInfoSchema = z.looseObject({
  id: z.string(),
  prefix: z.string(),
  name: z.optional(z.string()),
  createdAt: z.string(),
  expiresAt: z.optional(z.string()),
  revokedAt: z.optional(z.string()),
});
const createdSchema = z.looseObject({ id: z.string(), prefix: z.string(), key: z.string() });
const keyIdParameter = { name: "id", in: "path" as const, required: true, schema: { type: "string" } };
/** Admin routes: 403 for a scoped key, 503 where keys are not configured. */
const KEY_ERRORS = [403, 503];

export function keysRoutes(ctx: ChatAppContext): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();

  routes.use("/keys", adminOnly);
  routes.use("/keys/*", adminOnly);

  const store = () => {
    if (!ctx.deps.keys)
      throw new ApiError(503, "configuration_error", "API keys are not configured for this deployment.");
    return ctx.deps.keys;
  };

  routes.post(
    "/keys",
    describeRoute({
      summary: "Create a scoped API key (admin: the stack's API token only)",
      tags: ["keys"],
      requestBody: jsonBody(createKeyRequest),
      responses: {
        201: jsonResponse("The key; its secret is shown this once", createdSchema),
        ...errorResponses(400, 413, ...KEY_ERRORS),
      },
    }),
    async (c) => {
      const body = parseWith(createKeyRequest, await readJson(c));
      const prefix = normaliseScopePrefix(body.prefix);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      if (body.name && /[\u0000-\u001f\u007f]/.test(body.name))
        throw new ApiError(400, "invalid_request_error", "name must not contain control characters.", {
          param: "name",
        });
      const now = new Date();
      const created = await createApiKey(store(), {
        prefix,
        name: body.name?.trim(),
        now,
        expiresAt: body.expiresInDays
          ? new Date(now.getTime() + body.expiresInDays * 86_400_000).toISOString()
          : undefined,
      });
      ctx.log.info("api key created", { keyId: created.id, prefix, name: created.name });
      return c.json(created, 201, { "Cache-Control": "no-store" });
    },
  );

  routes.get(
    "/keys",
    describeRoute({
      summary: "List API keys (admin)",
      tags: ["keys"],
      responses: {
        200: jsonResponse("Every key, without secrets", z.object({ items: z.array(keyInfoSchema) })),
        ...errorResponses(...KEY_ERRORS),
      },
    }),
    async (c) => {
      const items = (await store().list()).map(keyInfo);
      return c.json({ items }, 200, { "Cache-Control": "no-store" });
    },
  );

  routes.delete(
    "/keys/:id",
    describeRoute({
      summary: "Revoke an API key (admin)",
      tags: ["keys"],
      parameters: [keyIdParameter],
      responses: {
        200: jsonResponse("Revoked", z.object({ id: z.string(), revokedAt: z.optional(z.string()) })),
        ...errorResponses(400, 404, ...KEY_ERRORS),
      },
    }),
    async (c) => {
      const id = c.req.param("id");
      if (!KEY_ID.test(id) || !(await store().revoke(id, new Date().toISOString())))
        throw notFound(`Unknown API key id: ${id.slice(0, 40)}. List keys with GET /keys.`, "id");
      const revoked = await store().get(id);
      ctx.log.info("api key revoked", { keyId: id });
      return c.json({ id, revokedAt: revoked?.revokedAt });
    },
  );

  return routes;
}

async function adminOnly(c: Context<ChatEnv>, next: () => Promise<void>) {
  if (!scopeOf(c).admin)
    throw new ApiError(403, "permission_error", "Only the stack's API token can manage API keys.");
  await next();
}
