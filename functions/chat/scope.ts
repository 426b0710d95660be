/**
 * The caller's scope inside the app: where it comes from (the authorizer's context in AWS, the app's
 * own check locally) and the one call every data route makes to read documents through it:
 * `readerFor(c, ctx)`. A route added later gets tenancy by using it (see functions/core/auth/scope.ts).
 */
import type { Context } from "hono";
import { ADMIN_SCOPE, narrowPrefix, type Scope, scopedReader } from "../core/auth/scope";
import { ApiError } from "../core/chat/errors";
import type { DocumentSelector } from "../core/chat/selection";
import type { DocumentReader } from "../core/documents/model";
import type { ChatAppContext, ChatEnv } from "./context";

/** Values of the `auth` field our authorizer puts in its context (functions/authorizer/handler.ts). */
export const AUTHORIZER_MODES = ["bearer", "key", "jwt"] as const;

/**
 * The scope in an API Gateway authorizer context, or undefined (fail closed) when the context is not
 * our authorizer's: a non-empty principal, a known `auth` mode and, except for the API token, the
 * `scopePrefix` it always sets ("" = every document, JWT mode without a tenant claim).
 */
export function scopeFromAuthorizer(
  authorizer: Record<string, unknown> | null | undefined,
): Scope | undefined {
  if (!authorizer) return undefined;
  const principal = authorizer.principalId;
  if (typeof principal !== "string" || principal.trim() === "") return undefined;
  const mode = authorizer.auth;
  if (mode === "bearer") return ADMIN_SCOPE;
  if (mode !== "key" && mode !== "jwt") return undefined;
  const prefix = authorizer.scopePrefix;
  if (typeof prefix !== "string") return undefined;
  if (mode === "key" && (prefix === "" || !prefix.endsWith("/"))) return undefined;
  if (prefix !== "" && !prefix.endsWith("/")) return undefined;
  return { prefix, admin: false, principal: mode === "key" ? `key:${principal}` : `jwt:${principal}` };
}

/** The caller's scope (set by the auth middleware before any data route runs). */
export function scopeOf(c: Context<ChatEnv>): Scope {
  const scope = c.get("scope");
  // Only routes mounted before the auth middleware (the console page) can lack it: never data routes.
  if (!scope) throw new ApiError(500, "internal_error", "no caller scope on a data route");
  return scope;
}

/** The documents the caller may see. */
export function readerFor(c: Context<ChatEnv>, ctx: ChatAppContext): DocumentReader {
  return scopedReader(ctx.deps.store, scopeOf(c));
}

/**
 * What a route hands to the chat or search service for a request's document selection: the caller's
 * reader (ids outside the scope are unknown: 404) and the selector with its prefix narrowed to the
 * scope (no prefix: the scope's; a prefix outside it: 403), so a search index queried by prefix stays
 * inside the scope too. One call per route: `...selectionFor(c, ctx, { documentIds, prefix })`.
 */
export function selectionFor(
  c: Context<ChatEnv>,
  ctx: ChatAppContext,
  asked: DocumentSelector,
): { reader: DocumentReader; selector: DocumentSelector } {
  const scope = scopeOf(c);
  const selector = asked.documentIds ? asked : { ...asked, prefix: narrowPrefix(scope, asked.prefix) };
  return { reader: scopedReader(ctx.deps.store, scope), selector };
}
