/**
 * An in-process queue with the SQS + Lambda event-source semantics the ingest handler is written for,
 * so local mode exercises the same failure paths as AWS:
 *
 * - batches of up to `batchSize` records, optionally waiting up to `batchWindowMs` to fill one;
 * - at most `maxConcurrency` invocations at a time (the event source's `maxConcurrency`);
 * - a visibility timeout per received message: a message whose invocation outlives it becomes visible
 *   again and is delivered a second time (at-least-once, like SQS);
 * - a function timeout: the invocation's `context.getRemainingTimeInMillis()` counts down from it, and
 *   an invocation that has not settled by then fails the whole batch (its late result is ignored);
 * - partial batch failures (`reportBatchItemFailures`): only the records named in
 *   `batchItemFailures` are retried; an invalid response or a thrown error fails the whole batch,
 *   exactly as Lambda treats them;
 * - redelivery with exponential backoff (SQS would wait for the visibility timeout; locally the wait is
 *   shorter so a retry is visible within seconds), `ApproximateReceiveCount` in the record attributes;
 * - after `maxReceiveCount` receives a failing message moves to a dead-letter list, kept with its last
 *   error, which can be inspected, redriven or purged.
 *
 * Pending messages and dead letters can be snapshotted and restored, so a restart of `npm start`
 * resumes where it stopped.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { createLambdaContext, LOCAL_ACCOUNT_ID } from "./lambda-context";

/** What a handler on an SQS event source may return (anything else fails the batch). */
export type SqsBatchHandler = (
  event: SQSEvent,
  context: Context,
) => Promise<SQSBatchResponse | undefined | unknown>;

/** SQS's maximum message size. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

export interface LocalQueueOptions {
  /** Queue name, used in the records' `eventSourceARN`. */
  name: string;
  handler: SqsBatchHandler;
  /** Records per invocation, 1-10,000. @default 10 */
  batchSize?: number;
  /** How long to wait for a batch to fill once a message is visible. @default 0 */
  batchWindowMs?: number;
  /** Concurrent invocations at most. @default 2 */
  maxConcurrency?: number;
  /** The function timeout (drives the Lambda context's deadline). @default 60_000 */
  functionTimeoutMs?: number;
  /** Visibility timeout; must be at least the function timeout. @default 6 x functionTimeoutMs */
  visibilityTimeoutMs?: number;
  /** Receives before a failing message is dead-lettered. @default 5 */
  maxReceiveCount?: number;
  /** Delay before the n-th failed receive is retried. @default 1s x 2^(n-1), capped at 30 s */
  retryDelayMs?: (receiveCount: number) => number;
  functionName?: string;
  region?: string;
  /** Observer for printing and tests. Exceptions thrown by it are ignored. */
  onEvent?: (event: QueueEvent) => void;
  /** Called after any change to the pending or dead-letter set (for persistence). */
  onChange?: () => void;
  /** State from `snapshot()` of an earlier run. */
  restore?: QueueSnapshot;
}

/** A message that exhausted its receives. */
export interface DeadLetter {
  messageId: string;
  body: string;
  receiveCount: number;
  sentAt: number;
  deadLetteredAt: number;
  /** Why the last receive failed. */
  lastError?: string;
}

export interface QueueSnapshot {
  version: 1;
  messages: {
    messageId: string;
    body: string;
    sentAt: number;
    receiveCount: number;
    firstReceiveAt?: number;
  }[];
  deadLetters: DeadLetter[];
}

export interface QueueStats {
  /** Messages waiting to be delivered (visible now or after a retry delay). */
  waiting: number;
  /** Messages received by an invocation that has not settled yet. */
  inFlight: number;
  /** Invocations running now. */
  running: number;
  deadLetters: number;
  sent: number;
  deleted: number;
  invocations: number;
  failedReceives: number;
}

