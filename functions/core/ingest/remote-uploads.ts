/**
 * Ingestion's side of the provider's Files API for one object version: streaming the upload (tagged
 * `<tag>__<basename>`), finding an earlier attempt's upload before uploading again, asking for quota
 * room, and deleting twins. The provider has no idempotency key, so the tag is how an attempt that
 * got no answer, or a crashed attempt's upload that landed late, is found again.
 */
import type { DynamoDocumentStore, StoredDocument } from "../documents/dynamo-store";
import { NotFoundError } from "../provider/errors";
import type { CallOptions, ProviderApi, RemoteFile } from "../provider/types";
import type { RoomMaker } from "../quota/types";
import type { LoggerPort, MetricsPort } from "../runtime/telemetry";
import { contentTypeFor, hasTag, type ObjectChange, remoteFilename } from "./events";
import { errorText, isQuotaError, RetryLaterError } from "./failures";
import type { ObjectInfo, ObjectSource } from "./objects";

/** Provider file statuses whose extracted text can be read. */
export const READY_STATUSES = new Set(["ok", "ready", "processed"]);
/** A listed upload worth reusing: extracted, or from a provider that reports no status (GLM). */
const isUsable = (f: RemoteFile): boolean => f.status === undefined || READY_STATUSES.has(f.status);
/** Between listings while a takeover waits for a crashed attempt's upload to appear. */
const SETTLE_POLL_MS = 2_000;
/** Listings (and the pause between them) before an upload attempt that got no answer is re-sent. */
const UNANSWERED_LOOKS = 3;
const UNANSWERED_LOOK_MS = 1_500;

export interface RemoteUploadsDeps {
  api: ProviderApi;
  objects: ObjectSource;
  store: Pick<DynamoDocumentStore, "noteUploading">;
  roomMaker?: RoomMaker;
  log: LoggerPort;
  metrics: MetricsPort;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  config: { maxReceiveCount: number; takeoverSettleMs: number };
}

/** The provider calls of one ingest service (see the module comment). */
export class RemoteUploads {
  private readonly api: ProviderApi;
  private readonly objects: ObjectSource;
  private readonly store: RemoteUploadsDeps["store"];
  private readonly roomMaker?: RoomMaker;
  private readonly log: LoggerPort;
  private readonly metrics: MetricsPort;
  private readonly now: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly config: RemoteUploadsDeps["config"];

  constructor(deps: RemoteUploadsDeps) {
    this.api = deps.api;
    this.objects = deps.objects;
    this.store = deps.store;
    this.roomMaker = deps.roomMaker;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.now = deps.now;
    this.sleep = deps.sleep;
    this.config = deps.config;
  }

  /**
   * A takeover's search for an upload of the same version made by an earlier, unfinished attempt: the
   * recorded file, else a listed file carrying the tag. When none is listed yet and the last upload
   * whose outcome is unknown (`uploadingSince`) started less than takeoverSettleMs ago, it may still
   * be in the provider's hands: the listing is polled until then (within the deadline) before a new
   * upload is made.
   */
  async findEarlierUpload(
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

  async listTagged(tag: string, opts: CallOptions): Promise<RemoteFile[]> {
    return (await this.timed("list", () => this.api.listFiles(opts))).filter((f) => hasTag(f.filename, tag));
  }

  async upload(
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
      /** This delivery's receive count (the last one fails as `quota` rather than retrying). */
      receiveCount: number;
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
        if (!isQuotaError(again) || ctx.receiveCount >= this.config.maxReceiveCount) throw again;
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

  async deleteRemote(fileId: string, documentId: string): Promise<void> {
    await this.timed("delete", () => this.api.deleteFile(fileId));
    this.log.debug("deleted remote file", { documentId, fileId });
  }

  async timed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
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
