import { Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { ChatApi } from "../../lib/chat-api";
import { DocumentPipeline } from "../../lib/document-pipeline";
import { DocumentTable } from "../../lib/document-table";
import type { PipelineStack } from "../../lib/pipeline-stack";
import { PipelineSecrets } from "../../lib/secrets";
import {
  grantsOf,
  logicalId,
  type Resources,
  shared,
  statementsOfFunction,
  synthPipeline,
  TEST_ENV,
  testApp,
} from "./synth";

let template: Template;
let stack: PipelineStack;

beforeAll(() => {
  ({ template, stack } = shared());
});

const methods = () => Object.entries(template.findResources("AWS::ApiGateway::Method") as Resources);

/** "VERB /path" of a method, from the resource tree in the template. */
function routeOf(method: Resources[string]): string {
  const resources = template.toJSON().Resources;
  const pathOf = (ref: unknown): string => {
    const id = (ref as { Ref?: string }).Ref;
    if (!id) return ""; // Fn::GetAtt RootResourceId
    const r = resources[id].Properties;
    return `${pathOf(r.ParentId)}/${r.PathPart}`;
  };
  return `${method.Properties.HttpMethod} ${pathOf(method.Properties.ResourceId) || "/"}`;
}
const routes = () => methods().map(([, m]) => routeOf(m));

describe("chat API integration", () => {
  it("streams the chat function's response (REST response streaming, not buffered)", () => {
    const chatFn = logicalId(stack.pipeline.chatApi.function);
    const all = methods();
    expect(all.length).toBeGreaterThanOrEqual(2);
    for (const [, method] of all) {
      const integration = method.Properties.Integration;
      expect(integration.Type).toBe("AWS_PROXY");
      expect(integration.ResponseTransferMode).toBe("STREAM");
      // Streaming invocations go through Lambda's response-streaming API path.
      const uri = JSON.stringify(integration.Uri);
      expect(uri).toContain("/2021-11-15/functions/");
      expect(uri).toContain("/response-streaming-invocations");
      expect(uri).toContain(chatFn);
    }
  });

  it("routes every path to the function: ANY on / and on /{proxy+}, plus GET for the console and /openapi.json", () => {
    const api = logicalId(stack.pipeline.chatApi.api);
    template.hasResourceProperties("AWS::ApiGateway::Resource", {
      PathPart: "{proxy+}",
      RestApiId: { Ref: api },
      ParentId: { "Fn::GetAtt": [api, "RootResourceId"] },
    });
    expect(routes().sort()).toEqual([
      "ANY /",
      "ANY /{proxy+}",
      "GET /",
      "GET /assets/{proxy+}",
      "GET /openapi.json",
    ]);
  });

  it("lets the integration run as long as the function (beyond the 29 s buffered limit)", () => {
    const fnTimeout =
      template.toJSON().Resources[logicalId(stack.pipeline.chatApi.function)].Properties.Timeout;
    expect(fnTimeout).toBeGreaterThan(29);
    expect(fnTimeout).toBeLessThanOrEqual(900);
    for (const [, method] of methods())
      expect(method.Properties.Integration.TimeoutInMillis).toBe(fnTimeout * 1000);
  });

  it("uses a regional endpoint (edge-optimized endpoints cut idle streams after 30 s)", () => {
    template.hasResourceProperties("AWS::ApiGateway::RestApi", {
      EndpointConfiguration: { Types: ["REGIONAL"] },
    });
  });
});

describe("chat API authentication", () => {
  it("puts the Lambda authorizer on every method except the console page, its assets and the OpenAPI document (no CORS preflight)", () => {
    const authorizerId = logicalId(stack.pipeline.chatApi.authorizer);
    const open: string[] = [];
    for (const [id, method] of methods()) {
      expect(method.Properties.HttpMethod, id).not.toBe("OPTIONS");
      if (method.Properties.AuthorizationType === "NONE") {
        open.push(routeOf(method));
        expect(method.Properties.AuthorizerId, id).toBeUndefined();
        continue;
      }
      expect(method.Properties.AuthorizationType, id).toBe("CUSTOM");
      expect(method.Properties.AuthorizerId, id).toEqual({ Ref: authorizerId });
    }
    // Only GETs of the sign-in page, its static assets and the API's document; every data route needs the bearer.
    expect(open.sort()).toEqual(["GET /", "GET /assets/{proxy+}", "GET /openapi.json"]);
    expect(stack.pipeline.chatApi.publicMethods).toHaveLength(3);
  });

  it("without the web console, every method but GET /openapi.json needs the authorizer", () => {
    const s = new Stack(testApp(), "NoConsole");
    const secrets = new PipelineSecrets(s, "S");
    const api = new ChatApi(s, "Api", {
      table: new DocumentTable(s, "D").table,
      bucket: Bucket.fromBucketName(s, "B", "docs-bucket"),
      provider: { name: "moonshot", apiKey: secrets.providerApiKey },
      apiToken: secrets.apiToken,
      webConsole: false,
    });
    const t = Template.fromStack(s);
    const all = Object.values(t.findResources("AWS::ApiGateway::Method"));
    expect(all).toHaveLength(3);
    expect(all.filter((m) => m.Properties.AuthorizationType === "CUSTOM")).toHaveLength(2);
    expect(api.publicMethods).toHaveLength(1);
  });

  it("reads the bearer from the Authorization header and caches decisions", () => {
    template.hasResourceProperties("AWS::ApiGateway::Authorizer", {
      Type: "TOKEN",
      IdentitySource: "method.request.header.Authorization",
      AuthorizerResultTtlInSeconds: 300,
      IdentityValidationExpression: Match.stringLikeRegexp("\\[Bb\\]"),
      AuthorizerUri: Match.anyValue(),
    });
    const regex = new RegExp(
      template.toJSON().Resources[logicalId(stack.pipeline.chatApi.authorizer)].Properties
        .IdentityValidationExpression,
    );
    expect(regex.test("Bearer abcDEF123456")).toBe(true);
    expect(regex.test("bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl")).toBe(true);
    expect(regex.test("Bearer ")).toBe(false);
    expect(regex.test("Basic dXNlcjpwYXNz")).toBe(false);
    expect(regex.test("abcDEF123456")).toBe(false);
  });

  it("answers 401 with a JSON error and a WWW-Authenticate challenge", () => {
    template.hasResourceProperties("AWS::ApiGateway::GatewayResponse", {
      ResponseType: "UNAUTHORIZED",
      StatusCode: "401",
      ResponseParameters: { "gatewayresponse.header.WWW-Authenticate": "'Bearer'" },
      ResponseTemplates: { "application/json": Match.stringLikeRegexp('"error"') },
    });
  });

  it("in JWT mode passes the issuer and audience to the authorizer and creates no API token", () => {
    const jwt = synthPipeline({
      auth: {
        mode: "jwt",
        issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
        audience: ["a", "b"],
      },
    });
    const authorizerFn =
      jwt.template.toJSON().Resources[logicalId(jwt.stack.pipeline.chatApi.authorizerFunction)];
    expect(authorizerFn.Properties.Environment.Variables).toMatchObject({
      JWT_ISSUER: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
      JWT_AUDIENCE: "a,b",
    });
    expect(authorizerFn.Properties.Environment.Variables.API_TOKEN_SECRET).toBeUndefined();
    expect(jwt.stack.pipeline.secrets.apiToken).toBeUndefined();
    jwt.template.resourceCountIs("AWS::SecretsManager::Secret", 1);
    const stmts = statementsOfFunction(
      jwt.template,
      logicalId(jwt.stack.pipeline.chatApi.authorizerFunction),
    );
    expect(grantsOf(stmts, "secretsmanager:GetSecretValue")).toHaveLength(0);
  });
});

describe("chat API stage", () => {
  it("writes JSON access logs to a log group with retention", () => {
    const logGroup = logicalId(stack.pipeline.chatApi.accessLogs);
    const stage = Object.values(template.findResources("AWS::ApiGateway::Stage"))[0];
    const settings = stage.Properties.AccessLogSetting;
    expect(settings.DestinationArn).toEqual({ "Fn::GetAtt": [logGroup, "Arn"] });
    const format = JSON.parse(settings.Format);
    expect(format).toMatchObject({ requestId: "$context.requestId", status: "$context.status" });
    expect(Object.keys(format)).toEqual(
      expect.arrayContaining(["authorizerError", "integrationLatency", "ip"]),
    );
    template.hasResourceProperties("AWS::Logs::LogGroup", { RetentionInDays: 30 });
    expect(template.toJSON().Resources[logGroup].Properties.RetentionInDays).toBe(30);
  });

  it("throttles the stage with the configured rate and burst, and traces it", () => {
    template.hasResourceProperties("AWS::ApiGateway::Stage", {
      TracingEnabled: true,
      MethodSettings: [
        Match.objectLike({
          HttpMethod: "*",
          ResourcePath: "/*",
          ThrottlingRateLimit: 7,
          ThrottlingBurstLimit: 11,
          LoggingLevel: "ERROR",
          DataTraceEnabled: false,
        }),
      ],
    });
  });

  it("can set up the account's API Gateway logging role, or leave it alone", () => {
    template.resourceCountIs("AWS::ApiGateway::Account", 1);
    const without = synthPipeline({ apiGatewayCloudWatchRole: false });
    without.template.resourceCountIs("AWS::ApiGateway::Account", 0);
  });

  it("rejects a chat timeout beyond the 15-minute streaming limit", () => {
    const s = new Stack(testApp(), "T");
    const secrets = new PipelineSecrets(s, "S");
    expect(
      () =>
        new ChatApi(s, "Api", {
          table: new DocumentTable(s, "D").table,
          bucket: Bucket.fromBucketName(s, "B", "docs-bucket"),
          provider: { name: "moonshot", apiKey: secrets.providerApiKey },
          apiToken: secrets.apiToken,
          timeout: Duration.minutes(16),
        }),
    ).toThrow(/at most 15 minutes/);
  });
});

describe("chat function grants", () => {
  it("reads the documents table, puts and deletes objects, reads the search index, manages only the keys table, and nothing more", () => {
    const stmts = statementsOfFunction(template, logicalId(stack.pipeline.chatApi.function));
    const keysTable = logicalId(stack.pipeline.chatApi.keysTable!);
    const onKeys = (s: { Resource: unknown }) => JSON.stringify(s.Resource).includes(keysTable);
    expect(
      stmts
        .filter(onKeys)
        .flatMap((s) => [s.Action].flat())
        .sort(),
    ).toEqual(["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem"]);
    const actions = stmts
      .filter((s) => !onKeys(s))
      .flatMap((s) => [s.Action].flat())
      .filter((a) => !a.startsWith("xray:") && !a.startsWith("logs:"));
    expect([...new Set(actions.filter((a) => a.startsWith("s3:")))].sort()).toEqual([
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
    expect(actions.filter((a) => a.startsWith("dynamodb:"))).not.toEqual(
      expect.arrayContaining(["dynamodb:PutItem"]),
    );
    expect(actions).not.toContain("dynamodb:UpdateItem");
    expect(actions).not.toContain("dynamodb:DeleteItem");
    expect(actions).toContain("dynamodb:Query");
  });
});

describe("uploads confined to a base prefix", () => {
  it("grants s3:PutObject (and the HEAD's GetObject) only under uploadPrefix and tells the function", () => {
    const s = new Stack(testApp(), "UploadPrefix", { env: TEST_ENV });
    const docs = new DocumentPipeline(s, "Docs", { uploadPrefix: "uploads/" });
    const t = Template.fromStack(s);
    const stmts = statementsOfFunction(t, logicalId(docs.chatApi.function));
    const puts = stmts.filter((st) => [st.Action].flat().includes("s3:PutObject"));
    expect(puts).toHaveLength(1);
    expect(JSON.stringify(puts[0]!.Resource)).toContain('"/uploads/*"');
    expect([puts[0]!.Action].flat().sort()).toEqual(["s3:GetObject", "s3:PutObject"]);
    const fn = t.toJSON().Resources[logicalId(docs.chatApi.function)];
    expect(fn.Properties.Environment.Variables.UPLOAD_PREFIX).toBe("uploads/");
    expect(
      () => new DocumentPipeline(new Stack(testApp(), "Bad"), "Docs", { uploadPrefix: "up/../x/" }),
    ).toThrow(/uploadPrefix must/);
  });
});
