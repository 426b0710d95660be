/**
 * Alarms shared by the constructs that own a queue.
 */
import { Duration } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import type { Queue } from "aws-cdk-lib/aws-sqs";
import type { Construct } from "constructs";

/** Fires while a dead-letter queue holds any message (checked every 5 minutes). */
export function deadLetterAlarm(scope: Construct, deadLetterQueue: Queue, alarmDescription: string): Alarm {
  return new Alarm(scope, "DeadLetterQueueNotEmpty", {
    alarmDescription,
    metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(5),
      statistic: "Maximum",
    }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: TreatMissingData.NOT_BREACHING,
  });
}
