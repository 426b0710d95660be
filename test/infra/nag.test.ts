/**
 * cdk-nag AwsSolutions checks: zero unacknowledged findings for the stack bin/app.ts deploys and for the
 * main variants (DESTROY, JWT auth, existing bucket); every acknowledgement has a specific reason and
 * matches a real finding (no stale acknowledgements); and the check does fail on a real violation.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { type App, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { AwsSolutionsChecks } from "cdk-nag";
import type { IConstruct } from "constructs";
import { describe, expect, it } from "vitest";
import { DocumentPipeline } from "../../lib";
import { PipelineStack } from "../../lib/pipeline-stack";
import { TEST_ENV, testApp } from "./synth";

interface Finding {
  rule: string;
  severity: string;
  paths: string[];
}

/** AwsSolutionsChecks that also records which acknowledgements suppressed a finding. */
class AuditedChecks extends AwsSolutionsChecks {
  readonly used = new Set<string>();
  constructor(scope: IConstruct) {
    super(scope);
    const self = this as unknown as { isAcknowledged: (node: IConstruct, id: string) => boolean };
    const original = self.isAcknowledged.bind(this);
    self.isAcknowledged = (node, id) => {
      const hit = original(node, id);
      if (hit) this.used.add(id);
      return hit;
    };
  }
}

/** Every acknowledgement in the tree: rule id -> reasons. */
function acknowledgements(root: IConstruct): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const visit = (c: IConstruct) => {
    for (const entry of c.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY && entry.data) {
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
          const key = id.replace(/^annotation::/i, "");
          // CDK acknowledges some of its own built-in validation rules; only ours are audited here.
          if (!key.startsWith("AwsSolutions-")) continue;
          out.set(key, [...(out.get(key) ?? []), reason]);
        }
      }
    }
    for (const child of c.node.children) visit(child);
  };
  visit(root);
  return out;
}

/** Synthesizes with the nag plugin registered the way bin/app.ts does and returns what it found. */
function nag(app: App): { findings: Finding[]; checks: AuditedChecks; reportViolations: number } {
  const checks = new AuditedChecks(app);
  Validations.of(app).addPlugins(checks);
  const assembly = app.synth(); // throws on any unacknowledged error-level finding
  const direct = new AuditedChecks(app);
  const report = direct.validateScope(app);
  for (const id of direct.used) checks.used.add(id);
  const findings = report.violations.map((v) => ({
    rule: v.ruleName,
    severity: v.severity ?? "error",
    paths: v.violatingResources.map((r) => r.constructPath ?? "?"),
  }));
  let reportViolations = 0;
  try {
    const json = JSON.parse(readFileSync(path.join(assembly.directory, "validation-report.json"), "utf8"));
    for (const p of json.pluginReports ?? [])
      if (p.pluginName === checks.name) reportViolations += p.violations.length;
  } catch {
    // No report file: no plugin had anything to report.
  }
  return { findings, checks, reportViolations };
}

describe("cdk-nag AwsSolutions", () => {
  it("has zero unacknowledged findings (errors or warnings) for the deployed stack, and no stale acknowledgement", () => {
    const app = testApp();
    new PipelineStack(app, "KimiDocPipeline", { env: TEST_ENV });
    const { findings, checks, reportViolations } = nag(app);
    expect(findings).toEqual([]);
    expect(reportViolations).toBe(0);
    const acks = acknowledgements(app);
    expect(acks.size).toBeGreaterThan(0);
    for (const [id, reasons] of acks) {
      expect(checks.used.has(id), `acknowledgement ${id} matches no finding`).toBe(true);
      for (const reason of reasons)
        expect(reason.length, `${id}: reason too short`).toBeGreaterThanOrEqual(60);
    }
  });

  it("stays clean with DESTROY, JWT auth, an existing bucket and the GLM provider", () => {
    const app = testApp();
    new PipelineStack(app, "Destroy", {
      env: TEST_ENV,
      pipeline: {
        removalPolicy: RemovalPolicy.DESTROY,
        auth: { mode: "jwt", issuer: "https://issuer.example.com", audience: ["app-client"] },
        alarmEmail: "ops@example.com",
      },
    });
    const team = new Stack(app, "Team", { env: TEST_ENV });
    const bucket = new Bucket(team, "Docs", {
      enforceSSL: true,
      versioned: true,
      serverAccessLogsPrefix: "access/",
    });
    new DocumentPipeline(team, "Pipeline", { bucket });
    const imported = new Stack(app, "Imported", { env: TEST_ENV });
    new DocumentPipeline(imported, "Pipeline", {
      bucket: Bucket.fromBucketName(imported, "B", "shared-documents"),
    });
    new PipelineStack(app, "Glm", {
      env: TEST_ENV,
      pipeline: { provider: "glm", models: { "glm-4.6": 200_000 } },
    });
    const { findings } = nag(app);
    expect(findings).toEqual([]);
  });

  it("does fail on a real violation (the check is live)", () => {
    const app = testApp();
    const s = new Stack(app, "Bad", { env: TEST_ENV });
    new Bucket(s, "Open");
    const checks = new AwsSolutionsChecks(app);
    Validations.of(app).addPlugins(checks);
    expect(() => app.synth()).toThrow(/AwsSolutions-S10/);
  });
});
