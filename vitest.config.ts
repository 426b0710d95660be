import { defineConfig } from "vitest/config";

/**
 * Provider-neutral integration tests that run a second time against the GLM profile (TEST_PROVIDER=glm,
 * test/support/provider.ts): ingestion, chat, the janitor, `npm start` with the CLI, and the short
 * soak, each through GLM's adapter and the emulator's GLM profile. Everything else (unit tests, the
 * adapters' own tests, CDK, the browser) runs once.
 */
const BOTH_PROVIDERS = [
  "test/ingest/ingest.integration.test.ts",
  "test/chat/integration.test.ts",
  "test/janitor/ingest.integration.test.ts",
  "test/janitor/sweep.integration.test.ts",
  "test/janitor/handler.test.ts",
  "test/local/npm-start.test.ts",
  "test/soak/soak.test.ts",
];

export default defineConfig({
  test: {
    // Integration tests start real local servers (S3, DynamoDB, the provider emulator) on 127.0.0.1.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    // The AWS SDK warns on every client that Node 20 support ends in 2027; Lambda runs Node 24.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    projects: [
      { extends: true, test: { name: "moonshot", include: ["test/**/*.test.ts"] } },
      { extends: true, test: { name: "glm", include: BOTH_PROVIDERS, env: { TEST_PROVIDER: "glm" } } },
    ],
  },
});