export type QueueEvent =
  | {
      type: "batch";
      requestId: string;
      size: number;
      succeeded: number;
      /** Records that failed: retried later, or dead-lettered (`deadLettered` of them). */
      failed: number;
      deadLettered: number;
      durationMs: number;
      /** Set when the whole batch failed (thrown error, timeout, invalid response). */
      error?: string;
    }
  | { type: "retry"; messageId: string; receiveCount: number; delayMs: number }
  | { type: "dead-letter"; letter: DeadLetter };

interface Message {
  messageId: string;
  body: string;
  md5OfBody: string;
  sentAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  visibleAt: number;
  /** Receipt handle of the current receive; undefined while the message is visible or delayed. */
  receipt?: string;
  visibilityTimer?: NodeJS.Timeout;
  lastError?: string;
}

type Outcome = { ok: true; failedIds: Set<string> } | { ok: false; error: string };

/** See the module comment. */
export class LocalQueue {
  readonly arn: string;
  private readonly opts: Required<Omit<LocalQueueOptions, "onEvent" | "onChange" | "restore">> &
    Pick<LocalQueueOptions, "onEvent" | "onChange">;
  private readonly messages = new Map<string, Message>();
  private readonly dead: DeadLetter[] = [];
  private running = 0;
  private readonly runningInvocations = new Set<Promise<void>>();
  private wakeTimer?: NodeJS.Timeout;
  private wakeAt = Number.POSITIVE_INFINITY;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private counters = { sent: 0, deleted: 0, invocations: 0, failedReceives: 0 };

