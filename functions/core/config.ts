/**
 * Environment variable names shared by the CDK constructs (which set them), the Lambda handlers and
 * local mode (which read them). Read and validated once at cold start by each handler.
 */
export const ENV = {
  /** DynamoDB table holding documents and chunks. */
  TABLE_NAME: "TABLE_NAME",
  /** Documents bucket (the chat API's DELETE and presign routes use it). */
  BUCKET_NAME: "BUCKET_NAME",
  /** The model provider: `moonshot` (default) or `glm` (provider/profiles.ts says what follows). */
  PROVIDER: "PROVIDER",
  /** Chat: the key prefix presigned uploads are confined to (unset: the whole bucket). */
  UPLOAD_PREFIX: "UPLOAD_PREFIX",
  /** Moonshot API base URL, default https://api.moonshot.ai/v1. */
  MOONSHOT_BASE_URL: "MOONSHOT_BASE_URL",
  /** Local mode only: the key itself. In AWS the key is read from the secret named below. */
  MOONSHOT_API_KEY: "MOONSHOT_API_KEY",
  /** ARN or name of the Secrets Manager secret holding the Moonshot API key. */
  MOONSHOT_API_KEY_SECRET: "MOONSHOT_API_KEY_SECRET",
  /** Zhipu GLM API base URL, default https://open.bigmodel.cn/api/paas/v4. */
  GLM_BASE_URL: "GLM_BASE_URL",
  /** Local mode only: the GLM key itself. In AWS the key is read from the secret named below. */
  GLM_API_KEY: "GLM_API_KEY",
  /** ARN or name of the Secrets Manager secret holding the GLM API key. */
  GLM_API_KEY_SECRET: "GLM_API_KEY_SECRET",
  /**
   * Context windows of the offered models, `id=tokens,...`, for a provider without a model list (GLM);
   * unset: the provider profile's table.
   */
  MODEL_WINDOWS: "MODEL_WINDOWS",
  /**
   * Janitor/ingest: the account's file cap when it is not the provider's documented one (a raised
   * quota, or a test account held lower). Unset: the provider's (Moonshot 1,000, GLM 100).
   */
  PROVIDER_MAX_FILES: "PROVIDER_MAX_FILES",
  /** ARN or name of the Secrets Manager secret holding the chat API bearer token. */
  API_TOKEN_SECRET: "API_TOKEN_SECRET",
  /** Local mode only: the API bearer token itself. */
  API_TOKEN: "API_TOKEN",
  /** Table of scoped API keys (token mode): the authorizer reads it, the chat function manages it. */
  KEYS_TABLE_NAME: "KEYS_TABLE_NAME",
  /** Default chat model. */
  MODEL: "MODEL",
  /** Chat: most tokens of document text per answer when a request sets none (capped by the window). */
  MAX_CONTEXT_TOKENS: "MAX_CONTEXT_TOKENS",
  /** Chat: price overrides per model, JSON `{ "<model>": { input, cachedInput, output } }` (USD per million tokens). */
  MODEL_PRICES: "MODEL_PRICES",
  /** Janitor: hours a ready document's remote file is kept. */
  RETENTION_HOURS: "RETENTION_HOURS",
  /** Janitor/ingest: high-water mark as a fraction of the provider's file-count and byte quotas. */
  HIGH_WATER_MARK: "HIGH_WATER_MARK",
  /** Janitor: report instead of deleting. */
  DRY_RUN: "DRY_RUN",
  /**
   * Janitor: minutes after which a document still `processing` is marked failed (`retries_exhausted`):
   * its ingestion cannot finish any more (the queue's visibility timeout x maxReceiveCount).
   */
  STUCK_PROCESSING_MINUTES: "STUCK_PROCESSING_MINUTES",
  /**
   * Ingest/janitor: this deployment's id (4-24 of a-z 0-9). Every remote file ingestion uploads is
   * named `kdp-<id>-...`, and the janitor deletes only this deployment's files (janitor/ownership.ts).
   */
  DEPLOYMENT_ID: "DEPLOYMENT_ID",
  /** Ingest: the queue's redrive maxReceiveCount; the delivery that reaches it marks the document failed. */
  MAX_RECEIVE_COUNT: "MAX_RECEIVE_COUNT",
  /** Ingest: S3 records of one batch processed at once. */
  INGEST_CONCURRENCY: "INGEST_CONCURRENCY",
  /** Authorizer, JWT mode: the OIDC issuer URL (exactly as in the tokens' `iss`). Unset: token mode. */
  JWT_ISSUER: "JWT_ISSUER",
  /** Authorizer, JWT mode: accepted audiences (`aud` or `client_id`), comma-separated; required. */
  JWT_AUDIENCE: "JWT_AUDIENCE",
  /** Authorizer, JWT mode: the claim whose value is the caller's key prefix (e.g. `custom:tenant`). */
  JWT_TENANT_CLAIM: "JWT_TENANT_CLAIM",
  /** Authorizer, JWT mode: accepted Cognito `token_use` values, comma-separated (default id,access). */
  JWT_TOKEN_USE: "JWT_TOKEN_USE",
  /** Bucket holding the search index objects (chat reads, the indexer writes). */
  SEARCH_INDEX_BUCKET: "SEARCH_INDEX_BUCKET",
  /** Ingest: the indexer's FIFO queue, woken after a document's text changed (unset: no wake-up). */
  SEARCH_INDEX_QUEUE_URL: "SEARCH_INDEX_QUEUE_URL",
  /** Powertools. */
  POWERTOOLS_SERVICE_NAME: "POWERTOOLS_SERVICE_NAME",
  POWERTOOLS_METRICS_NAMESPACE: "POWERTOOLS_METRICS_NAMESPACE",
} as const;

export const DEFAULT_MOONSHOT_BASE_URL = "https://api.moonshot.ai/v1";
/** The default chat model of the default provider (each provider's is in provider/profiles.ts). */
export const DEFAULT_MODEL = "kimi-k2.6";
