/**
 * Entry point of the provider port: the port, its errors, the adapters, and a factory wired to the
 * environment: PROVIDER picks the adapter (moonshot by default, or glm), whose own variables give the
 * base URL (MOONSHOT_BASE_URL / GLM_BASE_URL) and the key through the cached secret reader
 * (MOONSHOT_API_KEY / GLM_API_KEY locally, the *_API_KEY_SECRET in AWS).
 */

import { ENV } from "../config";
import { GlmClient } from "../glm/adapter";
import { MoonshotClient } from "../moonshot/adapter";
import { EnvReader } from "../runtime/env";
import { providerApiKeyReader } from "../runtime/secrets";
import type { ProviderClient, ProviderClientOptions } from "./client";
import {
  type ProviderLimits,
  type ProviderName,
  type ProviderProfile,
  parseModelWindows,
  providerProfile,
} from "./profiles";

export * from "../glm/adapter";
export * from "../moonshot/adapter";
export * from "./client";
export * from "./errors";
export * from "./profiles";
export { DEFAULT_RETRY_POLICY, EXTRACTION_RETRY_LIMIT } from "./retry";
export * from "./types";

/** The provider choice as the environment states it, checked. */
export interface ProviderSettings {
  profile: ProviderProfile;
  baseURL: string;
  /** Context windows (GLM: MODEL_WINDOWS, else the profile's table; Moonshot lists its own). */
  models?: Readonly<Record<string, number>>;
  /** The account limits the janitor and the room maker plan against (PROVIDER_MAX_FILES applied). */
  limits: ProviderLimits;
}

/**
 * Reads PROVIDER, the provider's base URL, MODEL_WINDOWS and PROVIDER_MAX_FILES; throws one error
 * naming every bad variable (handlers call it at cold start, so a typo fails loudly, not later).
 */
export function providerSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ProviderSettings {
  const r = new EnvReader(env);
  const name = r.optionalString(ENV.PROVIDER) ?? "moonshot";
  let profile: ProviderProfile;
  try {
    profile = providerProfile(name);
  } catch (err) {
    throw new Error(`provider configuration is invalid: ${ENV.PROVIDER}: ${(err as Error).message}`);
  }
  const baseURL = r.optionalString(profile.env.baseUrl) ?? profile.defaultBaseUrl;
  let models: Readonly<Record<string, number>> | undefined = profile.models;
  const windows = r.optionalString(ENV.MODEL_WINDOWS);
  const problems: string[] = [];
  if (windows !== undefined) {
    try {
      models = parseModelWindows(windows);
    } catch (err) {
      problems.push(`${ENV.MODEL_WINDOWS}: ${(err as Error).message}`);
    }
  }
  if (!/^https?:\/\/[^\s/]+/.test(baseURL))
    problems.push(`${profile.env.baseUrl}: expected a URL, got "${baseURL}"`);
  const maxFiles = r.number(ENV.PROVIDER_MAX_FILES, profile.limits.maxFiles, { int: true, min: 1 });
  r.done("provider");
  if (problems.length > 0) throw new Error(`provider configuration is invalid: ${problems.join("; ")}`);
  return { profile, baseURL, models, limits: { ...profile.limits, maxFiles } };
}

/**
 * A client for the configured provider. The key is not read here but on each call (through the
 * secrets cache), so a cold start does not fail before the first request and a rotated key is picked up.
 * `overrides` is for callers that add a metrics hook or a tighter retry policy.
 */
export function providerFromEnv(
  overrides: Partial<Omit<ProviderClientOptions, "apiKey">> = {},
  settings: ProviderSettings = providerSettingsFromEnv(),
): ProviderClient & { readonly provider: ProviderName } {
  const options: ProviderClientOptions = {
    baseURL: settings.baseURL,
    apiKey: providerApiKeyReader(settings.profile),
    ...overrides,
  };
  return settings.profile.name === "glm"
    ? new GlmClient({ ...options, models: settings.models })
    : new MoonshotClient(options);
}
