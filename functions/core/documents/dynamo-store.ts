/**
 * DynamoDB adapter of the document store: the read side (`DocumentReader`, used by the chat API and
 * the janitor) and the state transitions of the ingest path.
 *
 * Concurrency model. Every change to a document record is read -> decide -> conditional write on a
 * revision counter (`rev`), retried a few times when another writer got there first. So concurrent
 * deliveries of the same S3 event, an older event racing a newer one, and the janitor releasing a
 * file never lose each other's updates, and the rules of who may do what live in one place (below).
 * The only unconditional writes are chunk items of a generation no record points at yet, and removal
 * of entries from the `stale*` sets (set DELETE is atomic and commutative).
 *
 * Items: the record (pk `DOC#<id>`, sk `DOC`, GSI `byKey` attributes while not deleted, GSI
 * `holdsFiles` attribute while it holds remote files) and its text chunks (sk
 * `CHUNK#<generation>#<index>`), see table.ts. Tombstones (status `deleted`) leave `byKey`, keep the
 * last sequencer so older events cannot resurrect the document, and expire through TTL.
 */
import {
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { batchGetChunks, type ChunkKey } from "../search/chunks";
import { SearchTodoList } from "../search/todos";
import { chunkText } from "../text/chunking";
import type {
  DocumentFailure,
  DocumentPage,
  DocumentReader,
  DocumentRecord,
  ListDocumentsQuery,
  TextChunk,
} from "./model";
import {
  chunkSk,
  chunkSkPrefix,
  DOCUMENT_SK,
  DOCUMENTS_PARTITION,
  documentPk,
  FILES_PARTITION,
  HOLDING_ATTRIBUTES,
  TABLE_KEYS,
} from "./table";

/** Tombstones of deleted documents are kept this long (then DynamoDB TTL removes them). */
export const TOMBSTONE_TTL_SECONDS = 15 * 24 * 3600;
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const MAX_TRANSITION_ATTEMPTS = 8;
const BATCH_WRITE_SIZE = 25;
const BATCH_RETRIES = 8;

/** The record plus the bookkeeping the ingest path needs (not part of the public model). */
export interface StoredDocument extends DocumentRecord {
  rev: number;
  /** Token of the processing attempt that holds the claim on `sequencer`. */
  claimOwner?: string;
  /** SQS message id of that attempt: a redelivery of the same message may take the claim over. */
  claimMessageId?: string;
  /** Epoch ms after which any delivery may take over an unfinished claim. */
  leaseUntil?: number;
  /** Text generations no longer referenced, whose chunks are still to be deleted. */
  staleGenerations?: string[];
  /**
   * ISO time the latest upload call of this version started, while its outcome is unknown (a crashed
   * attempt's upload may still land at the provider). Cleared when the provider refused the upload.
   */
  uploadingSince?: string;
}

export interface ClaimInput {
  documentId: string;
  bucket: string;
  key: string;
  /** Normalised sequencer of the object version (see normaliseSequencer). */
  sequencer: string;
  size: number;
  contentType?: string;
  eTag?: string;
  versionId?: string;
  /** Deterministic per version (documentId + sequencer): the upload intent recorded with the claim. */
  uploadTag: string;
  /** Token of this processing attempt. */
  owner: string;
  messageId: string;
  attempts: number;
  /** Epoch ms until which the claim is exclusive. */
  leaseUntil: number;
  now: Date;
  /** Try the write for a brand-new document first (saves a read when the key is new). */
  assumeAbsent?: boolean;
}

export type ClaimResult =
  /** This attempt owns the version. `takeover`: an earlier attempt on it did not finish. */
  | { outcome: "claimed"; record: StoredDocument; takeover: boolean; previous?: StoredDocument }
  /** The version was already finished (ready/failed): nothing to do. */
  | { outcome: "duplicate"; current: StoredDocument }
  /** A newer version (or a delete) is already recorded. */
  | { outcome: "stale"; current: StoredDocument }
  /** Another live attempt holds the claim; its own message is still in flight and will finish it. */
  | { outcome: "busy"; current: StoredDocument };

export interface ReadyInput {
  documentId: string;
  sequencer: string;
  owner: string;
  generation: string;
  /** The record's `textGeneration` when the version was claimed. */
  previousGeneration?: string;
  chunkCount: number;
  textBytes: number;
  tokenEstimate: number;
  now: Date;
}

export interface FailedInput {
  documentId: string;
  sequencer: string;
  owner: string;
  failure: DocumentFailure;
  /** Remote files this attempt created that the record may not reference (deleted during cleanup). */
  orphanFileIds?: string[];
  /** Set when an upload was attempted whose result is unknown: files with the tag get deleted. */
  unknownUploadTag?: string;
  attempts?: number;
  now: Date;
}

/** For the janitor: a `processing` record whose ingestion never finished (see failStuckProcessing). */
export interface StuckProcessingInput {
  documentId: string;
  /** The version the janitor saw processing; a newer claim or a finished attempt wins. */
  sequencer: string;
  /** Only if this version's processing started (its claim, `uploadStartedAt`) at or before this time. */
  startedBefore: Date;
  failure: DocumentFailure;
  now: Date;
}

export interface TombstoneInput {
  documentId: string;
  bucket: string;
  key: string;
  sequencer: string;
  /**
   * For a permanent deletion of one version (versioned bucket, `ObjectRemoved:Delete` with a version
   * id): the deleted version. When the record tracks another version, the current object is
   * unaffected and nothing changes. Unset for delete markers and unversioned buckets.
   */
  purgedVersionId?: string;
  now: Date;
}

export interface StaleWork {
  generations: string[];
  fileIds: string[];
  uploadTags: string[];
}

interface Mutation {
  set?: Record<string, unknown>;
  remove?: string[];
  add?: Record<string, Set<string> | number>;
}

/** Whether a write gives the record a remote file, upload intent or stale file to delete. */
function gainsHolding(m: Mutation): boolean {
  return HOLDING_ATTRIBUTES.some((attr) => {
    const set = m.set?.[attr];
    const added = m.add?.[attr];
    return (set !== undefined && set !== null) || (added instanceof Set && added.size > 0);
  });
}

const holdsAny = (item: Record<string, unknown>): boolean =>
  HOLDING_ATTRIBUTES.some((attr) => item[attr] !== undefined);

type Decision<T> = { write: Mutation; result: T } | { write?: undefined; result: T };

const INTERNAL_ATTRIBUTES = new Set<string>([
  TABLE_KEYS.partitionKey,
  TABLE_KEYS.sortKey,
  TABLE_KEYS.byKeyIndex.partitionKey,
  TABLE_KEYS.byKeyIndex.sortKey,
  TABLE_KEYS.holdsFilesIndex.partitionKey,
  TABLE_KEYS.ttlAttribute,
]);

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string })?.name === "ConditionalCheckFailedException";
}

