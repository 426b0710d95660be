/**
 * API Gateway Lambda authorizer for the chat API. Two modes, chosen by the environment:
 * - token (default): `Authorization: Bearer <token>` must equal the API token kept in Secrets Manager
 *   (API_TOKEN_SECRET, read with caching), compared in constant time (the admin: every document), or
 *   be a live scoped API key from the KEYS_TABLE_NAME table (functions/core/auth/api-keys.ts). The
 *   context says which (`auth`: bearer | key) and, for a key, its `scopePrefix`; the app reads it;
 * - jwt (JWT_ISSUER and JWT_AUDIENCE set, audiences comma-separated): the bearer must be a JWT signed
 *   by that OIDC issuer (Cognito or any other) for one of those audiences, see functions/core/auth/jwt.ts.
 *   With JWT_TENANT_CLAIM (e.g. `custom:tenant`) the claim's value is the token's key prefix
 *   (`scopePrefix`); a token without it is refused. JWT_TOKEN_USE restricts Cognito's token_use.
 *
 * Works as a TOKEN authorizer (identity source: the Authorization header) or a REQUEST authorizer.
 * On success it returns an IAM policy allowing every method of the stage (`<api>/<stage>/*`), not
 * only the one called, so API Gateway's authorizer cache can answer later calls to other routes with
 * the same token. A missing or wrong token throws "Unauthorized", which API Gateway turns into 401.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type {
  APIGatewayAuthorizerResult,
  APIGatewayRequestAuthorizerEvent,
  APIGatewayTokenAuthorizerEvent,
} from "aws-lambda";
import { type ApiKeyStore, DynamoApiKeyStore, keyIdOf, scopeOfBearer } from "../core/auth/api-keys";
import { JwtError, JwtVerifier } from "../core/auth/jwt";
import { normaliseScopePrefix, type Scope } from "../core/auth/scope";
import { bearerToken } from "../core/auth/token";
import { ENV } from "../core/config";
import { logger } from "../core/runtime/observability";
import { getApiToken } from "../core/runtime/secrets";

export type AuthorizerEvent = APIGatewayTokenAuthorizerEvent | APIGatewayRequestAuthorizerEvent;

/** The principal the policy names; the chat app checks it is present (see functions/chat/app.ts). */
export const API_TOKEN_PRINCIPAL = "api-token";

/** `arn:aws:execute-api:region:account:apiId/stage/*` from a method ARN (`...:apiId/stage/VERB/path`). */
export function stageWildcardArn(methodArn: string): string {
  // arn:aws:execute-api:<region>:<account>:<apiId> / <stage> / <verb> / <path...>
  const [apiArn, stage] = methodArn.split("/");
  if (!apiArn || !stage) return methodArn;
  return `${apiArn}/${stage}/*`;
}

function authorizationHeader(event: AuthorizerEvent): string | undefined {
  if (event.type === "TOKEN") return event.authorizationToken;
  const headers = event.headers ?? {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === "authorization" && value) return value;
  }
  return undefined;
}

/** Environment of the JWT mode (set by the ChatApi construct's `auth: { mode: "jwt" }`). */
export const JWT_ENV = {
  issuer: ENV.JWT_ISSUER,
  audience: ENV.JWT_AUDIENCE,
  tenantClaim: ENV.JWT_TENANT_CLAIM,
  tokenUse: ENV.JWT_TOKEN_USE,
} as const;

const allowAll = (
  methodArn: string,
  principalId: string,
  context: Record<string, string>,
): APIGatewayAuthorizerResult => ({
  principalId,
  policyDocument: {
    Version: "2012-10-17",
    Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: stageWildcardArn(methodArn) }],
  },
  context,
});

/** Builds the JWT-mode handler. */
/**
 * The key prefix a token's tenant claim maps to, or a JwtError (fail closed: a token without the claim,
 * or with one that is not a folder name, gets no scope at all).
 */
export function tenantPrefixOf(claims: Record<string, unknown>, claim: string): string {
  const value = claims[claim];
  if (typeof value !== "string" || value.trim() === "") throw new JwtError(`no ${claim} claim`);
  try {
    return normaliseScopePrefix(value, claim);
  } catch {
    throw new JwtError(`${claim} claim is not a folder name`);
  }
}

