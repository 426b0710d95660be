/**
 * Janitor: an EventBridge schedule invoking the sweep that deletes stale remote files, with alarms on
 * failures and on the provider quota staying above the high-water mark.
 */
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, Metric, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { ENV } from "../functions/core/config";
import { DEFAULT_STUCK_PROCESSING_MINUTES } from "../functions/core/janitor/stuck";
import {
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_JANITOR_SCHEDULE,
  DEFAULT_JANITOR_TIMEOUT,
  DEFAULT_METRICS_NAMESPACE,
  DEFAULT_RETENTION_HOURS,
  JANITOR_METRICS,
  SERVICE_NAMES,
} from "./defaults";
import { PipelineFunction } from "./function";
import { type ProviderConnection, profileOf } from "./provider";

export interface JanitorProps {
  /** The documents table (the janitor reads records and marks released files). */
  readonly table: ITable;
  /**
   * The deployment id Ingestion names its uploads with: the janitor deletes only files of this
   * deployment (others sharing the provider key are counted and reported, never deleted).
   */
  readonly deploymentId: string;
  /** The model provider whose files are swept: its key secret, endpoint and account limits. */
  readonly provider: ProviderConnection;
  /**
   * Rate of the sweep (1 minute to 1 day).
   * @default Duration.hours(1)
   */
  readonly schedule?: Duration;
  /**
   * Hours a ready document's remote file is kept before the sweep deletes it.
   * @default 24
   */
  readonly retentionHours?: number;
  /**
   * High-water mark as a fraction of the provider's file-count and byte quotas, in (0, 1].
   * @default 0.9
   */
  readonly highWaterMark?: number;
  /**
   * Report what would be deleted without deleting (a run's event can also ask with `dryRun`).
   * @default false
   */
  readonly dryRun?: boolean;
  /**
   * A document still `processing` this long after its version's first claim is marked failed
   * (`retries_exhausted`): its last ingest attempt timed out and the event went to the dead-letter
   * queue. Should be the ingestion queue's visibility timeout x maxReceiveCount (DocumentPipeline
   * passes exactly that). Whole minutes, at least 1.
   * @default Duration.minutes(150) (the defaults: 30 min visibility timeout x 5 receives)
   */
  readonly stuckProcessingAfter?: Duration;
  /**
   * Function timeout; the sweep stops cleanly before it and the next run continues.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Log retention of the janitor function.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Removal policy of the log group.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Powertools metrics namespace (where RemoteFiles / RemoteBytes are published).
   * @default "KimiDocPipeline"
   */
  readonly metricsNamespace?: string;
}

/** The scheduled janitor function and its alarms. */
export class Janitor extends Construct {
  /** The janitor function. */
  public readonly function: PipelineFunction;
  /** The EventBridge rule that starts a sweep. */
  public readonly rule: Rule;
  /** Remote files held after the last sweep (published by the janitor). */
  public readonly remoteFilesMetric: Metric;
  /** Remote bytes held after the last sweep (published by the janitor). */
  public readonly remoteBytesMetric: Metric;
  /** Of those files, the ones that are not this deployment's (never deleted; ForeignRemoteFiles). */
  public readonly foreignFilesMetric: Metric;
  /** Failed deletions or releases counted by the janitor (JanitorErrors). */
  public readonly deletionErrorsMetric: Metric;
  /** Alarms: failed sweeps, deletions failing sweep after sweep, quota still above the high-water mark. */
  public readonly alarms: Alarm[];
  /** The provider account's quotas the alarms and the dashboard measure against (Moonshot 1,000 files, GLM 100). */
  public readonly quota: { readonly files: number; readonly bytes: number };