function fromItem(item: Record<string, unknown>): StoredDocument {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) {
    if (INTERNAL_ATTRIBUTES.has(name)) continue;
    out[name] = value instanceof Set ? [...value].sort() : value;
  }
  out.rev ??= 0;
  return out as unknown as StoredDocument;
}

/** Attributes of a processing attempt's claim and upload intent: dropped when the version settles. */
const CLAIM_ATTRIBUTES = [
  "claimOwner",
  "claimMessageId",
  "leaseUntil",
  "uploadTag",
  "uploadStartedAt",
  "uploadingSince",
] as const;

/** Attributes that describe one version's claim, upload and text: dropped when that version ends. */
const VERSION_ATTRIBUTES = [
  ...CLAIM_ATTRIBUTES,
  "textGeneration",
  "chunkCount",
  "textBytes",
  "tokenEstimate",
  "remoteFileId",
  "remoteFileBytes",
  "remoteFileCreatedAt",
] as const;

/**
 * The write that fails a processing version (ingestion's finaliseFailed and the janitor's stuck sweep):
 * status `failed` with the reason; its remote file, unknown upload and older text generation are queued
 * for deletion (the object in S3 is now the failed version); the claim and text fields go.
 */
function failedMutation(
  cur: StoredDocument,
  input: Pick<FailedInput, "failure" | "orphanFileIds" | "unknownUploadTag" | "attempts" | "now">,
): Mutation {
  const add: Record<string, Set<string>> = {};
  if (cur.textGeneration) add.staleGenerations = new Set([cur.textGeneration]);
  const files = new Set(input.orphanFileIds ?? []);
  if (cur.remoteFileId) files.add(cur.remoteFileId);
  if (files.size > 0) add.staleFileIds = files;
  if (input.unknownUploadTag) add.staleUploadTags = new Set([input.unknownUploadTag]);
  const set: Record<string, unknown> = {
    status: "failed",
    error: input.failure,
    updatedAt: input.now.toISOString(),
  };
  if (input.attempts !== undefined) set.attempts = input.attempts;
  return {
    set,
    remove: [...VERSION_ATTRIBUTES],
    add,
  };
}

/** The public view of a stored document (no claim bookkeeping). */
export function toPublicRecord(doc: StoredDocument): DocumentRecord {
  const {
    rev: _rev,
    claimOwner: _o,
    claimMessageId: _m,
    leaseUntil: _l,
    staleGenerations: _g,
    uploadingSince: _u,
    ...rest
  } = doc;
  return rest;
}

function encodeCursor(key: Record<string, unknown> | undefined): string | undefined {
  return key ? Buffer.from(JSON.stringify(key), "utf8").toString("base64url") : undefined;
}

