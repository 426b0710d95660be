/**
 * Reports a sweep: one structured log line and CloudWatch metrics (EMF through Powertools). The CDK
 * construct alarms on `RemoteFiles` / `RemoteBytes` near the high-water mark and on `JanitorErrors`.
 */
import { MetricUnit } from "@aws-lambda-powertools/metrics";

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

import { DELETION_REASONS } from "./policy";
import type { SweepFailure, SweepSummary } from "./sweep";

export const JANITOR_METRICS = {
  /** Remote files after the sweep (dry run: as listed). */
  remoteFiles: "RemoteFiles",
  /** Remote bytes after the sweep (dry run: as listed). */
  remoteBytes: "RemoteBytes",
  /** Of RemoteFiles, files that are not this deployment's (never deleted; ownership.ts). */
  foreignFiles: "ForeignRemoteFiles",
  /** Of RemoteBytes, bytes of files that are not this deployment's. */
  foreignBytes: "ForeignRemoteBytes",
  /** Files deleted, one metric per `Reason` dimension value. Not emitted by a dry run. */
  deletions: "JanitorDeletions",
  /** Deletions or releases that failed. */
  errors: "JanitorErrors",
  reasonDimension: "Reason",
} as const;

/** The parts of Powertools' Metrics the report uses (tests pass a recorder). */
export interface MetricsSink {
  addMetric(name: string, unit: Unit, value: number): unknown;
  singleMetric(): {
    addDimension(name: string, value: string): unknown;
    addMetric(name: string, unit: Unit, value: number): unknown;
  };
}

/** The part of Powertools' Logger the report uses. */
export interface LogSink {
  info(message: string, ...extra: Record<string, unknown>[]): void;
}

/** Failures listed in the log line (the count is always complete). */
const MAX_LOGGED_FAILURES = 20;

/** Logs the summary as one line and records the metrics (the caller flushes them). */
export function reportSweep(
  summary: SweepSummary,
  failures: readonly SweepFailure[],
  sinks: { logger: LogSink; metrics: MetricsSink },
): void {
  sinks.logger.info("janitor sweep", {
    summary,
    ...(failures.length > 0 ? { failures: failures.slice(0, MAX_LOGGED_FAILURES) } : {}),
  });
  const files = summary.dryRun ? summary.filesBefore : summary.filesAfter;
  const bytes = summary.dryRun ? summary.bytesBefore : summary.bytesAfter;
  sinks.metrics.addMetric(JANITOR_METRICS.remoteFiles, MetricUnit.Count, files);
  sinks.metrics.addMetric(JANITOR_METRICS.remoteBytes, MetricUnit.Bytes, bytes);
  sinks.metrics.addMetric(JANITOR_METRICS.foreignFiles, MetricUnit.Count, summary.foreignFiles);
  sinks.metrics.addMetric(JANITOR_METRICS.foreignBytes, MetricUnit.Bytes, summary.foreignBytes);
  sinks.metrics.addMetric(JANITOR_METRICS.errors, MetricUnit.Count, summary.errors);
  if (summary.dryRun) return;
  for (const reason of DELETION_REASONS) {
    // A metric per reason needs its own dimension set: single metrics are emitted at once.
    const single = sinks.metrics.singleMetric();
    single.addDimension(JANITOR_METRICS.reasonDimension, reason);
    single.addMetric(JANITOR_METRICS.deletions, MetricUnit.Count, summary.deletedByReason[reason]);
  }
}
