/**
 * The logging and metrics the services emit (ingestion, chat), behind two tiny ports so they run the
 * same with Powertools (Lambda, local mode) and with silent or recording fakes (tests, benchmarks).
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { MetricUnit } from "@aws-lambda-powertools/metrics";

export type LogAttributes = Record<string, unknown>;

export interface LoggerPort {
  debug(message: string, attributes?: LogAttributes): void;
  info(message: string, attributes?: LogAttributes): void;
  warn(message: string, attributes?: LogAttributes): void;
  error(message: string, attributes?: LogAttributes): void;
}

export interface MetricsPort {
  /** A count, optionally split by one dimension (e.g. `reason`). */
  count(name: string, value?: number, dimension?: { name: string; value: string }): void;
  /** A duration in milliseconds, optionally split by one dimension (e.g. `operation`). */
  timing(name: string, ms: number, dimension?: { name: string; value: string }): void;
}

export const silentLogger: LoggerPort = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export const noMetrics: MetricsPort = { count() {}, timing() {} };

/** Powertools logger as a LoggerPort. */
export function powertoolsLogger(logger: Logger): LoggerPort {
  return {
    debug: (m, a) => logger.debug(m, a ?? {}),
    info: (m, a) => logger.info(m, a ?? {}),
    warn: (m, a) => logger.warn(m, a ?? {}),
    error: (m, a) => logger.error(m, a ?? {}),
  };
}

/**
 * Powertools metrics (EMF) as MetricsPort. Dimensioned values go through `singleMetric()` so a
 * reason or operation dimension never leaks onto the other metrics of the invocation.
 */
export function powertoolsMetrics(metrics: Metrics): MetricsPort {
  const emit = (
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
    dimension?: { name: string; value: string },
  ) => {
    if (!dimension) {
      metrics.addMetric(name, unit, value);
      return;
    }
    const single = metrics.singleMetric();
    single.addDimension(dimension.name, dimension.value);
    single.addMetric(name, unit, value);
  };
  return {
    count: (name, value = 1, dimension) => emit(name, MetricUnit.Count, value, dimension),
    timing: (name, ms, dimension) => emit(name, MetricUnit.Milliseconds, ms, dimension),
  };
}

/** Recording metrics for tests and benchmarks: totals per `name` and per `name:dimensionValue`. */
export class RecordingMetrics implements MetricsPort {
  readonly counts = new Map<string, number>();
  readonly timings = new Map<string, number[]>();
  count(name: string, value = 1, dimension?: { name: string; value: string }): void {
    const add = (k: string) => this.counts.set(k, (this.counts.get(k) ?? 0) + value);
    add(name);
    if (dimension) add(`${name}:${dimension.value}`);
  }
  timing(name: string, ms: number, dimension?: { name: string; value: string }): void {
    const k = dimension ? `${name}:${dimension.value}` : name;
    const list = this.timings.get(k) ?? [];
    list.push(ms);
    this.timings.set(k, list);
  }
}
