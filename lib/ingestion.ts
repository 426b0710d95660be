/**
 * Ingestion: documents bucket -> S3 notifications -> SQS (+ DLQ) -> ingest function -> documents table.
 */
import { Aws, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import type { ITable } from "aws-cdk-lib/aws-dynamodb";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import type { RetentionDays } from "aws-cdk-lib/aws-logs";
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  EventType,
  HttpMethods,
  type IBucket,
} from "aws-cdk-lib/aws-s3";
import { SqsDestination } from "aws-cdk-lib/aws-s3-notifications";
import { Queue, QueueEncryption } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { ENV } from "../functions/core/config";
import { deadLetterAlarm } from "./alarms";
import {
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_INGEST_BATCH_SIZE,
  DEFAULT_INGEST_CONCURRENCY,
  DEFAULT_INGEST_TIMEOUT,
  DEFAULT_MAX_RECEIVE_COUNT,
  DEFAULT_METRICS_NAMESPACE,
  SERVICE_NAMES,
} from "./defaults";
import { PipelineFunction } from "./function";
import { acknowledge } from "./nag";
import { type ProviderConnection, profileOf } from "./provider";

export interface IngestionProps {
  /** The documents table (document records and text chunks). */
  readonly table: ITable;
  /**
   * Names every remote file ingestion uploads (`kdp-<deploymentId>-...`); the Janitor must get the
   * same id. DocumentPipeline derives one per stack (lib/deployment-id.ts).
   */
  readonly deploymentId: string;
  /** The model provider: which one, its key secret (the function gets its ARN), its endpoint. */
  readonly provider: ProviderConnection;
  /**
   * An existing bucket to ingest from. The construct adds its notifications and object-read grant;
   * encryption, versioning and logging of that bucket stay the owner's business.
   * @default - a new bucket: public access blocked, SSL only, SSE-S3, versioned, access-logged
   */
  readonly bucket?: IBucket;
  /**
   * High-water mark (fraction of the provider's file and byte quotas) ingestion makes room under.
   * @default 0.9
   */
  readonly highWaterMark?: number;
  /**
   * Most concurrent ingest invocations (the SQS event source's maxConcurrency, 2..1000). Keeps a burst
   * of uploads from exceeding the provider account's concurrency.
   * @default 2
   */
  readonly concurrency?: number;
  /**
   * SQS messages per invocation. The handler processes a batch's records in parallel (INGEST_CONCURRENCY
   * is set to this), so at most `concurrency x batchSize` uploads reach the provider at once, and no
   * record waits for another one's time budget.
   * @default 1
   */
  readonly batchSize?: number;
  /**
   * Ingest function timeout; the queue's visibility timeout is six times this.
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;
  /**
   * Ingest function memory (MB); network bandwidth grows with it.
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * Deliveries of one message before it moves to the dead-letter queue.
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * Days noncurrent object versions are kept in a bucket this construct creates.
   * @default 30
   */
  readonly noncurrentVersionRetentionDays?: number;
  /**
   * Origins allowed to PUT objects from a browser with presigned URLs (the web console's uploads), set
   * as the CORS rule of a bucket this construct creates. The signature, not CORS, is what authorises a
   * PUT; CORS only lets the browser send it. Add your custom domain here; [] turns browser uploads off.
   * @default - API Gateway origins of the stack's region: https://*.execute-api.<region>.amazonaws.com
   */
  readonly browserUploadOrigins?: string[];
  /**
   * Removal policy of the bucket this construct creates (and of its access-log bucket and log group).
   * DESTROY also empties the buckets on stack deletion.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Log retention of the ingest function.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Powertools metrics namespace.
   * @default "KimiDocPipeline"
   */
  readonly metricsNamespace?: string;
}

/** Documents bucket, event queue with DLQ, and the ingest function on that queue. */
export class Ingestion extends Construct {
  /** The documents bucket (created or passed in). */
  public readonly bucket: IBucket;
  /** Server access-log bucket, when this construct created the documents bucket. */
  public readonly accessLogsBucket?: Bucket;
  /** Queue receiving the bucket's ObjectCreated / ObjectRemoved notifications. */
  public readonly queue: Queue;
  /** Where a message lands after `maxReceiveCount` failed deliveries. */
  public readonly deadLetterQueue: Queue;
  /** The ingest function. */
  public readonly function: PipelineFunction;
  /** The deliveries limit configured on the redrive policy (also given to the function). */
  public readonly maxReceiveCount: number;
  /** The queue's visibility timeout (6 x the function timeout). */
  public readonly visibilityTimeout: Duration;
  /**
   * After this long from a version's first claim no ingest attempt can still be running (visibility
   * timeout x maxReceiveCount): the janitor marks a document still `processing` then as failed.
   */
  public readonly processingBound: Duration;
  /** Alarms: messages in the DLQ, ingest function errors. */
  public readonly alarms: Alarm[];