function decodeCursor(cursor: string | undefined): Record<string, unknown> | undefined {
  if (!cursor) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (value && typeof value === "object" && !Array.isArray(value)) return value;
  } catch {
    // fall through
  }
  throw new InvalidCursorError();
}

/** Thrown by `list` for a cursor it did not issue. */
export class InvalidCursorError extends Error {
  override readonly name = "InvalidCursorError";
  constructor() {
    super("invalid cursor");
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DynamoDocumentStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
}

/** The document store on one DynamoDB table (layout in table.ts). */
export class DynamoDocumentStore implements DocumentReader {
  private readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  /**
   * The search index's to-do list: noted before every write that changes a document's text (ready,
   * failed, deleted), with that write's timestamp, so a crash after it leaves work for the indexer.
   */
  readonly searchTodos: SearchTodoList;

  constructor(opts: DynamoDocumentStoreOptions) {
    this.client = opts.client;
    this.tableName = opts.tableName;
    this.searchTodos = new SearchTodoList(opts.client, opts.tableName);
  }

  // ---------------------------------------------------------------- read side

  /** The document, or undefined when unknown or deleted (tombstones are internal; see getState). */
  async get(documentId: string): Promise<DocumentRecord | undefined> {
    const state = await this.getState(documentId);
    return state && state.status !== "deleted" ? toPublicRecord(state) : undefined;
  }

