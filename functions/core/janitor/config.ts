/**
 * The janitor Lambda's configuration, read and checked once at cold start, and the event's `dryRun`.
 */
import { z } from "zod";
import { ENV } from "../config";
import { DEFAULT_POLICY, type JanitorPolicyConfig, validatePolicyConfig } from "./policy";

const optionalNumber = (fallback: number) =>
  z.preprocess(
    (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : undefined),
    z.number().default(fallback),
  );

const flag = z.preprocess((v) => {
  if (typeof v === "boolean") return v;
  if (typeof v !== "string" || v.trim() === "") return undefined;
  return v.trim().toLowerCase();
}, z
  .union([z.boolean(), z.enum(["true", "false", "1", "0"]).transform((s) => s === "true" || s === "1")])
  .optional());

const envSchema = z.object({
  [ENV.TABLE_NAME]: z.string().trim().min(1, "TABLE_NAME is required"),
  [ENV.RETENTION_HOURS]: optionalNumber(DEFAULT_POLICY.retentionHours),
  [ENV.HIGH_WATER_MARK]: optionalNumber(DEFAULT_POLICY.highWaterMark),
  [ENV.DRY_RUN]: flag,
});

const eventSchema = z
  .object({ dryRun: flag, detail: z.object({ dryRun: flag }).passthrough().optional().catch(undefined) })
  .passthrough();

export interface JanitorConfig {
  tableName: string;
  dryRun: boolean;
  policy: JanitorPolicyConfig;
}

/** Reads and checks the janitor's environment; throws one error naming every bad variable. */
export function loadJanitorConfig(env: NodeJS.ProcessEnv = process.env): JanitorConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new Error(`janitor configuration is invalid: ${issues}`);
  }
  const e = parsed.data;
  const policy = validatePolicyConfig({
    ...DEFAULT_POLICY,
    retentionHours: e[ENV.RETENTION_HOURS],
    highWaterMark: e[ENV.HIGH_WATER_MARK],
  });
  return { tableName: e[ENV.TABLE_NAME], dryRun: e[ENV.DRY_RUN] ?? false, policy };
}

/** `dryRun` from the event (top level, then `detail`), else the environment's default. */
export function dryRunFromEvent(event: unknown, fallback: boolean): boolean {
  const parsed = eventSchema.safeParse(event ?? {});
  if (!parsed.success) return fallback;
  return parsed.data.dryRun ?? parsed.data.detail?.dryRun ?? fallback;
}
