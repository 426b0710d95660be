/**
 * The authorizer's JWT mode end to end: the Lambda handler module configured only through JWT_ISSUER /
 * JWT_AUDIENCE (as the ChatApi construct sets them), a real OIDC discovery document and JWKS served on
 * 127.0.0.1, keys generated here with jose. Every refusal is a 401 ("Unauthorized"), and no log line
 * carries the presented token.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayAuthorizerResult, APIGatewayTokenAuthorizerEvent } from "aws-lambda";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { JwtError, JwtVerifier } from "../../functions/core/auth/jwt";

type Handler = (event: APIGatewayTokenAuthorizerEvent) => Promise<APIGatewayAuthorizerResult>;
type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

const METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:api1/prod/POST/chat";
const event = (authorizationToken: string): APIGatewayTokenAuthorizerEvent => ({
  type: "TOKEN",
  methodArn: METHOD_ARN,
  authorizationToken,
});

let server: Server;
let issuer: string;
let signing: Key;
let stranger: Key;
const requests: string[] = [];
let handler: Handler;
const logged: string[] = [];

async function token(claims: JWTPayload, opts: { key?: Key; kid?: string; exp?: string | number } = {}) {
  return new SignJWT({ sub: "user-42", ...claims })
    .setProtectedHeader({ alg: "ES256", kid: opts.kid ?? "k1" })
    .setIssuer(typeof claims.iss === "string" ? claims.iss : issuer)
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? "10m")
    .sign(opts.key ?? signing);
}

beforeAll(async () => {
  const pair = await generateKeyPair("ES256");
  signing = pair.privateKey;
  stranger = (await generateKeyPair("ES256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  server = createServer((req, res) => {
    requests.push(req.url ?? "");
    res.setHeader("content-type", "application/json");
    if (req.url === "/tenant/.well-known/openid-configuration") {
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/keys` }));
    } else if (req.url === "/tenant/keys") {
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = 404;
      res.end("{}");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tenant`;

  // The deployed wiring: the handler module reads its mode from the environment at import.
  vi.resetModules();
  vi.stubEnv("JWT_ISSUER", issuer);
  vi.stubEnv("JWT_AUDIENCE", "chat-api, web-console");
  vi.stubEnv("POWERTOOLS_SERVICE_NAME", "authorizer");
  // The handler's own logger instance (same module registry): capture everything it is asked to log.
  const { logger } = await import("../../functions/core/runtime/observability");
  for (const level of ["debug", "info", "warn", "error"] as const) {
    vi.spyOn(logger, level).mockImplementation((...args: unknown[]) => {
      logged.push(JSON.stringify(args));
    });
  }
  handler = (await import("../../functions/authorizer/handler")).handler as Handler;
});

afterAll(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe("authorizer in JWT mode (handler configured from the environment)", () => {
  it("allows the whole stage for a valid token, with the subject in the context; keys are fetched once", async () => {
    const before = requests.length;
    const result = await handler(event(`Bearer ${await token({ aud: "chat-api" })}`));
    expect(result.principalId).toBe("user-42");
    expect(result.context).toMatchObject({ auth: "jwt", sub: "user-42" });
    expect(result.policyDocument.Statement).toEqual([
      {
        Action: "execute-api:Invoke",
        Effect: "Allow",
        Resource: "arn:aws:execute-api:eu-west-1:123456789012:api1/prod/*",
      },
    ]);
    // Second audience of the comma-separated list, Cognito-style client_id instead of aud.
    await expect(
      handler(event(`bearer ${await token({ client_id: "web-console" })}`)),
    ).resolves.toMatchObject({
      principalId: "user-42",
    });
    expect(
      requests.slice(before).filter((u) => u.includes("openid-configuration")).length,
    ).toBeLessThanOrEqual(1);
    expect(requests.filter((u) => u === "/tenant/keys")).toHaveLength(1);
  });

  it("denies a wrong issuer, wrong audience, expired token, bad signature, unknown key, malformed or missing token", async () => {
    const bad: [string, string][] = [
      ["wrong issuer", `Bearer ${await token({ aud: "chat-api", iss: "https://evil.example" })}`],
      ["wrong audience", `Bearer ${await token({ aud: "someone-else" })}`],
      ["no audience", `Bearer ${await token({})}`],
      [
        "expired",
        `Bearer ${await token({ aud: "chat-api" }, { exp: Math.floor(Date.now() / 1000) - 3600 })}`,
      ],
      ["bad signature", `Bearer ${await token({ aud: "chat-api" }, { key: stranger })}`],
      ["unknown key", `Bearer ${await token({ aud: "chat-api" }, { kid: "k9" })}`],
      ["tampered payload", `Bearer ${(await token({ aud: "chat-api" })).replace(/\.([^.]+)\./, ".e30.")}`],
      ["malformed", "Bearer not.a.jwt"],
      ["not a JWT", "Bearer abc"],
      ["missing", ""],
      ["wrong scheme", `Basic ${await token({ aud: "chat-api" })}`],
    ];
    for (const [what, header] of bad) {
      await expect(handler(event(header)), what).rejects.toThrow(/^Unauthorized$/);
    }
    const tokens = bad.map(([, h]) => h.split(" ")[1]).filter((t): t is string => !!t && t.length > 10);
    const output = logged.join("");
    expect(output).toContain("rejected a JWT");
    for (const t of tokens) expect(output).not.toContain(t);
  });
});

describe("JwtVerifier against the local issuer", () => {
  it("names the refusal reason (for logs) and reports an unreachable issuer as an error, not a refusal", async () => {
    const v = new JwtVerifier({ issuer, audience: ["chat-api"] });
    await expect(v.verify(await token({ aud: "chat-api" }))).resolves.toMatchObject({ sub: "user-42" });
    await expect(v.verify(await token({ aud: "x" }))).rejects.toEqual(new JwtError("wrong audience"));
    await expect(
      v.verify(await token({ aud: "chat-api" }, { exp: Math.floor(Date.now() / 1000) - 3600 })),
    ).rejects.toMatchObject({ name: "JwtError", message: "expired" });

    const nowhere = new JwtVerifier({
      issuer: `${issuer.replace("/tenant", "")}/missing`,
      audience: ["chat-api"],
    });
    const err = await nowhere.verify(await token({ aud: "chat-api" })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(JwtError);
    expect((err as Error).message).toMatch(/answered 404/);
  });
});
