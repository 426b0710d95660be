/**
 * Waking the indexer after a document's text changed. The to-do is already written (the store does it
 * first), so a wake-up is only about latency: it is best effort, and a scheduled run every minute
 * picks up whatever a lost wake-up left. In AWS it is a message on the indexer's FIFO queue (one
 * message group, so runs never overlap); locally the runtime polls instead.
 */
import { SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";

export interface IndexWaker {
  wake(documentId: string): Promise<void>;
}

/** The FIFO queue's only message group: one indexer run at a time. */
export const INDEX_MESSAGE_GROUP = "search-index";

export class SqsIndexWaker implements IndexWaker {
  constructor(
    private readonly client: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async wake(documentId: string): Promise<void> {
    await this.client.send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: JSON.stringify({ documentId }),
        MessageGroupId: INDEX_MESSAGE_GROUP,
        // Every change wakes: several waiting wake-ups are one batch, hence one run.
        MessageDeduplicationId: `${documentId}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
      }),
    );
  }
}
