/**
 * JWT bearer verification for the chat API's optional OIDC mode (Cognito or any OIDC issuer): the
 * issuer's signing keys come from its discovery document (`<issuer>/.well-known/openid-configuration`
 * -> `jwks_uri`), cached per process and refreshed when a token names an unknown key id.
 *
 * Only asymmetric algorithms are accepted (RS256/384/512, PS256/384/512, ES256/384/512), so neither
 * `alg: none` nor an HMAC signed with the public key can pass. Checks: signature, `iss` (exact),
 * `exp` and `nbf` (60 s leeway), and, when audiences are configured, `aud` or (Cognito access tokens)
 * `client_id`.
 */
import { createPublicKey, type JsonWebKey, type KeyObject, verify } from "node:crypto";

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
  /** Accepted audiences (`aud` or `client_id`); any when empty. */
  audience?: string[];
  fetch?: typeof fetch;
  /** Epoch ms. */
  now?: () => number;
  /** How long fetched keys are trusted. Default 1 hour. */
  keysTtlMs?: number;
}

/** A token that must be refused (the message says why, for logs; never shown to the caller). */
export class JwtError extends Error {
  override readonly name = "JwtError";
}

const ALGORITHMS: Record<string, { hash: string; kind: "rsa" | "pss" | "ec" }> = {
  RS256: { hash: "sha256", kind: "rsa" },
  RS384: { hash: "sha384", kind: "rsa" },
  RS512: { hash: "sha512", kind: "rsa" },
  PS256: { hash: "sha256", kind: "pss" },
  PS384: { hash: "sha384", kind: "pss" },
  PS512: { hash: "sha512", kind: "pss" },
  ES256: { hash: "sha256", kind: "ec" },
  ES384: { hash: "sha384", kind: "ec" },
  ES512: { hash: "sha512", kind: "ec" },
};
const LEEWAY_SECONDS = 60;
/** Unknown key ids trigger at most one key refresh per this interval. */
const MIN_REFRESH_MS = 60_000;

function decodeJson(part: string, what: string): Record<string, unknown> {
  try {
    const value = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // fall through
  }
  throw new JwtError(`malformed ${what}`);
}

/** Verifies JWTs of one issuer. */
export class JwtVerifier {
  private keys?: { at: number; byKid: Map<string, KeyObject>; all: KeyObject[] };
  private loading?: Promise<void>;
  private readonly issuer: string;
  private readonly fetchImpl: typeof fetch;
  private readonly now: () => number;
  private readonly ttl: number;

  constructor(private readonly opts: JwtVerifierOptions) {
    this.issuer = opts.issuer;
    this.fetchImpl = opts.fetch ?? fetch;
    this.now = opts.now ?? Date.now;
    this.ttl = opts.keysTtlMs ?? 3_600_000;
  }

  /** The token's claims when it is valid; throws JwtError otherwise. */
  async verify(token: string): Promise<JwtClaims> {
    const parts = token.split(".");
    if (parts.length !== 3) throw new JwtError("not a JWT");
    const [h, p, s] = parts as [string, string, string];
    const header = decodeJson(h, "header");
    const claims = decodeJson(p, "payload") as JwtClaims;
    const alg = typeof header.alg === "string" ? ALGORITHMS[header.alg] : undefined;
    if (!alg) throw new JwtError(`algorithm ${String(header.alg)} not accepted`);
    const key = await this.key(typeof header.kid === "string" ? header.kid : undefined);
    const signature = Buffer.from(s, "base64url");
    const data = Buffer.from(`${h}.${p}`);
    const ok =
      alg.kind === "ec"
        ? verify(alg.hash, data, { key, dsaEncoding: "ieee-p1363" }, signature)
        : alg.kind === "pss"
          ? verify(alg.hash, data, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: -2 }, signature)
          : verify(alg.hash, data, key, signature);
    if (!ok) throw new JwtError("bad signature");

    const nowSec = this.now() / 1000;
    if (claims.iss !== this.issuer) throw new JwtError("wrong issuer");
    if (typeof claims.exp !== "number" || claims.exp < nowSec - LEEWAY_SECONDS) throw new JwtError("expired");
    if (typeof claims.nbf === "number" && claims.nbf > nowSec + LEEWAY_SECONDS)
      throw new JwtError("not yet valid");
    const audience = this.opts.audience ?? [];
    if (audience.length > 0) {
      const presented = [
        ...(Array.isArray(claims.aud) ? claims.aud : claims.aud ? [claims.aud] : []),
        ...(typeof claims.client_id === "string" ? [claims.client_id] : []),
      ];
      if (!presented.some((a) => audience.includes(a))) throw new JwtError("wrong audience");
    }
    return claims;
  }

  private async key(kid: string | undefined): Promise<KeyObject> {
    if (!this.keys || this.now() - this.keys.at > this.ttl) await this.load();
    let found = this.pick(kid);
    if (!found && this.keys && this.now() - this.keys.at > MIN_REFRESH_MS) {
      // Keys rotate: look once more before refusing.
      await this.load();
      found = this.pick(kid);
    }
    if (!found) throw new JwtError(`unknown signing key ${kid ?? "(no kid)"}`);
    return found;
  }

  private pick(kid: string | undefined): KeyObject | undefined {
    if (!this.keys) return undefined;
    if (kid !== undefined) return this.keys.byKid.get(kid);
    return this.keys.all.length === 1 ? this.keys.all[0] : undefined;
  }

  private load(): Promise<void> {
    this.loading ??= (async () => {
      const base = this.issuer.replace(/\/+$/, "");
      const discovery = await this.getJson(`${base}/.well-known/openid-configuration`);
      const jwksUri = discovery.jwks_uri;
      if (typeof jwksUri !== "string") throw new Error("the issuer's discovery document has no jwks_uri");
      const jwks = await this.getJson(jwksUri);
      const byKid = new Map<string, KeyObject>();
      const all: KeyObject[] = [];
      for (const jwk of Array.isArray(jwks.keys)
        ? (jwks.keys as (JsonWebKey & { kid?: string; use?: string })[])
        : []) {
        if (jwk.use && jwk.use !== "sig") continue;
        try {
          const key = createPublicKey({ key: jwk, format: "jwk" });
          all.push(key);
          if (jwk.kid) byKid.set(jwk.kid, key);
        } catch {
          // An unsupported key type: skip it rather than fail every token.
        }
      }
      this.keys = { at: this.now(), byKid, all };
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async getJson(url: string): Promise<Record<string, unknown>> {
    const res = await this.fetchImpl(url, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
    return (await res.json()) as Record<string, unknown>;
  }
}
