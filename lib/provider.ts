/**
 * The model provider as the constructs see it: which one (provider/profiles.ts says what follows from
 * the choice), the secret holding its key, its endpoint, and, for a provider without a model list
 * (GLM), the context windows of the models the chat API offers.
 */
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import {
  PROVIDER_PROFILES,
  type ProviderName,
  type ProviderProfile,
} from "../functions/core/provider/profiles";

export { PROVIDER_NAMES, PROVIDER_PROFILES, type ProviderName } from "../functions/core/provider/profiles";

export interface ProviderConnection {
  /** Moonshot (Kimi) or Zhipu GLM. */
  readonly name: ProviderName;
  /** Secret holding the provider's API key (functions get its ARN, never its value). */
  readonly apiKey: ISecret;
  /**
   * API base URL.
   * @default - the provider's public endpoint (https://api.moonshot.ai/v1, https://open.bigmodel.cn/api/paas/v4)
   */
  readonly baseUrl?: string;
  /**
   * Context windows of the offered models (GLM publishes no model list).
   * @default - the provider profile's table
   */
  readonly models?: Readonly<Record<string, number>>;
}

/** The provider's profile (endpoints, variables, limits, default model). */
export const profileOf = (connection: ProviderConnection): ProviderProfile =>
  PROVIDER_PROFILES[connection.name];

/** `id=tokens,...`, the MODEL_WINDOWS format. */
export const formatModelWindows = (models: Readonly<Record<string, number>>): string =>
  Object.entries(models)
    .map(([id, tokens]) => `${id}=${tokens}`)
    .join(",");
