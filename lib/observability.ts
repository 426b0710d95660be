/**
 * Observability: one SNS topic for every alarm (optional e-mail subscription) and a CloudWatch
 * dashboard with the pipeline's main figures.
 */
import { Duration, Stack } from "aws-cdk-lib";
import {
  type Alarm,
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  type HorizontalAnnotation,
  MathExpression,
  Metric,
  SingleValueWidget,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import type { ChatApi } from "./chat-api";
import { CHAT_METRICS, INGEST_METRICS, JANITOR_METRICS, SERVICE_NAMES } from "./defaults";
import type { Ingestion } from "./ingestion";
import type { Janitor } from "./janitor";
import type { SearchIndex } from "./search-index";

export interface ObservabilityProps {
  readonly ingestion: Ingestion;
  readonly chatApi: ChatApi;
  readonly janitor: Janitor;
  /**
   * The search index: its alarms join the topic and its lag gets a graph.
   * @default - none
   */
  readonly searchIndex?: SearchIndex;
  /** Namespace of the functions' custom metrics. */
  readonly metricsNamespace: string;
  /** High-water mark drawn on the quota graphs. */
  readonly highWaterMark: number;
  /**
   * E-mail address subscribed to the alarm topic (confirm the subscription mail after deploy).
   * @default - no subscription; subscribe to the topic yourself
   */
  readonly alarmEmail?: string;
  /**
   * Dashboard name.
   * @default - `${stackName}-documents`
   */
  readonly dashboardName?: string;
}

export class Observability extends Construct {
  /** Every alarm of the pipeline notifies this topic (ALARM and OK). */
  public readonly alarmTopic: Topic;
  /** The pipeline's dashboard. */
  public readonly dashboard: Dashboard;
  /** Every alarm wired to the topic. */
  public readonly alarms: Alarm[];

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { ingestion, chatApi, janitor } = props;
    this.alarmTopic = new Topic(this, "AlarmTopic", {
      displayName: "Kimi document pipeline alarms",
      enforceSSL: true,
    });
    // Not KMS-encrypted on purpose: CloudWatch alarms cannot publish to a topic encrypted with the
    // AWS-managed aws/sns key, and notifications carry only alarm names and thresholds.
    if (props.alarmEmail) this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));

    this.alarms = [
      ...ingestion.alarms,
      ...chatApi.alarms,
      ...janitor.alarms,
      ...(props.searchIndex?.alarms ?? []),
    ];
    const action = new SnsAction(this.alarmTopic);
    for (const alarm of this.alarms) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }

    const fiveMinutes = Duration.minutes(5);
    const ingestFn = ingestion.function;
    const api = chatApi.api;
    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: props.dashboardName ?? `${Stack.of(this).stackName}-documents`,
      defaultInterval: Duration.days(1),
    });
    this.dashboard.addWidgets(
      new AlarmStatusWidget({ title: "Alarms", alarms: this.alarms, width: 24, height: 3 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Ingestion queue",
        left: [
          ingestion.queue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes, label: "waiting" }),
          ingestion.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, label: "oldest (s)" }),
        ],
        right: [
          ingestion.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: fiveMinutes,
            statistic: "Maximum",
            label: "dead letters",
          }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Ingest function",
        left: [
          ingestFn.metricInvocations({ period: fiveMinutes }),
          ingestFn.metricErrors({ period: fiveMinutes }),
          ingestFn.metricThrottles({ period: fiveMinutes }),
        ],
        right: [ingestFn.metricDuration({ period: fiveMinutes, statistic: "p90", label: "p90 duration" })],
        width: 8,
      }),
      new GraphWidget({
        title: "Ingest concurrency",
        left: [
          ingestFn.metric("ConcurrentExecutions", {
            period: fiveMinutes,
            statistic: "Maximum",
            label: "concurrent",
          }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Chat API requests",
        left: [
          api.metricCount({ period: fiveMinutes, statistic: "Sum", label: "requests" }),
          api.metricClientError({ period: fiveMinutes, statistic: "Sum", label: "4xx" }),
          api.metricServerError({ period: fiveMinutes, statistic: "Sum", label: "5xx" }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Chat API latency",
        left: [
          api.metricLatency({ period: fiveMinutes, statistic: "p50", label: "p50" }),
          api.metricLatency({ period: fiveMinutes, statistic: "p90", label: "p90" }),
          api.metricIntegrationLatency({ period: fiveMinutes, statistic: "p90", label: "integration p90" }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Chat and authorizer functions",
        left: [
          chatApi.function.metricErrors({ period: fiveMinutes, label: "chat errors" }),
          chatApi.authorizerFunction.metricErrors({ period: fiveMinutes, label: "authorizer errors" }),
          chatApi.function.metricThrottles({ period: fiveMinutes, label: "chat throttles" }),
        ],
        right: [
          chatApi.function.metricDuration({
            period: fiveMinutes,
            statistic: "p90",
            label: "chat p90 duration",
          }),
        ],
        width: 8,
      }),
    );
    const ns = props.metricsNamespace;
    // SEARCH graphs every value of a dimension (failure reasons, provider operations, deletion reasons)
    // without listing them here.
    const search = (dims: string, metric: string, stat: string, period: Duration, label: string) =>
      new MathExpression({
        expression: `SEARCH('{${ns},${dims}} MetricName="${metric}"', '${stat}', ${period.toSeconds()})`,
        label,
        period,
      });
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Documents ingested / failed (by reason)",
        left: [
          new Metric({
            namespace: ns,
            metricName: INGEST_METRICS.ingested,
            dimensionsMap: { service: SERVICE_NAMES.ingest },
            statistic: "Sum",
            period: fiveMinutes,
            label: "ingested",
          }),
          search("reason,service", INGEST_METRICS.failed, "Sum", fiveMinutes, "failed"),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Provider latency p90 (ms, by operation)",
        left: [search("operation,service", INGEST_METRICS.providerLatency, "p90", fiveMinutes, "p90")],
        width: 8,
      }),
      new GraphWidget({
        title: "Janitor deletions (by reason) and errors",
        left: [
          search(
            "Reason,service",
            JANITOR_METRICS.deletions,
            "Sum",
            janitor.remoteFilesMetric.period,
            "deleted",
          ),
        ],
        right: [janitor.deletionErrorsMetric],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Provider files held (after each sweep), of which foreign (never deleted)",
        left: [janitor.remoteFilesMetric, janitor.foreignFilesMetric],
        leftAnnotations: [quotaLine(props.highWaterMark, janitor.quota.files, "high-water mark")],
        width: 8,
      }),
      new GraphWidget({
        title: "Provider storage held, GB (after each sweep)",
        left: [
          new MathExpression({
            expression: "bytes / 1073741824",
            usingMetrics: { bytes: janitor.remoteBytesMetric },
            label: "GB",
            period: janitor.remoteBytesMetric.period,
          }),
        ],
        leftAnnotations: [quotaLine(props.highWaterMark, janitor.quota.bytes / 1024 ** 3, "high-water mark")],
        width: 8,
      }),
      new SingleValueWidget({
        title: "Janitor sweeps",
        metrics: [
          janitor.function.metricInvocations({ period: Duration.days(1), label: "sweeps (1 day)" }),
          janitor.function.metricErrors({ period: Duration.days(1), label: "failed (1 day)" }),
          janitor.function.metricDuration({
            period: Duration.days(1),
            statistic: "Maximum",
            label: "longest (ms)",
          }),
        ],
        width: 8,
      }),
    );
    const chatMetric = (metricName: string, label: string, statistic = "Sum") =>
      new Metric({
        namespace: ns,
        metricName,
        dimensionsMap: { service: SERVICE_NAMES.chat },
        statistic,
        period: fiveMinutes,
        label,
      });
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Chat answers and errors (by type)",
        left: [
          chatMetric(CHAT_METRICS.answers, "answers"),
          search("type,service", CHAT_METRICS.errors, "Sum", fiveMinutes, "errors"),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Chat tokens (provider's counts)",
        left: [
          chatMetric(CHAT_METRICS.promptTokens, "prompt"),
          chatMetric(CHAT_METRICS.cachedPromptTokens, "prompt, cached"),
          chatMetric(CHAT_METRICS.completionTokens, "completion"),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "Chat context: ranked, topped up, p90 preparation (ms)",
        left: [
          chatMetric(CHAT_METRICS.contextRanked, "ranked"),
          chatMetric(CHAT_METRICS.contextToppedUp, "topped up"),
        ],
        right: [chatMetric(CHAT_METRICS.prepareTime, "prepare p90", "p90")],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Chat cost, USD (price table x provider's counts)",
        left: [chatMetric(CHAT_METRICS.costUsd, "USD per 5 minutes")],
        width: 8,
      }),
      new GraphWidget({
        title: "Chat prompt tokens served from the provider's cache (share)",
        left: [
          new MathExpression({
            expression: "IF(prompt > 0, cached / prompt, 0)",
            usingMetrics: {
              prompt: chatMetric(CHAT_METRICS.promptTokens, "prompt"),
              cached: chatMetric(CHAT_METRICS.cachedPromptTokens, "cached"),
            },
            label: "cached share",
            period: fiveMinutes,
          }),
        ],
        leftYAxis: { min: 0, max: 1 },
        width: 8,
      }),
      new SingleValueWidget({
        title: "Chat cost",
        metrics: [
          new Metric({
            namespace: ns,
            metricName: CHAT_METRICS.costUsd,
            dimensionsMap: { service: SERVICE_NAMES.chat },
            statistic: "Sum",
            period: Duration.days(1),
            label: "USD (1 day)",
          }),
          new Metric({
            namespace: ns,
            metricName: CHAT_METRICS.answers,
            dimensionsMap: { service: SERVICE_NAMES.chat },
            statistic: "Sum",
            period: Duration.days(1),
            label: "answers (1 day)",
          }),
        ],
        width: 8,
      }),
    );
    const index = props.searchIndex;
    if (index) {
      this.dashboard.addWidgets(
        new GraphWidget({
          title: "Search index lag (ms, text change -> searchable, max per 5 min)",
          left: [index.lagMetric],
          width: 12,
        }),
        new GraphWidget({
          title: "Search indexer runs and errors; wake-ups waiting",
          left: [
            index.function.metricInvocations({ period: fiveMinutes, statistic: "Sum" }),
            index.function.metricErrors({ period: fiveMinutes, statistic: "Sum" }),
          ],
          right: [index.queue.metricApproximateNumberOfMessagesVisible({ period: fiveMinutes })],
          width: 12,
        }),
      );
    }
  }
}

function quotaLine(highWaterMark: number, limit: number, label: string): HorizontalAnnotation {
  return { value: highWaterMark * limit, label };
}
