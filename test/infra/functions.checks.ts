import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ENV } from "../../functions/core/config";
import type { PipelineFunction } from "../../lib/function";
import type { PipelineStack } from "../../lib/pipeline-stack";
import { asArray, grantsOf, logicalId, type Resources, shared, statementsOfFunction } from "./synth";

let template: Template;
let stack: PipelineStack;
let resources: Resources;
let functions: Record<string, PipelineFunction>;

beforeAll(() => {
  ({ template, stack } = shared());
  resources = template.toJSON().Resources;
  const p = stack.pipeline;
  functions = {
    ingest: p.ingestion.function,
    chat: p.chatApi.function,
    authorizer: p.chatApi.authorizerFunction,
    janitor: p.janitor.function,
    indexer: p.searchIndex.function,
  };
});

const envOf = (fn: PipelineFunction): Record<string, unknown> =>
  resources[logicalId(fn)].Properties.Environment.Variables;

describe("every function", () => {
  it("runs Node.js 24 on ARM64 (the pipeline's five and no other Node.js function)", () => {
    const ours = Object.values(functions).map(logicalId);
    const nodeFunctions = Object.entries(resources).filter(
      ([, r]) => r.Type === "AWS::Lambda::Function" && String(r.Properties.Runtime).startsWith("nodejs"),
    );
    expect(nodeFunctions.map(([id]) => id).sort()).toEqual([...ours].sort());
    for (const id of ours) {
      expect(resources[id].Properties.Runtime, id).toBe("nodejs24.x");
      expect(resources[id].Properties.Architectures, id).toEqual(["arm64"]);
      expect(resources[id].Properties.Handler, id).toBe("index.handler");
    }
  });

  it("has active X-Ray tracing", () => {
    for (const [name, fn] of Object.entries(functions)) {
      expect(resources[logicalId(fn)].Properties.TracingConfig, name).toEqual({ Mode: "Active" });
    }
  });

  it("logs JSON to its own log group with a retention, writable only by its role", () => {
    for (const [name, fn] of Object.entries(functions)) {
      const props = resources[logicalId(fn)].Properties;
      expect(props.LoggingConfig, name).toEqual({ LogFormat: "JSON", LogGroup: { Ref: logicalId(fn.logs) } });
      expect(resources[logicalId(fn.logs)].Properties.RetentionInDays, name).toBe(30);
      const logWrites = grantsOf(statementsOfFunction(template, logicalId(fn)), "logs:PutLogEvents");
      expect(
        logWrites.map((s) => s.Resource),
        name,
      ).toEqual([{ "Fn::GetAtt": [logicalId(fn.logs), "Arn"] }]);
    }
  });

  it("has no AWS managed policy and no '*' resource except X-Ray's", () => {
    for (const [name, fn] of Object.entries(functions)) {
      const roleId = resources[logicalId(fn)].Properties.Role["Fn::GetAtt"][0];
      expect(resources[roleId].Properties.ManagedPolicyArns, name).toBeUndefined();
      for (const s of statementsOfFunction(template, logicalId(fn))) {
        if (asArray(s.Resource).includes("*")) {
          expect(
            asArray(s.Action).every((a) => a.startsWith("xray:")),
            `${name}: ${JSON.stringify(s.Action)}`,
          ).toBe(true);
        }
      }
    }
  });

  it("ships source maps and Powertools settings", () => {
    for (const [name, fn] of Object.entries(functions)) {
      expect(envOf(fn), name).toMatchObject({
        NODE_OPTIONS: "--enable-source-maps",
        POWERTOOLS_SERVICE_NAME: name,
        POWERTOOLS_METRICS_NAMESPACE: "KimiDocPipeline",
        POWERTOOLS_TRACER_CAPTURE_RESPONSE: "false",
      });
    }
  });
});

