/**
 * The janitor Lambda's configuration, read and checked once at cold start, and the event's `dryRun`.
 */
import { ENV } from "../config";
import { type ProviderSettings, providerSettingsFromEnv } from "../provider/index";
import { EnvReader, parseFlag } from "../runtime/env";
import { checkDeploymentId } from "./ownership";
import { DEFAULT_POLICY, type JanitorPolicyConfig, validatePolicyConfig } from "./policy";
import { DEFAULT_STUCK_PROCESSING_MINUTES } from "./stuck";

export interface JanitorConfig {
  tableName: string;
  dryRun: boolean;
  policy: JanitorPolicyConfig;
  /** Minutes after which a `processing` document is marked failed (stuck.ts). */
  stuckProcessingMinutes: number;
  /** The provider whose files are swept; its account limits are `policy.limits`. */
  provider: ProviderSettings;
}

/** Reads and checks the janitor's environment; throws one error naming every bad variable. */
export function loadJanitorConfig(env: NodeJS.ProcessEnv = process.env): JanitorConfig {
  const provider = providerSettingsFromEnv(env);
  const r = new EnvReader(env);
  const tableName = r.requiredString(ENV.TABLE_NAME);
  const deploymentId = r.requiredString(ENV.DEPLOYMENT_ID);
  const retentionHours = r.number(ENV.RETENTION_HOURS, DEFAULT_POLICY.retentionHours);
  const highWaterMark = r.number(ENV.HIGH_WATER_MARK, DEFAULT_POLICY.highWaterMark);
  const dryRun = r.flag(ENV.DRY_RUN);
  // At most a year: beyond that "stuck" detection is effectively off, which a typo should not do.
  const stuckProcessingMinutes = r.number(ENV.STUCK_PROCESSING_MINUTES, DEFAULT_STUCK_PROCESSING_MINUTES, {
    min: 1,
    max: 525_600,
  });
  r.done("janitor");
  // Ranges (and their messages) are the policy's own checks, shared with the room maker.
  const policy = validatePolicyConfig({
    ...DEFAULT_POLICY,
    retentionHours,
    highWaterMark,
    limits: provider.limits,
    deploymentId: checkDeploymentId(deploymentId, ENV.DEPLOYMENT_ID),
  });
  return { tableName, dryRun: dryRun ?? false, policy, stuckProcessingMinutes, provider };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * `dryRun` from the event (top level, then `detail`), else the environment's default. A top-level flag
 * that is not a boolean-like value makes the whole event fall back; a bad `detail` is ignored.
 */
export function dryRunFromEvent(event: unknown, fallback: boolean): boolean {
  const e = event ?? {};
  if (!isObject(e)) return fallback;
  const top = parseFlag(e.dryRun);
  if (top === "invalid") return fallback;
  if (top !== undefined) return top;
  const inDetail = isObject(e.detail) ? parseFlag(e.detail.dryRun) : undefined;
  return inDetail === undefined || inDetail === "invalid" ? fallback : inDetail;
}