  constructor(scope: Construct, id: string, props: JanitorProps) {
    super(scope, id);
    const limits = profileOf(props.provider).limits;
    this.quota = { files: limits.maxFiles, bytes: limits.maxTotalBytes };
    const schedule = props.schedule ?? DEFAULT_JANITOR_SCHEDULE;
    const timeout = props.timeout ?? DEFAULT_JANITOR_TIMEOUT;
    const highWaterMark = props.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    const retentionHours = props.retentionHours ?? DEFAULT_RETENTION_HOURS;
    const metricsNamespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const scheduleSeconds = schedule.toSeconds();
    const stuckMinutes = Math.ceil(
      (props.stuckProcessingAfter ?? Duration.minutes(DEFAULT_STUCK_PROCESSING_MINUTES)).toSeconds() / 60,
    );
    if (stuckMinutes < 1) {
      throw new Error("Janitor: stuckProcessingAfter must be at least 1 minute");
    }
    if (scheduleSeconds < 60 || scheduleSeconds > 86_400 || scheduleSeconds % 60 !== 0) {
      throw new Error(
        `Janitor: schedule must be whole minutes from 1 minute to 1 day, got ${schedule.toHumanString()}`,
      );
    }
    if (timeout.toSeconds() > 900) {
      throw new Error(`Janitor: timeout must be at most 15 minutes, got ${timeout.toHumanString()}`);
    }

    this.function = new PipelineFunction(this, "Function", {
      name: "janitor",
      description: `Deletes stale ${profileOf(props.provider).label} remote files to stay under the account quotas`,
      serviceName: SERVICE_NAMES.janitor,
      metricsNamespace,
      timeout,
      memorySize: 512,
      // No reserved concurrency: new accounts (concurrency quota 10) cannot reserve any, and none is
      // needed. The timeout is under the schedule, so scheduled sweeps do not overlap; a manual run
      // that does is safe, as ingestion's room makers already run beside sweeps (every release is
      // conditional and a 404 on delete counts as done).
      // Failed sweeps are not retried: the next scheduled run starts from the provider's current state.
      retryAttempts: 0,
      // An invocation held back by throttling is dropped once the next would start anyway.
      maxEventAge: Duration.seconds(Math.min(Math.max(scheduleSeconds, 60), 6 * 3600)),
      logRetention: props.logRetention,
      logRemovalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    })
      .bindTable(props.table, "readWrite")
      .bindProvider(props.provider)
      .bindSettings({
        [ENV.DEPLOYMENT_ID]: props.deploymentId,
        [ENV.RETENTION_HOURS]: String(retentionHours),
        [ENV.HIGH_WATER_MARK]: String(highWaterMark),
        [ENV.DRY_RUN]: String(props.dryRun ?? false),
        [ENV.STUCK_PROCESSING_MINUTES]: String(stuckMinutes),
      });

    this.rule = new Rule(this, "Schedule", {
      description: "Starts a janitor sweep",
      schedule: Schedule.rate(schedule),
      targets: [new LambdaFunction(this.function, { retryAttempts: 2, maxEventAge: Duration.hours(1) })],
    });

    // One datapoint per sweep, so the period follows the schedule (CloudWatch allows up to 1 day).
    const period = Duration.seconds(Math.max(scheduleSeconds, 300));
    const dimensionsMap = { service: SERVICE_NAMES.janitor };
    this.remoteFilesMetric = new Metric({
      namespace: metricsNamespace,
      metricName: JANITOR_METRICS.remoteFiles,
      dimensionsMap,
      statistic: "Maximum",
      period,
    });
    this.foreignFilesMetric = new Metric({
      namespace: metricsNamespace,
      metricName: JANITOR_METRICS.foreignFiles,
      dimensionsMap,
      statistic: "Maximum",
      period,
    });
    this.remoteBytesMetric = new Metric({
      namespace: metricsNamespace,
      metricName: JANITOR_METRICS.remoteBytes,
      dimensionsMap,
      statistic: "Maximum",
      period,
    });
    this.deletionErrorsMetric = new Metric({
      namespace: metricsNamespace,
      metricName: JANITOR_METRICS.errors,
      dimensionsMap,
      statistic: "Sum",
      period,
    });
    const quotaAlarm = (alarmId: string, metric: Metric, limit: number, what: string) =>
      new Alarm(this, alarmId, {
        alarmDescription: `After a sweep the provider account still holds ${what} at or above the high-water mark (${highWaterMark} x ${limit}); nothing more could be freed, uploads will soon fail as quota.`,
        metric,
        threshold: Math.floor(highWaterMark * limit),
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    this.alarms = [
      new Alarm(this, "SweepFailed", {
        alarmDescription:
          "A janitor sweep failed (error, timeout or provider auth failure); stale remote files were not deleted.",
        metric: this.function.metricErrors({ period, statistic: "Sum" }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
      new Alarm(this, "DeletionsFailing", {
        alarmDescription:
          "Three sweeps in a row could not delete or release some remote files (JanitorErrors); a transient provider error clears by itself, this did not.",
        metric: this.deletionErrorsMetric,
        threshold: 1,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
      quotaAlarm("RemoteFilesNearQuota", this.remoteFilesMetric, this.quota.files, "files"),
      quotaAlarm("RemoteBytesNearQuota", this.remoteBytesMetric, this.quota.bytes, "bytes"),
    ];
  }
}
