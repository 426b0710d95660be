/** The SearchIndex construct: private bucket, FIFO wake-up queue with a DLQ, one-minute schedule, grants. */

import type { Template } from "aws-cdk-lib/assertions";
import { Match } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ENV } from "../../functions/core/config";
import type { PipelineStack } from "../../lib/pipeline-stack";
import { logicalId, shared, statementsOfFunction } from "./synth";

let template: Template;
let stack: PipelineStack;
beforeAll(() => {
  ({ template, stack } = shared());
});

describe("search index", () => {
  it("keeps the index in a private, encrypted, SSL-only bucket of its own", () => {
    const id = logicalId(stack.pipeline.searchIndex.bucket);
    const props = template.toJSON().Resources[id].Properties;
    expect(props.PublicAccessBlockConfiguration).toMatchObject({
      BlockPublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(
      props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm,
    ).toBe("AES256");
  });

  it("runs one indexer at a time: a FIFO queue with a FIFO dead-letter queue, woken every minute", () => {
    const si = stack.pipeline.searchIndex;
    template.hasResourceProperties("AWS::SQS::Queue", {
      FifoQueue: true,
      // Required for an EventBridge target; the scheduled events differ, so none is dropped.
      ContentBasedDeduplication: true,
      RedrivePolicy: {
        deadLetterTargetArn: { "Fn::GetAtt": [logicalId(si.deadLetterQueue), "Arn"] },
        maxReceiveCount: 5,
      },
    });
    template.hasResourceProperties("AWS::Events::Rule", {
      ScheduleExpression: "rate(1 minute)",
      Targets: [
        Match.objectLike({ SqsParameters: { MessageGroupId: "search-index" }, Input: Match.absent() }),
      ],
    });
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [logicalId(si.queue), "Arn"] },
      FunctionName: { Ref: logicalId(si.function) },
    });
  });

  it("alarms on dead-lettered wake-ups and failing runs, through the pipeline's topic", () => {
    const si = stack.pipeline.searchIndex;
    expect(si.alarms).toHaveLength(2);
    for (const alarm of si.alarms) expect(stack.pipeline.observability.alarms).toContain(alarm);
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Dimensions: [
        { Name: "QueueName", Value: { "Fn::GetAtt": [logicalId(si.deadLetterQueue), "QueueName"] } },
      ],
      AlarmActions: [{ Ref: logicalId(stack.pipeline.observability.alarmTopic) }],
    });
  });

  it("lets ingestion wake it and the chat read it, and nothing more", () => {
    const p = stack.pipeline;
    const ingestEnv =
      template.toJSON().Resources[logicalId(p.ingestion.function)].Properties.Environment.Variables;
    expect(ingestEnv[ENV.SEARCH_INDEX_QUEUE_URL]).toEqual({ Ref: logicalId(p.searchIndex.queue) });
    const ingestActions = statementsOfFunction(template, logicalId(p.ingestion.function)).flatMap((s) =>
      [s.Action].flat(),
    );
    expect(ingestActions).toContain("sqs:SendMessage");
    const indexerActions = statementsOfFunction(template, logicalId(p.searchIndex.function))
      .flatMap((s) => [s.Action].flat())
      .filter((a) => a.startsWith("s3:"));
    // ListBucket: the sweep of objects a crashed run left (and a 404, not a 403, for a missing object).
    expect(indexerActions.sort()).toEqual([
      "s3:DeleteObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
  });
});
