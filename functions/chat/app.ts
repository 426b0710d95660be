/**
 * The chat API as a Hono app: the same app runs in the Lambda (functions/chat/handler.ts, behind API
 * Gateway with response streaming), in local mode and in tests (@hono/node-server).
 *
 * Routes live one group per module under ./routes and are mounted below, one line each; a new group
 * (uploads, a static web console) is a new module plus one `app.route(...)` line.
 *
 * Authentication, decided here so the app is safe however it is deployed. Every data request gets a
 * scope (functions/core/auth/scope.ts: the key prefix the caller may see; the API token sees all):
 * - `deps.authenticate` given (local mode, tests): every request must pass it (the same bearer and
 *   API-key checks the Lambda authorizer uses, functions/core/auth/api-keys.ts), which gives the scope.
 * - otherwise (AWS): API Gateway's authorizer has already checked the token; the scope is read from
 *   its context, and a request without our authorizer's context (principal, mode, scope) is refused,
 *   so a method accidentally deployed without an authorizer fails closed with 401 instead of serving
 *   data. `requireGatewayAuthorizer: false` turns that off (only for tests of unauthenticated behaviour).
 * Routes read documents only through `readerFor(c, ctx)` (./scope.ts), so each honours the scope.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ADMIN_SCOPE, type Scope } from "../core/auth/scope";
import { ApiError } from "../core/chat/errors";
import { ModelCatalog } from "../core/chat/models";
import { DEFAULT_PRICES } from "../core/chat/prices";
import { ChatService } from "../core/chat/service";
import { noMetrics } from "../core/runtime/telemetry";
import { SearchService } from "../core/search/service";
import type { ChatAppContext, ChatDeps, ChatEnv } from "./context";
import { type AppLogger, countError, errorResponse } from "./http";
import { describeRoute, openapiDocument } from "./openapi";
import { pathProblem, rawRequestPath } from "./request-path";
import { chatRoutes } from "./routes/chat";
import { completionsRoutes } from "./routes/completions";
import { consoleRoutes } from "./routes/console";
import { documentsRoutes } from "./routes/documents";
import { healthRoutes } from "./routes/health";
import { keysRoutes } from "./routes/keys";
import { mcpRoutes } from "./routes/mcp";
import { modelsRoutes } from "./routes/models";
import { searchRoutes } from "./routes/search";
import { uploadsRoutes } from "./routes/uploads";
import { scopeFromAuthorizer } from "./scope";

export type {
  ChatAppContext,
  ChatBindings,
  ChatDeps,
  ChatEnv,
  McpServerModule,
  ObjectDeleter,
} from "./context";

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Without a logger: quiet, except errors (a 5xx should never pass unseen). */
const quietLogger: AppLogger = {
  info() {},
  warn() {},
  error(message, attributes) {
    console.error(message, JSON.stringify(attributes ?? {}));
  },
};

const unauthorized = () =>
  new ApiError(
    401,
    "authentication_error",
    "Missing or invalid API token: send the header `Authorization: Bearer <API token>`.",
    { headers: { "WWW-Authenticate": 'Bearer realm="kimi-doc-pipeline"' } },
  );

/** Builds the chat API app. */
export function createChatApp(deps: ChatDeps): Hono<ChatEnv> {
  const log = deps.logger ?? quietLogger;
  const models = new ModelCatalog(deps.provider, { ttlMs: deps.modelCacheTtlMs });
  const service = new ChatService({
    store: deps.store,
    provider: deps.provider,
    models,
    defaultModel: deps.defaultModel,
    maxDocuments: deps.maxDocuments,
    maxContextTokens: deps.maxContextTokens,
    search: deps.search,
    metrics: deps.metrics,
  });
  const metrics = deps.metrics ?? noMetrics;
  const search = new SearchService({ store: deps.store, index: deps.search });
  const ctx: ChatAppContext = {
    deps,
    service,
    search,
    models,
    log,
    metrics,
    prices: deps.prices ?? DEFAULT_PRICES,
  };
  const maxBody = deps.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const app = new Hono<ChatEnv>();
  app.onError((err, c) => {
    countError(metrics, err);
    return errorResponse(c, err, log);
  });
  app.notFound((c) =>
    errorResponse(
      c,
      new ApiError(
        404,
        "not_found_error",
        `No route ${c.req.method} ${c.req.path}. See GET /health and the README.`,
      ),
    ),
  );

  // Before anything else, public routes included: the path as sent, not as URL parsing resolved it.
  app.use("*", async (c, next) => {
    const problem = pathProblem(rawRequestPath(c));
    if (problem)
      return errorResponse(
        c,
        new ApiError(400, "invalid_request_error", `The request path ${problem}; send the plain path.`),
      );
    await next();
  });

  // Public, and so before the auth middleware: the web console's sign-in page and its assets (no data),
  // and the OpenAPI document of the API (generated once from the routes below, on first request).
  app.route("/", consoleRoutes(ctx));
  let spec: Record<string, unknown> | undefined;
  app.get(
    "/openapi.json",
    describeRoute({
      summary: "This document (OpenAPI 3.1), public",
      tags: ["health"],
      security: [],
      responses: {
        200: {
          description: "The OpenAPI document of this API",
          content: { "application/json": { schema: { type: "object" } } },
        },
      },
    }),
    (c) => {
      spec ??= openapiDocument(app as unknown as Hono);
      return c.json(spec, 200, { "Cache-Control": "public, max-age=300" });
    },
  );

  app.use("*", async (c, next) => {
    let scope: Scope | undefined;
    if (deps.authenticate) scope = await deps.authenticate(c.req.header("authorization"));
    else if (deps.requireGatewayAuthorizer !== false)
      scope = scopeFromAuthorizer(c.env?.event?.requestContext?.authorizer);
    else scope = ADMIN_SCOPE; // tests of unauthenticated behaviour only
    if (!scope) return errorResponse(c, unauthorized());
    c.set("scope", scope);
    await next();
  });

  app.use(
    "*",
    bodyLimit({
      maxSize: maxBody,
      onError: (c) =>
        errorResponse(
          c,
          new ApiError(
            413,
            "request_too_large",
            `The request body is larger than ${maxBody} bytes; send fewer or shorter messages.`,
          ),
        ),
    }),
  );

  app.route("/", healthRoutes(ctx));
  app.route("/", chatRoutes(ctx));
  app.route("/", searchRoutes(ctx));
  app.route("/", completionsRoutes(ctx));
  app.route("/", modelsRoutes(ctx));
  app.route("/", documentsRoutes(ctx));
  app.route("/", uploadsRoutes(ctx));
  app.route("/", keysRoutes(ctx));
  app.route("/", mcpRoutes(ctx));
  return app;
}