export function createJwtAuthorizer(
  verifier: Pick<JwtVerifier, "verify">,
  log: Pick<typeof logger, "warn" | "error"> = logger,
  opts: { tenantClaim?: string } = {},
): (event: AuthorizerEvent) => Promise<APIGatewayAuthorizerResult> {
  return async (event) => {
    const token = bearerToken(authorizationHeader(event));
    if (!token) throw new Error("Unauthorized");
    try {
      const claims = await verifier.verify(token);
      // With a tenant claim configured, each token sees its tenant's prefix; without, every document.
      const scopePrefix = opts.tenantClaim ? tenantPrefixOf(claims, opts.tenantClaim) : "";
      return allowAll(event.methodArn, typeof claims.sub === "string" && claims.sub ? claims.sub : "jwt", {
        auth: "jwt",
        scopePrefix,
        ...(typeof claims.sub === "string" ? { sub: claims.sub } : {}),
      });
    } catch (err) {
      const e = err as Error;
      if (e.name === "JwtError")
        log.warn("rejected a JWT", { reason: e.message, methodArn: event.methodArn });
      else log.error("could not verify a JWT (issuer keys unavailable?); denying", { error: e.message });
      throw new Error("Unauthorized");
    }
  };
}

/** Builds the token-mode handler; `getToken`, `log` and `keys` are injectable for tests. */
export function createAuthorizer(
  getToken: () => Promise<string | undefined> = getApiToken,
  log: Pick<typeof logger, "warn" | "error"> = logger,
  keys: ApiKeyStore | undefined = keysFromEnv(),
): (event: AuthorizerEvent) => Promise<APIGatewayAuthorizerResult> {
  return async (event) => {
    let expected: string | undefined;
    try {
      expected = await getToken();
    } catch (err) {
      log.error("could not read the API token; denying", { error: (err as Error).name });
      throw new Error("Unauthorized");
    }
    if (!expected) {
      log.error("no API token is configured; denying every request");
      throw new Error("Unauthorized");
    }
    const token = bearerToken(authorizationHeader(event));
    let scope: Scope | undefined;
    try {
      scope = await scopeOfBearer(token, { adminToken: expected, keys });
    } catch (err) {
      log.error("could not read the API keys table; denying", { error: (err as Error).name });
      throw new Error("Unauthorized");
    }
    if (!scope) {
      // Never log the presented credential (a key id is not secret, and says which key failed).
      log.warn("rejected a request with a missing, wrong, revoked or expired bearer token", {
        methodArn: event.methodArn,
        keyId: token ? keyIdOf(token) : undefined,
      });
      throw new Error("Unauthorized");
    }
    if (scope.admin) return allowAll(event.methodArn, API_TOKEN_PRINCIPAL, { auth: "bearer" });
    const keyId = scope.principal.replace(/^key:/, "");
    return allowAll(event.methodArn, keyId, { auth: "key", scopePrefix: scope.prefix });
  };
}

/**
 * The keys table named by KEYS_TABLE_NAME (token mode), or none: only the API token then passes. Its
 * own DynamoDB client (not the shared clients module, which would also build an S3 client at cold start).
 */
function keysFromEnv(): ApiKeyStore | undefined {
  const table = process.env[ENV.KEYS_TABLE_NAME]?.trim();
  return table
    ? new DynamoApiKeyStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), table)
    : undefined;
}

const issuer = process.env[JWT_ENV.issuer]?.trim();

/** JWT_TOKEN_USE: "id", "access" or both (default); anything else fails the cold start loudly. */
function tokenUseFromEnv(value: string | undefined): ("id" | "access")[] | undefined {
  const uses = list(value);
  if (uses.length === 0) return undefined;
  const bad = uses.filter((u) => u !== "id" && u !== "access");
  if (bad.length) throw new Error(`${JWT_ENV.tokenUse} must list "id" and/or "access", got ${value}`);
  return uses as ("id" | "access")[];
}

function list(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
}

export const handler = issuer
  ? createJwtAuthorizer(
      new JwtVerifier({
        issuer,
        audience: list(process.env[JWT_ENV.audience]),
        tokenUse: tokenUseFromEnv(process.env[JWT_ENV.tokenUse]),
      }),
      logger,
      { tenantClaim: process.env[JWT_ENV.tenantClaim]?.trim() || undefined },
    )
  : createAuthorizer();
