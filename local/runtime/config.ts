/**
 * `npm start` configuration: environment variables with defaults, checked once at start so a typo
 * fails with a message that names the variable.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { DEPLOYMENT_ID_PATTERN } from "../../functions/core/janitor/ownership";
import { PROVIDER_NAMES, PROVIDER_PROFILES, type ProviderName } from "../../functions/core/provider/profiles";

export interface LocalConfig {
  /** Chat API port (0 = any free port). */
  port: number;
  /** Local S3 port (0 = any free port). */
  s3Port: number;
  /** Local DynamoDB port (0 = any free port). */
  dynamoPort: number;
  /** Provider emulator port (0 = any free port); unused when a real key is configured. */
  emulatorPort: number;
  bucket: string;
  tableName: string;
  region: string;
  /** Absolute path of the folder holding S3 objects, DynamoDB data, emulator state and the token. */
  dataDir: string;
  /** Absolute path of the drop folder, or undefined when disabled (`DROP_DIR=off`). */
  dropDir?: string;
  /** The model provider (PROVIDER): moonshot (default) or glm. */
  provider: ProviderName;
  /** Set when the user brought a real key (MOONSHOT_API_KEY or GLM_API_KEY): no emulator is started. */
  providerApiKey?: string;
  /** The real service's base URL (MOONSHOT_BASE_URL or GLM_BASE_URL); unset: its public endpoint. */
  providerBaseUrl?: string;
  /** Seconds between janitor sweeps; 0 disables them. */
  janitorIntervalSeconds: number;
  ingest: {
    batchSize: number;
    batchWindowMs: number;
    maxConcurrency: number;
    functionTimeoutMs: number;
    maxReceiveCount: number;
  };
  /** API token from the environment (otherwise read from or generated into DATA_DIR). */
  apiToken?: string;
  /**
   * Names this installation's remote files (`kdp-<id>-...`) so its janitor deletes only those: from
   * DEPLOYMENT_ID, otherwise generated once into DATA_DIR/deployment-id.
   */
  deploymentId?: string;
}

/**
 * Credentials for the local servers: s3rver accepts only its built-in key pair (and checks
 * signatures), dynalite accepts any.
 */
export const LOCAL_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } as const;

/** A configuration mistake, reported without a stack trace. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(`${name}=${raw} is not valid: expected a whole number from ${min} to ${max}`);
  return value;
}

const BUCKET_NAME = /^(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

/** Reads the configuration from `env` (process.env by default), resolving paths against `cwd`. */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): LocalConfig {
  const bucket = env.BUCKET?.trim() || "documents";
  if (!BUCKET_NAME.test(bucket) || bucket.includes(".."))
    throw new ConfigError(
      `BUCKET=${bucket} is not a valid S3 bucket name (3-63 lower-case letters, digits, dots, dashes)`,
    );
  const tableName = env.TABLE_NAME?.trim() || "kdp-documents";
  if (!TABLE_NAME.test(tableName))
    throw new ConfigError(
      `TABLE_NAME=${tableName} is not a valid DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)`,
    );
  const dropRaw = env.DROP_DIR?.trim();
  const functionTimeoutSeconds = int(env, "INGEST_TIMEOUT_SECONDS", 300, 1, 900);
  const provider = env.PROVIDER?.trim() || "moonshot";
  if (!(PROVIDER_NAMES as readonly string[]).includes(provider))
    throw new ConfigError(`PROVIDER=${provider} is not valid: use one of ${PROVIDER_NAMES.join(", ")}`);
  const profile = PROVIDER_PROFILES[provider as ProviderName];
  const apiKey = env[profile.env.apiKey]?.trim();
  const baseUrl = env[profile.env.baseUrl]?.trim();
  if (baseUrl && !/^https?:\/\/[^\s/]+/.test(baseUrl))
    throw new ConfigError(
      `${profile.env.baseUrl}=${baseUrl} is not valid: expected a URL such as ${profile.defaultBaseUrl}`,
    );
  const deploymentId = env.DEPLOYMENT_ID?.trim() || undefined;
  if (deploymentId !== undefined && !DEPLOYMENT_ID_PATTERN.test(deploymentId))
    throw new ConfigError(
      `DEPLOYMENT_ID=${deploymentId} is not valid: expected 4-24 lower-case letters and digits`,
    );
  return {
    port: int(env, "PORT", 3000, 0, 65535),
    s3Port: int(env, "S3_PORT", 4569, 0, 65535),
    dynamoPort: int(env, "DYNAMO_PORT", 0, 0, 65535),
    emulatorPort: int(env, "EMULATOR_PORT", 0, 0, 65535),
    bucket,
    tableName,
    region: env.AWS_REGION?.trim() || "us-east-1",
    dataDir: resolve(cwd, env.DATA_DIR?.trim() || ".data"),
    dropDir: dropRaw === "off" || dropRaw === "false" ? undefined : resolve(cwd, dropRaw || "inbox"),
    provider: profile.name,
    providerApiKey: apiKey || undefined,
    providerBaseUrl: baseUrl || undefined,
    janitorIntervalSeconds: int(env, "JANITOR_INTERVAL_SECONDS", 300, 0, 7 * 24 * 3600),
    ingest: {
      batchSize: int(env, "INGEST_BATCH_SIZE", 10, 1, 10_000),
      batchWindowMs: int(env, "INGEST_BATCH_WINDOW_MS", 200, 0, 300_000),
      maxConcurrency: int(env, "INGEST_MAX_CONCURRENCY", 2, 1, 1000),
      functionTimeoutMs: functionTimeoutSeconds * 1000,
      maxReceiveCount: int(env, "MAX_RECEIVE_COUNT", 5, 1, 1000),
    },
    apiToken: env.API_TOKEN?.trim() || undefined,
    deploymentId,
  };
}

