/**
 * Scoped API keys: bearer credentials bound to a key prefix, created, listed and revoked by the holder
 * of the stack's API token (the admin key) through `POST/GET/DELETE /keys` (`npx kdp keys ...`).
 *
 * A key reads `kdpk_<id>.<secret>`: the id (12 of a-z 0-9) finds the record in one read, the secret
 * (32 random bytes, base64url) proves possession. Only the SHA-256 of the secret is stored: with 256
 * random bits a slow hash adds nothing, and the comparison is constant-time. A key is shown once, at
 * creation. Revoked and expired keys are refused (the authorizer caches a decision for its TTL in AWS,
 * 5 minutes by default; locally the check runs on every request).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { ADMIN_SCOPE, type Scope } from "./scope";
import { bearerToken, safeEqual } from "./token";

const KEY_FORMAT = /^kdpk_([a-z0-9]{12})\.([A-Za-z0-9_-]{43})$/;
const ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A key's record (what `GET /keys` shows, without the hash). */
export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt?: string;
  revokedAt?: string;
}

interface StoredKey extends ApiKeyInfo {
  /** SHA-256 of the secret, hex. */
  hash: string;
}

/** Where key records live (DynamoDB in AWS and locally; a Map in unit tests). */
export interface ApiKeyStore {
  get(id: string): Promise<StoredKey | undefined>;
  put(key: StoredKey): Promise<void>;
  list(): Promise<StoredKey[]>;
  /** Sets revokedAt once; false when there is no such key. */
  revoke(id: string, at: string): Promise<boolean>;
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** The id of a well-formed key, or undefined. */
export function keyIdOf(token: string): string | undefined {
  return KEY_FORMAT.exec(token)?.[1];
}

/** Creates a key for `prefix` (already normalised); returns the record and the key, shown once. */
export async function createApiKey(
  store: ApiKeyStore,
  input: { prefix: string; name?: string; expiresAt?: string; now?: Date },
): Promise<ApiKeyInfo & { key: string }> {
  const id = [...randomBytes(12)].map((b) => ID_ALPHABET[b % ID_ALPHABET.length]).join("");
  const secret = randomBytes(32).toString("base64url");
  const info: ApiKeyInfo = {
    id,
    name: input.name ?? "",
    prefix: input.prefix,
    createdAt: (input.now ?? new Date()).toISOString(),
    ...(input.expiresAt ? { expiresAt: input.expiresAt } : {}),
  };
  await store.put({ ...info, hash: sha256(secret) });
  return { ...info, key: `kdpk_${id}.${secret}` };
}

/** The public view of a stored key. */
export function keyInfo(k: StoredKey): ApiKeyInfo {
  const { hash: _hash, ...info } = k;
  return info;
}

/**
 * The scope of a bearer `token`: the API token's (admin), a live key's, or undefined (refused).
 * `adminToken` undefined or empty never matches.
 */
export async function scopeOfBearer(
  token: string | undefined,
  opts: { adminToken: string | undefined; keys?: ApiKeyStore; now?: () => number },
): Promise<Scope | undefined> {
  if (!token) return undefined;
  if (opts.adminToken && safeEqual(token, opts.adminToken)) return ADMIN_SCOPE;
  const m = KEY_FORMAT.exec(token);
  if (!m || !opts.keys) return undefined;
  const stored = await opts.keys.get(m[1]!);
  if (!stored || stored.revokedAt) return undefined;
  if (stored.expiresAt && Date.parse(stored.expiresAt) <= (opts.now ?? Date.now)()) return undefined;
  const presented = Buffer.from(sha256(m[2]!), "hex");
  const expected = Buffer.from(stored.hash, "hex");
  if (expected.length !== presented.length || !timingSafeEqual(presented, expected)) return undefined;
  return { prefix: stored.prefix, admin: false, principal: `key:${stored.id}` };
}

/** The `authenticate(header)` the chat app takes in local mode: the API token or a live key. */
export function keyAuthenticator(opts: {
  getToken: () => Promise<string | undefined>;
  keys?: ApiKeyStore;
}): (authorizationHeader: string | undefined) => Promise<Scope | undefined> {
  return async (header) =>
    scopeOfBearer(bearerToken(header), { adminToken: await opts.getToken(), keys: opts.keys });
}

/** Key records in a DynamoDB table whose partition key is `id` (lib/chat-api.ts creates it). */
export class DynamoApiKeyStore implements ApiKeyStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(id: string): Promise<StoredKey | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { id } }));
    return out.Item as StoredKey | undefined;
  }

  async put(key: StoredKey): Promise<void> {
    await this.client.send(
      new PutCommand({
        TableName: this.tableName,
        Item: key,
        ConditionExpression: "attribute_not_exists(id)",
      }),
    );
  }

  async list(): Promise<StoredKey[]> {
    const items: StoredKey[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new ScanCommand({ TableName: this.tableName, ExclusiveStartKey: start }),
      );
      items.push(...((page.Items ?? []) as StoredKey[]));
      start = page.LastEvaluatedKey;
    } while (start);
    return items.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async revoke(id: string, at: string): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { id },
          UpdateExpression: "SET revokedAt = if_not_exists(revokedAt, :at)",
          ConditionExpression: "attribute_exists(id)",
          ExpressionAttributeValues: { ":at": at },
        }),
      );
      return true;
    } catch (err) {
      if ((err as Error).name === "ConditionalCheckFailedException") return false;
      throw err;
    }
  }
}
