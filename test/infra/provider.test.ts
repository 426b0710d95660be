/**
 * The provider choice at synth: `provider: "glm"` (or `-c provider=glm`) gives every function GLM's
 * variables and only the GLM key secret, GLM's default model, the configured model windows to the chat
 * function, alarms and dashboard at GLM's 100-file quota, and outputs that say which key to store.
 * Moonshot stays the default (its secret keeps its logical id).
 */
import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ENV } from "../../functions/core/config";
import { PROVIDER_PROFILES } from "../../functions/core/provider/profiles";
import { JANITOR_METRICS } from "../../lib/defaults";
import type { PipelineFunction } from "../../lib/function";
import type { PipelineStack } from "../../lib/pipeline-stack";
import { logicalId, type Resources, synthPipeline } from "./synth";

let template: Template;
let stack: PipelineStack;
let resources: Resources;

beforeAll(() => {
  ({ template, stack } = synthPipeline({ provider: "glm", models: { "glm-4.6": 200_000, "glm-z": 32_000 } }));
  resources = template.toJSON().Resources;
});

const envOf = (fn: PipelineFunction): Record<string, unknown> =>
  resources[logicalId(fn)]!.Properties.Environment.Variables;

describe("provider glm", () => {
  it("hands every provider-facing function PROVIDER=glm, GLM's base URL and the GLM key secret's ARN", () => {
    const secret = { Ref: logicalId(stack.pipeline.secrets.providerApiKey) };
    expect(logicalId(stack.pipeline.secrets.providerApiKey)).toMatch(/GlmApiKey/);
    const { ingestion, chatApi, janitor } = stack.pipeline;
    for (const fn of [ingestion.function, chatApi.function, janitor.function]) {
      const env = envOf(fn);
      expect(env[ENV.PROVIDER]).toBe("glm");
      expect(env[ENV.GLM_BASE_URL]).toBe("https://open.bigmodel.cn/api/paas/v4");
      expect(env[ENV.GLM_API_KEY_SECRET]).toEqual(secret);
      expect(env[ENV.MOONSHOT_API_KEY_SECRET]).toBeUndefined();
      expect(env[ENV.MOONSHOT_BASE_URL]).toBeUndefined();
      expect(env[ENV.GLM_API_KEY]).toBeUndefined();
    }
    expect(envOf(chatApi.authorizerFunction)[ENV.PROVIDER]).toBeUndefined();
    template.resourceCountIs("AWS::SecretsManager::Secret", 2);
  });

  it("defaults the chat model to GLM's and passes the model windows (the profile's plus the configured)", () => {
    const env = envOf(stack.pipeline.chatApi.function);
    expect(env[ENV.MODEL]).toBe("glm-4.6");
    const windows = String(env[ENV.MODEL_WINDOWS]).split(",");
    expect(windows).toContain("glm-4.6=200000");
    expect(windows).toContain("glm-z=32000");
    expect(windows).toContain("glm-4.5-air=128000");
    expect(envOf(stack.pipeline.janitor.function)[ENV.MODEL_WINDOWS]).toBeUndefined();
  });

  it("alarms and dashboard measure against GLM's 100-file quota", () => {
    expect(stack.pipeline.janitor.quota).toEqual({
      files: 100,
      bytes: PROVIDER_PROFILES.glm.limits.maxTotalBytes,
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: JANITOR_METRICS.remoteFiles,
      Threshold: 90,
    });
    const dashboard = Object.values(resources).find((r) => r.Type === "AWS::CloudWatch::Dashboard")!;
    expect(JSON.stringify(dashboard.Properties.DashboardBody)).toContain('\\"value\\":90');
  });

  it("outputs name the GLM key secret and fill it from $GLM_API_KEY; the description names GLM", () => {
    const outputs = template.toJSON().Outputs;
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining(["GlmApiKeySecretName", "FillGlmApiKeyCommand"]),
    );
    expect(outputs).not.toHaveProperty("MoonshotApiKeySecretName");
    expect(JSON.stringify(outputs.FillGlmApiKeyCommand.Value)).toContain(
      '--secret-string \\"$GLM_API_KEY\\"',
    );
    expect(template.toJSON().Description).toBe(
      "Document pipeline: S3 -> Zhipu GLM Files API -> DynamoDB, with a chat API",
    );
    const secret = resources[logicalId(stack.pipeline.secrets.providerApiKey)]!.Properties;
    expect(secret.Description).toMatch(/^Zhipu GLM API key/);
    expect(secret.GenerateSecretString).toBeUndefined();
  });

  it("-c provider=glm -c models=... selects it from CDK context, -c providerBaseUrl picks Z.ai", () => {
    const { stack: s, template: t } = synthPipeline(undefined, {
      provider: "glm",
      models: "glm-4.6=150000",
      providerBaseUrl: "https://api.z.ai/api/paas/v4",
    });
    const env = t.toJSON().Resources[logicalId(s.pipeline.chatApi.function)].Properties.Environment.Variables;
    expect(env[ENV.PROVIDER]).toBe("glm");
    expect(env[ENV.GLM_BASE_URL]).toBe("https://api.z.ai/api/paas/v4");
    expect(env[ENV.MODEL_WINDOWS]).toContain("glm-4.6=150000");
    expect(() => synthPipeline(undefined, { provider: "glm", models: "glm-4.6" })).toThrow(
      /context models: "glm-4.6" is not a model context window/,
    );
    expect(() => synthPipeline(undefined, { provider: "zhipu" })).toThrow(/provider must be one of/);
  });
});

describe("provider moonshot (the default)", () => {
  it("keeps the Moonshot key secret's logical id and Moonshot's variables, quota and outputs", () => {
    const { stack: s, template: t } = synthPipeline({});
    expect(logicalId(s.pipeline.secrets.providerApiKey)).toMatch(/MoonshotApiKey/);
    const env =
      t.toJSON().Resources[logicalId(s.pipeline.ingestion.function)].Properties.Environment.Variables;
    expect(env[ENV.PROVIDER]).toBe("moonshot");
    expect(env[ENV.MOONSHOT_BASE_URL]).toBe("https://api.moonshot.ai/v1");
    expect(s.pipeline.janitor.quota.files).toBe(1000);
    expect(Object.keys(t.toJSON().Outputs)).toContain("FillMoonshotApiKeyCommand");
  });
});