/** Paths inside DATA_DIR. */
export const dataPaths = (dataDir: string) => ({
  s3: join(dataDir, "s3"),
  dynamo: join(dataDir, "dynamodb"),
  emulator: join(dataDir, "emulator"),
  /** The GLM emulator's files (each provider keeps its own account). */
  emulatorGlm: join(dataDir, "emulator-glm"),
  token: join(dataDir, "api-token"),
  deploymentId: join(dataDir, "deployment-id"),
  emulatorKey: join(dataDir, "emulator-key"),
  queue: join(dataDir, "queue.json"),
  dropLedger: join(dataDir, "drop-ledger.json"),
  runtime: join(dataDir, "runtime.json"),
});

/**
 * Returns a persistent secret stored at `path` (mode 0600), generating one the first time, so a
 * restart keeps the same token. `source` says where it came from, for the start-up banner.
 */
export async function persistentSecret(
  path: string,
  prefix: string,
): Promise<{ value: string; source: "generated" | "file" }> {
  try {
    const existing = (await readFile(path, "utf8")).trim();
    if (existing) return { value: existing, source: "file" };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const value = `${prefix}${randomBytes(24).toString("base64url")}`;
  await writeFileAtomic(path, `${value}\n`, 0o600);
  return { value, source: "generated" };
}

/**
 * This installation's deployment id, generated once into `path` (`l` + 11 random base-36 characters)
 * and kept, so every restart names its remote files the same way and still recognises them.
 */
export async function persistentDeploymentId(path: string): Promise<string> {
  try {
    const existing = (await readFile(path, "utf8")).trim();
    if (DEPLOYMENT_ID_PATTERN.test(existing)) return existing;
    if (existing) throw new ConfigError(`${path} does not hold a deployment id (4-24 of a-z 0-9)`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  const id = `l${[...randomBytes(11)].map((b) => alphabet[b % 36]).join("")}`;
  await writeFileAtomic(path, `${id}\n`);
  return id;
}

/** Writes a file through a temporary sibling and a rename, so a crash never leaves half a file. */
export async function writeFileAtomic(path: string, data: string, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, data, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export async function ensureDirs(...dirs: string[]): Promise<void> {
  for (const dir of dirs) await mkdir(dir, { recursive: true });
}

/** What `npm start` writes to DATA_DIR/runtime.json for the CLI (removed on a clean shutdown). */
export interface RuntimeInfo {
  pid: number;
  startedAt: string;
  apiUrl: string;
  token: string;
  s3Endpoint: string;
  bucket: string;
  region: string;
  dropDir?: string;
  /** The model provider (moonshot or glm). */
  provider: ProviderName;
  /** The provider endpoint in use: the emulator's URL, or the real provider's. */
  providerBaseUrl: string;
  emulator: boolean;
  /** The web console, when its assets are built (web/dist). */
  consoleUrl?: string;
}
