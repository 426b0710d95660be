/** JWT mode of the authorizer: keys from a (fake) OIDC issuer, every refusal reason. */
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import type { APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { createJwtAuthorizer } from "../../functions/authorizer/handler";
import { JwtVerifier } from "../../functions/core/auth/jwt";

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

function verifier(audience?: string[]) {
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

  it("accepts `aud` as well as `client_id`, and any audience when none is configured", async () => {
    const { v } = verifier(["my-api"]);
    await expect(
      v.verify(jwt({ ...valid, client_id: undefined, aud: ["x", "my-api"] })),
    ).resolves.toBeDefined();
    await expect(verifier().v.verify(jwt({ ...valid, client_id: "whatever" }))).resolves.toBeDefined();
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
