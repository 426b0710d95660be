/**
 * Ingestion: S3 changes (delivered through SQS, at least once, in any order) become stored documents
 * exactly once per object version.
 *
 * Per ObjectCreated record:
 *  1. HEAD the version (pinned by VersionId / ETag). Gone or replaced: a newer event follows; ack.
 *  2. Claim the version on the record (conditional write; see DynamoDocumentStore.claimVersion). The
 *     claim records the upload intent: a tag derived from documentId + sequencer. Losers ack:
 *     - `duplicate`/`stale`: the version is done, or a newer one (or a delete) is recorded;
 *     - `busy`: another delivery holds a live claim. Its SQS message stays in flight until it
 *       finishes; if it crashes, SQS redelivers *that* message, which takes the claim over (same
 *       message id), and any delivery takes over once the lease (the holder's invocation deadline +
 *       a margin) has passed. So acking the loser loses nothing and never uploads twice.
 *  3. Validate (empty, too large, unsupported type) before any provider call.
 *  4. Upload the S3 stream as `<tag>__<basename>`. A takeover first looks for an earlier upload of
 *     the same version (recorded id, else a listed file carrying the tag; while that attempt's upload
 *     may still be landing, it waits for it, bounded) and reuses or deletes it. The provider has no
 *     idempotency key, so an attempt that got no answer may have been stored anyway: before re-sending,
 *     the client looks for it by tag; after a retried or taken-over upload, files with the tag other
 *     than ours (twins that landed late) are deleted.
 *  5. Record the file id (conditional on still owning the claim), read the extracted text, write it
 *     as chunks of a new generation, then flip the record to `ready` in one conditional write; the
 *     previous generation and remote file are deleted afterwards (queued on the record first, so a
 *     crash leaves a to-do list rather than garbage).
 * Per ObjectRemoved record: unless a newer version is recorded, the record becomes a tombstone (kept
 * 15 days with the delete's sequencer) and its chunks, remote file and in-flight upload are deleted.
 * In a versioned bucket, permanently deleting the document's current version while an older one is
 * left makes that one current again: it is ingested as a new version instead.
 *
 * Errors: bad input and provider refusals end `failed` with a reason (the record is acked); retryable
 * faults throw, so the SQS record is returned as a batch item failure and redelivered. On the last
 * delivery (ApproximateReceiveCount reaching maxReceiveCount, the queue's redrive limit) the document
 * is marked `retries_exhausted` first, so the DLQ message and the document agree.
 */
import { randomUUID } from "node:crypto";
import type { SQSBatchResponse, SQSRecord } from "aws-lambda";
import { type DynamoDocumentStore, normaliseSequencer } from "../documents/dynamo-store";
import type { DocumentFailure } from "../documents/model";
import { attemptGeneration } from "../documents/transitions";
import { checkDeploymentId } from "../janitor/ownership";
import { ProviderError } from "../provider/errors";
import { type FileRules, PROVIDER_PROFILES } from "../provider/profiles";
import type { CallOptions, ProviderApi, RemoteFile } from "../provider/types";
import type { RoomMaker } from "../quota/types";
import { type LoggerPort, type MetricsPort, noMetrics, silentLogger } from "../runtime/telemetry";
import type { IndexWaker } from "../search/wake";
import { StaleWorkCleaner } from "./cleanup";
import {
  DEFAULT_MAX_FILE_BYTES,
  documentIdFor,
  type ObjectChange,
  parseMessage,
  uploadTagFor,
  validateObject,
} from "./events";
import {
  DEFAULT_MAX_TEXT_BYTES,
  type StoredText,
  storeExtractedText,
  TextTooLargeError,
  textTooLarge,
} from "./extracted-text";
import { errorText, failureForProviderError, TerminalFailure } from "./failures";
import { ObjectGoneError, type ObjectInfo, type ObjectSource } from "./objects";
import { RemoteUploads } from "./remote-uploads";

export { failureForProviderError, RetryLaterError } from "./failures";

