/**
 * The provider a provider-neutral test runs against: TEST_PROVIDER (moonshot, the default, or glm).
 * vitest.config.ts runs the provider-neutral integration files twice, once per provider (the "glm"
 * project sets TEST_PROVIDER=glm), so one test body covers both adapters and both emulator profiles.
 */
import { GlmClient } from "../../functions/core/glm/adapter";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import type { ProviderClient, ProviderClientOptions } from "../../functions/core/provider/client";
import {
  PROVIDER_NAMES,
  PROVIDER_PROFILES,
  type ProviderName,
  type ProviderProfile,
} from "../../functions/core/provider/profiles";

function fromEnv(): ProviderName {
  const name = process.env.TEST_PROVIDER?.trim() || "moonshot";
  if (!(PROVIDER_NAMES as readonly string[]).includes(name))
    throw new Error(`TEST_PROVIDER=${name}: use one of ${PROVIDER_NAMES.join(", ")}`);
  return name as ProviderName;
}

export const TEST_PROVIDER: ProviderName = fromEnv();
export const TEST_PROFILE: ProviderProfile = PROVIDER_PROFILES[TEST_PROVIDER];
export const isGlm = TEST_PROVIDER === "glm";

/**
 * The test provider's client (its adapter), on an emulator's or a scripted server's base URL. `models`
 * are GLM's configured windows (Moonshot lists its models itself).
 */
export function testClient(
  options: ProviderClientOptions & { models?: Readonly<Record<string, number>> },
): ProviderClient {
  const { models, ...rest } = options;
  return isGlm ? new GlmClient({ ...rest, models }) : new MoonshotClient(rest);
}

/** The environment the handlers read for the test provider (PROVIDER, base URL, key). */
export function providerEnv(baseURL: string, apiKey: string): Record<string, string> {
  return { PROVIDER: TEST_PROVIDER, [TEST_PROFILE.env.baseUrl]: baseURL, [TEST_PROFILE.env.apiKey]: apiKey };
}
