/**
 * The provider choice as the handlers read it at cold start (PROVIDER and the chosen provider's own
 * variables), and what follows from it in the janitor's and ingestion's configuration.
 */
import { describe, expect, it } from "vitest";
import { GlmClient } from "../../functions/core/glm/adapter";
import { loadIngestEnvironment } from "../../functions/core/ingest/config";
import { loadJanitorConfig } from "../../functions/core/janitor/config";
import { MoonshotClient } from "../../functions/core/moonshot/adapter";
import { providerFromEnv, providerSettingsFromEnv } from "../../functions/core/provider/index";

describe("providerSettingsFromEnv", () => {
  it("defaults to Moonshot at its public endpoint, with its limits", () => {
    const s = providerSettingsFromEnv({});
    expect(s.profile.name).toBe("moonshot");
    expect(s.baseURL).toBe("https://api.moonshot.ai/v1");
    expect(s.limits).toEqual({
      maxFiles: 1000,
      maxFileBytes: 100 * 1024 ** 2,
      maxTotalBytes: 10 * 1024 ** 3,
    });
    expect(providerFromEnv({}, s)).toBeInstanceOf(MoonshotClient);
  });

  it("PROVIDER=glm reads GLM's variables only, with MODEL_WINDOWS and PROVIDER_MAX_FILES", () => {
    const s = providerSettingsFromEnv({
      PROVIDER: "glm",
      MOONSHOT_BASE_URL: "https://api.moonshot.cn/v1",
      GLM_BASE_URL: "https://api.z.ai/api/paas/v4",
      MODEL_WINDOWS: "glm-4.6=150000, glm-x=32000",
      PROVIDER_MAX_FILES: "40",
    });
    expect(s.profile.name).toBe("glm");
    expect(s.baseURL).toBe("https://api.z.ai/api/paas/v4");
    expect(s.models).toEqual({ "glm-4.6": 150_000, "glm-x": 32_000 });
    expect(s.limits.maxFiles).toBe(40);
    const client = providerFromEnv({}, s);
    expect(client).toBeInstanceOf(GlmClient);
    expect(client.baseURL).toBe("https://api.z.ai/api/paas/v4");
  });

  it("names every bad variable", () => {
    expect(() => providerSettingsFromEnv({ PROVIDER: "zhipu" })).toThrow(
      'provider configuration is invalid: PROVIDER: unknown provider "zhipu": use one of moonshot, glm',
    );
    expect(() => providerSettingsFromEnv({ PROVIDER: "glm", MODEL_WINDOWS: "glm-4.6" })).toThrow(
      /MODEL_WINDOWS: "glm-4.6" is not a model context window; write id=tokens/,
    );
    expect(() => providerSettingsFromEnv({ PROVIDER: "glm", GLM_BASE_URL: "open.bigmodel.cn" })).toThrow(
      /GLM_BASE_URL: expected a URL/,
    );
    expect(() => providerSettingsFromEnv({ PROVIDER_MAX_FILES: "0" })).toThrow(
      /PROVIDER_MAX_FILES: must be >= 1/,
    );
  });
});

describe("what follows the provider", () => {
  it("the janitor plans against the provider's account limits", () => {
    expect(loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "test1234" }).policy.limits.maxFiles).toBe(
      1000,
    );
    const glm = loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "test1234", PROVIDER: "glm" });
    expect(glm.policy.limits).toEqual({
      maxFiles: 100,
      maxFileBytes: 50 * 1024 ** 2,
      maxTotalBytes: 5000 * 1024 ** 2,
    });
    expect(
      loadJanitorConfig({
        TABLE_NAME: "t",
        DEPLOYMENT_ID: "test1234",
        PROVIDER: "glm",
        PROVIDER_MAX_FILES: "30",
      }).policy.limits.maxFiles,
    ).toBe(30);
  });

  it("ingestion checks the provider's file rules and caps INGEST_MAX_FILE_BYTES at its limit", () => {
    const glm = loadIngestEnvironment({ TABLE_NAME: "t", DEPLOYMENT_ID: "test1234", PROVIDER: "glm" });
    expect(glm.config.maxFileBytes).toBe(50 * 1024 ** 2);
    expect(glm.config.files.extensions.has(".html")).toBe(false);
    expect(glm.config.files.maxImageBytes).toBe(5 * 1024 ** 2);
    expect(glm.provider.limits.maxFiles).toBe(100);
    expect(() =>
      loadIngestEnvironment({
        TABLE_NAME: "t",
        PROVIDER: "glm",
        INGEST_MAX_FILE_BYTES: String(60 * 1024 ** 2),
      }),
    ).toThrow(/INGEST_MAX_FILE_BYTES: must be <= 52428800/);
    expect(
      loadIngestEnvironment({ TABLE_NAME: "t", DEPLOYMENT_ID: "test1234" }).config.files.extensions.has(
        ".html",
      ),
    ).toBe(true);
  });
});
