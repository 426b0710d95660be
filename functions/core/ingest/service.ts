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
import { type DynamoDocumentStore, normaliseSequencer, type StoredDocument } from "../documents/dynamo-store";
import type { DocumentFailure } from "../documents/model";
import { checkDeploymentId } from "../janitor/ownership";
import {
  AuthenticationError,
  ContentFilterError,
  EmptyFileError,
  ExtractionFailedError,
  FileCountQuotaError,
  FileTooLargeError,
  InvalidRequestError,
  NotConfiguredError,
  NotFoundError,
  PermissionDeniedError,
  ProviderError,
  QuotaExhaustedError,
} from "../provider/errors";
import { type FileRules, PROVIDER_PROFILES } from "../provider/profiles";
import type { CallOptions, ProviderApi, RemoteFile } from "../provider/types";
import type { RoomMaker } from "../quota/types";
import { type LoggerPort, type MetricsPort, noMetrics, silentLogger } from "../runtime/telemetry";
import type { IndexWaker } from "../search/wake";
import { chunkText } from "../text/chunking";
import {
  contentTypeFor,
  DEFAULT_MAX_FILE_BYTES,
  documentIdFor,
  hasTag,
  type ObjectChange,
  parseMessage,
  remoteFilename,
  uploadTagFor,
  validateObject,
} from "./events";
import { ObjectGoneError, type ObjectInfo, type ObjectSource } from "./objects";

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
}

export const DEFAULT_INGEST_CONFIG: IngestConfig = {
  maxFileBytes: DEFAULT_MAX_FILE_BYTES,
  files: PROVIDER_PROFILES.moonshot.files,
  maxReceiveCount: 5,
  concurrency: 4,
  leaseMarginMs: 60_000,
  defaultBudgetMs: 15 * 60_000,
  takeoverSettleMs: 20_000,
};

/** Between listings while a takeover waits for a crashed attempt's upload to appear. */
const SETTLE_POLL_MS = 2_000;
/** Listings (and the pause between them) before an upload attempt that got no answer is re-sent. */
const UNANSWERED_LOOKS = 3;
const UNANSWERED_LOOK_MS = 1_500;

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

/** Thrown for a retryable problem; the SQS record becomes a batch item failure. */
export class RetryLaterError extends Error {
  override readonly name = "RetryLaterError";
}

/** A terminal outcome raised inside the pipeline: the version fails with this reason. */
class TerminalFailure extends Error {
  constructor(
    readonly failure: DocumentFailure,
    readonly orphanFileIds: string[] = [],
  ) {
    super(failure.message);
  }
}

const READY_STATUSES = new Set(["ok", "ready", "processed"]);
/** A listed upload worth reusing: extracted, or from a provider that reports no status (GLM). */
const isUsable = (f: RemoteFile): boolean => f.status === undefined || READY_STATUSES.has(f.status);
const TRANSIENT_CODES = new Set(["rate_limited", "server_error", "network", "timeout"]);

/** Maps a provider error to the reason a user reads, or undefined when it is worth retrying. */
export function failureForProviderError(err: ProviderError): DocumentFailure | undefined {
  const detail = err.message.replace(/^[a-z.]+: /, "");
  if (err instanceof NotConfiguredError) {
    return { code: "provider_not_configured", message: "provider API key not configured" };
  }
  if (err instanceof ExtractionFailedError) {
    return { code: "extraction_failed", message: `the provider could not extract text: ${detail}` };
  }
  if (err instanceof FileTooLargeError)
    return { code: "too_large", message: `the provider refused the file: ${detail}` };
  if (err instanceof EmptyFileError)
    return { code: "empty", message: `the provider found the file empty: ${detail}` };
  if (err instanceof QuotaExhaustedError) {
    return { code: "quota", message: `the provider account is out of credit: ${detail}` };
  }
  if (isQuotaError(err)) return { code: "quota", message: `provider storage quota reached: ${detail}` };
  // Transient by nature, whatever the flag says: SQS redelivers, the redrive limit bounds it.
  if (err.retryable || TRANSIENT_CODES.has(err.code)) return undefined;
  if (
    err instanceof AuthenticationError ||
    err instanceof PermissionDeniedError ||
    err instanceof InvalidRequestError ||
    err instanceof ContentFilterError ||
    err instanceof NotFoundError
  ) {
    return { code: "provider_rejected", message: `the provider rejected the file: ${detail}` };
  }
  return { code: "provider_rejected", message: `the provider answered an error: ${detail}` };
}

