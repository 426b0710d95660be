/**
 * Bearer-token checks for the chat API, shared by the API Gateway Lambda authorizer (AWS) and the
 * app's own middleware (local mode), so both accept exactly the same requests.
 *
 * Accepts `Authorization: Bearer <token>` (what curl users and the `openai` client's `apiKey` send);
 * the scheme is case-insensitive, surrounding whitespace is ignored. The comparison is constant-time
 * over SHA-256 digests, so neither the token's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { ADMIN_SCOPE, type Scope } from "./scope";

/** The token of an `Authorization` header value, or undefined when it is not a bearer credential. */
export function bearerToken(header: string | undefined | null): string | undefined {
  if (!header) return undefined;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

const digest = (s: string): Buffer => createHash("sha256").update(s, "utf8").digest();

/** Constant-time equality of two secrets of any length. */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * True when `header` carries the expected bearer token. An undefined/empty expected token (nothing
 * configured) never matches: the API fails closed.
 */
export function isAuthorized(header: string | undefined | null, expected: string | undefined): boolean {
  if (!expected) return false;
  const token = bearerToken(header);
  if (token === undefined) return false;
  return safeEqual(token, expected);
}

/**
 * Builds the `authenticate(header)` check the chat app takes for the API token alone (the admin
 * scope), reading the expected token with `getToken` on each call (it is cached by the secrets module).
 * With scoped API keys, use keyAuthenticator (api-keys.ts).
 */
export function bearerAuthenticator(
  getToken: () => Promise<string | undefined>,
): (authorizationHeader: string | undefined) => Promise<Scope | undefined> {
  return async (header) => (isAuthorized(header, await getToken()) ? ADMIN_SCOPE : undefined);
}
