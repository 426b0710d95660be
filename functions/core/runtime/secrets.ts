/**
 * Secrets, read with caching. In AWS the provider's API key and the API token live in Secrets Manager
 * (the construct passes the secret's ARN in an environment variable, never the value); local mode
 * passes the values themselves (MOONSHOT_API_KEY or GLM_API_KEY, and API_TOKEN).
 */
import { getSecret } from "@aws-lambda-powertools/parameters/secrets";
import { ENV } from "../config";
import type { ProviderProfile } from "../provider/profiles";

/** Seconds a secret value is cached in the warm Lambda before it is read again. */
const SECRET_MAX_AGE_SECONDS = 300;

/**
 * The construct creates the provider key secret WITHOUT a value (the user stores the key after deploy);
 * reading it then fails with ResourceNotFoundException (no AWSCURRENT version), which means "not
 * configured", not an outage. Powertools wraps the SDK error in GetParameterError (`cause`).
 */
function isMissingSecretValue(err: unknown): boolean {
  const cause = (err as { cause?: unknown } | undefined)?.cause ?? err;
  return (cause as { name?: unknown } | undefined)?.name === "ResourceNotFoundException";
}

async function readSecret(valueVar: string, secretVar: string): Promise<string | undefined> {
  const direct = process.env[valueVar];
  if (direct !== undefined && direct.trim() !== "") return direct.trim();
  const secretId = process.env[secretVar];
  if (!secretId) return undefined;
  let value: unknown;
  try {
    value = await getSecret<string>(secretId, { maxAge: SECRET_MAX_AGE_SECONDS });
  } catch (err) {
    if (isMissingSecretValue(err)) return undefined;
    throw err;
  }
  const text = typeof value === "string" ? value.trim() : "";
  return text === "" ? undefined : text;
}

/** The Moonshot API key, or undefined when none is configured (callers report "not configured"). */
export const getMoonshotApiKey = (): Promise<string | undefined> =>
  readSecret(ENV.MOONSHOT_API_KEY, ENV.MOONSHOT_API_KEY_SECRET);

/** A reader of the provider's API key: its own variables (`GLM_API_KEY`, `GLM_API_KEY_SECRET`...). */
export const providerApiKeyReader = (profile: ProviderProfile) => (): Promise<string | undefined> =>
  readSecret(profile.env.apiKey, profile.env.apiKeySecret);

/** The chat API's bearer token, or undefined when none is configured. */
export const getApiToken = (): Promise<string | undefined> => readSecret(ENV.API_TOKEN, ENV.API_TOKEN_SECRET);
