import { Match, type Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { PROVIDER_PROFILES } from "../../functions/core/provider/profiles";
import { CHAT_METRICS, JANITOR_METRICS } from "../../lib/defaults";
import type { PipelineStack } from "../../lib/pipeline-stack";
import { logicalId, type Resources, shared, sharedDefaults } from "./synth";

let template: Template;
let stack: PipelineStack;
let resources: Resources;

beforeAll(() => {
  ({ template, stack } = shared());
  resources = template.toJSON().Resources;
});

const alarms = () => Object.entries(template.findResources("AWS::CloudWatch::Alarm"));

describe("janitor", () => {
  it("runs on the configured rate", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(30 minutes)",
      State: "ENABLED",
      Targets: [
        Match.objectLike({ Arn: { "Fn::GetAtt": [logicalId(stack.pipeline.janitor.function), "Arn"] } }),
      ],
    });
  });

  it("defaults to an hourly sweep", () => {
    const defaults = sharedDefaults();
    defaults.template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(1 hour)" });
  });

  it("reserves no concurrency (new accounts cannot) and does not retry a failed sweep", () => {
    const fn = logicalId(stack.pipeline.janitor.function);
    expect(resources[fn].Properties.ReservedConcurrentExecutions).toBeUndefined();
    template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
      FunctionName: { Ref: fn },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 1800,
    });
  });

  it("has a timeout that fits a sweep and stays under the schedule", () => {
    const timeout = resources[logicalId(stack.pipeline.janitor.function)].Properties.Timeout;
    expect(timeout).toBeGreaterThanOrEqual(60);
    expect(timeout).toBeLessThan(30 * 60);
  });

  it("passes retention, high-water mark, dry-run and stuck-processing settings", () => {
    expect(
      resources[logicalId(stack.pipeline.janitor.function)].Properties.Environment.Variables,
    ).toMatchObject({
      RETENTION_HOURS: "12",
      HIGH_WATER_MARK: "0.8",
      DRY_RUN: "false",
    });
  });

  it("marks documents stuck after the ingestion queue's visibility timeout x maxReceiveCount", () => {
    const queue = resources[logicalId(stack.pipeline.ingestion.queue)].Properties;
    const minutes = (queue.VisibilityTimeout * queue.RedrivePolicy.maxReceiveCount) / 60;
    expect(minutes).toBeGreaterThan(0);
    expect(
      resources[logicalId(stack.pipeline.janitor.function)].Properties.Environment.Variables
        .STUCK_PROCESSING_MINUTES,
    ).toBe(String(Math.ceil(minutes)));
  });
});