describe("environment", () => {
  const common = [
    "NODE_OPTIONS",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_SERVICE_NAME",
  ];
  const common2 = [...common, "POWERTOOLS_TRACER_CAPTURE_RESPONSE"];
  it("gives each function exactly the variables it needs", () => {
    const keys = (fn: PipelineFunction) => Object.keys(envOf(fn)).sort();
    expect(keys(functions.ingest)).toEqual(
      [
        ...common2,
        ENV.TABLE_NAME,
        ENV.BUCKET_NAME,
        ENV.PROVIDER,
        ENV.MOONSHOT_API_KEY_SECRET,
        ENV.MOONSHOT_BASE_URL,
        ENV.HIGH_WATER_MARK,
        "MAX_RECEIVE_COUNT",
        "INGEST_CONCURRENCY",
        ENV.DEPLOYMENT_ID,
        ENV.SEARCH_INDEX_QUEUE_URL,
      ].sort(),
    );
    expect(keys(functions.chat)).toEqual(
      [
        ...common2,
        ENV.TABLE_NAME,
        ENV.BUCKET_NAME,
        ENV.PROVIDER,
        ENV.MOONSHOT_API_KEY_SECRET,
        ENV.API_TOKEN_SECRET,
        ENV.MOONSHOT_BASE_URL,
        ENV.MODEL,
        ENV.MAX_CONTEXT_TOKENS,
        ENV.KEYS_TABLE_NAME,
        ENV.SEARCH_INDEX_BUCKET,
      ].sort(),
    );
    expect(keys(functions.indexer)).toEqual([...common2, ENV.TABLE_NAME, ENV.SEARCH_INDEX_BUCKET].sort());
    expect(keys(functions.authorizer)).toEqual(
      [...common2, ENV.API_TOKEN_SECRET, ENV.KEYS_TABLE_NAME].sort(),
    );
    expect(keys(functions.janitor)).toEqual(
      [
        ...common2,
        ENV.TABLE_NAME,
        ENV.PROVIDER,
        ENV.MOONSHOT_API_KEY_SECRET,
        ENV.MOONSHOT_BASE_URL,
        ENV.RETENTION_HOURS,
        ENV.HIGH_WATER_MARK,
        ENV.DRY_RUN,
        ENV.STUCK_PROCESSING_MINUTES,
        ENV.DEPLOYMENT_ID,
      ].sort(),
    );
  });

  it("names ingestion's uploads and scopes the janitor with one deployment id, from the stack's own id", () => {
    const id = envOf(functions.ingest)[ENV.DEPLOYMENT_ID];
    expect(envOf(functions.janitor)[ENV.DEPLOYMENT_ID]).toEqual(id);
    // First group of the stack id's UUID + a hash of the construct path: unique per stack and construct.
    const text = JSON.stringify(id);
    expect(text).toContain("AWS::StackId");
    expect(text).toMatch(/"[0-9a-f]{6}"/);
  });

  it("passes the configured model and provider URL, and the table and bucket names as references", () => {
    expect(envOf(functions.chat)[ENV.MODEL]).toBe("kimi-k2.5");
    for (const fn of [functions.ingest, functions.chat, functions.janitor]) {
      expect(envOf(fn)[ENV.MOONSHOT_BASE_URL]).toBe("https://api.moonshot.cn/v1");
      expect(envOf(fn)[ENV.TABLE_NAME]).toEqual({ Ref: logicalId(stack.pipeline.table) });
    }
    expect(envOf(functions.chat)[ENV.BUCKET_NAME]).toEqual({
      Ref: logicalId(stack.pipeline.ingestion.bucket),
    });
  });
});

describe("secrets wiring", () => {
  it("hands out secret ARNs, never values, and only to the functions that read them", () => {
    const moonshot = { Ref: logicalId(stack.pipeline.secrets.providerApiKey) };
    const token = { Ref: logicalId(stack.pipeline.secrets.apiToken!) };
    for (const name of ["ingest", "chat", "janitor"]) {
      expect(envOf(functions[name])[ENV.MOONSHOT_API_KEY_SECRET], name).toEqual(moonshot);
    }
    expect(envOf(functions.authorizer)[ENV.MOONSHOT_API_KEY_SECRET]).toBeUndefined();
    expect(envOf(functions.chat)[ENV.API_TOKEN_SECRET]).toEqual(token);
    expect(envOf(functions.authorizer)[ENV.API_TOKEN_SECRET]).toEqual(token);
    expect(envOf(functions.ingest)[ENV.API_TOKEN_SECRET]).toBeUndefined();
    expect(envOf(functions.janitor)[ENV.API_TOKEN_SECRET]).toBeUndefined();
  });

  it("grants GetSecretValue on exactly the secrets a function was given", () => {
    const moonshot = { Ref: logicalId(stack.pipeline.secrets.providerApiKey) };
    const token = { Ref: logicalId(stack.pipeline.secrets.apiToken!) };
    const expected: Record<string, unknown[]> = {
      ingest: [moonshot],
      chat: [moonshot, token],
      authorizer: [token],
      janitor: [moonshot],
      indexer: [],
    };
    for (const [name, fn] of Object.entries(functions)) {
      const stmts = statementsOfFunction(template, logicalId(fn));
      const granted = grantsOf(stmts, "secretsmanager:GetSecretValue").flatMap((s) => asArray(s.Resource));
      expect(granted, name).toEqual(expected[name]);
      expect(
        stmts.flatMap((s) => asArray(s.Action)).filter((a) => a.startsWith("secretsmanager:")),
        name,
      ).toEqual(expected[name].map(() => "secretsmanager:GetSecretValue"));
    }
  });

  it("has no plain key anywhere in any function's environment", () => {
    const lambdas = Object.entries(resources).filter(([, r]) => r.Type === "AWS::Lambda::Function");
    const looksLikeKey = (v: string) => /^sk-/.test(v) || /[A-Za-z0-9+/_-]{32,}/.test(v);
    for (const [id, fn] of lambdas) {
      const vars: Record<string, unknown> = fn.Properties.Environment?.Variables ?? {};
      expect(Object.keys(vars), id).not.toContain(ENV.MOONSHOT_API_KEY);
      expect(Object.keys(vars), id).not.toContain(ENV.API_TOKEN);
      expect(JSON.stringify(vars), id).not.toContain("resolve:secretsmanager");
      for (const [key, value] of Object.entries(vars)) {
        if (typeof value === "string") expect(looksLikeKey(value), `${id} ${key}=${value}`).toBe(false);
        else expect(JSON.stringify(value), `${id} ${key}`).toMatch(/^\{"(Ref|Fn::GetAtt|Fn::Join)"/);
      }
    }
  });

  it("creates the Moonshot key secret without a value and generates the API token", () => {
    const moonshot = resources[logicalId(stack.pipeline.secrets.providerApiKey)].Properties;
    expect(moonshot.GenerateSecretString).toBeUndefined();
    expect(moonshot.SecretString).toBeUndefined();
    const token = resources[logicalId(stack.pipeline.secrets.apiToken!)].Properties;
    expect(token.GenerateSecretString).toMatchObject({ ExcludePunctuation: true, PasswordLength: 48 });
    expect(token.SecretString).toBeUndefined();
  });
});
