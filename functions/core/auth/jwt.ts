/**
 * JWT bearer verification for the chat API's optional OIDC mode (Cognito or any OIDC issuer), built
 * on `jose`: the issuer's signing keys come from its discovery document
 * (`<issuer>/.well-known/openid-configuration` -> `jwks_uri`, looked up once per process) through
 * jose's remote JWK set, which caches the keys and refetches them when a token names an unknown key id
 * (key rotation), at most once per cooldown.
 *
 * Only asymmetric algorithms are accepted (RS256/384/512, PS256/384/512, ES256/384/512), so neither
 * `alg: none` nor an HMAC signed with the public key can pass. Checks: signature, `iss` (exact),
 * `exp` (required) and `nbf` (60 s leeway), the audience (required: a token minted for another
 * application of the same issuer must not pass), and Cognito's `token_use`: an ID token's audience is
 * its `aud`, an access token's its `client_id` (Cognito access tokens carry no `aud`); a token whose
 * `token_use` is not one of the accepted kinds is refused, and a Cognito user pool's token must carry it.
 */
import type { JWTVerifyGetKey } from "jose";

type Jose = typeof import("jose");
let joseModule: Promise<Jose> | undefined;
/** `jose` is imported on first use: the default token mode never pays for it at cold start. */
const loadJose = (): Promise<Jose> => {
  joseModule ??= import("jose");
  return joseModule;
};

export interface JwtClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  client_id?: string;
  exp?: number;
  nbf?: number;
  [claim: string]: unknown;
}

export interface JwtVerifierOptions {
  /** Issuer URL, exactly as in the tokens' `iss`. */
  issuer: string;
  /** Accepted audiences (`aud`, or `client_id` for access tokens). Required, at least one. */
  audience: string[];
  /** Accepted `token_use` values (Cognito). @default ["id", "access"] */
  tokenUse?: ("id" | "access")[];
  /** For the discovery document and the JWKS (tests). */
  fetch?: typeof fetch;
  /** Epoch ms (tests). */
  now?: () => number;
  /** How long fetched keys are trusted before they are fetched again. Default 1 hour. */
  keysTtlMs?: number;
}

/** A token that must be refused (the message says why, for logs; never shown to the caller). */
export class JwtError extends Error {
  override readonly name = "JwtError";
}

/** Asymmetric JWS algorithms only. */
export const JWT_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
] as const;
const LEEWAY_SECONDS = 60;
/** Unknown key ids trigger at most one key refresh per this interval. */
const MIN_REFRESH_MS = 60_000;
const HTTP_TIMEOUT_MS = 5_000;

const stripSlash = (url: string) => url.replace(/\/+$/, "");

/** `https://cognito-idp.<region>.amazonaws.com/<pool id>`. */
const isCognitoIssuer = (issuer: string) =>
  /^https:\/\/cognito-idp\.[a-z0-9-]+\.amazonaws\.com\//.test(issuer);

/** jose's reasons -> the refusal reasons we log. Anything else (JWKS unreachable...) is rethrown. */
function refusal(jose: Jose, err: unknown, token: string): JwtError | undefined {
  const { errors, decodeProtectedHeader } = jose;
  if (err instanceof errors.JWTExpired) return new JwtError("expired");
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "exp") return new JwtError(`expired (${err.reason} exp claim)`);
    if (err.claim === "nbf")
      return new JwtError(err.reason === "check_failed" ? "not yet valid" : "malformed nbf");
    if (err.claim === "iss") return new JwtError("wrong issuer");
    return new JwtError(`claim ${err.claim} refused (${err.reason})`);
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    let alg = "unknown";
    try {
      alg = String(decodeProtectedHeader(token).alg);
    } catch {
      // keep "unknown"
    }
    return new JwtError(`algorithm ${alg} not accepted`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new JwtError("bad signature");
  if (err instanceof errors.JWKSNoMatchingKey) {
    let kid = "(no kid)";
    try {
      kid = String(decodeProtectedHeader(token).kid ?? kid);
    } catch {
      // keep "(no kid)"
    }
    return new JwtError(`unknown signing key ${kid}`);
  }
  if (err instanceof errors.JWKSMultipleMatchingKeys) return new JwtError("ambiguous signing key (no kid)");
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid)
    return new JwtError("malformed token");
  return undefined;
}

