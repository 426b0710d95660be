/**
 * The deployment id that names every remote file this stack uploads (`kdp-<id>-...`), so the janitor
 * and the quota room maker delete only this deployment's files on a Moonshot account shared with other
 * applications or other copies of the stack (functions/core/janitor/ownership.ts).
 */
import { createHash } from "node:crypto";
import { Aws, Fn, Names } from "aws-cdk-lib";
import type { Construct } from "constructs";

/**
 * Unique per stack creation and per construct: the first 8 hex digits of the CloudFormation stack id's
 * UUID (random for every stack, stable for its whole life, so updates keep it), then 6 hex digits of a
 * hash of the construct's path (two pipelines in one stack differ). Resolved at deploy time.
 */
export function defaultDeploymentId(scope: Construct): string {
  const stackUuid = Fn.select(2, Fn.split("/", Aws.STACK_ID));
  const head = Fn.select(0, Fn.split("-", stackUuid));
  const path = createHash("sha256").update(Names.uniqueId(scope)).digest("hex").slice(0, 6);
  return Fn.join("", [head, path]);
}
