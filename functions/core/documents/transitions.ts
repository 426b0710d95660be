/**
 * The rules of a document record, as pure decisions: given the record as read (or none), what a
 * transition writes and what it answers. The DynamoDB adapter (dynamo-store.ts) applies a decision
 * with one write conditioned on the revision it read, and retries the read -> decide -> write when
 * another writer got there first; so every rule of who may do what lives here, testable without I/O.
 *
 * A version's life: claimed (`processing`, by one attempt at a time) -> `ready` (its text generation
 * flipped in) or `failed` (a reason); a newer version or a delete (tombstone, status `deleted`) may
 * supersede it at any point. What a superseded or failed version leaves behind (remote files, upload
 * tags, chunk generations) is queued on the record (`stale*`) and drained by ingestion and the janitor.
 */
import type { DocumentFailure, DocumentRecord } from "./model";
import { deletedPartition, documentsPartition, TABLE_KEYS } from "./table";

/** Tombstones of deleted documents are kept this long (then DynamoDB TTL removes them). */
export const TOMBSTONE_TTL_SECONDS = 15 * 24 * 3600;

/** The record plus the bookkeeping the ingest path needs (not part of the public model). */
export interface StoredDocument extends DocumentRecord {
  rev: number;
  /** Token of the processing attempt that holds the claim on `sequencer`. */
  claimOwner?: string;
  /** SQS message id of that attempt: a redelivery of the same message may take the claim over. */
  claimMessageId?: string;
  /** Epoch ms after which any delivery may take over an unfinished claim. */
  leaseUntil?: number;
  /**
   * The generation the attempt holding the claim writes its chunks under (unique per attempt, so an
   * abandoned attempt's chunks can be deleted without touching anyone else's). Queued to
   * `staleGenerations` whenever that attempt is abandoned: superseded, taken over, failed, deleted.
   */
  pendingGeneration?: string;
  /**
   * ISO time the janitor's stuck sweep failed this version (its ingestion looked abandoned). The
   * sweep can only guess that no delivery is left, so a delivery of the version that does come may
   * take it over and finish it (decideClaim: revival).
   */
  sweptAt?: string;
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
  /**
   * This attempt owns the version. `takeover`: an earlier attempt on it did not finish (look for its
   * upload). `revived`: the version had been failed by the janitor's stuck sweep; it starts over under
   * a new upload tag (the old one's files are queued for deletion).
   */
  | {
      outcome: "claimed";
      record: StoredDocument;
      takeover: boolean;
      revived?: boolean;
      previous?: StoredDocument;
    }
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

/** One record write: attributes to set, to remove, and to ADD (set union, counter increment). */
export interface Mutation {
  set?: Record<string, unknown>;
  remove?: string[];
  add?: Record<string, Set<string> | number>;
}

/** A transition's outcome: the write to apply (conditioned on the revision read), and the answer. */
export type Decision<T> = { write: Mutation; result: T } | { write?: undefined; result: T };

/** Attributes of a processing attempt's claim and upload intent: dropped when the version settles. */
export const CLAIM_ATTRIBUTES = [
  "claimOwner",
  "claimMessageId",
  "leaseUntil",
  "uploadTag",
  "uploadStartedAt",
  "uploadingSince",
  "pendingGeneration",
] as const;

/** Attributes that describe one version's claim, upload and text: dropped when that version ends. */
export const VERSION_ATTRIBUTES = [
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
export function failedMutation(
  cur: StoredDocument,
  input: Pick<FailedInput, "failure" | "orphanFileIds" | "unknownUploadTag" | "attempts" | "now">,
): Mutation {
  const add: Record<string, Set<string>> = {};
  const generations = [cur.textGeneration, cur.pendingGeneration].filter((g): g is string => !!g);
  if (generations.length) add.staleGenerations = new Set(generations);
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
    pendingGeneration: _p,
    sweptAt: _s,
    uploadingSince: _u,
    ...rest
  } = doc;
  return rest;
}

/**
 * The chunk generation of one attempt: the version's upload tag plus the attempt's owner token, so two
 * attempts on one version never share chunk items (no `#`: it separates the parts of a chunk's key).
 */
export function attemptGeneration(uploadTag: string, owner: string): string {
  return `${uploadTag}.${owner.replace(/[^A-Za-z0-9]/g, "").slice(0, 16)}`;
}

/** The upload tag of a version revived after the stuck sweep failed it: its own, per attempt. */
export function revivalUploadTag(uploadTag: string, owner: string): string {
  return `${uploadTag}-r${owner.replace(/[^A-Za-z0-9]/g, "").slice(0, 8)}`;
}

/** Whether `owner`'s attempt still holds the claim on `sequencer`. */
export function owns(cur: StoredDocument | undefined, sequencer: string, owner: string): boolean {
  return !!cur && cur.sequencer === sequencer && cur.status === "processing" && cur.claimOwner === owner;
}

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
export function decideClaim(cur: StoredDocument | undefined, input: ClaimInput): Decision<ClaimResult> {
  const nowIso = input.now.toISOString();
  let takeover = false;
  let revived = false;
  if (cur) {
    if (cur.sequencer > input.sequencer) return { result: { outcome: "stale", current: cur } };
    if (cur.sequencer === input.sequencer) {
      // A version the stuck sweep failed: this delivery shows one was left after all, so it starts
      // the version over (fresh upload under its own tag) instead of acking it as done.
      revived = cur.status === "failed" && cur.sweptAt !== undefined;
      if (cur.status !== "processing" && !revived) {
        return { result: { outcome: "duplicate", current: cur } };
      }
      const expired = (cur.leaseUntil ?? 0) < input.now.getTime();
      if (!revived && !expired && cur.claimMessageId !== input.messageId) {
        return { result: { outcome: "busy", current: cur } };
      }
      takeover = !revived;
    }
  }
  const uploadTag = revived ? revivalUploadTag(input.uploadTag, input.owner) : input.uploadTag;
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
    [TABLE_KEYS.byKeyIndex.partitionKey]: documentsPartition(input.documentId),
    [TABLE_KEYS.byKeyIndex.sortKey]: input.key,
  };
  const remove = ["error", "sweptAt", TABLE_KEYS.ttlAttribute];
  const add: Record<string, Set<string>> = {};
  // Every claim is a new attempt with its own generation; the one it replaces (a crashed attempt on
  // this version, or an older version still in flight) may have written chunks: they are queued.
  const generation = attemptGeneration(uploadTag, input.owner);
  set.pendingGeneration = generation;
  if (cur?.status === "processing" && cur.pendingGeneration && cur.pendingGeneration !== generation) {
    add.staleGenerations = new Set([cur.pendingGeneration]);
  }
  if (!takeover) {
    set.uploadTag = uploadTag;
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
      ...(revived ? { revived } : {}),
      previous: cur,
    },
  };
}

