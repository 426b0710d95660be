/**
 * The ingest Lambda's configuration, read and checked once at cold start (a bad value fails loudly,
 * naming every offending variable).
 */
import { z } from "zod";
import { ENV } from "../config";
import { DEFAULT_INGEST_CONFIG, type IngestConfig } from "./service";

/** Environment variables only ingestion reads (the constructs set MAX_RECEIVE_COUNT). */
export const INGEST_ENV = {
  /** The queue's redrive maxReceiveCount; the delivery that reaches it marks the document failed. */
  MAX_RECEIVE_COUNT: "MAX_RECEIVE_COUNT",
  /** S3 records processed at once within one batch. */
  INGEST_CONCURRENCY: "INGEST_CONCURRENCY",
  /** Largest object accepted (bytes); default and ceiling: the provider's 100 MB. */
  INGEST_MAX_FILE_BYTES: "INGEST_MAX_FILE_BYTES",
} as const;

const optionalInt = (fallback: number, min: number, max: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : undefined),
    z.number().int().min(min).max(max).default(fallback),
  );

const optionalFraction = z.preprocess(
  (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : undefined),
  z.number().gt(0).lte(1).optional(),
);

const schema = z.object({
  [ENV.TABLE_NAME]: z.string().trim().min(1, "TABLE_NAME is required"),
  [INGEST_ENV.MAX_RECEIVE_COUNT]: optionalInt(DEFAULT_INGEST_CONFIG.maxReceiveCount, 1, 1000),
  [INGEST_ENV.INGEST_CONCURRENCY]: optionalInt(DEFAULT_INGEST_CONFIG.concurrency, 1, 64),
  [INGEST_ENV.INGEST_MAX_FILE_BYTES]: optionalInt(
    DEFAULT_INGEST_CONFIG.maxFileBytes,
    1,
    DEFAULT_INGEST_CONFIG.maxFileBytes,
  ),
  [ENV.HIGH_WATER_MARK]: optionalFraction,
});

export interface IngestEnvironment {
  tableName: string;
  config: IngestConfig;
  /** For the quota room maker's policy (the janitor's high-water mark). */
  highWaterMark?: number;
}

/** Reads the ingest environment; throws one error listing every invalid variable. */
export function loadIngestEnvironment(env: NodeJS.ProcessEnv = process.env): IngestEnvironment {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`ingest configuration is invalid: ${issues}`);
  }
  const e = parsed.data;
  return {
    tableName: e[ENV.TABLE_NAME],
    highWaterMark: e[ENV.HIGH_WATER_MARK],
    config: {
      ...DEFAULT_INGEST_CONFIG,
      maxReceiveCount: e[INGEST_ENV.MAX_RECEIVE_COUNT],
      concurrency: e[INGEST_ENV.INGEST_CONCURRENCY],
      maxFileBytes: e[INGEST_ENV.INGEST_MAX_FILE_BYTES],
    },
  };
}

/** Time kept back from the Lambda deadline for provider retries: writes and the response still fit. */
export function safetyMarginMs(remainingMs: number): number {
  return Math.min(30_000, Math.max(3_000, Math.floor(remainingMs * 0.1)));
}
