/**
 * The chat API as a Hono app: the same app runs in the Lambda (functions/chat/handler.ts, behind API
 * Gateway with response streaming), in local mode and in tests (@hono/node-server).
 *
 * Routes live one group per module under ./routes and are mounted below, one line each; a new group
 * (uploads, a static web console) is a new module plus one `app.route(...)` line.
 *
 * Authentication, decided here so the app is safe however it is deployed:
 * - `deps.authenticate` given (local mode, tests): every request must pass it (the same bearer check
 *   the Lambda authorizer uses, functions/core/auth/token.ts).
 * - otherwise (AWS): API Gateway's authorizer has already checked the token; the app additionally
 *   refuses any request that does not carry the authorizer's result in its request context, so a
 *   method accidentally deployed without an authorizer fails closed with 401 instead of serving data.
 *   `requireGatewayAuthorizer: false` turns that off (only for tests of unauthenticated behaviour).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "../core/chat/errors";
import { ModelCatalog } from "../core/chat/models";
import { ChatService } from "../core/chat/service";
import type { DocumentReader } from "../core/documents/model";
import type { ProviderApi } from "../core/provider/types";
import { type MetricsPort, noMetrics } from "../core/runtime/telemetry";
import { type AppLogger, countError, errorResponse } from "./http";
import { chatRoutes } from "./routes/chat";
import { completionsRoutes } from "./routes/completions";
import { consoleRoutes } from "./routes/console";
import { documentsRoutes } from "./routes/documents";
import { healthRoutes } from "./routes/health";
import { uploadsRoutes } from "./routes/uploads";

/** Deletes objects from the documents bucket (an S3 adapter in AWS and local mode, a fake in tests). */
export interface ObjectDeleter {
  deleteObject(bucket: string, key: string): Promise<void>;
}

export interface ChatDeps {
  store: DocumentReader;
  provider: ProviderApi;
  objects: ObjectDeleter;
  /** Model used when a request names none. */
  defaultModel: string;
  /** Checks the Authorization header; when given, enforced on every route. */
  authenticate?: (authorizationHeader: string | undefined) => Promise<boolean>;
  /** Without `authenticate`: require API Gateway authorizer context on every request. Default true. */
  requireGatewayAuthorizer?: boolean;
  /** Largest accepted request body in bytes (413 above). Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long the provider's model list is cached. Default 10 minutes. */
  modelCacheTtlMs?: number;
  /** Most documents one chat request may cover. Default 1,000. */
  maxDocuments?: number;
  logger?: AppLogger;
  /** Where request figures go (Powertools in Lambda; the handler flushes them). Default: nowhere. */
  metrics?: MetricsPort;
}

/** What route modules receive. */
export interface ChatAppContext {
  deps: ChatDeps;
  service: ChatService;
  models: ModelCatalog;
  log: AppLogger;
  metrics: MetricsPort;
}

/** Bindings the Lambda adapter passes (the API Gateway event); absent under @hono/node-server. */
export interface ChatBindings {
  event?: { requestContext?: { authorizer?: Record<string, unknown> | null } };
}
export type ChatEnv = { Bindings: ChatBindings };

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
    metrics: deps.metrics,
  });
  const metrics = deps.metrics ?? noMetrics;
  const ctx: ChatAppContext = { deps, service, models, log, metrics };
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

  // Public, and so before the auth middleware: the web console's sign-in page and its assets (no data).
  app.route("/", consoleRoutes(ctx));

  app.use("*", async (c, next) => {
    if (deps.authenticate) {
      if (!(await deps.authenticate(c.req.header("authorization")))) return errorResponse(c, unauthorized());
    } else if (deps.requireGatewayAuthorizer !== false) {
      const authorizer = c.env?.event?.requestContext?.authorizer;
      const ok =
        !!authorizer && (typeof authorizer.principalId === "string" || authorizer.claims !== undefined);
      if (!ok) return errorResponse(c, unauthorized());
    }
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
  app.route("/", completionsRoutes(ctx));
  app.route("/", documentsRoutes(ctx));
  app.route("/", uploadsRoutes(ctx));
  return app;
}
