/**
 * The ingest Lambda's configuration, read and checked once at cold start (a bad value fails loudly,
 * naming every offending variable).
 */
import { ENV } from "../config";
import { checkDeploymentId } from "../janitor/ownership";
import { type ProviderSettings, providerSettingsFromEnv } from "../provider/index";
import { EnvReader } from "../runtime/env";
import { DEFAULT_INGEST_CONFIG, type IngestConfig } from "./service";

/** Environment variables only ingestion reads (the constructs set MAX_RECEIVE_COUNT and INGEST_CONCURRENCY). */
export const INGEST_ENV = {
  MAX_RECEIVE_COUNT: ENV.MAX_RECEIVE_COUNT,
  INGEST_CONCURRENCY: ENV.INGEST_CONCURRENCY,
  /** Largest object accepted (bytes); default and ceiling: the provider's per-file limit. */
  INGEST_MAX_FILE_BYTES: "INGEST_MAX_FILE_BYTES",
  /** Largest extracted text stored for one document (UTF-8 bytes); default 128 MiB. */
  INGEST_MAX_TEXT_BYTES: "INGEST_MAX_TEXT_BYTES",
} as const;

export interface IngestEnvironment {
  tableName: string;
  /** Names this deployment's uploads (DEPLOYMENT_ID; janitor/ownership.ts). */
  deploymentId: string;
  config: IngestConfig;
  /** For the quota room maker's policy (the janitor's high-water mark). */
  highWaterMark?: number;
  /** The provider and what follows from it (file rules, account limits). */
  provider: ProviderSettings;
}

/** Reads the ingest environment; throws one error listing every invalid variable. */
export function loadIngestEnvironment(env: NodeJS.ProcessEnv = process.env): IngestEnvironment {
  const provider = providerSettingsFromEnv(env);
  const r = new EnvReader(env);
  const d = { ...DEFAULT_INGEST_CONFIG, maxFileBytes: provider.profile.files.maxFileBytes };
  const tableName = r.requiredString(ENV.TABLE_NAME);
  const deploymentId = r.requiredString(ENV.DEPLOYMENT_ID);
  const maxReceiveCount = r.number(INGEST_ENV.MAX_RECEIVE_COUNT, d.maxReceiveCount, {
    int: true,
    min: 1,
    max: 1000,
  });
  const concurrency = r.number(INGEST_ENV.INGEST_CONCURRENCY, d.concurrency, { int: true, min: 1, max: 64 });
  const maxFileBytes = r.number(INGEST_ENV.INGEST_MAX_FILE_BYTES, d.maxFileBytes, {
    int: true,
    min: 1,
    max: d.maxFileBytes,
  });
  const maxTextBytes = r.number(INGEST_ENV.INGEST_MAX_TEXT_BYTES, d.maxTextBytes, {
    int: true,
    min: 1,
    max: 1024 * 1024 * 1024,
  });
  const highWaterMark = r.number(ENV.HIGH_WATER_MARK, undefined, { above: 0, max: 1 });
  r.done("ingest");
  return {
    tableName,
    deploymentId: checkDeploymentId(deploymentId, ENV.DEPLOYMENT_ID),
    highWaterMark,
    provider,
    config: { ...d, files: provider.profile.files, maxReceiveCount, concurrency, maxFileBytes, maxTextBytes },
  };
}

/** Time kept back from the Lambda deadline for provider retries: writes and the response still fit. */
export function safetyMarginMs(remainingMs: number): number {
  return Math.min(30_000, Math.max(3_000, Math.floor(remainingMs * 0.1)));
}