describe("alarms", () => {
  const topicRef = () => ({ Ref: logicalId(stack.pipeline.observability.alarmTopic) });

  it("alarm when the DLQ holds a message", () => {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [
        {
          Name: "QueueName",
          Value: { "Fn::GetAtt": [logicalId(stack.pipeline.ingestion.deadLetterQueue), "QueueName"] },
        },
      ],
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
  });

  it("alarm on ingest errors and on failed sweeps", () => {
    for (const fn of [stack.pipeline.ingestion.function, stack.pipeline.janitor.function]) {
      template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        Namespace: "AWS/Lambda",
        MetricName: "Errors",
        Dimensions: [{ Name: "FunctionName", Value: { Ref: logicalId(fn) } }],
        Threshold: 1,
      });
    }
  });

  it("alarm when the janitor's RemoteFiles / RemoteBytes stay at the high-water mark", () => {
    const ns = "KimiDocPipeline";
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: ns,
      MetricName: JANITOR_METRICS.remoteFiles,
      Dimensions: [{ Name: "service", Value: "janitor" }],
      Threshold: 0.8 * PROVIDER_PROFILES.moonshot.limits.maxFiles,
      Statistic: "Maximum",
      Period: 1800,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: ns,
      MetricName: JANITOR_METRICS.remoteBytes,
      Dimensions: [{ Name: "service", Value: "janitor" }],
      Threshold: Math.floor(0.8 * PROVIDER_PROFILES.moonshot.limits.maxTotalBytes),
    });
    expect(JANITOR_METRICS).toMatchObject({ remoteFiles: "RemoteFiles", remoteBytes: "RemoteBytes" });
  });

  it("alarm when the janitor's deletions keep failing sweep after sweep", () => {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "KimiDocPipeline",
      MetricName: JANITOR_METRICS.errors,
      Dimensions: [{ Name: "service", Value: "janitor" }],
      Statistic: "Sum",
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
    });
  });

  it("every alarm notifies the SNS topic on ALARM and OK", () => {
    const all = alarms();
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const [id, alarm] of all) {
      expect(alarm.Properties.AlarmActions, id).toEqual([topicRef()]);
      expect(alarm.Properties.OKActions, id).toEqual([topicRef()]);
      expect(alarm.Properties.AlarmDescription, id).toBeTruthy();
    }
  });

  it("subscribes the alarm e-mail and requires TLS on the topic", () => {
    template.hasResourceProperties("AWS::SNS::Subscription", {
      Protocol: "email",
      Endpoint: "ops@example.com",
      TopicArn: topicRef(),
    });
    template.hasResourceProperties("AWS::SNS::TopicPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });
});

describe("dashboard", () => {
  /** The dashboard body as JSON, with CloudFormation references replaced by "<ref>". */
  const body = () => {
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
    const dashboard = Object.values(template.findResources("AWS::CloudWatch::Dashboard"))[0];
    const joined = dashboard.Properties.DashboardBody["Fn::Join"][1] as unknown[];
    const text = joined.map((part) => (typeof part === "string" ? part : "<ref>")).join("");
    return JSON.parse(text) as {
      widgets: { type: string; properties: { title: string; metrics?: unknown[][]; alarms?: string[] } }[];
    };
  };

  it("shows the alarms and the main figures of queue, functions, API, documents and provider quota", () => {
    const widgets = body().widgets;
    const byTitle = new Map(widgets.map((w) => [w.properties.title, w.properties]));
    expect(byTitle.get("Alarms")?.alarms).toHaveLength(alarms().length);
    const metricsOf = (title: string) => JSON.stringify(byTitle.get(title)?.metrics ?? `missing: ${title}`);
    expect(metricsOf("Ingestion queue")).toContain("ApproximateNumberOfMessagesVisible");
    expect(metricsOf("Ingest function")).toContain('"Errors"');
    expect(metricsOf("Ingest concurrency")).toContain("ConcurrentExecutions");
    expect(metricsOf("Chat API requests")).toContain('["AWS/ApiGateway","5XXError","ApiName","Test-chat"');
    expect(metricsOf("Chat API latency")).toContain("IntegrationLatency");
    expect(metricsOf("Documents ingested / failed (by reason)")).toContain(
      `SEARCH('{KimiDocPipeline,reason,service} MetricName=\\"DocumentsFailed\\"', 'Sum', 300)`,
    );
    expect(metricsOf("Documents ingested / failed (by reason)")).toContain(
      '"DocumentsIngested","service","ingest"',
    );
    expect(metricsOf("Provider latency p90 (ms, by operation)")).toContain("ProviderLatency");
    expect(metricsOf("Janitor deletions (by reason) and errors")).toContain(JANITOR_METRICS.deletions);
    expect(metricsOf("Provider files held (after each sweep), of which foreign (never deleted)")).toContain(
      `"KimiDocPipeline","${JANITOR_METRICS.remoteFiles}","service","janitor"`,
    );
    expect(metricsOf("Provider files held (after each sweep), of which foreign (never deleted)")).toContain(
      `"KimiDocPipeline","${JANITOR_METRICS.foreignFiles}","service","janitor"`,
    );
    expect(metricsOf("Provider storage held, GB (after each sweep)")).toContain(JANITOR_METRICS.remoteBytes);
    expect(metricsOf("Chat answers and errors (by type)")).toContain(
      `SEARCH('{KimiDocPipeline,type,service} MetricName=\\"${CHAT_METRICS.errors}\\"', 'Sum', 300)`,
    );
    expect(metricsOf("Chat tokens (provider's counts)")).toContain(
      `"KimiDocPipeline","${CHAT_METRICS.completionTokens}","service","chat"`,
    );
    expect(metricsOf("Chat context: ranked, topped up, p90 preparation (ms)")).toContain(
      CHAT_METRICS.contextToppedUp,
    );
    expect(metricsOf("Chat tokens (provider's counts)")).toContain(CHAT_METRICS.cachedPromptTokens);
    expect(metricsOf("Chat cost, USD (price table x provider's counts)")).toContain(
      `"KimiDocPipeline","${CHAT_METRICS.costUsd}","service","chat"`,
    );
    const share = metricsOf("Chat prompt tokens served from the provider's cache (share)");
    expect(share).toContain("IF(prompt > 0, cached / prompt, 0)");
    expect(share).toContain(CHAT_METRICS.cachedPromptTokens);
    expect(metricsOf("Chat cost")).toContain(CHAT_METRICS.costUsd);
  });
});
