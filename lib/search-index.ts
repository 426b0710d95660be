/**
 * SearchIndex: the keyword index of every ready document's text (functions/core/search), kept by a
 * single indexer and stored as objects in a bucket of its own. Nothing runs while nothing changes:
 *
 *   ingest function --wake (SQS FIFO, one message group)--> queue --> indexer function --> index bucket
 *   EventBridge (every minute) ------------------------------^        (to-do list in the documents table)
 *
 * One message group means one indexer run at a time (the manifest has no lock). The schedule catches
 * a wake-up lost to a crash between the record write and the send; the to-do itself is never lost.
 */
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { SqsQueue } from "aws-cdk-lib/aws-events-targets";
import type { IGrantable } from "aws-cdk-lib/aws-iam";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import { BlockPublicAccess, Bucket, BucketEncryption } from "aws-cdk-lib/aws-s3";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { ENV } from "../functions/core/config";
import { INDEX_MESSAGE_GROUP } from "../functions/core/search/wake";
import { deadLetterAlarm } from "./alarms";
import { DEFAULT_METRICS_NAMESPACE, SERVICE_NAMES } from "./defaults";
import { PipelineFunction } from "./function";
import { acknowledge } from "./nag";

export interface SearchIndexProps {
  /** The documents table (records, chunks and the index's to-do list). */
  readonly table: ITable;
  /**
   * Indexer memory (MB). A run holds one segment at a time plus the batch's new text.
   * @default 2048
   */
  readonly memorySize?: number;
  /**
   * Indexer timeout; a run that ends early leaves its to-dos for the next one.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Removal policy of the index bucket. The index is derived data (rebuilt from the table by
   * re-noting every document), so DESTROY is safe; RETAIN keeps it with the table.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** @default RetentionDays.ONE_MONTH */
  readonly logRetention?: RetentionDays;
  /** @default "KimiDocPipeline" */
  readonly metricsNamespace?: string;
}

export class SearchIndex extends Construct {
  /** Index objects: manifest, document table and segments under `search/`. */
  public readonly bucket: Bucket;
  /** Wake-ups for the indexer (FIFO: one run at a time). */
  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly function: PipelineFunction;
  /** The one-minute schedule that catches lost wake-ups. */
  public readonly rule: Rule;
  /** Milliseconds from a document's text change to the index holding it (maximum per run). */
  public readonly lagMetric: Metric;
  /** Alarms: wake-ups in the dead-letter queue, indexer function errors. */
  public readonly alarms: Alarm[];

  constructor(scope: Construct, id: string, props: SearchIndexProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const timeout = props.timeout ?? Duration.minutes(5);
    this.bucket = new Bucket(this, "Bucket", {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      encryption: BucketEncryption.S3_MANAGED,
      // Replaced objects are deleted by the indexer; this only sweeps what a crashed run left.
      lifecycleRules: [{ abortIncompleteMultipartUploadAfter: Duration.days(1) }],
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.bucket,
      "AwsSolutions-S1",
      "Derived data written only by the indexer function (every write is in its logs); server access logs would record each segment rewrite for no audit value.",
    );

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      fifo: true,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.queue = new Queue(this, "Queue", {
      fifo: true,
      // EventBridge cannot give a deduplication id; its events differ (id, time), so content-based
      // deduplication never drops a scheduled wake-up. Ingestion sends its own ids.
      contentBasedDeduplication: true,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Only a timed-out run leaves messages in flight (failed runs are handled in the function): keep
      // the one message group blocked no longer than one more run.
      visibilityTimeout: Duration.seconds(timeout.toSeconds() + 60),
      retentionPeriod: Duration.days(1),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: 5 },
    });

    this.function = new PipelineFunction(this, "Function", {
      name: "indexer",
      description: "Keeps the search index in step with the documents table (one run at a time)",
      serviceName: SERVICE_NAMES.indexer,
      metricsNamespace: props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE,
      timeout,
      memorySize: props.memorySize ?? 2048,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
    })
      .bindTable(props.table, "readWrite")
      .bindSearchIndex(this.bucket, "readWrite");
    this.function.addEventSource(new SqsEventSource(this.queue, { batchSize: 10 }));

    this.lagMetric = new Metric({
      namespace: props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE,
      metricName: "SearchIndexLag",
      dimensionsMap: { service: SERVICE_NAMES.indexer },
      statistic: "Maximum",
      period: Duration.minutes(5),
    });
    this.alarms = [
      deadLetterAlarm(
        this,
        this.deadLetterQueue,
        "The search indexer failed 5 times in a row (its wake-ups are in the dead-letter queue); documents stay on its to-do list until it runs again. See the indexer's log group.",
      ),
      new Alarm(this, "RunFailures", {
        alarmDescription:
          "Search indexer runs kept failing for 15 minutes (new or deleted text is not reaching search; the to-dos wait); see its log group.",
        metric: new MathExpression({
          expression: "failures + errors",
          usingMetrics: {
            failures: new Metric({
              namespace: props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE,
              metricName: "SearchIndexFailures",
              dimensionsMap: { service: SERVICE_NAMES.indexer },
              statistic: "Sum",
              period: Duration.minutes(5),
            }),
            errors: this.function.metricErrors({ period: Duration.minutes(5), statistic: "Sum" }),
          },
          period: Duration.minutes(5),
        }),
        threshold: 1,
        evaluationPeriods: 3,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    ];

    this.rule = new Rule(this, "Schedule", {
      description: "Wakes the search indexer (catches wake-ups lost to a crashed ingestion)",
      schedule: Schedule.rate(Duration.minutes(1)),
      // The whole event is the message (a constant body would be deduplicated for 5 minutes).
      targets: [new SqsQueue(this.queue, { messageGroupId: INDEX_MESSAGE_GROUP })],
    });
  }

  /** Lets ingestion wake the indexer (SEARCH_INDEX_QUEUE_URL + sqs:SendMessage on the queue). */
  grantWake(fn: PipelineFunction): void {
    this.queue.grantSendMessages(fn);
    fn.addEnvironment(ENV.SEARCH_INDEX_QUEUE_URL, this.queue.queueUrl);
  }

  /** Lets a reader (the chat function) read the index (SEARCH_INDEX_BUCKET + object reads). */
  grantRead(fn: PipelineFunction & IGrantable): void {
    fn.bindSearchIndex(this.bucket, "read");
  }
}
