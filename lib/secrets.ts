/**
 * The pipeline's two secrets. Functions receive their ARNs (never values) and read them with caching.
 */
import { RemovalPolicy } from "aws-cdk-lib";
import { type CfnSecret, type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { acknowledge } from "./nag";
import { PROVIDER_PROFILES, type ProviderName } from "./provider";

export interface PipelineSecretsProps {
  /**
   * Whose API key the first secret holds.
   * @default "moonshot"
   */
  readonly provider?: ProviderName;
  /**
   * Create the chat API's bearer-token secret (token auth mode). JWT mode does not need one.
   * @default true
   */
  readonly createApiToken?: boolean;
  /**
   * Removal policy of both secrets.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * - `providerApiKey`: created WITHOUT a value; the user stores the provider's key after deploy
 *   (`aws secretsmanager put-secret-value --secret-id <name> --secret-string <key>`). Until then reading
 *   it fails with ResourceNotFoundException, which handlers report as "provider API key not configured".
 * - `apiToken`: generated at deploy (48 characters, no punctuation so it pastes into any shell or
 *   header), read by the authorizer and the chat function only.
 */
export class PipelineSecrets extends Construct {
  /**
   * Secret the user fills with the provider's API key. Its construct id names the provider
   * (`MoonshotApiKey`, `GlmApiKey`), so switching provider creates the other one instead of reusing a
   * secret that holds the wrong key.
   */
  public readonly providerApiKey: Secret;
  /** Which provider's key it holds. */
  public readonly provider: ProviderName;
  /** Generated bearer token of the chat API (token auth mode only). */
  public readonly apiToken?: Secret;

  constructor(scope: Construct, id: string, props: PipelineSecretsProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.provider = props.provider ?? "moonshot";
    const label = PROVIDER_PROFILES[this.provider].label;
    this.providerApiKey = new Secret(this, this.provider === "glm" ? "GlmApiKey" : "MoonshotApiKey", {
      description: `${label} API key used by the document pipeline. Created empty: store the key after deploy.`,
      removalPolicy,
    });
    // CDK's Secret always generates a random value when none is given; a random string would look like a
    // key and fail as 401 at the provider. Without GenerateSecretString and SecretString, CloudFormation
    // creates the secret with no value at all, which the handlers detect as "not configured".
    (this.providerApiKey.node.defaultChild as CfnSecret).addPropertyDeletionOverride("GenerateSecretString");
    acknowledge(
      this.providerApiKey,
      "AwsSolutions-SMG4",
      `Third-party ${label} API key: it can only be rotated in the provider's console, so there is no rotation Lambda to schedule; the README shows how to replace the value.`,
    );

    if (props.createApiToken ?? true) {
      this.apiToken = new Secret(this, "ApiToken", {
        description: "Bearer token of the document pipeline's chat API (generated at deploy).",
        generateSecretString: { excludePunctuation: true, includeSpace: false, passwordLength: 48 },
        removalPolicy,
      });
      acknowledge(
        this.apiToken,
        "AwsSolutions-SMG4",
        "Static bearer token shared with API clients: scheduled rotation would break every client at each rotation; it is replaced on demand (put-secret-value, see README) and the authorizer cache TTL bounds the switch-over.",
      );
    }
  }

  /** All secrets, for outputs and grants. */
  get all(): ISecret[] {
    return this.apiToken ? [this.providerApiKey, this.apiToken] : [this.providerApiKey];
  }
}
