/**
 * Entry point of the provider adapter: the port, its errors, the client and a factory wired to the
 * environment (MOONSHOT_BASE_URL) and the cached secret reader (MOONSHOT_API_KEY locally, Secrets
 * Manager in AWS).
 */
import { DEFAULT_MOONSHOT_BASE_URL, ENV } from "../config";
import { MoonshotClient, type MoonshotClientOptions } from "../moonshot/adapter";
import { getMoonshotApiKey } from "../runtime/secrets";

export * from "../moonshot/adapter";
export * from "./client";
export * from "./errors";
export { DEFAULT_RETRY_POLICY, EXTRACTION_RETRY_LIMIT } from "./retry";
export * from "./types";

/**
 * A client configured from the environment. The key is not read here but on each call (through the
 * secrets cache), so a cold start does not fail before the first request and a rotated key is picked up.
 * `overrides` is for callers that add a metrics hook or a tighter retry policy.
 */
export function moonshotFromEnv(
  overrides: Partial<Omit<MoonshotClientOptions, "apiKey">> = {},
): MoonshotClient {
  const fromEnv = process.env[ENV.MOONSHOT_BASE_URL]?.trim();
  return new MoonshotClient({
    baseURL: fromEnv || DEFAULT_MOONSHOT_BASE_URL,
    apiKey: getMoonshotApiKey,
    ...overrides,
  });
}