/** File-count quota, or the total-bytes quota (which the provider reports as an invalid request). */
function isQuotaError(err: unknown): boolean {
  return (
    err instanceof FileCountQuotaError ||
    (err instanceof InvalidRequestError && /total size|max total/i.test(err.message))
  );
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The ingest path, independent of Lambda: the handler and local mode both drive it. */
export class IngestService {
  private readonly store: DynamoDocumentStore;
  private readonly api: ProviderApi;
  private readonly objects: ObjectSource;
  private readonly roomMaker?: RoomMaker;
  private readonly log: LoggerPort;
  private readonly metrics: MetricsPort;
  private readonly hooks: IngestHooks;
  private readonly indexWaker?: IndexWaker;
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly deploymentId: string;
  readonly config: IngestConfig;

  constructor(deps: IngestDeps) {
    this.deploymentId = checkDeploymentId(deps.deploymentId);
    this.store = deps.store;
    this.api = deps.provider;
    this.objects = deps.objects;
    this.roomMaker = deps.roomMaker;
    this.log = deps.logger ?? silentLogger;
    this.metrics = deps.metrics ?? noMetrics;
    this.hooks = deps.hooks ?? {};
    this.indexWaker = deps.indexWaker;
    this.now = deps.now ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.config = { ...DEFAULT_INGEST_CONFIG, ...deps.config };
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
    await this.cleanup(documentId, undefined);
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
      if (claim.outcome !== "busy") await this.cleanup(documentId, claim.current);
      return claim.outcome;
    }
    // A takeover uploads under the tag the first attempt announced (a claim made before an upgrade
    // changed the tag's form keeps its own), so the janitor protects it and its twins are found.
    const tag = claim.takeover && claim.record.uploadTag ? claim.record.uploadTag : versionTag;
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

      uploaded = claim.takeover ? await this.findEarlierUpload(claim.record, tag, callOpts) : undefined;
      if (!uploaded) {
        // A takeover's upload is announced like the first attempt's (the claim did that), so a crash
        // now makes the next takeover wait for it in turn.
        if (claim.takeover && !(await this.store.noteUploading(documentId, sequencer, owner, this.now())))
          return "superseded";
        await this.hooks.beforeUpload?.({ documentId, tag });
        uploadAttempted = true;
        uploaded = await this.upload(ctx, callOpts);
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
      const content =
        file.status === "error"
          ? Promise.resolve(undefined)
          : this.timed("content", () => this.api.getFileContent(file.id, callOpts));
      const [recorded, read] = await Promise.allSettled([record, content]);
      if (recorded.status === "rejected") throw recorded.reason;
      if (!recorded.value) {
        await this.deleteRemote(file.id, documentId);
        return "superseded";
      }
      if (file.status === "error") {
        throw new TerminalFailure(
          {
            code: "extraction_failed",
            message: `the provider could not extract text: ${file.status_details || `file status ${file.status}`}`,
          },
          [file.id],
        );
      }
      if (read.status === "rejected") throw read.reason;
      const text = read.value ?? "";
      if (text.length === 0) {
        throw new TerminalFailure(
          { code: "extraction_failed", message: "the provider extracted no text from this file" },
          [file.id],
        );
      }

      const chunks = chunkText(text);
      const generation = tag;
      if (claim.takeover) await this.store.deleteGeneration(documentId, generation);
      await this.store.writeChunks(documentId, generation, chunks);
      await this.hooks.beforeReady?.({ documentId, generation });
      const ready = await this.store.finaliseReady({
        documentId,
        sequencer,
        owner,
        generation,
        previousGeneration: claim.record.textGeneration,
        chunkCount: chunks.length,
        textBytes: Buffer.byteLength(text, "utf8"),
        tokenEstimate: chunks.reduce((sum, c) => sum + c.tokens, 0),
        now: this.now(),
      });
      if (!ready) {
        await this.store.deleteGeneration(documentId, generation);
        await this.deleteRemote(file.id, documentId);
        return "superseded";
      }
      this.metrics.count("DocumentsIngested");
      this.metrics.count("IngestedBytes", info.size);
      // A first version of a new document leaves nothing behind: skip the extra read.
      const prev = claim.previous;
      if (prev && (prev.textGeneration || prev.remoteFileId || prev.uploadTag || this.hasStaleWork(prev))) {
        await this.cleanup(documentId, undefined);
      }
      return "ready";
    } catch (err) {
      if (err instanceof ObjectGoneError || (err as Error)?.cause instanceof ObjectGoneError) {
        // The version vanished mid-upload: the event that replaced or deleted it takes over.
        if (uploaded) await this.deleteRemote(uploaded.id, documentId).catch(() => undefined);
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
      for (const id of orphanFileIds) await this.deleteRemote(id, ctx.documentId).catch(() => undefined);
      return "superseded";
    }
    this.metrics.count("DocumentsFailed", 1, { name: "reason", value: failure.code });
    this.log.warn("document failed", {
      correlationId: ctx.tag,
      documentId: ctx.documentId,
      reason: failure.code,
      detail: failure.message, // "message" is reserved by Powertools (it would be dropped)
    });
    await this.cleanup(ctx.documentId, undefined);
    return "failed";
  }

  /**
   * A takeover's search for an upload of the same version made by an earlier, unfinished attempt: the
   * recorded file, else a listed file carrying the tag. When none is listed yet and the last upload
   * whose outcome is unknown (`uploadingSince`) started less than takeoverSettleMs ago, it may still
   * be in the provider's hands: the listing is polled until then (within the deadline) before a new
   * upload is made.
   */
  private async findEarlierUpload(
    record: StoredDocument,
    tag: string,
    opts: CallOptions,
  ): Promise<RemoteFile | undefined> {
    if (record.remoteFileId) {
      try {
        return await this.timed("retrieve", () => this.api.retrieveFile(record.remoteFileId!, opts));
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
      }
    }
    const uploading = Date.parse(record.uploadingSince ?? "");
    const settleUntil = Math.min(
      (Number.isFinite(uploading) ? uploading : 0) + this.config.takeoverSettleMs,
      (opts.deadline ?? Number.POSITIVE_INFINITY) - SETTLE_POLL_MS,
    );
    let tagged = await this.listTagged(tag, opts);
    while (tagged.length === 0 && this.now().getTime() + SETTLE_POLL_MS <= settleUntil) {
      await this.sleep(SETTLE_POLL_MS);
      tagged = await this.listTagged(tag, opts);
    }
    if (tagged.length === 0) return undefined;
    // Prefer a usable one; delete the rest.
    const keep = tagged.find(isUsable) ?? tagged[0]!;
    for (const f of tagged) if (f.id !== keep.id) await this.deleteRemote(f.id, record.documentId);
    this.metrics.count("UploadsReused");
    this.log.info("reusing an earlier upload of this version", {
      correlationId: tag,
      documentId: record.documentId,
      fileId: keep.id,
      duplicatesDeleted: tagged.length - 1,
    });
    return keep;
  }

  private async listTagged(tag: string, opts: CallOptions): Promise<RemoteFile[]> {
    return (await this.timed("list", () => this.api.listFiles(opts))).filter((f) => hasTag(f.filename, tag));
  }

  private async upload(
    ctx: {
      documentId: string;
      sequencer: string;
      owner: string;
      tag: string;
      /** Set when an earlier attempt on this version may have uploaded too. */
      takeover?: boolean;
      change: ObjectChange;
      pin: { versionId?: string; eTag?: string };
      info: ObjectInfo;
      delivery: Delivery;
      /** Set from the object when it is read. */
      contentType?: string;
    },
    opts: CallOptions,
  ): Promise<RemoteFile> {
    const { change, info } = ctx;
    const pin = { versionId: info.versionId ?? ctx.pin.versionId, eTag: ctx.pin.eTag ?? info.eTag };
    let opens = 0;
    let recovered = false;
    const source = {
      filename: remoteFilename(ctx.tag, change.key),
      size: info.size,
      contentType: info.contentType ?? contentTypeFor(change.key),
      open: async () => {
        opens++;
        const opened = await this.objects.open(change.bucket, change.key, pin);
        ctx.contentType = opened.contentType ?? ctx.contentType;
        return opened.body;
      },
      // The provider may still be storing the unanswered attempt: look a few times before re-sending.
      findEarlier: async () => {
        for (let look = 0; look < UNANSWERED_LOOKS; look++) {
          if (look > 0) await this.sleep(UNANSWERED_LOOK_MS);
          const found = await this.listTagged(ctx.tag, opts);
          if (found.length > 0) {
            recovered = true;
            this.metrics.count("UploadsRecovered");
            return found.find(isUsable) ?? found[0];
          }
        }
        return undefined;
      },
    };
    const attempt = () => this.timed("upload", () => this.api.uploadFile(source, "file-extract", opts));
    let file: RemoteFile;
    try {
      file = await attempt();
    } catch (err) {
      if (!isQuotaError(err) || !this.roomMaker) throw err;
      const room = await this.roomMaker.makeRoom({ files: 1, bytes: info.size }, opts);
      this.log.info("asked for provider quota room", { correlationId: ctx.tag, ...room });
      try {
        if (!room.enough) throw err;
        file = await attempt();
      } catch (again) {
        // Nothing freeable right now usually means the account is full of files whose documents are
        // still processing, or of other uploads racing for the room just made: both clear up. Only
        // the last delivery fails the document as `quota`; earlier ones go back to the queue.
        if (!isQuotaError(again) || ctx.delivery.receiveCount >= this.config.maxReceiveCount) throw again;
        // Refused: no upload of ours is in flight, so the redelivery need not wait for one.
        await this.store.noteUploading(ctx.documentId, ctx.sequencer, ctx.owner, undefined);
        throw new RetryLaterError(`waiting for provider quota room: ${errorText(again)}`, { cause: again });
      }
    }
    if (opens > 1 || recovered || ctx.takeover) {
      // A retried upload, or a crashed attempt's upload that landed after our search, may have stored
      // a twin whose response was lost: keep only ours.
      const twins = (await this.listTagged(ctx.tag, opts)).filter((f) => f.id !== file.id);
      for (const twin of twins) await this.deleteRemote(twin.id, ctx.documentId);
      if (twins.length) this.metrics.count("UploadTwinsDeleted", twins.length);
    }
    return file;
  }

  private hasStaleWork(doc: StoredDocument): boolean {
    const w = this.store.staleWork(doc);
    return w.generations.length + w.fileIds.length + w.uploadTags.length > 0;
  }

  /** Deletes chunks and remote files the record has queued for deletion. Never throws. */
  private async cleanup(documentId: string, known: StoredDocument | undefined): Promise<void> {
    try {
      const state = known ?? (await this.store.getState(documentId));
      const work = this.store.staleWork(state);
      if (!work.generations.length && !work.fileIds.length && !work.uploadTags.length) return;
      const done = { generations: [] as string[], fileIds: [] as string[], uploadTags: [] as string[] };
      for (const generation of work.generations) {
        await this.store.deleteGeneration(documentId, generation);
        done.generations.push(generation);
      }
      for (const fileId of work.fileIds) {
        if (
          await this.deleteRemote(fileId, documentId).then(
            () => true,
            () => false,
          )
        )
          done.fileIds.push(fileId);
      }
      if (work.uploadTags.length) {
        const files = await this.api.listFiles();
        for (const tag of work.uploadTags) {
          const mine = files.filter((f) => hasTag(f.filename, tag) && f.id !== state?.remoteFileId);
          let ok = true;
          for (const f of mine) await this.deleteRemote(f.id, documentId).catch(() => (ok = false));
          if (ok) done.uploadTags.push(tag);
        }
      }
      await this.store.removeFromSets(documentId, done);
    } catch (err) {
      // Left queued on the record; the next event for it, or the janitor, finishes the job.
      this.log.warn("cleanup incomplete", { documentId, error: errorText(err) });
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

  private async deleteRemote(fileId: string, documentId: string): Promise<void> {
    await this.timed("delete", () => this.api.deleteFile(fileId));
    this.log.debug("deleted remote file", { documentId, fileId });
  }

  private async timed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      this.metrics.timing("ProviderLatency", performance.now() - started, {
        name: "operation",
        value: operation,
      });
    }
  }
}
