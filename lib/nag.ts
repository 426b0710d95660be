/**
 * Helpers for acknowledging cdk-nag findings next to the code that causes them. cdk-nag 3 reports
 * each wildcard of an IAM policy as its own finding, `AwsSolutions-IAM5[Resource::<flattened ARN>]`,
 * so an acknowledgement must name the flattened ARN exactly; `wildcardFindingId` builds it the way
 * cdk-nag flattens CloudFormation references (Ref -> <Id>, Fn::GetAtt -> <Id.Attr>, Fn::Join joined).
 * Only aws-cdk-lib is used here: the constructs do not need cdk-nag at run time.
 */
import { Stack, Validations } from "aws-cdk-lib";
import type { IConstruct } from "constructs";

function flatten(node: unknown): string {
  if (node === undefined) return "";
  if (typeof node === "string") return node.replace(/\$\{/g, "<").replace(/}/g, ">");
  if (node && typeof node === "object") {
    const o = node as Record<string, unknown>;
    if (o["Fn::Join"]) {
      const [delimiter, items] = o["Fn::Join"] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (o["Fn::Sub"]) return flatten(o["Fn::Sub"]);
    if (o["Fn::GetAtt"]) {
      const [resource, attribute] = o["Fn::GetAtt"] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (o["Fn::ImportValue"]) return flatten(o["Fn::ImportValue"]);
    if (o.Ref) return `<${flatten(o.Ref)}>`;
  }
  return JSON.stringify(node);
}

/** The cdk-nag finding id of an IAM5 wildcard on `resource` (an ARN string, possibly a token). */
export function wildcardFindingId(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(resource))}]`;
}

/** Acknowledges one cdk-nag rule (or finding) on `scope` and everything under it, with its reason. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}
