/**
 * The house bundling really runs here: the local esbuild (no Docker), ESM output with the createRequire
 * banner, minified, with a source map, AWS SDK bundled. One function only, to keep the test fast;
 * `npm run synth` bundles all four.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Stack } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { ESM_REQUIRE_BANNER, PipelineFunction } from "../../lib/function";
import { TEST_ENV, testApp } from "./synth";

describe("PipelineFunction bundling", () => {
  it("bundles the entry with the local esbuild into an ESM index.mjs with a source map", () => {
    const app = testApp({}, true);
    const stack = new Stack(app, "Bundle", { env: TEST_ENV });
    new PipelineFunction(stack, "Authorizer", {
      name: "authorizer",
      serviceName: "authorizer",
      metricsNamespace: "Test",
    });
    const assembly = app.synth();
    const assets = readdirSync(assembly.directory).filter((d) => d.startsWith("asset."));
    expect(assets).toHaveLength(1);
    const dir = path.join(assembly.directory, assets[0]);
    expect(readdirSync(dir).sort()).toEqual(["index.mjs", "index.mjs.map"]);
    const code = readFileSync(path.join(dir, "index.mjs"), "utf8");
    expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    expect(code).toMatch(/export\s*\{[^}]*\bhandler\b/);
    expect(code).toContain("//# sourceMappingURL=index.mjs.map");
    // Minified: no line anywhere near the length of readable source, few lines overall.
    expect(code.split("\n").length).toBeLessThan(200);
    // The SDK is bundled, not left to the runtime's copy.
    expect(code).not.toMatch(/from\s*"@aws-sdk\//);
    const map = JSON.parse(readFileSync(path.join(dir, "index.mjs.map"), "utf8"));
    expect(map.sources.some((s: string) => s.includes("functions/authorizer/handler.ts"))).toBe(true);
    expect(existsSync(path.join(dir, "node_modules"))).toBe(false);
  });
});