export interface IngestConfig {
  /** Refuse larger objects before upload. @default 100 MB (the provider's limit) */
  maxFileBytes: number;
  /** The provider's file rules: types it extracts, images' lower cap. @default Moonshot's */
  files: FileRules;
  /** The queue's redrive maxReceiveCount: the delivery that reaches it is the last. @default 5 */
  maxReceiveCount: number;
  /** S3 records processed at once per batch. @default 4 */
  concurrency: number;
  /** Added to the invocation deadline to form a claim's lease. @default 60 s */
  leaseMarginMs: number;
  /** Deadline when the caller gives none (local mode without a Lambda context). @default 15 min */
  defaultBudgetMs: number;
  /**
   * A takeover that finds no upload of the crashed attempt waits (polling the listing) until this long
   * after that attempt's upload started (`uploadingSince`): the provider may still be storing an
   * upload whose client died. Only fast redeliveries wait (local mode); SQS redelivers a crashed
   * Lambda's message after its visibility timeout, long past this. @default 20 s
   */
  takeoverSettleMs: number;
  /** Cap on one document's extracted text (UTF-8 bytes); over it the version fails `too_large`. @default 128 MiB */
  maxTextBytes: number;
}

export const DEFAULT_INGEST_CONFIG: IngestConfig = {
  maxFileBytes: DEFAULT_MAX_FILE_BYTES,
  files: PROVIDER_PROFILES.moonshot.files,
  maxReceiveCount: 5,
  concurrency: 4,
  leaseMarginMs: 60_000,
  defaultBudgetMs: 15 * 60_000,
  takeoverSettleMs: 20_000,
  maxTextBytes: DEFAULT_MAX_TEXT_BYTES,
};

/** Test seams at the points where a real crash hurts most. A hook that throws acts like a crash. */
export interface IngestHooks {
  /** Just before this attempt uploads (after any search for an earlier attempt's upload). */
  beforeUpload?(ctx: { documentId: string; tag: string }): void | Promise<void>;
  /** After the upload returned, before its id is written to the record. */
  afterUpload?(ctx: { documentId: string; file: RemoteFile }): void | Promise<void>;
  /** After the chunks are written, before the record flips to ready. */
  beforeReady?(ctx: { documentId: string; generation: string }): void | Promise<void>;
}

export interface IngestDeps {
  /**
   * This deployment's id: every upload is named `kdp-<deploymentId>-<hash>__<basename>`, so the
   * janitor can tell this deployment's remote files from others' (janitor/ownership.ts).
   */
  deploymentId: string;
  store: DynamoDocumentStore;
  provider: ProviderApi;
  objects: ObjectSource;
  /** Frees provider quota before failing an upload as `quota` (the janitor's QuotaRoomMaker). */
  roomMaker?: RoomMaker;
  logger?: LoggerPort;
  metrics?: MetricsPort;
  config?: Partial<IngestConfig>;
  hooks?: IngestHooks;
  /** Wakes the search indexer after a document's text changed (its to-do is already written). */
  indexWaker?: IndexWaker;
  now?: () => Date;
  sleep?: (ms: number) => Promise<void>;
}

export interface BatchOptions {
  /** Epoch ms by which provider calls must end (the Lambda deadline minus a safety margin). */
  deadline?: number;
  /** Epoch ms the invocation ends at (a claim's lease is this + leaseMarginMs). Default: deadline. */
  invocationEnd?: number;
}

/** What happened to one S3 record (for tests, logs and metrics). */
export type Outcome =
  | "ready"
  | "failed"
  | "deleted"
  | "duplicate"
  | "stale"
  | "busy"
  | "superseded"
  | "ignored";

interface Delivery {
  messageId: string;
  receiveCount: number;
  deadline: number;
  leaseUntil: number;
}

/** The ingest path, independent of Lambda: the handler and local mode both drive it. */
export class IngestService {
  private readonly store: DynamoDocumentStore;
  private readonly api: ProviderApi;
  private readonly objects: ObjectSource;
  private readonly log: LoggerPort;
  private readonly metrics: MetricsPort;
  private readonly hooks: IngestHooks;
  private readonly indexWaker?: IndexWaker;
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly uploads: RemoteUploads;
  private readonly cleaner: StaleWorkCleaner;
  private readonly deploymentId: string;
  readonly config: IngestConfig;