/**
 * The write that flips the record to the new text generation (whose chunks are already written) and
 * marks it ready; `previousGeneration` is queued for deletion. Applied only while the attempt owns
 * the version (the adapter's owner-conditioned write).
 */
export function readyMutation(input: ReadyInput): Mutation {
  const add: Record<string, Set<string>> = {};
  if (input.previousGeneration && input.previousGeneration !== input.generation) {
    add.staleGenerations = new Set([input.previousGeneration]);
  }
  return {
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
  };
}

/** Fails the version with a reason, only for the attempt that owns it. */
export function decideFailed(cur: StoredDocument | undefined, input: FailedInput): Decision<boolean> {
  if (!cur || !owns(cur, input.sequencer, input.owner)) return { result: false };
  return { write: failedMutation(cur, input), result: true };
}

/**
 * The janitor's failure of a version whose ingestion never finished: only while the record is still
 * `processing` the same `sequencer`, started at or before `startedBefore`, with no live claim.
 */
export function decideStuck(cur: StoredDocument | undefined, input: StuckProcessingInput): Decision<boolean> {
  if (cur?.status !== "processing" || cur.sequencer !== input.sequencer) return { result: false };
  if ((cur.leaseUntil ?? 0) >= input.now.getTime()) return { result: false };
  const started = Date.parse(cur.uploadStartedAt ?? cur.updatedAt);
  if (!(started <= input.startedBefore.getTime())) return { result: false };
  const write = failedMutation(cur, {
    failure: input.failure,
    unknownUploadTag: cur.uploadTag,
    now: input.now,
  });
  write.set = { ...write.set, sweptAt: input.now.toISOString() };
  return { write, result: true };
}

/**
 * An ObjectRemoved event: unless a newer version is recorded, the record becomes a tombstone (status
 * `deleted`, listed only under status=deleted, TTL) holding the delete's sequencer; its text, remote file and
 * any in-flight upload are queued for deletion. False for a stale delete, or a purge of a noncurrent
 * version.
 */
export function decideTombstone(cur: StoredDocument | undefined, input: TombstoneInput): Decision<boolean> {
  const nowIso = input.now.toISOString();
  if (cur && cur.sequencer >= input.sequencer) return { result: false };
  if (input.purgedVersionId && cur?.versionId && cur.versionId !== input.purgedVersionId) {
    return { result: false }; // a noncurrent version was purged: the document is unchanged
  }
  const add: Record<string, Set<string>> = {};
  const generations = [cur?.textGeneration, cur?.status === "processing" ? cur.pendingGeneration : undefined];
  const doomed = generations.filter((g): g is string => !!g);
  if (doomed.length) add.staleGenerations = new Set(doomed);
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
        // Listed only under status=deleted (its own partitions), until TTL removes it.
        [TABLE_KEYS.byKeyIndex.partitionKey]: deletedPartition(input.documentId),
        [TABLE_KEYS.byKeyIndex.sortKey]: input.key,
      },
      remove: [...VERSION_ATTRIBUTES, "error", "sweptAt", "contentType", "eTag", "versionId"],
      add,
    },
    result: true,
  };
}

/** The janitor takes the record's remote file off it (to the to-delete list) before deleting it. */
export function decideRelease(
  cur: StoredDocument | undefined,
  fileId: string,
  at: string,
): Decision<boolean> {
  if (cur?.remoteFileId !== fileId) return { result: false };
  return {
    write: {
      set: { remoteFileReleasedAt: at, updatedAt: at },
      remove: ["remoteFileId"],
      add: { staleFileIds: new Set([fileId]) },
    },
    result: true,
  };
}

/** Cleanup still owed by a record (chunks of old generations, remote files of old versions). */
export function staleWork(doc: StoredDocument | undefined): StaleWork {
  return {
    generations: (doc?.staleGenerations ?? []).filter(
      (g) => g !== doc?.textGeneration && g !== doc?.pendingGeneration,
    ),
    fileIds: (doc?.staleFileIds ?? []).filter((f) => f !== doc?.remoteFileId),
    uploadTags: (doc?.staleUploadTags ?? []).filter((t) => t !== doc?.uploadTag),
  };
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
