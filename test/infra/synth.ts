/**
 * Shared synthesis for the CDK assertion tests. Each test file synthesizes once (in beforeAll) and
 * shares the template. Asset bundling is skipped (`aws:cdk:bundling-stacks: []`) and so is the built-in
 * CloudFormation schema validation (20 s); bundling.test.ts bundles for real and `npm run synth` runs
 * the full pipeline, so both stay covered without slowing every file.
 */
import { App, type CfnElement, Duration, Stack } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import type { IConstruct } from "constructs";
import type { DocumentPipelineProps } from "../../lib/document-pipeline";
import { PipelineStack } from "../../lib/pipeline-stack";

export const TEST_ENV = { account: "123456789012", region: "eu-west-1" };

export interface Synthesized {
  app: App;
  stack: PipelineStack;
  template: Template;
}

/** A fresh app with fast-test settings. */
export function testApp(context: Record<string, unknown> = {}, bundle = false): App {
  return new App({
    builtinCloudFormationValidation: false,
    context: bundle ? context : { "aws:cdk:bundling-stacks": [], ...context },
  });
}

/** Synthesizes a PipelineStack; `pipeline` undefined means "read CDK context". */
export function synthPipeline(
  pipeline?: DocumentPipelineProps,
  context: Record<string, unknown> = {},
): Synthesized {
  const app = testApp(context);
  const stack = new PipelineStack(app, "Test", { pipeline, env: TEST_ENV });
  return { app, stack, template: Template.fromStack(stack) };
}

/**
 * One customised pipeline shared by the resource checks (ingestion, chat API, functions, janitor and
 * observability), synthesized once per test process.
 */
export const SHARED_PROPS: DocumentPipelineProps = {
  ingestConcurrency: 3,
  throttle: { rateLimit: 7, burstLimit: 11 },
  model: "kimi-k2.5",
  providerBaseUrl: "https://api.moonshot.cn/v1",
  janitorSchedule: Duration.minutes(30),
  retentionHours: 12,
  highWaterMark: 0.8,
  alarmEmail: "ops@example.com",
};
let sharedSynth: Synthesized | undefined;
let defaultSynth: Synthesized | undefined;
/** SHARED_PROPS synthesized once. */
export const shared = (): Synthesized => {
  sharedSynth ??= synthPipeline(SHARED_PROPS);
  return sharedSynth;
};
/** The all-defaults pipeline synthesized once. */
export const sharedDefaults = (): Synthesized => {
  defaultSynth ??= synthPipeline({});
  return defaultSynth;
};

/** The logical id of a construct's CloudFormation resource (its default child, or itself). */
export function logicalId(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).resolve(element.logicalId) as string;
}

type Json = Record<string, unknown>;

/** A synthesized template's Resources section (CloudFormation JSON is untyped). */
// biome-ignore lint/suspicious/noExplicitAny: CloudFormation JSON
export type Resources = Record<string, { Type: string; Properties: Record<string, any> }>;
export interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** All IAM statements attached (inline) to the role of the function with this logical id. */
export function statementsOfFunction(template: Template, functionLogicalId: string): Statement[] {
  const fn = template.toJSON().Resources[functionLogicalId] as Json;
  const roleRef = ((fn.Properties as Json).Role as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
  const policies = template.findResources("AWS::IAM::Policy");
  const statements: Statement[] = [];
  for (const policy of Object.values(policies)) {
    const props = policy.Properties as {
      Roles: { Ref: string }[];
      PolicyDocument: { Statement: Statement[] };
    };
    if (props.Roles.some((r) => r.Ref === roleRef)) statements.push(...props.PolicyDocument.Statement);
  }
  return statements;
}

/** Every action granted by these statements (flattened). */
export const actionsOf = (statements: Statement[]): string[] => statements.flatMap((s) => asArray(s.Action));

/** Statements granting `action`. */
export const grantsOf = (statements: Statement[], action: string): Statement[] =>
  statements.filter((s) => asArray(s.Action).includes(action));

export { asArray };