  /** The full stored state, tombstones included (strongly consistent). */
  async getState(documentId: string): Promise<StoredDocument | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [TABLE_KEYS.partitionKey]: documentPk(documentId), [TABLE_KEYS.sortKey]: DOCUMENT_SK },
        ConsistentRead: true,
      }),
    );
    return Item ? fromItem(Item) : undefined;
  }

  /**
   * Documents in key order (deleted ones never appear), optionally under a key prefix and with one
   * status. `limit` defaults to 100 (max 1,000); pass the returned cursor to get the next page.
   */
  async list(query: ListDocumentsQuery = {}): Promise<DocumentPage> {
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? DEFAULT_PAGE)), MAX_PAGE);
    const { byKeyIndex } = TABLE_KEYS;
    const names: Record<string, string> = { "#pk": byKeyIndex.partitionKey };
    const values: Record<string, unknown> = { ":pk": DOCUMENTS_PARTITION };
    let keyCondition = "#pk = :pk";
    if (query.prefix) {
      names["#sk"] = byKeyIndex.sortKey;
      values[":prefix"] = query.prefix;
      keyCondition += " AND begins_with(#sk, :prefix)";
    }
    let filter: string | undefined;
    if (query.status) {
      names["#status"] = "status";
      values[":status"] = query.status;
      filter = "#status = :status";
    }
    const items: DocumentRecord[] = [];
    let startKey = decodeCursor(query.cursor);
    do {
      // Asking for at most the remaining count keeps LastEvaluatedKey an exact resume point.
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: byKeyIndex.name,
          KeyConditionExpression: keyCondition,
          FilterExpression: filter,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ExclusiveStartKey: startKey,
          Limit: limit - items.length,
        }),
      );
      for (const item of page.Items ?? []) items.push(toPublicRecord(fromItem(item)));
      startKey = page.LastEvaluatedKey;
    } while (startKey && items.length < limit);
    return { items, cursor: encodeCursor(startKey) };
  }

  /** The chunks of the record's current text generation, in order. */
  async getChunks(record: DocumentRecord): Promise<TextChunk[]> {
    if (!record.textGeneration) return [];
    const items = await this.queryGeneration(record.documentId, record.textGeneration, false);
    const chunks = items.map(
      (item): TextChunk => ({
        documentId: record.documentId,
        generation: record.textGeneration as string,
        index: item.index as number,
        text: item.text as string,
        tokens: item.tokens as number,
      }),
    );
    // Leftovers of an interrupted attempt beyond chunkCount are never part of the text.
    return record.chunkCount === undefined
      ? chunks
      : chunks.filter((c) => c.index < (record.chunkCount ?? 0));
  }

  /** Chosen chunks by key (BatchGetItem; see search/chunks.ts). */
  getChunksAt(keys: readonly ChunkKey[]): Promise<(TextChunk | undefined)[]> {
    return batchGetChunks(this.client, this.tableName, keys);
  }

  /** The whole current text (chunks joined), or undefined when the document has none. */
  async getText(record: DocumentRecord): Promise<string | undefined> {
    if (!record.textGeneration) return undefined;
    return (await this.getChunks(record)).map((c) => c.text).join("");
  }

  /**
   * For the janitor: every record that holds a remote file (`remoteFileId`), a pending upload intent
   * (`uploadTag` while processing) or remote files of superseded versions still to delete
   * (`staleFileIds` / `staleUploadTags`). Tombstones are included when they hold stale files.
   *
   * Reads the sparse `holdsFiles` index, so the cost follows the files held, not the documents and
   * chunks stored. Index reads are eventually consistent: a record changed a moment ago may show its
   * previous state (the janitor's grace periods cover this, and its writes are conditional). Records
   * found holding nothing any more leave the index here (a conditional write, so a concurrent write
   * that gives the record a file again keeps it in).
   */
  async listWithRemoteFiles(): Promise<DocumentRecord[]> {
    const out: DocumentRecord[] = [];
    const emptied: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: TABLE_KEYS.holdsFilesIndex.name,
          KeyConditionExpression: "#pk = :files",
          ExpressionAttributeNames: { "#pk": TABLE_KEYS.holdsFilesIndex.partitionKey },
          ExpressionAttributeValues: { ":files": FILES_PARTITION },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        if (holdsAny(item)) out.push(toPublicRecord(fromItem(item)));
        else emptied.push(item.documentId as string);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    await this.leaveFilesIndex(emptied);
    return out;
  }

  /** Removes records that hold no remote file from the `holdsFiles` index (best effort). */
  private async leaveFilesIndex(documentIds: string[]): Promise<void> {
    const names: Record<string, string> = { "#gsi": TABLE_KEYS.holdsFilesIndex.partitionKey };
    const holds = HOLDING_ATTRIBUTES.map((attr, i) => {
      names[`#h${i}`] = attr;
      return `attribute_not_exists(#h${i})`;
    });
    let next = 0;
    const worker = async () => {
      while (next < documentIds.length) {
        const documentId = documentIds[next++]!;
        try {
          await this.client.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: this.recordKey(documentId),
              UpdateExpression: "REMOVE #gsi",
              ConditionExpression: holds.join(" AND "),
              ExpressionAttributeNames: names,
            }),
          );
        } catch (err) {
          // It holds a file again: it stays. Anything else: the next listing tries again.
          if (!isConditionFailure(err)) return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, documentIds.length) }, worker));
  }

  /**
   * For the janitor: takes the document's remote file off it before deleting the file. Only while the
   * record still holds `fileId` as its `remoteFileId`: the file moves to `staleFileIds` (the to-delete
   * list) and `remoteFileReleasedAt` is set, so no reader sees a file about to go, and a deletion that
   * never happens (a crash, a failed call, a sweep out of time) stays on the record for the next sweep
   * rather than leaving an unreferenced file. False when the record moved on (the caller must leave
   * the file alone); one of several racing janitors wins. After the deletion, forgetDeletedFile clears
   * the entry.
   */
  async releaseRemoteFile(documentId: string, fileId: string, at: string): Promise<boolean> {
    return this.transition(documentId, (cur): Decision<boolean> => {
      if (cur?.remoteFileId !== fileId) return { result: false };
      return {
        write: {
          set: { remoteFileReleasedAt: at, updatedAt: at },
          remove: ["remoteFileId"],
          add: { staleFileIds: new Set([fileId]) },
        },
        result: true,
      };
    });
  }

  /** For the janitor: a queued file (`staleFileIds`) is gone from the provider; forget it. */
  async forgetDeletedFile(documentId: string, fileId: string): Promise<void> {
    await this.removeFromSets(documentId, { fileIds: [fileId], generations: [], uploadTags: [] });
  }

  // ---------------------------------------------------------------- ingest transitions

  /**
   * Claims an object version for processing. Rules, in order:
   * - a record with a newer sequencer (version or delete) wins: `stale`;
   * - the same version already ready/failed: `duplicate`;
   * - the same version processing under a live claim of another SQS message: `busy` (that message
   *   stays in flight until its attempt finishes, and SQS redelivers it if the attempt dies);
   * - the same version processing whose lease expired, or claimed by this same message (a
   *   redelivery after a crash or a batch item failure): taken over (`takeover: true`);
   * - otherwise (new document, older version, tombstone of an older delete): claimed. The older
   *   version's remote file and in-flight upload are queued for deletion in the same write.
   */
  async claimVersion(input: ClaimInput): Promise<ClaimResult> {
    const nowIso = input.now.toISOString();
    return this.transition(
      input.documentId,
      (cur): Decision<ClaimResult> => {
        let takeover = false;
        if (cur) {
          if (cur.sequencer > input.sequencer) return { result: { outcome: "stale", current: cur } };
          if (cur.sequencer === input.sequencer) {
            if (cur.status !== "processing") return { result: { outcome: "duplicate", current: cur } };
            const expired = (cur.leaseUntil ?? 0) < input.now.getTime();
            if (!expired && cur.claimMessageId !== input.messageId) {
              return { result: { outcome: "busy", current: cur } };
            }
            takeover = true;
          }
        }
        const set: Record<string, unknown> = {
          documentId: input.documentId,
          bucket: input.bucket,
          key: input.key,
          status: "processing",
          size: input.size,
          contentType: input.contentType,
          eTag: input.eTag,
          versionId: input.versionId,
          sequencer: input.sequencer,
          claimOwner: input.owner,
          claimMessageId: input.messageId,
          leaseUntil: input.leaseUntil,
          attempts: input.attempts,
          updatedAt: nowIso,
          createdAt: cur?.createdAt ?? nowIso,
          [TABLE_KEYS.byKeyIndex.partitionKey]: DOCUMENTS_PARTITION,
          [TABLE_KEYS.byKeyIndex.sortKey]: input.key,
        };
        const remove = ["error", TABLE_KEYS.ttlAttribute];
        const add: Record<string, Set<string>> = {};
        if (!takeover) {
          set.uploadTag = input.uploadTag;
          set.uploadStartedAt = nowIso;
          set.uploadingSince = nowIso;
          remove.push("remoteFileId", "remoteFileBytes", "remoteFileCreatedAt", "remoteFileReleasedAt");
          if (cur?.remoteFileId) add.staleFileIds = new Set([cur.remoteFileId]);
          if (cur?.status === "processing" && cur.uploadTag) add.staleUploadTags = new Set([cur.uploadTag]);
        }
        for (const [name, value] of Object.entries(set)) if (value === undefined) remove.push(name);
        const write: Mutation = {
          set: Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined)),
          remove: [...new Set(remove)].filter((n) => set[n] === undefined),
          add,
        };
        const record = { ...(cur ?? {}), ...write.set, rev: (cur?.rev ?? 0) + 1 } as Record<string, unknown>;
        for (const name of write.remove ?? []) delete record[name];
        return {
          write,
          result: {
            outcome: "claimed",
            record: record as unknown as StoredDocument,
            takeover,
            previous: cur,
          },
        };
      },
      { assumeAbsent: input.assumeAbsent },
    );
  }

  /**
   * Records the uploaded remote file; false when this attempt no longer owns the version. One
   * conditional write (no read): only the owner changes these fields, and bumping `rev` makes any
   * concurrent transition that read the record before re-read it.
   */
  async recordUpload(
    documentId: string,
    sequencer: string,
    owner: string,
    file: { id: string; bytes: number; createdAt: string; contentType?: string },
    now: Date,
  ): Promise<boolean> {
    const set: Record<string, unknown> = {
      remoteFileId: file.id,
      remoteFileBytes: file.bytes,
      remoteFileCreatedAt: file.createdAt,
      updatedAt: now.toISOString(),
    };
    if (file.contentType) set.contentType = file.contentType;
    return this.ownerWrite(documentId, sequencer, owner, {
      set,
      remove: ["remoteFileReleasedAt"],
    });
  }

  /**
   * Notes that this attempt starts an upload (`at`) or that the provider refused its upload, so none
   * is in flight (`at` undefined). A takeover waits for a crashed attempt's upload only while one may
   * be in flight. False when this attempt no longer owns the version.
   */
  async noteUploading(
    documentId: string,
    sequencer: string,
    owner: string,
    at: Date | undefined,
  ): Promise<boolean> {
    return this.ownerWrite(
      documentId,
      sequencer,
      owner,
      at ? { set: { uploadingSince: at.toISOString() } } : { remove: ["uploadingSince"] },
    );
  }

  /**
   * Flips the record to the new text generation (whose chunks are already written) and marks it
   * ready; `previousGeneration` (the one the record showed when claimed: only the owner changes it)
   * is queued for deletion. False when this attempt no longer owns the version (then the caller
   * deletes its own chunks and remote file).
   */
  async finaliseReady(input: ReadyInput): Promise<boolean> {
    await this.searchTodos.note(input.documentId, input.now);
    const add: Record<string, Set<string>> = {};
    if (input.previousGeneration && input.previousGeneration !== input.generation) {
      add.staleGenerations = new Set([input.previousGeneration]);
    }
    return this.ownerWrite(input.documentId, input.sequencer, input.owner, {
      set: {
        status: "ready",
        textGeneration: input.generation,
        chunkCount: input.chunkCount,
        textBytes: input.textBytes,
        tokenEstimate: input.tokenEstimate,
        updatedAt: input.now.toISOString(),
      },
      remove: ["error", ...CLAIM_ATTRIBUTES],
      add,
    });
  }

  /**
   * Marks the version failed with a reason. Its text (an older version's) and remote file are
   * queued for deletion: the object in S3 is now the failed version. False when not the owner.
   */
  async finaliseFailed(input: FailedInput): Promise<boolean> {
    await this.searchTodos.note(input.documentId, input.now);
    return this.transition(input.documentId, (cur): Decision<boolean> => {
      if (!cur || !this.owns(cur, input.sequencer, input.owner)) return { result: false };
      return { write: failedMutation(cur, input), result: true };
    });
  }

  /**
   * For the janitor: marks a version failed whose ingestion never finished (the ingest Lambda timed
   * out on the queue's last delivery, so the S3 event went to the dead-letter queue and no attempt is
   * left to finish the record). Conditional, like every transition: only while the record is still
   * `processing` the same `sequencer`, started at or before `startedBefore`, with no live claim (lease
   * expired), and at the revision read. The record then looks exactly as if ingestion had failed it:
   * its remote file and pending upload tag are queued for deletion, its older text generation too.
   * Returns the updated record, or undefined when the record moved on (nothing is written).
   */
  async failStuckProcessing(input: StuckProcessingInput): Promise<DocumentRecord | undefined> {
    await this.searchTodos.note(input.documentId, input.now);
    const failed = await this.transition(input.documentId, (cur): Decision<boolean> => {
      if (cur?.status !== "processing" || cur.sequencer !== input.sequencer) return { result: false };
      if ((cur.leaseUntil ?? 0) >= input.now.getTime()) return { result: false };
      const started = Date.parse(cur.uploadStartedAt ?? cur.updatedAt);
      if (!(started <= input.startedBefore.getTime())) return { result: false };
      return {
        write: failedMutation(cur, {
          failure: input.failure,
          unknownUploadTag: cur.uploadTag,
          now: input.now,
        }),
        result: true,
      };
    });
    return failed ? this.get(input.documentId) : undefined;
  }

  /**
   * Applies an ObjectRemoved event: unless a newer version is recorded, the record becomes a
   * tombstone (status `deleted`, out of the list index, TTL 15 days) holding the delete's sequencer;
   * its text, remote file and any in-flight upload are queued for deletion. Returns false for a stale
   * delete.
   */
  async tombstone(input: TombstoneInput): Promise<boolean> {
    await this.searchTodos.note(input.documentId, input.now);
    const nowIso = input.now.toISOString();
    return this.transition(input.documentId, (cur): Decision<boolean> => {
      if (cur && cur.sequencer >= input.sequencer) return { result: false };
      if (input.purgedVersionId && cur?.versionId && cur.versionId !== input.purgedVersionId) {
        return { result: false }; // a noncurrent version was purged: the document is unchanged
      }
      const add: Record<string, Set<string>> = {};
      if (cur?.textGeneration) add.staleGenerations = new Set([cur.textGeneration]);
      if (cur?.remoteFileId) add.staleFileIds = new Set([cur.remoteFileId]);
      if (cur?.status === "processing" && cur.uploadTag) add.staleUploadTags = new Set([cur.uploadTag]);
      return {
        write: {
          set: {
            documentId: input.documentId,
            bucket: input.bucket,
            key: input.key,
            status: "deleted",
            sequencer: input.sequencer,
            size: cur?.size ?? 0,
            createdAt: cur?.createdAt ?? nowIso,
            updatedAt: nowIso,
            [TABLE_KEYS.ttlAttribute]: Math.floor(input.now.getTime() / 1000) + TOMBSTONE_TTL_SECONDS,
          },
          remove: [
            TABLE_KEYS.byKeyIndex.partitionKey,
            TABLE_KEYS.byKeyIndex.sortKey,
            ...VERSION_ATTRIBUTES,
            "error",
            "contentType",
            "eTag",
            "versionId",
          ],
          add,
        },
        result: true,
      };
    });
  }

  /** Cleanup still owed by a record (chunks of old generations, remote files of old versions). */
  staleWork(doc: StoredDocument | undefined): StaleWork {
    return {
      generations: (doc?.staleGenerations ?? []).filter((g) => g !== doc?.textGeneration),
      fileIds: (doc?.staleFileIds ?? []).filter((f) => f !== doc?.remoteFileId),
      uploadTags: (doc?.staleUploadTags ?? []).filter((t) => t !== doc?.uploadTag),
    };
  }

  /** Removes finished cleanup entries from the record's stale sets. */
  async removeFromSets(documentId: string, done: StaleWork): Promise<void> {
    const parts: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const lists: [string, string[]][] = [
      ["staleGenerations", done.generations],
      ["staleFileIds", done.fileIds],
      ["staleUploadTags", done.uploadTags],
    ];
    for (const [i, [name, list]] of lists.entries()) {
      if (list.length === 0) continue;
      names[`#s${i}`] = name;
      values[`:s${i}`] = new Set(list);
      parts.push(`#s${i} :s${i}`);
    }
    if (parts.length === 0) return;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.recordKey(documentId),
          UpdateExpression: `DELETE ${parts.join(", ")}`,
          ConditionExpression: "attribute_exists(#pk)",
          ExpressionAttributeNames: { ...names, "#pk": TABLE_KEYS.partitionKey },
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** Writes a generation's chunks (25 per batch, unprocessed items retried with backoff). */
  async writeChunks(documentId: string, generation: string, chunks: { text: string; tokens: number }[]) {
    const requests = chunks.map((chunk, index) => ({
      PutRequest: {
        Item: {
          [TABLE_KEYS.partitionKey]: documentPk(documentId),
          [TABLE_KEYS.sortKey]: chunkSk(generation, index),
          documentId,
          generation,
          index,
          text: chunk.text,
          tokens: chunk.tokens,
        },
      },
    }));
    await this.batchWrite(requests);
  }

  /** Deletes a generation's chunk items (all, or those from index `fromIndex` on). */
  async deleteGeneration(documentId: string, generation: string, fromIndex = 0): Promise<number> {
    const items = await this.queryGeneration(documentId, generation, true);
    const doomed = items.filter((i) => (i.index as number) >= fromIndex);
    await this.batchWrite(
      doomed.map((i) => ({
        DeleteRequest: {
          Key: {
            [TABLE_KEYS.partitionKey]: i[TABLE_KEYS.partitionKey],
            [TABLE_KEYS.sortKey]: i[TABLE_KEYS.sortKey],
          },
        },
      })),
    );
    return doomed.length;
  }

  /**
   * Seeds a ready document with `text` without the provider, for tests and benchmarks of the chat
   * API and the janitor: chunks the text exactly like ingestion, writes the chunks, then the record
   * (status `ready`). Fields of `record` override the defaults (pass `remoteFileId` to simulate a
   * file still held by the provider).
   */
  async putDocumentText(
    record: Partial<DocumentRecord> & Pick<DocumentRecord, "documentId" | "key">,
    text: string,
  ): Promise<DocumentRecord> {
    const now = new Date().toISOString();
    const generation = record.textGeneration ?? `seed${Date.now().toString(36)}`;
    const chunks = chunkText(text);
    await this.writeChunks(record.documentId, generation, chunks);
    const doc: DocumentRecord = {
      bucket: "local",
      status: "ready",
      size: Buffer.byteLength(text, "utf8"),
      sequencer: "0".repeat(SEQUENCER_WIDTH),
      createdAt: now,
      updatedAt: now,
      ...record,
      textGeneration: generation,
      chunkCount: chunks.length,
      textBytes: Buffer.byteLength(text, "utf8"),
      tokenEstimate: chunks.reduce((sum, c) => sum + c.tokens, 0),
    };
    const item: Record<string, unknown> = { ...doc, ...this.recordKey(doc.documentId), rev: 1 };
    if (doc.status !== "deleted") {
      item[TABLE_KEYS.byKeyIndex.partitionKey] = DOCUMENTS_PARTITION;
      item[TABLE_KEYS.byKeyIndex.sortKey] = doc.key;
    }
    for (const name of ["staleFileIds", "staleUploadTags"] as const) {
      const list = doc[name];
      if (list?.length) item[name] = new Set(list);
      else delete item[name];
    }
    if (holdsAny(item)) item[TABLE_KEYS.holdsFilesIndex.partitionKey] = FILES_PARTITION;
    await this.searchTodos.note(doc.documentId, new Date(doc.updatedAt));
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: item }));
    return doc;
  }

  // ---------------------------------------------------------------- internals

  private owns(cur: StoredDocument | undefined, sequencer: string, owner: string): boolean {
    return !!cur && cur.sequencer === sequencer && cur.status === "processing" && cur.claimOwner === owner;
  }

  private recordKey(documentId: string) {
    return { [TABLE_KEYS.partitionKey]: documentPk(documentId), [TABLE_KEYS.sortKey]: DOCUMENT_SK };
  }

  /** Read -> decide -> write conditioned on the revision read; retried when another writer won. */
  private async transition<T>(
    documentId: string,
    decide: (cur: StoredDocument | undefined) => Decision<T>,
    opts: { assumeAbsent?: boolean } = {},
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      // assumeAbsent: the first try writes as if no record existed (conditioned on that), saving the
      // read for the common case of a new document; when one exists it fails and we read normally.
      const cur = attempt === 0 && opts.assumeAbsent ? undefined : await this.getState(documentId);
      const decision = decide(cur);
      if (!decision.write) return decision.result;
      try {
        await this.applyMutation(documentId, cur, decision.write);
        return decision.result;
      } catch (err) {
        if (!isConditionFailure(err) || attempt + 1 >= MAX_TRANSITION_ATTEMPTS) throw err;
        if (attempt > 0 || !opts.assumeAbsent) await sleep(Math.random() * 10 * (attempt + 1));
      }
    }
  }

  /** A single write conditioned on this attempt still owning the version (no read first). */
  private async ownerWrite(
    documentId: string,
    sequencer: string,
    owner: string,
    m: Mutation,
  ): Promise<boolean> {
    try {
      await this.applyMutation(documentId, undefined, m, {
        expression: "#owner = :owner AND #seq = :seq AND #status = :processing",
        names: { "#owner": "claimOwner", "#seq": "sequencer", "#status": "status" },
        values: { ":owner": owner, ":seq": sequencer, ":processing": "processing" },
      });
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  private async applyMutation(
    documentId: string,
    cur: StoredDocument | undefined,
    m: Mutation,
    customCondition?: { expression: string; names: Record<string, string>; values: Record<string, unknown> },
  ) {
    const names: Record<string, string> = { "#rev": "rev" };
    const values: Record<string, unknown> = { ":one": 1 };
    const name = (attr: string) => {
      const placeholder = `#a${Object.keys(names).length}`;
      names[placeholder] = attr;
      return placeholder;
    };
    const sets: string[] = [];
    const set = gainsHolding(m)
      ? { ...m.set, [TABLE_KEYS.holdsFilesIndex.partitionKey]: FILES_PARTITION }
      : (m.set ?? {});
    for (const [attr, value] of Object.entries(set)) {
      const v = `:v${Object.keys(values).length}`;
      values[v] = value;
      sets.push(`${name(attr)} = ${v}`);
    }
    const adds: string[] = ["#rev :one"];
    for (const [attr, value] of Object.entries(m.add ?? {})) {
      if (value instanceof Set && value.size === 0) continue;
      const v = `:v${Object.keys(values).length}`;
      values[v] = value;
      adds.push(`${name(attr)} ${v}`);
    }
    const removes = (m.remove ?? []).filter((a) => !(a in set)).map(name);
    let expression = "";
    if (sets.length) expression += `SET ${sets.join(", ")} `;
    if (removes.length) expression += `REMOVE ${removes.join(", ")} `;
    expression += `ADD ${adds.join(", ")}`;
    let condition = "attribute_not_exists(#pk)";
    if (customCondition) {
      condition = customCondition.expression;
      Object.assign(names, customCondition.names);
      Object.assign(values, customCondition.values);
    } else if (!cur) names["#pk"] = TABLE_KEYS.partitionKey;
    else {
      values[":rev"] = cur.rev;
      condition = cur.rev === 0 ? "attribute_not_exists(#rev) OR #rev = :rev" : "#rev = :rev";
    }
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.recordKey(documentId),
        UpdateExpression: expression,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }

  private async queryGeneration(documentId: string, generation: string, keysOnly: boolean) {
    const items: Record<string, unknown>[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: "#pk = :pk AND begins_with(#sk, :prefix)",
          ExpressionAttributeNames: { "#pk": TABLE_KEYS.partitionKey, "#sk": TABLE_KEYS.sortKey },
          ExpressionAttributeValues: { ":pk": documentPk(documentId), ":prefix": chunkSkPrefix(generation) },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) {
        if (keysOnly) {
          const sk = item[TABLE_KEYS.sortKey] as string;
          items.push({ ...item, index: Number(sk.slice(sk.lastIndexOf("#") + 1)) });
        } else items.push(item);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return items;
  }

  private async batchWrite(requests: Record<string, unknown>[]): Promise<void> {
    const batches: Record<string, unknown>[][] = [];
    for (let i = 0; i < requests.length; i += BATCH_WRITE_SIZE) {
      batches.push(requests.slice(i, i + BATCH_WRITE_SIZE));
    }
    // A few batches in flight at once: several-MB texts write quickly without a burst of hundreds.
    const inFlight = 4;
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        await this.writeBatch(batch);
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, batches.length) }, worker));
  }

  private async writeBatch(batch: Record<string, unknown>[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > BATCH_RETRIES) {
        throw new Error(
          `DynamoDB left ${pending.length} write(s) unprocessed after ${BATCH_RETRIES} retries`,
        );
      }
      if (attempt > 0) await sleep(Math.min(2_000, 25 * 2 ** attempt) * (0.5 + Math.random()));
      const out = await this.client.send(
        new BatchWriteCommand({ RequestItems: { [this.tableName]: pending as never } }),
      );
      pending = (out.UnprocessedItems?.[this.tableName] as Record<string, unknown>[] | undefined) ?? [];
    }
  }
}

/** Width sequencers are left-padded to, so string order equals numeric (hex) order. */
export const SEQUENCER_WIDTH = 32;

/**
 * S3 sequencers are hex strings of varying length; S3's guidance is to compare them as hex after
 * left-padding the shorter with zeros. Normalised: upper case, left-padded to SEQUENCER_WIDTH.
 */
export function normaliseSequencer(sequencer: string): string {
  const hex = sequencer.trim().toUpperCase();
  if (!/^[0-9A-F]+$/.test(hex)) throw new Error(`invalid S3 sequencer: ${JSON.stringify(sequencer)}`);
  return hex.length >= SEQUENCER_WIDTH ? hex : hex.padStart(SEQUENCER_WIDTH, "0");
}
