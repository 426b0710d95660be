#!/usr/bin/env node
/**
 * CDK app entry: one PipelineStack (settings from context, e.g. `-c model=kimi-k2.6`) checked by the
 * cdk-nag AwsSolutions pack at synth. Justified exceptions are acknowledged next to their cause in lib/.
 */
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { PipelineStack } from "../lib/pipeline-stack";

const app = new App();
new PipelineStack(app, (app.node.tryGetContext("stackName") as string | undefined) ?? "KimiDocPipeline", {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