/** Verifies JWTs of one issuer. */
export class JwtVerifier {
  private readonly issuer: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly ttl: number;
  private keySet?: Promise<JWTVerifyGetKey>;

  constructor(private readonly opts: JwtVerifierOptions) {
    if (!opts.audience?.length || opts.audience.some((a) => !a.trim()))
      throw new Error("JwtVerifier: at least one audience is required (the app client id or API audience)");
    this.issuer = opts.issuer;
    this.fetchImpl = opts.fetch ?? ((input, init) => fetch(input, init));
    this.now = opts.now ?? Date.now;
    this.ttl = opts.keysTtlMs ?? 3_600_000;
  }

  /** The token's claims when it is valid; throws JwtError when it must be refused, Error when keys are unavailable. */
  async verify(token: string): Promise<JwtClaims> {
    if (token.split(".").length !== 3) throw new JwtError("not a JWT");
    const jose = await loadJose();
    const keys = await this.keys();
    let claims: JwtClaims;
    try {
      const { payload } = await jose.jwtVerify(token, keys, {
        issuer: this.issuer,
        algorithms: [...JWT_ALGORITHMS],
        clockTolerance: LEEWAY_SECONDS,
        currentDate: new Date(this.now()),
        requiredClaims: ["exp"],
      });
      claims = payload as JwtClaims;
    } catch (err) {
      throw refusal(jose, err, token) ?? err;
    }
    const tokenUse = claims.token_use;
    const allowedUse = this.opts.tokenUse ?? ["id", "access"];
    if (tokenUse === undefined) {
      if (isCognitoIssuer(this.issuer)) throw new JwtError("no token_use (a Cognito token always has one)");
    } else if (typeof tokenUse !== "string" || !allowedUse.includes(tokenUse as "id" | "access")) {
      throw new JwtError(`token_use ${JSON.stringify(tokenUse)} not accepted`);
    }
    const aud = Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : [];
    const clientId = typeof claims.client_id === "string" ? [claims.client_id] : [];
    // An ID token names its audience in `aud`, an access token in `client_id`; without token_use, either.
    const presented = tokenUse === "id" ? aud : tokenUse === "access" ? clientId : [...aud, ...clientId];
    if (!presented.some((a) => this.opts.audience.includes(a))) throw new JwtError("wrong audience");
    return claims;
  }

  /** The issuer's remote key set, from its discovery document (a failed lookup is retried next time). */
  private keys(): Promise<JWTVerifyGetKey> {
    this.keySet ??= this.discover().catch((err: unknown) => {
      this.keySet = undefined;
      throw err;
    });
    return this.keySet;
  }

  private async discover(): Promise<JWTVerifyGetKey> {
    const url = `${stripSlash(this.issuer)}/.well-known/openid-configuration`;
    const res = await this.fetchImpl(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
    const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 1.0 section 4.3: the document must name the issuer it was fetched for.
    if (typeof doc.issuer === "string" && stripSlash(doc.issuer) !== stripSlash(this.issuer)) {
      throw new Error(`the discovery document at ${url} is for issuer ${doc.issuer}, not ${this.issuer}`);
    }
    if (typeof doc.jwks_uri !== "string") throw new Error(`the discovery document at ${url} has no jwks_uri`);
    const fetchImpl = this.fetchImpl;
    const { createRemoteJWKSet, customFetch } = await loadJose();
    return createRemoteJWKSet(new URL(doc.jwks_uri), {
      timeoutDuration: HTTP_TIMEOUT_MS,
      cooldownDuration: MIN_REFRESH_MS,
      cacheMaxAge: this.ttl,
      [customFetch]: (u: string, init: RequestInit) => fetchImpl(u, init),
    });
  }
}