  constructor(scope: Construct, id: string, props: IngestionProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const timeout = props.timeout ?? DEFAULT_INGEST_TIMEOUT;
    const concurrency = props.concurrency ?? DEFAULT_INGEST_CONCURRENCY;
    const batchSize = props.batchSize ?? DEFAULT_INGEST_BATCH_SIZE;
    this.maxReceiveCount = props.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
    if (!Number.isInteger(concurrency) || concurrency < 2 || concurrency > 1000) {
      throw new Error(
        `Ingestion: concurrency must be an integer from 2 to 1000 (SQS event source limit), got ${concurrency}`,
      );
    }
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
      throw new Error(`Ingestion: batchSize must be an integer from 1 to 10, got ${batchSize}`);
    }
    if (!Number.isInteger(this.maxReceiveCount) || this.maxReceiveCount < 1 || this.maxReceiveCount > 1000) {
      throw new Error(
        `Ingestion: maxReceiveCount must be an integer from 1 to 1000, got ${this.maxReceiveCount}`,
      );
    }
    if (timeout.toSeconds() > 900) {
      throw new Error(`Ingestion: timeout must be at most 15 minutes, got ${timeout.toHumanString()}`);
    }

    const uploadOrigins = props.browserUploadOrigins ?? [`https://*.execute-api.${Aws.REGION}.amazonaws.com`];
    if (props.bucket) {
      this.bucket = props.bucket;
    } else {
      const autoDelete = removalPolicy === RemovalPolicy.DESTROY;
      this.accessLogsBucket = new Bucket(this, "AccessLogs", {
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        encryption: BucketEncryption.S3_MANAGED,
        lifecycleRules: [{ expiration: Duration.days(90) }],
        removalPolicy,
        autoDeleteObjects: autoDelete,
      });
      this.bucket = new Bucket(this, "Documents", {
        blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
        enforceSSL: true,
        minimumTLSVersion: 1.2,
        encryption: BucketEncryption.S3_MANAGED,
        versioned: true,
        serverAccessLogsBucket: this.accessLogsBucket,
        serverAccessLogsPrefix: "documents/",
        lifecycleRules: [
          {
            noncurrentVersionExpiration: Duration.days(props.noncurrentVersionRetentionDays ?? 30),
            abortIncompleteMultipartUploadAfter: Duration.days(7),
          },
        ],
        removalPolicy,
        autoDeleteObjects: autoDelete,
        cors: uploadOrigins.length
          ? [
              {
                allowedMethods: [HttpMethods.PUT],
                allowedOrigins: uploadOrigins,
                // if-none-match: presigned uploads are conditional (never overwrite silently).
                allowedHeaders: ["content-type", "if-none-match", "x-amz-*"],
                maxAge: 3000,
              },
            ]
          : undefined,
      });
    }

    this.deadLetterQueue = new Queue(this, "DeadLetterQueue", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.visibilityTimeout = Duration.seconds(timeout.toSeconds() * 6);
    this.processingBound = Duration.seconds(this.visibilityTimeout.toSeconds() * this.maxReceiveCount);
    this.queue = new Queue(this, "Queue", {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS: at least six times the function timeout, so a message is not redelivered while a retried
      // invocation of the same batch is still running.
      visibilityTimeout: this.visibilityTimeout,
      retentionPeriod: Duration.days(4),
      // S3 event messages are a few KB; the SQS maximum leaves room for any key length.
      maxMessageSizeBytes: 262_144,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
    });
    const destination = new SqsDestination(this.queue);
    this.bucket.addEventNotification(EventType.OBJECT_CREATED, destination);
    this.bucket.addEventNotification(EventType.OBJECT_REMOVED, destination);

    this.function = new PipelineFunction(this, "Function", {
      name: "ingest",
      description: `Ingests S3 objects: uploads to the ${profileOf(props.provider).label} Files API, stores the extracted text in DynamoDB`,
      serviceName: SERVICE_NAMES.ingest,
      metricsNamespace: props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE,
      timeout,
      memorySize: props.memorySize ?? 1024,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
    })
      .bindTable(props.table, "readWrite")
      .bindBucket(this.bucket, { read: true })
      .bindProvider(props.provider)
      .bindSettings({
        [ENV.HIGH_WATER_MARK]: String(props.highWaterMark ?? DEFAULT_HIGH_WATER_MARK),
        [ENV.MAX_RECEIVE_COUNT]: String(this.maxReceiveCount),
        [ENV.DEPLOYMENT_ID]: props.deploymentId,
        [ENV.INGEST_CONCURRENCY]: String(batchSize),
      });
    this.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize,
        reportBatchItemFailures: true,
        maxConcurrency: concurrency,
      }),
    );

    this.alarms = [
      deadLetterAlarm(
        this,
        this.deadLetterQueue,
        "Ingestion gave up on at least one S3 event (it is in the dead-letter queue); the document says why. Redrive after fixing the cause.",
      ),
      new Alarm(this, "FunctionErrors", {
        alarmDescription:
          "The ingest function failed whole invocations (crash or timeout), not single records; see its log group.",
        metric: this.function.metricErrors({ period: Duration.minutes(5), statistic: "Sum" }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    ];
    // The stack-wide S3 notifications custom resource is acknowledged where it lives.
    acknowledgeBucketNotificationsHandler(Stack.of(this));
  }
}

/**
 * CDK writes S3 notifications through one singleton custom-resource function per stack
 * (BucketNotificationsHandler...), outside our control; acknowledge its findings with the reasons.
 */
export function acknowledgeBucketNotificationsHandler(stack: Stack): void {
  const handler = stack.node.children.find((c) => c.node.id.startsWith("BucketNotificationsHandler"));
  if (!handler) return;
  acknowledge(
    handler,
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    "CDK's built-in S3 bucket-notifications custom resource (runs only during deployment) ships with the basic execution managed policy; its role is not configurable.",
  );
}
