/**
 * The house bundling really runs here: the local esbuild (no Docker), ESM output with the createRequire
 * banner, minified, with a source map, AWS SDK bundled; and the chat bundle carries the built web
 * console and, in a file of its own, the MCP server. Only the chat API's two functions are bundled, to
 * keep the test fast; `npm run synth` bundles all four.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { MCP_SERVER_BUNDLE } from "../../functions/chat/mcp/bundle";
import { ChatApi, WEB_CONSOLE_DIST } from "../../lib/chat-api";
import { DocumentTable } from "../../lib/document-table";
import { ESM_REQUIRE_BANNER } from "../../lib/function";
import { PipelineSecrets } from "../../lib/secrets";
import { logicalId, TEST_ENV, testApp } from "./synth";

let assetDirs: { chat: string; authorizer: string };

beforeAll(() => {
  const app = testApp({}, true);
  const stack = new Stack(app, "Bundle", { env: TEST_ENV });
  const secrets = new PipelineSecrets(stack, "Secrets");
  const api = new ChatApi(stack, "Api", {
    table: new DocumentTable(stack, "Table").table,
    bucket: Bucket.fromBucketName(stack, "Docs", "docs-bucket"),
    provider: { name: "moonshot", apiKey: secrets.providerApiKey },
    apiToken: secrets.apiToken,
  });
  const assembly = app.synth();
  const resources = Template.fromStack(stack).toJSON().Resources;
  // The asset of each function: its S3Key is <hash>.zip, staged as asset.<hash>/.
  const dirOf = (fnId: string) => {
    const key = resources[fnId].Properties.Code.S3Key as string;
    return path.join(assembly.directory, `asset.${key.replace(/\.zip$/, "")}`);
  };
  assetDirs = { chat: dirOf(logicalId(api.function)), authorizer: dirOf(logicalId(api.authorizerFunction)) };
});

describe("PipelineFunction bundling", () => {
  it("bundles each entry with the local esbuild into a minified ESM index.mjs with a source map", () => {
    for (const [name, dir] of Object.entries(assetDirs)) {
      const files = readdirSync(dir);
      expect(files, name).toEqual(expect.arrayContaining(["index.mjs", "index.mjs.map"]));
      expect(existsSync(path.join(dir, "node_modules")), name).toBe(false);
      const code = readFileSync(path.join(dir, "index.mjs"), "utf8");
      expect(code.startsWith(ESM_REQUIRE_BANNER), name).toBe(true);
      expect(code, name).toMatch(/export\s*\{[^}]*\bhandler\b/);
      expect(code, name).toContain("//# sourceMappingURL=index.mjs.map");
      expect(code.split("\n").length, name).toBeLessThan(200);
      // The SDK is bundled, not left to the runtime's copy.
      expect(code, name).not.toMatch(/from\s*"@aws-sdk\//);
      const map = JSON.parse(readFileSync(path.join(dir, "index.mjs.map"), "utf8"));
      expect(
        map.sources.some((s: string) => s.includes(`functions/${name}/handler.ts`)),
        name,
      ).toBe(true);
    }
  });

  it("copies the built web console next to the chat handler only", () => {
    expect(existsSync(path.join(assetDirs.authorizer, "console"))).toBe(false);
    if (!existsSync(path.join(WEB_CONSOLE_DIST, "index.html"))) {
      // npm test builds the console first (build:web); without it there is nothing to copy.
      expect(existsSync(path.join(assetDirs.chat, "console"))).toBe(false);
      return;
    }
    const copied = readFileSync(path.join(assetDirs.chat, "console", "index.html"), "utf8");
    expect(copied).toBe(readFileSync(path.join(WEB_CONSOLE_DIST, "index.html"), "utf8"));
    expect(readdirSync(path.join(assetDirs.chat, "console", "assets")).sort()).toEqual(
      readdirSync(path.join(WEB_CONSOLE_DIST, "assets")).sort(),
    );
  });

  it("bundles the MCP server into its own file, which the chat handler loads on the first POST /mcp", () => {
    const index = readFileSync(path.join(assetDirs.chat, "index.mjs"), "utf8");
    const mcp = readFileSync(path.join(assetDirs.chat, MCP_SERVER_BUNDLE), "utf8");
    expect(existsSync(path.join(assetDirs.chat, `${MCP_SERVER_BUNDLE}.map`))).toBe(true);
    expect(mcp.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    // The SDK's transport is in the MCP file only: the chat bundle never parses it at cold start.
    const sdkMarker = "Stateless transport cannot be reused";
    expect(mcp).toContain(sdkMarker);
    expect(index).not.toContain(sdkMarker);
    expect(existsSync(path.join(assetDirs.authorizer, MCP_SERVER_BUNDLE))).toBe(false);

    // The deployed files answer an MCP initialize through the streaming handler, as Lambda runs them.
    const script = `
      const meta = {};
      let body = "";
      globalThis.awslambda = {
        streamifyResponse: (fn) => fn,
        HttpResponseStream: { from: (s, m) => { Object.assign(meta, m); return s; } },
      };
      const { Writable } = await import("node:stream");
      const { handler } = await import(${JSON.stringify(`file://${path.join(assetDirs.chat, "index.mjs")}`)});
      const out = new Writable({ write(chunk, _enc, done) { body += chunk; done(); } });
      await handler({
        httpMethod: "POST", path: "/mcp", headers: {
          "content-type": "application/json", accept: "application/json, text/event-stream" },
        requestContext: { authorizer: { principalId: "api-token", auth: "bearer" } },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: {
          protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } } }),
      }, out, { getRemainingTimeInMillis: () => 30000 });
      process.stdout.write(JSON.stringify({ status: meta.statusCode, body }));
    `;
    const result = JSON.parse(
      execFileSync(process.execPath, ["--input-type=module", "-e", script], {
        env: {
          PATH: process.env.PATH ?? "",
          AWS_REGION: "us-east-1",
          AWS_ACCESS_KEY_ID: "AKIDTEST",
          AWS_SECRET_ACCESS_KEY: "test",
          TABLE_NAME: "docs",
          BUCKET_NAME: "docs-bucket",
          SEARCH_INDEX_BUCKET: "docs-index",
          MOONSHOT_API_KEY_SECRET: "moonshot",
          API_TOKEN_SECRET: "token",
          POWERTOOLS_DEV: "false",
        },
        encoding: "utf8",
        timeout: 30_000,
      }),
    ) as { status: number; body: string };
    expect(result.status).toBe(200);
    expect(JSON.parse(result.body)).toMatchObject({
      id: 1,
      result: { serverInfo: { name: "kimi-doc-pipeline" }, capabilities: { tools: {}, resources: {} } },
    });
  });
});
