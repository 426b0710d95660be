import type { APIGatewayRequestAuthorizerEvent, APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { API_TOKEN_PRINCIPAL, createAuthorizer, stageWildcardArn } from "../../functions/authorizer/handler";
import { scopeFromAuthorizer } from "../../functions/chat/scope";
import { type ApiKeyStore, createApiKey } from "../../functions/core/auth/api-keys";
import { bearerToken, isAuthorized } from "../../functions/core/auth/token";

const METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/prod/POST/chat";
const TOKEN = "s3cr3t-token-value";

const tokenEvent = (authorizationToken: string): APIGatewayTokenAuthorizerEvent => ({
  type: "TOKEN",
  methodArn: METHOD_ARN,
  authorizationToken,
});

const requestEvent = (headers: Record<string, string>) =>
  ({ type: "REQUEST", methodArn: METHOD_ARN, headers }) as unknown as APIGatewayRequestAuthorizerEvent;

const quiet = { warn() {}, error() {} };

describe("bearer token check", () => {
  it("parses the bearer scheme case-insensitively", () => {
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bearer  abc ")).toBe("abc");
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer")).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it("fails closed when no token is configured", () => {
    expect(isAuthorized("Bearer x", undefined)).toBe(false);
    expect(isAuthorized("Bearer ", "")).toBe(false);
    expect(isAuthorized(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(isAuthorized(`Bearer ${TOKEN}x`, TOKEN)).toBe(false);
  });
});

describe("authorizer handler", () => {
  const handler = createAuthorizer(async () => TOKEN, quiet);

  it("allows the whole stage for the right token (TOKEN authorizer)", async () => {
    const result = await handler(tokenEvent(`Bearer ${TOKEN}`));
    expect(result.principalId).toBe(API_TOKEN_PRINCIPAL);
    expect(result.policyDocument.Statement).toEqual([
      {
        Action: "execute-api:Invoke",
        Effect: "Allow",
        Resource: "arn:aws:execute-api:eu-west-1:123456789012:abcdef123/prod/*",
      },
    ]);
  });

  it("allows with a REQUEST authorizer event (any header case)", async () => {
    const result = await handler(requestEvent({ Authorization: `Bearer ${TOKEN}` }));
    expect(result.policyDocument.Statement[0]).toMatchObject({ Effect: "Allow" });
    await expect(handler(requestEvent({ authorization: `Bearer ${TOKEN}` }))).resolves.toBeDefined();
  });

  it("rejects missing, wrong and non-bearer tokens with Unauthorized (401)", async () => {
    for (const header of ["", "Bearer wrong", TOKEN, `Basic ${TOKEN}`, `Bearer ${TOKEN} extra`]) {
      await expect(handler(tokenEvent(header)), header).rejects.toThrow(/^Unauthorized$/);
    }
    await expect(handler(requestEvent({}))).rejects.toThrow(/^Unauthorized$/);
  });

  it("denies everything when the token cannot be read or is not configured", async () => {
    const errors: string[] = [];
    const log = { warn() {}, error: (m: string) => errors.push(m) };
    await expect(createAuthorizer(async () => undefined, log)(tokenEvent("Bearer x"))).rejects.toThrow(
      "Unauthorized",
    );
    await expect(
      createAuthorizer(async () => {
        throw new Error("AccessDenied");
      }, log)(tokenEvent(`Bearer ${TOKEN}`)),
    ).rejects.toThrow("Unauthorized");
    expect(errors).toHaveLength(2);
  });

  it("builds the stage wildcard from a method ARN", () => {
    expect(stageWildcardArn("arn:aws:execute-api:us-east-1:1:api/dev/GET/documents/abc")).toBe(
      "arn:aws:execute-api:us-east-1:1:api/dev/*",
    );
  });
});

describe("authorizer with scoped API keys", () => {
  class MapKeys implements ApiKeyStore {
    readonly items = new Map<string, Parameters<ApiKeyStore["put"]>[0]>();
    async get(id: string) {
      return this.items.get(id);
    }
    async put(k: Parameters<ApiKeyStore["put"]>[0]) {
      this.items.set(k.id, k);
    }
    async list() {
      return [...this.items.values()];
    }
    async revoke(id: string, at: string) {
      const k = this.items.get(id);
      if (!k) return false;
      k.revokedAt ??= at;
      return true;
    }
  }

  it("passes a live key with its scope in the context, and the app reads exactly that scope", async () => {
    const keys = new MapKeys();
    const handler = createAuthorizer(async () => TOKEN, quiet, keys);
    const { key, id } = await createApiKey(keys, { prefix: "team-a/" });
    const result = await handler(tokenEvent(`Bearer ${key}`));
    expect(result.principalId).toBe(id);
    expect(result.context).toEqual({ auth: "key", scopePrefix: "team-a/" });
    expect(scopeFromAuthorizer({ principalId: result.principalId, ...result.context })).toEqual({
      prefix: "team-a/",
      admin: false,
      principal: `key:${id}`,
    });
    const admin = await handler(tokenEvent(`Bearer ${TOKEN}`));
    expect(scopeFromAuthorizer({ principalId: admin.principalId, ...admin.context })).toMatchObject({
      admin: true,
      prefix: "",
    });
  });

  it("refuses revoked, expired, tampered and unknown keys, and a key context the app cannot trust", async () => {
    const keys = new MapKeys();
    const handler = createAuthorizer(async () => TOKEN, quiet, keys);
    const revoked = await createApiKey(keys, { prefix: "a/" });
    await keys.revoke(revoked.id, new Date().toISOString());
    const expired = await createApiKey(keys, {
      prefix: "a/",
      expiresAt: new Date(Date.now() - 1).toISOString(),
    });
    const live = await createApiKey(keys, { prefix: "a/" });
    for (const token of [
      revoked.key,
      expired.key,
      `${live.key.slice(0, -2)}xx`,
      `kdpk_aaaaaaaaaaaa.${live.key.split(".")[1]}`,
      live.key.replace("kdpk_", "kdpk-"),
    ]) {
      await expect(handler(tokenEvent(`Bearer ${token}`)), token).rejects.toThrow(/^Unauthorized$/);
    }
    // A key mode context without a proper scope fails closed.
    for (const ctx of [
      { principalId: "x", auth: "key" },
      { principalId: "x", auth: "key", scopePrefix: "" },
      { principalId: "x", auth: "key", scopePrefix: "no-slash" },
      { principalId: "x", auth: "jwt" },
      { principalId: "", auth: "bearer" },
    ]) {
      expect(scopeFromAuthorizer(ctx), JSON.stringify(ctx)).toBeUndefined();
    }
  });
});
