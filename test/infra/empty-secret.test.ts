/**
 * The contract between PipelineSecrets (the Moonshot key secret is created WITHOUT a value) and the
 * runtime reader (functions/core/runtime/secrets.ts): until the user stores the key, reading it must
 * mean "not configured" (ingestion fails the document with that reason, chat answers 503), while any
 * other Secrets Manager failure still surfaces.
 */
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

const sm = mockClient(SecretsManagerClient);
const saved = { ...process.env };
let getMoonshotApiKey: () => Promise<string | undefined>;

beforeAll(async () => {
  process.env.AWS_REGION = "us-east-1";
  delete process.env.MOONSHOT_API_KEY;
  process.env.MOONSHOT_API_KEY_SECRET =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:kdp-moonshot-AbCdEf";
  ({ getMoonshotApiKey } = await import("../../functions/core/runtime/secrets"));
});
afterAll(() => {
  process.env = saved;
  sm.restore();
});
beforeEach(() => sm.reset());

describe("Moonshot key secret created without a value", () => {
  it("reads as not configured (undefined), not as an error", async () => {
    sm.on(GetSecretValueCommand).rejects(
      new ResourceNotFoundException({
        message: "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
        $metadata: {},
      }),
    );
    await expect(getMoonshotApiKey()).resolves.toBeUndefined();
  });

  it("still throws on other failures (for example a missing permission)", async () => {
    sm.on(GetSecretValueCommand).rejects(
      Object.assign(new Error("not allowed"), { name: "AccessDeniedException" }),
    );
    await expect(getMoonshotApiKey()).rejects.toThrow(/not allowed/);
  });

  it("returns the stored key once the user has filled the secret", async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: "  sk-test-value \n" });
    await expect(getMoonshotApiKey()).resolves.toBe("sk-test-value");
  });
});