  constructor(options: LocalQueueOptions) {
    const functionTimeoutMs = options.functionTimeoutMs ?? 60_000;
    const visibilityTimeoutMs = options.visibilityTimeoutMs ?? 6 * functionTimeoutMs;
    const batchSize = options.batchSize ?? 10;
    const maxConcurrency = options.maxConcurrency ?? 2;
    const maxReceiveCount = options.maxReceiveCount ?? 5;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000)
      throw new RangeError(`batchSize must be an integer from 1 to 10000, got ${batchSize}`);
    if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1)
      throw new RangeError(`maxConcurrency must be a positive integer, got ${maxConcurrency}`);
    if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1)
      throw new RangeError(`maxReceiveCount must be a positive integer, got ${maxReceiveCount}`);
    if (!(functionTimeoutMs > 0))
      throw new RangeError(`functionTimeoutMs must be positive, got ${functionTimeoutMs}`);
    if (visibilityTimeoutMs < functionTimeoutMs)
      // The same rule the Lambda event source enforces: otherwise every slow invocation is redelivered.
      throw new RangeError(
        `visibilityTimeoutMs (${visibilityTimeoutMs}) must be at least functionTimeoutMs (${functionTimeoutMs})`,
      );
    const region = options.region ?? "us-east-1";
    this.opts = {
      name: options.name,
      handler: options.handler,
      batchSize,
      batchWindowMs: Math.max(0, options.batchWindowMs ?? 0),
      maxConcurrency,
      functionTimeoutMs,
      visibilityTimeoutMs,
      maxReceiveCount,
      retryDelayMs: options.retryDelayMs ?? ((n) => Math.min(30_000, 1000 * 2 ** (n - 1))),
      functionName: options.functionName ?? `${options.name}-consumer`,
      region,
      onEvent: options.onEvent,
      onChange: options.onChange,
    };
    this.arn = `arn:aws:sqs:${region}:${LOCAL_ACCOUNT_ID}:${options.name}`;
    if (options.restore) this.restoreFrom(options.restore);
  }

  /** Enqueues one message; returns its id. Delivery starts on the next tick. */
  send(body: string, opts: { delayMs?: number } = {}): string {
    if (this.closed) throw new Error(`queue ${this.opts.name} is closed`);
    const bytes = Buffer.byteLength(body, "utf8");
    if (bytes > MAX_MESSAGE_BYTES)
      throw new RangeError(`message of ${bytes} bytes is over the SQS limit of ${MAX_MESSAGE_BYTES} bytes`);
    const now = Date.now();
    const message: Message = {
      messageId: randomUUID(),
      body,
      md5OfBody: md5(body),
      sentAt: now,
      receiveCount: 0,
      visibleAt: now + Math.max(0, opts.delayMs ?? 0),
    };
    this.messages.set(message.messageId, message);
    this.counters.sent++;
    this.changed();
    this.schedule(0);
    return message.messageId;
  }

  stats(): QueueStats {
    let inFlight = 0;
    for (const m of this.messages.values()) if (m.receipt) inFlight++;
    return {
      waiting: this.messages.size - inFlight,
      inFlight,
      running: this.running,
      deadLetters: this.dead.length,
      ...this.counters,
    };
  }

  /** The dead-letter list, oldest first (copies). */
  deadLetters(): DeadLetter[] {
    return this.dead.map((d) => ({ ...d }));
  }

  /** Moves every dead letter back into the queue with a fresh receive count; returns how many. */
  redrive(): number {
    const letters = this.dead.splice(0);
    for (const letter of letters) this.send(letter.body);
    if (letters.length) this.changed();
    return letters.length;
  }

  /** Drops the dead-letter list; returns how many were dropped. */
  purgeDeadLetters(): number {
    const n = this.dead.splice(0).length;
    if (n) this.changed();
    return n;
  }

  /** Pending messages (including in-flight ones, which an interrupted run did not finish) and dead letters. */
  snapshot(): QueueSnapshot {
    return {
      version: 1,
      messages: [...this.messages.values()].map((m) => ({
        messageId: m.messageId,
        body: m.body,
        sentAt: m.sentAt,
        receiveCount: m.receiveCount,
        firstReceiveAt: m.firstReceiveAt,
      })),
      deadLetters: this.deadLetters(),
    };
  }

  /** Resolves once nothing is waiting, in flight or running (dead letters do not count). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops delivering. Running invocations get up to `drainMs` to settle (their results are applied);
   * messages not yet processed stay in `snapshot()` for the next run.
   */
  async close(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.wakeTimer);
    const drainMs = opts.drainMs ?? 10_000;
    if (this.runningInvocations.size) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.runningInvocations]),
        new Promise((resolve) => {
          timer = setTimeout(resolve, drainMs);
        }),
      ]);
      clearTimeout(timer);
    }
    for (const m of this.messages.values()) {
      clearTimeout(m.visibilityTimer);
      m.receipt = undefined;
    }
    this.changed();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private restoreFrom(snapshot: QueueSnapshot): void {
    if (snapshot?.version !== 1) return;
    const now = Date.now();
    for (const m of snapshot.messages ?? []) {
      if (typeof m.body !== "string" || typeof m.messageId !== "string") continue;
      this.messages.set(m.messageId, {
        messageId: m.messageId,
        body: m.body,
        md5OfBody: md5(m.body),
        sentAt: m.sentAt,
        receiveCount: m.receiveCount ?? 0,
        firstReceiveAt: m.firstReceiveAt,
        visibleAt: now,
      });
    }
    for (const d of snapshot.deadLetters ?? []) if (typeof d.body === "string") this.dead.push({ ...d });
    if (this.messages.size) this.schedule(0);
  }

  /** Arms the single wake-up timer for `delayMs` from now, unless an earlier one is armed. */
  private schedule(delayMs: number): void {
    if (this.closed) return;
    const at = Date.now() + Math.max(0, delayMs);
    if (this.wakeTimer && at >= this.wakeAt) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.wakeAt = Number.POSITIVE_INFINITY;
        this.pump();
      },
      Math.max(0, delayMs),
    );
  }

  private pump(): void {
    if (this.closed) return;
    while (this.running < this.opts.maxConcurrency) {
      const now = Date.now();
      const visible: Message[] = [];
      for (const m of this.messages.values()) if (!m.receipt && m.visibleAt <= now) visible.push(m);
      // SQS moves a message to the DLQ when a receive would exceed maxReceiveCount.
      const exhausted = visible.filter((m) => m.receiveCount >= this.opts.maxReceiveCount);
      for (const m of exhausted) this.deadLetter(m);
      const ready = visible.filter((m) => m.receiveCount < this.opts.maxReceiveCount);
      if (ready.length === 0) break;
      ready.sort((a, b) => a.visibleAt - b.visibleAt || a.sentAt - b.sentAt);
      if (ready.length < this.opts.batchSize && this.opts.batchWindowMs > 0) {
        const windowEnds = ready[0]!.visibleAt + this.opts.batchWindowMs;
        if (now < windowEnds) {
          this.schedule(windowEnds - now);
          break;
        }
      }
      this.invoke(ready.slice(0, this.opts.batchSize));
    }
    // Wake up for the next delayed message. Messages visible now are handled by the batch-window
    // timer or by the next invocation to settle.
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const m of this.messages.values())
      if (!m.receipt && m.visibleAt > now) next = Math.min(next, m.visibleAt);
    if (Number.isFinite(next)) this.schedule(next - now);
    this.checkIdle();
  }

  private invoke(batch: Message[]): void {
    const now = Date.now();
    const receipts = new Map<string, string>();
    for (const m of batch) {
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      m.receipt = randomUUID();
      receipts.set(m.messageId, m.receipt);
      const receipt = m.receipt;
      m.visibilityTimer = setTimeout(() => this.visibilityExpired(m, receipt), this.opts.visibilityTimeoutMs);
      m.visibilityTimer.unref?.();
    }
    const event: SQSEvent = { Records: batch.map((m) => this.toRecord(m, receipts.get(m.messageId)!)) };
    const context = createLambdaContext({
      functionName: this.opts.functionName,
      timeoutMs: this.opts.functionTimeoutMs,
      region: this.opts.region,
    });
    this.running++;
    this.counters.invocations++;
    const started = Date.now();
    const run = this.runHandler(event, context).then((outcome) => {
      this.running--;
      this.settle(batch, receipts, outcome, context.awsRequestId, Date.now() - started);
    });
    this.runningInvocations.add(run);
    void run.finally(() => {
      this.runningInvocations.delete(run);
      this.pump();
    });
  }

  private async runHandler(event: SQSEvent, context: Context): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<Outcome>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            error: `Task timed out after ${(this.opts.functionTimeoutMs / 1000).toFixed(2)} seconds`,
          }),
        this.opts.functionTimeoutMs,
      );
    });
    const invocation = (async (): Promise<Outcome> => {
      try {
        const response = await this.opts.handler(event, context);
        return interpretResponse(response, event);
      } catch (err) {
        return { ok: false, error: describeError(err) };
      }
    })();
    try {
      return await Promise.race([invocation, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private settle(
    batch: Message[],
    receipts: Map<string, string>,
    outcome: Outcome,
    requestId: string,
    durationMs: number,
  ): void {
    let succeeded = 0;
    let failed = 0;
    const lettered: DeadLetter[] = [];
    for (const m of batch) {
      const current = this.messages.get(m.messageId);
      // Deleted meanwhile, or received again after its visibility expired: this receipt is stale.
      if (!current || current.receipt !== receipts.get(m.messageId)) continue;
      clearTimeout(current.visibilityTimer);
      current.receipt = undefined;
      const error = outcome.ok
        ? outcome.failedIds.has(m.messageId)
          ? "the handler returned it in batchItemFailures"
          : undefined
        : outcome.error;
      if (error === undefined) {
        this.messages.delete(m.messageId);
        this.counters.deleted++;
        succeeded++;
      } else {
        failed++;
        const letter = this.failReceive(current, error);
        if (letter) lettered.push(letter);
      }
    }
    this.emit({
      type: "batch",
      requestId,
      size: batch.length,
      succeeded,
      failed,
      deadLettered: lettered.length,
      durationMs,
      ...(outcome.ok ? {} : { error: outcome.error }),
    });
    for (const letter of lettered) this.emit({ type: "dead-letter", letter: { ...letter } });
    this.changed();
  }

  /** Schedules a retry, or dead-letters the message (returned, for the caller to report). */
  private failReceive(m: Message, error: string): DeadLetter | undefined {
    this.counters.failedReceives++;
    m.lastError = error;
    if (m.receiveCount >= this.opts.maxReceiveCount) return this.deadLetter(m, { quiet: true });
    const delayMs = Math.max(0, this.opts.retryDelayMs(m.receiveCount));
    m.visibleAt = Date.now() + delayMs;
    this.emit({ type: "retry", messageId: m.messageId, receiveCount: m.receiveCount, delayMs });
    return undefined;
  }

  private visibilityExpired(m: Message, receipt: string): void {
    const current = this.messages.get(m.messageId);
    if (!current || current.receipt !== receipt) return;
    // The invocation is still running: SQS makes the message visible again (at-least-once delivery).
    current.receipt = undefined;
    current.lastError = "visibility timeout expired before the invocation finished";
    current.visibleAt = Date.now();
    this.counters.failedReceives++;
    this.changed();
    this.schedule(0);
  }

  private deadLetter(m: Message, opts: { quiet?: boolean } = {}): DeadLetter {
    clearTimeout(m.visibilityTimer);
    this.messages.delete(m.messageId);
    const letter: DeadLetter = {
      messageId: m.messageId,
      body: m.body,
      receiveCount: m.receiveCount,
      sentAt: m.sentAt,
      deadLetteredAt: Date.now(),
      ...(m.lastError ? { lastError: m.lastError } : {}),
    };
    this.dead.push(letter);
    if (!opts.quiet) this.emit({ type: "dead-letter", letter: { ...letter } });
    this.changed();
    return letter;
  }

  private toRecord(m: Message, receipt: string): SQSRecord {
    return {
      messageId: m.messageId,
      receiptHandle: receipt,
      body: m.body,
      attributes: {
        ApproximateReceiveCount: String(m.receiveCount),
        SentTimestamp: String(m.sentAt),
        SenderId: "AIDAIENQZJOLO23YVJ4VO",
        ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? Date.now()),
      },
      messageAttributes: {},
      md5OfBody: m.md5OfBody,
      eventSource: "aws:sqs",
      eventSourceARN: this.arn,
      awsRegion: this.opts.region,
    };
  }

  private isIdle(): boolean {
    return this.messages.size === 0 && this.running === 0;
  }

  private checkIdle(): void {
    if (!this.isIdle() || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  private emit(event: QueueEvent): void {
    try {
      this.opts.onEvent?.(event);
    } catch {
      // An observer must not break delivery.
    }
  }

  private changed(): void {
    try {
      this.opts.onChange?.();
    } catch {
      // Persistence problems are reported by the observer itself.
    }
    this.checkIdle();
  }
}

/**
 * Lambda's rules for an SQS handler's response with ReportBatchItemFailures: nothing, an empty or
 * missing list is a full success; an entry with an empty, missing or unknown itemIdentifier (or a
 * response that is not an object) fails the whole batch.
 */
export function interpretResponse(response: unknown, event: SQSEvent): Outcome {
  if (response === undefined || response === null) return { ok: true, failedIds: new Set() };
  if (typeof response !== "object" || Array.isArray(response))
    return { ok: false, error: `invalid handler response: ${JSON.stringify(response)?.slice(0, 200)}` };
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { ok: true, failedIds: new Set() };
  if (!Array.isArray(failures))
    return { ok: false, error: "invalid handler response: batchItemFailures is not a list" };
  const ids = new Set(event.Records.map((r) => r.messageId));
  const failedIds = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== "string" || id === "" || !ids.has(id))
      return { ok: false, error: `invalid batchItemFailures entry: ${JSON.stringify(failure)}` };
    failedIds.add(id);
  }
  return { ok: true, failedIds };
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function md5(text: string): string {
  return createHash("md5").update(text, "utf8").digest("hex");
}
