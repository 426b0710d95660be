/**
 * Powertools logger and metrics, one of each per process. Service name and metrics namespace come from
 * POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE (set by the constructs).
 *
 * No Powertools Tracer: nothing here creates subsegments, Lambda active tracing (enabled by the
 * constructs) already records each invocation, and loading the X-Ray SDK cost ~150 ms of every cold
 * start. Add a lazily imported tracer where custom subsegments are really needed.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics } from "@aws-lambda-powertools/metrics";

export const logger = new Logger();
export const metrics = new Metrics({ defaultDimensions: {} });
