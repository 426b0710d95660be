/** JWT mode of the authorizer: keys from a (fake) OIDC issuer, every refusal reason. */
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import type { APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { createJwtAuthorizer } from "../../functions/authorizer/handler";
import { createChatApp } from "../../functions/chat/app";
import { JwtVerifier } from "../../functions/core/auth/jwt";
import { FakeMoonshot, MemoryStore } from "./support";

const ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST";
const NOW = 1_800_000_000_000;
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const other = generateKeyPairSync("rsa", { modulusLength: 2048 });

function issuerFetch(keys: { kid: string; key: KeyObject }[]) {
  const calls: string[] = [];
  const impl = (async (url: string | URL | Request) => {
    const u = String(url);
    calls.push(u);
    if (u === `${ISSUER}/.well-known/openid-configuration`) {
      return Response.json({ issuer: ISSUER, jwks_uri: `${ISSUER}/.well-known/jwks.json` });
    }
    if (u === `${ISSUER}/.well-known/jwks.json`) {
      return Response.json({
        keys: keys.map(({ kid, key }) => ({ ...key.export({ format: "jwk" }), kid, use: "sig" })),
      });
    }
    return new Response("not found", { status: 404 });
  }) as typeof fetch;
  return { impl, calls };
}

function jwt(
  claims: Record<string, unknown>,
  opts: { alg?: string; kid?: string; key?: KeyObject } = {},
): string {
  const alg = opts.alg ?? "RS256";
  const header = Buffer.from(JSON.stringify({ alg, kid: opts.kid ?? "k1", typ: "JWT" })).toString(
    "base64url",
  );
  const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const data = Buffer.from(`${header}.${payload}`);
  const key = opts.key ?? rsa.privateKey;
  const signature =
    alg === "none"
      ? Buffer.alloc(0)
      : alg.startsWith("ES")
        ? sign("sha256", data, { key, dsaEncoding: "ieee-p1363" })
        : sign("sha256", data, key);
  return `${header}.${payload}.${signature.toString("base64url")}`;
}

const valid = {
  iss: ISSUER,
  sub: "user-1",
  client_id: "app-client",
  exp: NOW / 1000 + 3600,
  token_use: "access",
};

function verifier(audience: string[] = ["app-client"]) {
  const f = issuerFetch([
    { kid: "k1", key: rsa.publicKey },
    { kid: "e1", key: ec.publicKey },
  ]);
  return { v: new JwtVerifier({ issuer: ISSUER, audience, fetch: f.impl, now: () => NOW }), calls: f.calls };
}

describe("JwtVerifier", () => {
  it("accepts a valid RS256 token and an ES256 one, fetching the keys once", async () => {
    const { v, calls } = verifier(["app-client"]);
    await expect(v.verify(jwt(valid))).resolves.toMatchObject({ sub: "user-1" });
    await expect(
      v.verify(jwt(valid, { alg: "ES256", kid: "e1", key: ec.privateKey })),
    ).resolves.toBeDefined();
    expect(calls).toHaveLength(2);
  });

  it("refuses each kind of bad token", async () => {
    const { v } = verifier(["app-client"]);
    const cases: [string, string][] = [
      [jwt({ ...valid, exp: NOW / 1000 - 120 }), "expired"],
      [jwt({ ...valid, exp: undefined }), "expired"],
      [jwt({ ...valid, nbf: NOW / 1000 + 600 }), "not yet valid"],
      [jwt({ ...valid, iss: "https://evil.example" }), "wrong issuer"],
      [jwt({ ...valid, client_id: "other-app" }), "wrong audience"],
      [jwt(valid, { key: other.privateKey }), "bad signature"],
      [jwt(valid, { alg: "none" }), "not accepted"],
      [jwt(valid, { alg: "HS256" }), "not accepted"],
      [jwt(valid, { kid: "nope" }), "unknown signing key"],
      ["abc.def", "not a JWT"],
      ["a.b.c", "malformed"],
    ];
    for (const [token, reason] of cases) {
      await expect(v.verify(token), reason).rejects.toMatchObject({
        name: "JwtError",
        message: expect.stringContaining(reason),
      });
    }
  });

  it("checks an ID token's `aud` and an access token's `client_id`, and requires an audience", async () => {
    const { v } = verifier(["my-api"]);
    const id = { ...valid, token_use: "id", client_id: undefined, aud: ["x", "my-api"] };
    await expect(v.verify(jwt(id))).resolves.toBeDefined();
    await expect(v.verify(jwt({ ...valid, client_id: "my-api" }))).resolves.toBeDefined();
    // The audience must sit where the token's kind puts it.
    await expect(v.verify(jwt({ ...valid, client_id: "other", aud: "my-api" }))).rejects.toThrow(
      "wrong audience",
    );
    await expect(v.verify(jwt({ ...id, aud: "other", client_id: "my-api" }))).rejects.toThrow(
      "wrong audience",
    );
    expect(() => new JwtVerifier({ issuer: ISSUER, audience: [] })).toThrow(/audience is required/);
  });

  it("checks Cognito's token_use: present, and one of the accepted kinds", async () => {
    const { v } = verifier(["app-client"]);
    await expect(v.verify(jwt({ ...valid, token_use: undefined }))).rejects.toThrow("no token_use");
    await expect(v.verify(jwt({ ...valid, token_use: "refresh" }))).rejects.toThrow("token_use");
    const onlyId = new JwtVerifier({
      issuer: ISSUER,
      audience: ["app-client"],
      tokenUse: ["id"],
      fetch: issuerFetch([{ kid: "k1", key: rsa.publicKey }]).impl,
      now: () => NOW,
    });
    await expect(onlyId.verify(jwt(valid))).rejects.toThrow('token_use "access" not accepted');
    await expect(onlyId.verify(jwt({ ...valid, token_use: "id", aud: "app-client" }))).resolves.toBeDefined();
  });
});

describe("authorizer in JWT mode", () => {
  const event = (authorizationToken: string): APIGatewayTokenAuthorizerEvent => ({
    type: "TOKEN",
    methodArn: "arn:aws:execute-api:eu-west-1:123456789012:api1/prod/GET/documents",
    authorizationToken,
  });
  const quiet = { warn() {}, error() {} };

  it("allows the stage for a valid JWT, with the subject as principal", async () => {
    const handler = createJwtAuthorizer(verifier(["app-client"]).v, quiet);
    const result = await handler(event(`Bearer ${jwt(valid)}`));
    expect(result.principalId).toBe("user-1");
    expect(result.policyDocument.Statement[0]).toMatchObject({
      Effect: "Allow",
      Resource: "arn:aws:execute-api:eu-west-1:123456789012:api1/prod/*",
    });
  });

  it("throws Unauthorized for a bad or missing JWT, and when the issuer is unreachable", async () => {
    const handler = createJwtAuthorizer(verifier(["app-client"]).v, quiet);
    await expect(handler(event(`Bearer ${jwt({ ...valid, iss: "x" })}`))).rejects.toThrow(/^Unauthorized$/);
    await expect(handler(event(""))).rejects.toThrow(/^Unauthorized$/);
    const errors: string[] = [];
    const down = new JwtVerifier({
      issuer: ISSUER,
      audience: ["app-client"],
      fetch: (async () => new Response("down", { status: 503 })) as typeof fetch,
      now: () => NOW,
    });
    await expect(
      createJwtAuthorizer(down, { warn() {}, error: (m: string) => errors.push(m) })(
        event(`Bearer ${jwt(valid)}`),
      ),
    ).rejects.toThrow(/^Unauthorized$/);
    expect(errors).toHaveLength(1);
  });
});

describe("JWT tenants: a tenant claim maps to the key prefix, end to end through the app", () => {
  const event = (authorizationToken: string): APIGatewayTokenAuthorizerEvent => ({
    type: "TOKEN",
    methodArn: "arn:aws:execute-api:eu-west-1:123456789012:api1/prod/GET/documents",
    authorizationToken,
  });
  const quiet = { warn() {}, error() {} };
  const idToken = (tenant: unknown, extra: Record<string, unknown> = {}) =>
    jwt({
      ...valid,
      token_use: "id",
      client_id: undefined,
      aud: "app-client",
      "custom:tenant": tenant,
      ...extra,
    });

  function appWithDocs() {
    const store = new MemoryStore();
    store.add({ documentId: "a1", key: "acme/plan.txt" }, "Acme plans the heron launch.\n\n");
    store.add({ documentId: "b1", key: "acme2/vault.txt" }, "Acme2 vault code is pelican.\n\n");
    return createChatApp({
      store,
      provider: new FakeMoonshot(),
      objects: { deleteObject: async () => {} },
      defaultModel: "kimi-k2.6",
      logger: { info() {}, warn() {}, error() {} },
    });
  }
  /** What API Gateway would hand the app after this authorizer allowed the token. */
  async function asGateway(token: string) {
    const handler = createJwtAuthorizer(verifier(["app-client"]).v, quiet, { tenantClaim: "custom:tenant" });
    const result = await handler(event(`Bearer ${token}`));
    const app = appWithDocs();
    return (path: string, init: RequestInit = {}) =>
      app.request(path, init, {
        event: { requestContext: { authorizer: { principalId: result.principalId, ...result.context } } },
      });
  }

  it("a tenant's token lists and reads only its prefix; the other tenant's document is a 404", async () => {
    const acme = await asGateway(idToken("acme"));
    const list = (await (await acme("/documents")).json()) as { items: { key: string }[] };
    expect(list.items.map((d) => d.key)).toEqual(["acme/plan.txt"]);
    expect((await acme("/documents/b1")).status).toBe(404);
    expect((await acme("/documents?prefix=acme2/")).status).toBe(403);
    const chat = await acme("/chat", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question: "vault code?" }),
    });
    const body = await chat.text();
    expect(chat.status).toBe(200);
    expect(body).toContain("acme/plan.txt");
    expect(body).not.toContain("pelican");
  });

  it("refuses a token without the claim, with a claim that is not a folder, or minted for another audience", async () => {
    const handler = createJwtAuthorizer(verifier(["app-client"]).v, quiet, { tenantClaim: "custom:tenant" });
    for (const [what, token] of [
      ["no tenant claim", idToken(undefined)],
      ["empty tenant", idToken("  ")],
      ["tenant with ..", idToken("acme/../acme2")],
      ["tenant not a string", idToken(["acme"])],
      ["another application's token", idToken("acme", { aud: "another-app" })],
      [
        "access token for another client",
        jwt({ ...valid, client_id: "another-app", "custom:tenant": "acme" }),
      ],
    ] as const) {
      await expect(handler(event(`Bearer ${token}`)), what).rejects.toThrow(/^Unauthorized$/);
    }
    // Without a tenant claim configured, a valid token sees every document (never key management).
    const open = await createJwtAuthorizer(verifier(["app-client"]).v, quiet)(event(`Bearer ${jwt(valid)}`));
    expect(open.context).toMatchObject({ auth: "jwt", scopePrefix: "" });
  });
});
