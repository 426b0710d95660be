/**
 * Types shared by the app (app.ts) and its route modules (routes/*), in a module of their own so
 * neither imports the other for them.
 */
import type { ApiKeyStore } from "../core/auth/api-keys";
import type { Scope } from "../core/auth/scope";
import type { ModelCatalog } from "../core/chat/models";
import type { PriceTable } from "../core/chat/prices";
import type { ChatService } from "../core/chat/service";
import type { DocumentReader } from "../core/documents/model";
import type { ProviderApi } from "../core/provider/types";
import type { MetricsPort } from "../core/runtime/telemetry";
import type { SearchIndex } from "../core/search/model";
import type { SearchService } from "../core/search/service";
import type { AppLogger } from "./http";

/** Deletes objects from the documents bucket (an S3 adapter in AWS and local mode, a fake in tests). */
export interface ObjectDeleter {
  deleteObject(bucket: string, key: string): Promise<void>;
}

export interface ChatDeps {
  store: DocumentReader;
  provider: ProviderApi;
  objects: ObjectDeleter;
  /** The search index (POST /search; chat over scopes larger than the window). Absent: 503 / read all. */
  search?: SearchIndex;
  /** Model used when a request names none. */
  defaultModel: string;
  /**
   * Checks the Authorization header and answers the caller's scope (undefined: refused); when given,
   * enforced on every route (local mode, tests). Without it the scope comes from the API Gateway
   * authorizer's context (scope.ts in this folder).
   */
  authenticate?: (authorizationHeader: string | undefined) => Promise<Scope | undefined>;
  /** Without `authenticate`: require API Gateway authorizer context on every request. Default true. */
  requireGatewayAuthorizer?: boolean;
  /** Scoped API keys (`/keys` routes, admin only); absent: those routes answer 503. */
  keys?: ApiKeyStore;
  /** Largest accepted request body in bytes (413 above). Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long the provider's model list is cached. Default 10 minutes. */
  modelCacheTtlMs?: number;
  /** Scopes larger than this (default 1,000) come from the search index (see ChatServiceDeps). */
  maxDocuments?: number;
  /**
   * Most tokens of document text per answer when a request sets none (`maxContextTokens` /
   * `max_context_tokens`); always capped by the model's window. Default 32,768.
   */
  maxContextTokens?: number;
  /** Prices per model for `usage.costUsd`. Default: the published prices (core/chat/prices.ts). */
  prices?: PriceTable;
  logger?: AppLogger;
  /** Where request figures go (Powertools in Lambda; the handler flushes them). Default: nowhere. */
  metrics?: MetricsPort;
  /**
   * Loads the MCP server module (functions/chat/mcp/server.ts) on the first `POST /mcp`: in Lambda a
   * file bundled apart from the chat bundle, so the SDK costs the chat's cold start nothing. Absent:
   * `/mcp` answers 503.
   */
  loadMcpServer?: () => Promise<McpServerModule>;
}

/** What `loadMcpServer` resolves to. */
export type McpServerModule = Pick<typeof import("./mcp/server"), "handleMcpRequest">;

/** What route modules receive. */
export interface ChatAppContext {
  deps: ChatDeps;
  service: ChatService;
  search: SearchService;
  models: ModelCatalog;
  log: AppLogger;
  metrics: MetricsPort;
  prices: PriceTable;
}

/** Bindings the Lambda adapter passes (the API Gateway event); absent under @hono/node-server. */
export interface ChatBindings {
  event?: { path?: string; requestContext?: { authorizer?: Record<string, unknown> | null } };
}
/** Per-request values the auth middleware sets: the caller's scope (every data route reads it). */
export interface ChatVariables {
  scope: Scope;
}
export type ChatEnv = { Bindings: ChatBindings; Variables: ChatVariables };
