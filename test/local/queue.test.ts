import type { S3EventRecord, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { createLambdaContext } from "../../local/runtime/lambda-context";
import {
  interpretResponse,
  LocalQueue,
  type LocalQueueOptions,
  type QueueEvent,
} from "../../local/runtime/queue";
import { decodeS3EventKey, s3EventKind, s3NotificationBody } from "../../local/runtime/s3-events";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A queue whose handler records every event; retries are immediate unless the test says otherwise. */
function harness(
  handler: LocalQueueOptions["handler"],
  opts: Partial<LocalQueueOptions> = {},
): { queue: LocalQueue; events: QueueEvent[] } {
  const events: QueueEvent[] = [];
  const queue = new LocalQueue({
    name: "test-queue",
    handler,
    retryDelayMs: () => 0,
    functionTimeoutMs: 2_000,
    onEvent: (e) => events.push(e),
    ...opts,
  });
  return { queue, events };
}

async function withTimeout<T>(p: Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("LocalQueue", () => {
  it("delivers SQS-shaped records in batches of at most batchSize, then is idle", async () => {
    const batches: SQSEvent[] = [];
    const { queue } = harness(
      async (event) => {
        batches.push(event);
      },
      { batchSize: 3, maxConcurrency: 1 },
    );
    const ids = ["a", "b", "c", "d", "e", "f", "g"].map((b) => queue.send(b));
    await withTimeout(queue.idle());
    expect(batches.map((b) => b.Records.length)).toEqual([3, 3, 1]);
    const records = batches.flatMap((b) => b.Records);
    expect(records.map((r) => r.body)).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
    expect(records.map((r) => r.messageId)).toEqual(ids);
    const r = records[0]!;
    expect(r.eventSource).toBe("aws:sqs");
    expect(r.eventSourceARN).toBe("arn:aws:sqs:us-east-1:000000000000:test-queue");
    expect(r.attributes.ApproximateReceiveCount).toBe("1");
    expect(Number(r.attributes.SentTimestamp)).toBeGreaterThan(0);
    expect(r.md5OfBody).toBe("0cc175b9c0f1b6a831c399e269772661"); // md5("a")
    expect(r.receiptHandle).toMatch(/.+/);
    expect(queue.stats()).toMatchObject({ waiting: 0, inFlight: 0, deleted: 7, sent: 7, invocations: 3 });
    await queue.close();
  });

  it("waits up to batchWindowMs to fill a batch", async () => {
    const sizes: number[] = [];
    const { queue } = harness(
      async (event) => {
        sizes.push(event.Records.length);
      },
      { batchSize: 10, batchWindowMs: 150 },
    );
    queue.send("1");
    await sleep(30);
    queue.send("2");
    queue.send("3");
    await withTimeout(queue.idle());
    expect(sizes).toEqual([3]);
    await queue.close();
  });

  it("redelivers only the records named in batchItemFailures, with increasing ApproximateReceiveCount", async () => {
    const seen: { body: string; count: string }[] = [];
    const { queue, events } = harness(
      async (event): Promise<SQSBatchResponse> => {
        for (const r of event.Records)
          seen.push({ body: r.body, count: r.attributes.ApproximateReceiveCount });
        // "bad" fails twice, then succeeds.
        const failures = event.Records.filter(
          (r) => r.body === "bad" && Number(r.attributes.ApproximateReceiveCount) < 3,
        ).map((r) => ({ itemIdentifier: r.messageId }));
        return { batchItemFailures: failures };
      },
      { batchSize: 10, batchWindowMs: 20 },
    );
    queue.send("good-1");
    queue.send("bad");
    queue.send("good-2");
    await withTimeout(queue.idle());
    expect(seen.filter((s) => s.body.startsWith("good")).map((s) => s.count)).toEqual(["1", "1"]);
    expect(seen.filter((s) => s.body === "bad").map((s) => s.count)).toEqual(["1", "2", "3"]);
    expect(events.filter((e) => e.type === "retry")).toHaveLength(2);
    expect(queue.deadLetters()).toEqual([]);
    await queue.close();
  });

  it("fails the whole batch when the handler throws or answers an invalid response", async () => {
    let calls = 0;
    const { queue, events } = harness(
      async (event) => {
        calls++;
        if (calls === 1) throw new Error("boom");
        if (calls === 2) return { batchItemFailures: [{ itemIdentifier: "not-in-this-batch" }] };
        expect(event.Records.every((r) => r.attributes.ApproximateReceiveCount === "3")).toBe(true);
      },
      { batchWindowMs: 20 },
    );
    queue.send("x");
    queue.send("y");
    await withTimeout(queue.idle());
    const batches = events.filter((e) => e.type === "batch");
    expect(batches.map((b) => (b.type === "batch" ? [b.size, b.failed] : []))).toEqual([
      [2, 2],
      [2, 2],
      [2, 0],
    ]);
    expect(batches[0]!.type === "batch" && batches[0]!.error).toBe("Error: boom");
    expect(batches[1]!.type === "batch" && batches[1]!.error).toMatch(/invalid batchItemFailures entry/);
    await queue.close();
  });

  it("dead-letters a message after maxReceiveCount receives, keeps the last error, and can redrive it", async () => {
    let healthy = false;
    const received: string[] = [];
    const { queue, events } = harness(
      async (event) => {
        for (const r of event.Records) received.push(r.attributes.ApproximateReceiveCount);
        if (!healthy) throw new Error("provider down");
      },
      { maxReceiveCount: 3 },
    );
    queue.send("poison");
    await withTimeout(queue.idle());
    expect(received).toEqual(["1", "2", "3"]);
    const [letter] = queue.deadLetters();
    expect(letter).toMatchObject({ body: "poison", receiveCount: 3, lastError: "Error: provider down" });
    // The last batch reports the dead-lettering, then the dead-letter event follows it.
    const tail = events.slice(-2);
    expect(tail[0]).toMatchObject({ type: "batch", failed: 1, deadLettered: 1 });
    expect(tail[1]).toMatchObject({ type: "dead-letter", letter: { body: "poison" } });
    expect(queue.stats().deadLetters).toBe(1);

    healthy = true;
    expect(queue.redrive()).toBe(1);
    await withTimeout(queue.idle());
    expect(received.at(-1)).toBe("1"); // fresh receive count after a redrive
    expect(queue.deadLetters()).toEqual([]);
    await queue.close();
  });

  it("backs off between redeliveries", async () => {
    const times: number[] = [];
    const { queue } = harness(
      async () => {
        times.push(Date.now());
        if (times.length < 3) throw new Error("retry me");
      },
      { retryDelayMs: (n) => 60 * 2 ** (n - 1) },
    );
    queue.send("m");
    await withTimeout(queue.idle());
    expect(times).toHaveLength(3);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(55);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(115);
    await queue.close();
  });

  it("never runs more than maxConcurrency invocations at once", async () => {
    let running = 0;
    let peak = 0;
    const { queue } = harness(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await sleep(25);
        running--;
      },
      { batchSize: 1, maxConcurrency: 3 },
    );
    for (let i = 0; i < 12; i++) queue.send(String(i));
    await withTimeout(queue.idle());
    expect(peak).toBe(3);
    expect(queue.stats().invocations).toBe(12);
    await queue.close();
  });

  it("times out a slow invocation, failing the batch, and passes a context whose remaining time counts down", async () => {
    const remaining: number[] = [];
    let calls = 0;
    const { queue, events } = harness(
      async (_event, context) => {
        calls++;
        remaining.push(context.getRemainingTimeInMillis());
        expect(context.functionName).toBe("ingest");
        expect(context.awsRequestId).toMatch(/^[0-9a-f-]{36}$/);
        if (calls === 1) await sleep(400); // over the 150 ms timeout
      },
      { functionTimeoutMs: 150, functionName: "ingest" },
    );
    queue.send("slow");
    await withTimeout(queue.idle());
    expect(calls).toBe(2);
    expect(remaining[0]).toBeLessThanOrEqual(150);
    expect(remaining[0]).toBeGreaterThan(100);
    const first = events.find((e) => e.type === "batch");
    expect(first?.type === "batch" && first.error).toMatch(/Task timed out after 0.15 seconds/);
    await sleep(300); // the late result of the first invocation must not delete or duplicate anything
    expect(queue.stats()).toMatchObject({ waiting: 0, deleted: 1 });
    await queue.close();
  });

  it("receives a hung invocation's message again once its visibility timeout (= function timeout) expires", async () => {
    const counts2: string[] = [];
    const q2 = new LocalQueue({
      name: "vis",
      functionTimeoutMs: 100,
      visibilityTimeoutMs: 100,
      retryDelayMs: () => 0,
      maxConcurrency: 2,
      handler: async (event) => {
        counts2.push(event.Records[0]!.attributes.ApproximateReceiveCount);
        if (counts2.length === 1) await sleep(300);
      },
    });
    q2.send("m");
    await withTimeout(q2.idle());
    expect(counts2).toEqual(["1", "2"]);
    await q2.close();
  });

  it("rejects bad options and oversized messages", () => {
    const handler = async () => {};
    expect(() => new LocalQueue({ name: "q", handler, batchSize: 0 })).toThrow(/batchSize/);
    expect(() => new LocalQueue({ name: "q", handler, maxConcurrency: 0 })).toThrow(/maxConcurrency/);
    expect(
      () => new LocalQueue({ name: "q", handler, functionTimeoutMs: 1000, visibilityTimeoutMs: 10 }),
    ).toThrow(/visibilityTimeoutMs/);
    const q = new LocalQueue({ name: "q", handler });
    expect(() => q.send("x".repeat(256 * 1024 + 1))).toThrow(/over the SQS limit/);
  });

  it("snapshots pending messages and dead letters, and a restored queue delivers them", async () => {
    let deliver = false;
    const q1 = new LocalQueue({
      name: "persist",
      maxReceiveCount: 1,
      retryDelayMs: () => 0,
      handler: async (event) => {
        if (event.Records.some((r) => r.body === "poison")) throw new Error("bad");
      },
    });
    q1.send("poison");
    await withTimeout(q1.idle());
    await q1.close();
    // Messages sent to a queue that never delivered (closed right away) stay pending.
    const q2 = new LocalQueue({ name: "persist", handler: async () => {}, restore: q1.snapshot() });
    await q2.close();
    const pendingOnly = new LocalQueue({ name: "p", handler: async () => {} });
    pendingOnly.send("later");
    const snap = pendingOnly.snapshot();
    await pendingOnly.close();
    expect(snap.messages.map((m) => m.body)).toEqual(["later"]);

    const bodies: string[] = [];
    const restored = new LocalQueue({
      name: "p",
      handler: async (event) => {
        deliver = true;
        for (const r of event.Records) bodies.push(r.body);
      },
      restore: { ...snap, deadLetters: q1.snapshot().deadLetters },
    });
    await withTimeout(restored.idle());
    expect(deliver).toBe(true);
    expect(bodies).toEqual(["later"]);
    expect(restored.deadLetters().map((d) => d.body)).toEqual(["poison"]);
    await restored.close();
  });

  it("close() lets a running invocation finish and stops further deliveries", async () => {
    const done: string[] = [];
    const { queue } = harness(
      async (event) => {
        await sleep(80);
        for (const r of event.Records) done.push(r.body);
      },
      { batchSize: 1, maxConcurrency: 1 },
    );
    queue.send("first");
    queue.send("second");
    await sleep(20);
    await queue.close({ drainMs: 1000 });
    expect(done).toEqual(["first"]);
    expect(queue.snapshot().messages.map((m) => m.body)).toEqual(["second"]);
    expect(() => queue.send("x")).toThrow(/closed/);
  });
});

describe("interpretResponse", () => {
  const event: SQSEvent = {
    Records: [{ messageId: "m1" }, { messageId: "m2" }] as SQSEvent["Records"],
  };
  it.each([
    [undefined, true],
    [null, true],
    [{}, true],
    [{ batchItemFailures: [] }, true],
    [{ batchItemFailures: null }, true],
    [{ batchItemFailures: [{ itemIdentifier: "m2" }] }, true],
    [{ batchItemFailures: [{ itemIdentifier: "" }] }, false],
    [{ batchItemFailures: [{ itemIdentifier: null }] }, false],
    [{ batchItemFailures: [{ id: "m1" }] }, false],
    [{ batchItemFailures: [{ itemIdentifier: "m3" }] }, false],
    [{ batchItemFailures: "m1" }, false],
    ["ok", false],
  ])("%j -> ok=%s", (response, ok) => {
    expect(interpretResponse(response, event).ok).toBe(ok);
  });
});

describe("S3 notifications and Lambda context", () => {
  it("wraps one S3 record per SQS body, as S3 does", () => {
    const record = {
      eventName: "ObjectCreated:Put",
      s3: { bucket: { name: "documents" }, object: { key: "a+b%2Bc.pdf", size: 3, sequencer: "01" } },
    } as unknown as S3EventRecord;
    expect(JSON.parse(s3NotificationBody(record))).toEqual({ Records: [record] });
    expect(s3EventKind(record)).toBe("created");
    expect(s3EventKind({ ...record, eventName: "ObjectRemoved:Delete" })).toBe("removed");
    expect(decodeS3EventKey("a+b%2Bc.pdf")).toBe("a b+c.pdf");
  });

  it("counts the remaining time down from the configured timeout", () => {
    let now = 1_000;
    const context = createLambdaContext({
      functionName: "f",
      timeoutMs: 500,
      now: () => now,
      region: "eu-west-1",
    });
    expect(context.getRemainingTimeInMillis()).toBe(500);
    now += 200;
    expect(context.getRemainingTimeInMillis()).toBe(300);
    now += 1_000;
    expect(context.getRemainingTimeInMillis()).toBe(0);
    expect(context.invokedFunctionArn).toBe("arn:aws:lambda:eu-west-1:000000000000:function:f");
    expect(() => context.succeed("x")).toThrow(/not supported/);
  });
});