  constructor(deps: IngestDeps) {
    this.deploymentId = checkDeploymentId(deps.deploymentId);
    this.store = deps.store;
    this.api = deps.provider;
    this.objects = deps.objects;
    this.log = deps.logger ?? silentLogger;
    this.metrics = deps.metrics ?? noMetrics;
    this.hooks = deps.hooks ?? {};
    this.indexWaker = deps.indexWaker;
    this.now = deps.now ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.config = { ...DEFAULT_INGEST_CONFIG, ...deps.config };
    this.uploads = new RemoteUploads({
      api: this.api,
      objects: this.objects,
      store: this.store,
      roomMaker: deps.roomMaker,
      log: this.log,
      metrics: this.metrics,
      now: this.now,
      sleep: this.sleep,
      config: this.config,
    });
    this.cleaner = new StaleWorkCleaner({
      store: this.store,
      api: this.api,
      deleteRemote: (fileId, documentId) => this.uploads.deleteRemote(fileId, documentId),
      log: this.log,
    });
  }

  /**
   * Processes an SQS batch, `concurrency` S3 records at a time, and returns the messages to redeliver
   * (the Lambda `SQSBatchResponse` for `reportBatchItemFailures`).
   */
  async processBatch(records: SQSRecord[], opts: BatchOptions = {}): Promise<SQSBatchResponse> {
    const deadline = opts.deadline ?? this.now().getTime() + this.config.defaultBudgetMs;
    const leaseUntil = (opts.invocationEnd ?? deadline) + this.config.leaseMarginMs;
    const failures = new Set<string>();
    let next = 0;
    const worker = async () => {
      while (next < records.length) {
        const message = records[next++]!;
        // Too late to start: hand it back to SQS rather than be cut off halfway by the timeout.
        if (this.now().getTime() >= deadline) {
          failures.add(message.messageId);
          continue;
        }
        try {
          await this.processMessage(message, { deadline, leaseUntil });
        } catch {
          failures.add(message.messageId);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.concurrency, records.length) }, worker));
    return { batchItemFailures: [...failures].map((itemIdentifier) => ({ itemIdentifier })) };
  }

  /** One SQS message (normally one S3 record). Throws when it must be redelivered. */
  async processMessage(
    message: SQSRecord,
    opts: { deadline: number; leaseUntil: number },
  ): Promise<Outcome[]> {
    let changes: ObjectChange[];
    try {
      changes = parseMessage(message);
    } catch (err) {
      // Kept, not dropped: redelivered until the redrive policy moves it to the DLQ for a human.
      this.log.error("malformed SQS message", { messageId: message.messageId, error: errorText(err) });
      this.metrics.count("MalformedMessages");
      throw err;
    }
    const receiveCount = Number(message.attributes?.ApproximateReceiveCount ?? "1") || 1;
    const delivery: Delivery = { messageId: message.messageId, receiveCount, ...opts };
    const outcomes: Outcome[] = [];
    for (const change of changes) outcomes.push(await this.processChange(change, delivery));
    return outcomes;
  }

  /** One S3 change. Throws when it must be redelivered. */
  async processChange(change: ObjectChange, delivery: Delivery): Promise<Outcome> {
    const documentId = documentIdFor(change.bucket, change.key);
    const sequencer = normaliseSequencer(change.sequencer);
    const tag = uploadTagFor(documentId, sequencer, this.deploymentId);
    const started = performance.now();
    const attrs = { correlationId: tag, documentId, key: change.key, event: change.eventName };
    try {
      const outcome =
        change.kind === "removed"
          ? await this.remove(change, documentId, sequencer, tag, delivery)
          : await this.create(change, documentId, sequencer, tag, delivery);
      this.metrics.count("Events", 1, { name: "outcome", value: outcome });
      if (outcome === "ready" || outcome === "failed" || outcome === "deleted")
        await this.wakeIndexer(documentId);
      this.log.info("ingest outcome", { ...attrs, outcome, ms: Math.round(performance.now() - started) });
      return outcome;
    } catch (err) {
      this.metrics.count("RetriedEvents");
      this.log.warn("ingest will be retried", {
        ...attrs,
        receiveCount: delivery.receiveCount,
        error: errorText(err),
        errorName: (err as Error)?.name,
      });
      throw err;
    }
  }

  private async remove(
    change: ObjectChange,
    documentId: string,
    sequencer: string,
    tag: string,
    delivery: Delivery,
  ): Promise<Outcome> {
    // Delete markers hide the object (a delete for users); a versioned `ObjectRemoved:Delete`
    // purges one version, which matters only when it is the one the document holds.
    const purgedVersionId = change.eventName === "ObjectRemoved:Delete" ? change.versionId : undefined;
    if (purgedVersionId) {
      const restored = await this.restoredVersion(change, documentId, sequencer, purgedVersionId);
      if (restored) {
        this.metrics.count("VersionsRestored");
        return this.create({ ...change, kind: "created", ...restored }, documentId, sequencer, tag, delivery);
      }
    }
    const applied = await this.store.tombstone({
      documentId,
      bucket: change.bucket,
      key: change.key,
      sequencer,
      purgedVersionId,
      now: this.now(),
    });
    await this.cleaner.drain(documentId, undefined);
    if (applied) this.metrics.count("DocumentsDeleted");
    return applied ? "deleted" : "stale";
  }

  /**
   * Permanently deleting the current version of a versioned object makes the previous version
   * current again (how S3 rolls back an overwrite). When the purged version is the document's and
   * an older one is left, that one: the document follows it, as a new version at the delete's
   * sequencer. Undefined otherwise (the purge is a delete, or changes nothing).
   */
  private async restoredVersion(
    change: ObjectChange,
    documentId: string,
    sequencer: string,
    purgedVersionId: string,
  ): Promise<Pick<ObjectChange, "versionId" | "eTag" | "size"> | undefined> {
    const state = await this.store.getState(documentId);
    if (!state || state.versionId !== purgedVersionId || state.sequencer >= sequencer) return undefined;
    try {
      const current = await this.objects.head(change.bucket, change.key, {});
      if (!current.versionId || current.versionId === purgedVersionId) return undefined;
      return { versionId: current.versionId, eTag: current.eTag, size: current.size };
    } catch (err) {
      if (err instanceof ObjectGoneError) return undefined; // no version left, or a delete marker
      throw err;
    }
  }

  private async create(
    change: ObjectChange,
    documentId: string,
    sequencer: string,
    versionTag: string,
    delivery: Delivery,
  ): Promise<Outcome> {
    const pin = { versionId: change.versionId, eTag: change.eTag };
    // S3 events carry the size and ETag of ObjectCreated versions; HEAD only when one is missing (the
    // local server's copy events). A version that is gone by then surfaces when its bytes are read.
    let info: ObjectInfo = { size: change.size ?? 0, eTag: change.eTag, versionId: change.versionId };
    if (change.size === undefined || !change.eTag) {
      try {
        info = await this.objects.head(change.bucket, change.key, pin);
      } catch (err) {
        if (err instanceof ObjectGoneError) return "superseded";
        throw err;
      }
    }
    const owner = randomUUID();
    const claim = await this.store.claimVersion({
      documentId,
      bucket: change.bucket,
      key: change.key,
      sequencer,
      size: info.size,
      contentType: info.contentType,
      eTag: info.eTag ?? change.eTag,
      versionId: info.versionId ?? change.versionId,
      uploadTag: versionTag,
      owner,
      messageId: delivery.messageId,
      attempts: delivery.receiveCount,
      leaseUntil: delivery.leaseUntil,
      now: this.now(),
      // First deliveries of ObjectCreated:Put are mostly new keys.
      assumeAbsent: delivery.receiveCount === 1,
    });
    if (claim.outcome !== "claimed") {
      if (claim.outcome !== "busy") await this.cleaner.drain(documentId, claim.current);
      return claim.outcome;
    }
    // The tag the claim recorded: the version's own; on a takeover the first attempt's (a claim made
    // before an upgrade changed the tag's form keeps its own), so the janitor protects it and its
    // twins are found; on a revival after the stuck sweep, the revival's own.
    const tag = claim.record.uploadTag ?? versionTag;
    if (claim.revived) {
      this.metrics.count("VersionsRevived");
      this.log.info("a late delivery revives a version the stuck sweep failed", {
        correlationId: tag,
        documentId,
      });
    }
    const ctx = {
      documentId,
      sequencer,
      owner,
      tag,
      takeover: claim.takeover,
      change,
      pin,
      info,
      delivery,
      receiveCount: delivery.receiveCount,
      claim,
      contentType: info.contentType as string | undefined,
    };
    let uploaded: RemoteFile | undefined;
    let uploadAttempted = false;
    try {
      const invalid = validateObject(change.key, info.size, {
        ...this.config.files,
        maxFileBytes: Math.min(this.config.maxFileBytes, this.config.files.maxFileBytes),
      });
      if (invalid) throw new TerminalFailure(invalid);
      const callOpts: CallOptions = { deadline: delivery.deadline };

      uploaded = claim.takeover
        ? await this.uploads.findEarlierUpload(claim.record, tag, callOpts)
        : undefined;
      if (!uploaded) {
        // A takeover's upload is announced like the first attempt's (the claim did that), so a crash
        // now makes the next takeover wait for it in turn.
        if (claim.takeover && !(await this.store.noteUploading(documentId, sequencer, owner, this.now())))
          return "superseded";
        await this.hooks.beforeUpload?.({ documentId, tag });
        uploadAttempted = true;
        uploaded = await this.uploads.upload(ctx, callOpts);
      }
      const file = uploaded;
      await this.hooks.afterUpload?.({ documentId, file });
      // Recording the file id and reading its text are independent: run them together (one
      // DynamoDB round trip off the critical path). A lost claim discards the text.
      const record =
        claim.record.remoteFileId === file.id
          ? Promise.resolve(true)
          : this.store.recordUpload(
              documentId,
              sequencer,
              owner,
              {
                id: file.id,
                bytes: file.bytes,
                createdAt: new Date(file.created_at * 1000).toISOString(),
                contentType: ctx.contentType,
              },
              this.now(),
            );
      // The text streams in (never whole); its first piece is read while the file id is recorded.
      const source = file.status === "error" ? undefined : this.textOf(file.id, callOpts);
      const firstPiece = source
        ? this.uploads.timed("content", () => source.next())
        : Promise.resolve(undefined);
      const [recorded, first] = await Promise.allSettled([record, firstPiece]);
      const closeSource = () => source?.return?.().catch(() => undefined);
      if (recorded.status === "rejected") {
        await closeSource();
        throw recorded.reason;
      }
      if (!recorded.value) {
        await closeSource();
        await this.uploads.deleteRemote(file.id, documentId);
        return "superseded";
      }
      if (file.status === "error" || !source) {
        throw new TerminalFailure(
          {
            code: "extraction_failed",
            message: `the provider could not extract text: ${file.status_details || `file status ${file.status}`}`,
          },
          [file.id],
        );
      }
      if (first.status === "rejected") throw first.reason;

      // This attempt's own generation (recorded by the claim): if the attempt is abandoned, whoever
      // supersedes, fails or deletes the version queues it for deletion.
      const generation = claim.record.pendingGeneration ?? attemptGeneration(tag, owner);
      let stored: StoredText;
      try {
        stored = await storeExtractedText({
          first: first.value!,
          rest: source,
          writer: this.store.chunkWriter(documentId, generation),
          maxTextBytes: this.config.maxTextBytes,
        });
      } catch (err) {
        if (err instanceof TextTooLargeError)
          throw new TerminalFailure(textTooLarge(err.maxTextBytes), [file.id]);
        throw err;
      }
      if (stored.chunkCount === 0) {
        throw new TerminalFailure(
          { code: "extraction_failed", message: "the provider extracted no text from this file" },
          [file.id],
        );
      }
      await this.hooks.beforeReady?.({ documentId, generation });
      const ready = await this.store.finaliseReady({
        documentId,
        sequencer,
        owner,
        generation,
        previousGeneration: claim.record.textGeneration,
        chunkCount: stored.chunkCount,
        textBytes: stored.textBytes,
        tokenEstimate: stored.tokenEstimate,
        now: this.now(),
      });
      if (!ready) {
        await this.store.deleteGeneration(documentId, generation);
        await this.uploads.deleteRemote(file.id, documentId);
        return "superseded";
      }
      this.metrics.count("DocumentsIngested");
      this.metrics.count("IngestedBytes", info.size);
      // A first version of a new document leaves nothing behind: skip the extra read.
      const prev = claim.previous;
      if (
        prev &&
        (prev.textGeneration ||
          prev.pendingGeneration ||
          prev.remoteFileId ||
          prev.uploadTag ||
          this.cleaner.hasWork(prev))
      ) {
        await this.cleaner.drain(documentId, undefined);
      }
      return "ready";
    } catch (err) {
      if (err instanceof ObjectGoneError || (err as Error)?.cause instanceof ObjectGoneError) {
        // The version vanished mid-upload: the event that replaced or deleted it takes over.
        if (uploaded) await this.uploads.deleteRemote(uploaded.id, documentId).catch(() => undefined);
        return "superseded";
      }
      const terminal =
        err instanceof TerminalFailure
          ? err
          : err instanceof ProviderError && failureForProviderError(err)
            ? new TerminalFailure(failureForProviderError(err)!, uploaded ? [uploaded.id] : [])
            : undefined;
      if (terminal) return this.fail(ctx, terminal.failure, terminal.orphanFileIds);
      // A transient upload failure may still have stored a file whose answer was lost (a dropped
      // connection): when giving up, have cleanup look for files with this version's tag.
      const unknownTag = uploadAttempted && !uploaded ? tag : undefined;
      if (delivery.receiveCount >= this.config.maxReceiveCount) {
        // The last delivery: say so on the document before SQS moves the message to the DLQ.
        await this.fail(
          ctx,
          {
            code: "retries_exhausted",
            message: `gave up after ${delivery.receiveCount} attempts: ${errorText(err)}`,
          },
          uploaded ? [uploaded.id] : [],
          unknownTag,
        ).catch((e) =>
          this.log.error("could not record retries_exhausted", { documentId, error: errorText(e) }),
        );
      }
      throw err;
    }
  }

  /** Best effort: a lost wake-up only delays the index until its next scheduled run. */
  private async wakeIndexer(documentId: string): Promise<void> {
    try {
      await this.indexWaker?.wake(documentId);
    } catch (err) {
      this.log.warn("could not wake the search indexer", { documentId, error: errorText(err) });
    }
  }

  /** The extracted text as it arrives (streamed when the provider client can, else read whole). */
  private textOf(fileId: string, opts: CallOptions): AsyncIterator<string> {
    const api = this.api;
    if (api.streamFileContent) return api.streamFileContent(fileId, opts)[Symbol.asyncIterator]();
    return (async function* () {
      const text = await api.getFileContent(fileId, opts);
      if (text) yield text;
    })();
  }

  private async fail(
    ctx: { documentId: string; sequencer: string; owner: string; tag: string; delivery: Delivery },
    failure: DocumentFailure,
    orphanFileIds: string[],
    unknownUploadTag?: string,
  ): Promise<Outcome> {
    const recorded = await this.store.finaliseFailed({
      documentId: ctx.documentId,
      sequencer: ctx.sequencer,
      owner: ctx.owner,
      failure,
      orphanFileIds,
      unknownUploadTag,
      attempts: ctx.delivery.receiveCount,
      now: this.now(),
    });
    if (!recorded) {
      for (const id of orphanFileIds)
        await this.uploads.deleteRemote(id, ctx.documentId).catch(() => undefined);
      return "superseded";
    }
    this.metrics.count("DocumentsFailed", 1, { name: "reason", value: failure.code });
    this.log.warn("document failed", {
      correlationId: ctx.tag,
      documentId: ctx.documentId,
      reason: failure.code,
      detail: failure.message, // "message" is reserved by Powertools (it would be dropped)
    });
    await this.cleaner.drain(ctx.documentId, undefined);
    return "failed";
  }
}
