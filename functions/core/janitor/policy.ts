/**
 * The janitor's deletion policy: a PURE planner (no I/O, no clock) that decides which remote files are
 * stale and why. The scheduled sweep (sweep.ts) and ingestion's quota room maker (room-maker.ts) both
 * plan with this code, so "what may be deleted" is decided in one place.
 *
 * Only this deployment's own files are ever planned (ownership.ts says which those are): every other
 * file on the account (another application sharing the API key, another copy of this stack) counts
 * toward usage and is reported as `foreign`, and is never deleted, whatever its age.
 *
 * How records refer to remote files (see DynamoDocumentStore): `remoteFileId` is the current version's
 * upload; `uploadTag` is the pending upload intent of a `processing` record (the upload's filename is
 * `<tag>__<basename>`); `staleFileIds` / `staleUploadTags` are uploads of superseded versions (replaced
 * or deleted) that ingestion queued for deletion.
 *
 * A remote file is deleted when it is (in this order of priority):
 * 1. `superseded`: in a record's `staleFileIds` or held only by a tombstone, or unreferenced and
 *    carrying the tag of a version that will never upload again (one of a record's `staleUploadTags`,
 *    or the tag of a `ready` record's own version: a twin of its file), all at once: the file of a
 *    version that was deleted or replaced, or a duplicate upload whose response was lost;
 * 2. `orphan`: referenced by no record and by no pending upload intent, and older than the grace period;
 * 3. `retention`: older than the retention period and its document is `ready` (text stored) — or
 *    `failed` (a failed version's upload is never read again; keeping it only costs quota);
 * 4. `high_water`: needed to get back under the high-water marks of file count AND bytes, oldest first,
 *    only files whose document is `ready`.
 * Never the file a `processing` document holds as `remoteFileId` or is uploading under its `uploadTag`.
 * (A processing record's `staleFileIds` are an older version's uploads: ingestion has already given
 * them up, so they are superseded, not protected.)
 */
import type { DocumentRecord } from "../documents/model";
import { legacyUploadTagFor, uploadTagFor } from "../ingest/events";
import { PROVIDER_PROFILES } from "../provider/profiles";
import type { RemoteFile } from "../provider/types";
import { checkDeploymentId, hasDeploymentPrefix } from "./ownership";
import { uploadTagOf, uploadTagOfFilename } from "./upload-tag";

export type DeletionReason = "superseded" | "orphan" | "retention" | "high_water";

/** Every reason, in planning priority order (also the order of the plan's deletions). */
export const DELETION_REASONS: readonly DeletionReason[] = [
  "superseded",
  "orphan",
  "retention",
  "high_water",
];

/** The provider limits the policy plans against (the provider profile's, or the emulator's in tests). */
export interface QuotaLimits {
  maxFiles: number;
  maxFileBytes: number;
  maxTotalBytes: number;
}

export interface JanitorPolicyConfig {
  /** Hours a ready document's remote file is kept after upload. */
  retentionHours: number;
  /** Fraction (0, 1] of the provider's file-count and byte quotas the sweep brings usage back under. */
  highWaterMark: number;
  /** Minutes an unreferenced file is left alone, so an upload whose record is being written is safe. */
  orphanGraceMinutes: number;
  limits: QuotaLimits;
  /** This deployment's id: only its own files are planned (see ownership.ts). No default, on purpose. */
  deploymentId: string;
}

/** Every setting but the deployment id, which has no safe default. */
export type PolicyDefaults = Omit<JanitorPolicyConfig, "deploymentId">;

/**
 * Defaults: 24 h retention and a 90% high-water mark (issue 5); a 30 min orphan grace, far longer than
 * one ingest invocation (the ingest Lambda's timeout is minutes), so no in-flight upload is an orphan.
 * The limits are the default provider's (Moonshot); the handlers plan against the configured one's.
 */
export const DEFAULT_POLICY: PolicyDefaults = {
  retentionHours: 24,
  highWaterMark: 0.9,
  orphanGraceMinutes: 30,
  limits: { ...PROVIDER_PROFILES.moonshot.limits },
};

/** One remote file to delete. `documentId` is set when a record holds the file (it is then released). */
export interface PlannedDeletion {
  fileId: string;
  filename: string;
  bytes: number;
  /** Unix seconds (the provider's `created_at`). */
  createdAt: number;
  reason: DeletionReason;
  /**
   * The record that references this file, when one does. As its `remoteFileId`, it is released (moved
   * to the record's to-delete list) before the file is deleted; when `queued`, the file is already on
   * that list (`staleFileIds`). Either way the entry is cleared once the file is gone.
   */
  documentId?: string;
  /** The file is in the record's `staleFileIds` (no release needed). */
  queued?: true;
}

/**
 * Why a listed file is kept (for the summary and for tests); `foreign`: not this deployment's file
 * (never deleted).
 */
export type KeepReason = "processing" | "pending_upload" | "in_grace" | "fresh" | "not_needed" | "foreign";

/** A record pointing at a file the provider no longer lists (the sweep clears the pointer). */
export interface DanglingReference {
  documentId: string;
  fileId: string;
  /** `current`: the record's remoteFileId; `queued`: an entry of its staleFileIds (to-delete list). */
  kind: "current" | "queued";
}

export interface Usage {
  files: number;
  bytes: number;
}

export interface SweepPlan {
  /** Deletions in execution order: superseded, orphan, retention, high_water; oldest first in each. */
  deletions: PlannedDeletion[];
  /** Listed files kept, by why. */
  kept: Record<KeepReason, number>;
  dangling: DanglingReference[];
  before: Usage;
  /** Usage once every planned deletion is done. */
  after: Usage;
  /** Of `before`, the files that are not this deployment's (counted, never deleted). */
  foreign: Usage;
  /** The high-water marks in files and bytes. */
  marks: Usage;
  /** False when the marks cannot be reached without touching files that must be kept. */
  underHighWater: boolean;
}

export interface PlanInput {
  /** Everything `GET /v1/files` listed, read BEFORE the records (see sweep.ts for why). */
  remote: readonly RemoteFile[];
  /** Records that hold a remote file or are acquiring one (`processing`). */
  records: readonly DocumentRecord[];
  /** Epoch milliseconds. */
  now: number;
  config: JanitorPolicyConfig;
}

/** Checks a policy config; throws a RangeError naming the bad field. */
export function validatePolicyConfig(config: JanitorPolicyConfig): JanitorPolicyConfig {
  const { retentionHours, highWaterMark, orphanGraceMinutes, limits } = config;
  checkDeploymentId(config.deploymentId);
  if (!Number.isFinite(retentionHours) || retentionHours < 0)
    throw new RangeError(`retentionHours must be a number >= 0, got ${retentionHours}`);
  if (!Number.isFinite(highWaterMark) || highWaterMark <= 0 || highWaterMark > 1)
    throw new RangeError(`highWaterMark must be in (0, 1], got ${highWaterMark}`);
  if (!Number.isFinite(orphanGraceMinutes) || orphanGraceMinutes < 0)
    throw new RangeError(`orphanGraceMinutes must be a number >= 0, got ${orphanGraceMinutes}`);
  for (const key of ["maxFiles", "maxFileBytes", "maxTotalBytes"] as const) {
    if (!Number.isInteger(limits[key]) || limits[key] <= 0)
      throw new RangeError(`limits.${key} must be a positive integer, got ${limits[key]}`);
  }
  return config;
}

/** The high-water marks, in whole files and bytes. */
export function highWaterMarks(config: JanitorPolicyConfig): Usage {
  return {
    files: Math.floor(config.limits.maxFiles * config.highWaterMark),
    bytes: Math.floor(config.limits.maxTotalBytes * config.highWaterMark),
  };
}

/** Files per class before ordering; `stored` are ready-held files not otherwise stale (high-water pool). */
interface Classified {
  superseded: PlannedDeletion[];
  orphan: PlannedDeletion[];
  retention: PlannedDeletion[];
  stored: PlannedDeletion[];
  kept: Record<KeepReason, number>;
  dangling: DanglingReference[];
  before: Usage;
  foreign: Usage;
}

const byAge = (a: PlannedDeletion, b: PlannedDeletion): number =>
  a.createdAt - b.createdAt || (a.fileId < b.fileId ? -1 : a.fileId > b.fileId ? 1 : 0);

function classify({ remote, records, now, config }: PlanInput): Classified {
  const holders = new Map<string, DocumentRecord[]>();
  /** Tags of uploads in progress: never touched. */
  const processingTags = new Set<string>();
  /** Tags of superseded versions' uploads (and of settled records): an upload carrying one is a leftover. */
  const settledTags = new Set<string>();
  /** Superseded files a record still lists, with the record (released when deleted). */
  const staleFiles = new Map<string, string>();
  for (const record of records) {
    if (record.remoteFileId) {
      const list = holders.get(record.remoteFileId) ?? [];
      list.push(record);
      holders.set(record.remoteFileId, list);
    }
    const tag = uploadTagOf(record);
    if (tag) (record.status === "processing" ? processingTags : settledTags).add(tag);
    // A ready version is done uploading: any other file carrying its tag is a twin (either form: see
    // ownership.ts on files from before deployment ids).
    if (record.status === "ready") {
      settledTags.add(uploadTagFor(record.documentId, record.sequencer, config.deploymentId));
      settledTags.add(legacyUploadTagFor(record.documentId, record.sequencer));
    }
    for (const stale of record.staleUploadTags ?? []) settledTags.add(stale);
    for (const fileId of record.staleFileIds ?? []) {
      if (fileId !== record.remoteFileId && !staleFiles.has(fileId))
        staleFiles.set(fileId, record.documentId);
    }
  }
  // A tag a processing record uploads under is live even if another record lists it as stale.
  for (const tag of processingTags) settledTags.delete(tag);

  const graceMs = config.orphanGraceMinutes * 60_000;
  const retentionMs = config.retentionHours * 3_600_000;
  const out: Classified = {
    superseded: [],
    orphan: [],
    retention: [],
    stored: [],
    kept: { processing: 0, pending_upload: 0, in_grace: 0, fresh: 0, not_needed: 0, foreign: 0 },
    dangling: [],
    before: { files: 0, bytes: 0 },
    foreign: { files: 0, bytes: 0 },
  };
  const listed = new Set<string>();

  for (const file of remote) {
    if (listed.has(file.id)) continue; // a provider listing a file twice must not count it twice
    listed.add(file.id);
    out.before.files += 1;
    out.before.bytes += file.bytes;
    const ageMs = now - file.created_at * 1000;
    const base = { fileId: file.id, filename: file.filename, bytes: file.bytes, createdAt: file.created_at };
    const held = holders.get(file.id) ?? [];
    const tag = uploadTagOfFilename(file.filename);

    // Ownership first (ownership.ts): a file no record references, whose tag our table does not know
    // and whose name is not this deployment's is someone else's. It only counts toward usage.
    const owned =
      held.length > 0 ||
      staleFiles.has(file.id) ||
      (tag !== undefined && (processingTags.has(tag) || settledTags.has(tag))) ||
      hasDeploymentPrefix(file.filename, config.deploymentId);
    if (!owned) {
      out.kept.foreign += 1;
      out.foreign.files += 1;
      out.foreign.bytes += file.bytes;
      continue;
    }

    // The guard comes first: nothing a processing document holds or is uploading is ever planned.
    if (held.some((r) => r.status === "processing")) {
      out.kept.processing += 1;
      continue;
    }
    if (tag !== undefined && processingTags.has(tag)) {
      out.kept.pending_upload += 1;
      continue;
    }

    const staleOwner = staleFiles.get(file.id);
    if (held.length === 0 && staleOwner !== undefined) {
      // Queued for deletion by ingestion (older version, failed version or deleted document).
      out.superseded.push({ ...base, reason: "superseded", documentId: staleOwner, queued: true });
      continue;
    }

    if (held.length > 0) {
      const live = held.find((r) => r.status !== "deleted");
      if (!live) {
        // Only tombstones point at it: the document was deleted; its file is released at once.
        out.superseded.push({ ...base, reason: "superseded", documentId: held[0]!.documentId });
      } else if (live.status === "ready") {
        if (ageMs >= retentionMs)
          out.retention.push({ ...base, reason: "retention", documentId: live.documentId });
        else out.stored.push({ ...base, reason: "high_water", documentId: live.documentId });
      } else if (live.status === "failed" && ageMs >= retentionMs) {
        out.retention.push({ ...base, reason: "retention", documentId: live.documentId });
      } else {
        out.kept.fresh += 1;
      }
      continue;
    }

    // Unreferenced, carrying the tag of a settled version: an older version's or a duplicate upload.
    // No attempt will ever record it (a settled version is never claimed again), so no grace.
    if (tag !== undefined && settledTags.has(tag)) {
      out.superseded.push({ ...base, reason: "superseded" });
      continue;
    }
    // The grace period covers an upload whose intent or record write is not visible yet.
    if (ageMs < graceMs) out.kept.in_grace += 1;
    else out.orphan.push({ ...base, reason: "orphan" });
  }

  // Records pointing at files the listing does not have. A file uploaded after the listing was taken is
  // not in it, so only pointers older than the grace period are dangling; processing records are
  // ingestion's business. A queued file id was uploaded before the record's last write, so once that
  // write is past the grace period an unlisted queued id is a file already deleted (e.g. by a sweep that
  // stopped before clearing it).
  for (const record of records) {
    const fileId = record.remoteFileId;
    if (record.status === "processing") continue;
    if (fileId && !listed.has(fileId)) {
      const created = record.remoteFileCreatedAt ? Date.parse(record.remoteFileCreatedAt) : Number.NaN;
      if (Number.isFinite(created) && now - created >= graceMs)
        out.dangling.push({ documentId: record.documentId, fileId, kind: "current" });
    }
    const updated = Date.parse(record.updatedAt);
    if (!Number.isFinite(updated) || now - updated < graceMs) continue;
    for (const queued of record.staleFileIds ?? []) {
      if (!listed.has(queued))
        out.dangling.push({ documentId: record.documentId, fileId: queued, kind: "queued" });
    }
  }
  return out;
}

/** Plans one scheduled sweep. Pure: same input, same plan. */
export function planSweep(input: PlanInput): SweepPlan {
  const c = classify(input);
  const marks = highWaterMarks(input.config);
  const stale = [...c.superseded.sort(byAge), ...c.orphan.sort(byAge), ...c.retention.sort(byAge)];
  const after = { ...c.before };
  for (const d of stale) {
    after.files -= 1;
    after.bytes -= d.bytes;
  }
  const highWater: PlannedDeletion[] = [];
  const pool = c.stored.sort(byAge);
  let i = 0;
  while ((after.files > marks.files || after.bytes > marks.bytes) && i < pool.length) {
    const d = pool[i++]!;
    highWater.push(d);
    after.files -= 1;
    after.bytes -= d.bytes;
  }
  const kept = { ...c.kept, not_needed: pool.length - highWater.length };
  return {
    deletions: [...stale, ...highWater],
    kept,
    dangling: c.dangling,
    before: c.before,
    after,
    foreign: c.foreign,
    marks,
    underHighWater: after.files <= marks.files && after.bytes <= marks.bytes,
  };
}

export interface RoomPlan {
  deletions: PlannedDeletion[];
  /**
   * Every deletable file in preference order (`deletions` is its head). A caller whose planned files
   * were taken by a concurrent room maker continues down this list.
   */
  candidates: PlannedDeletion[];
  before: Usage;
  after: Usage;
  /** True when, after the deletions, the request fits under the provider's hard limits. */
  fits: boolean;
}

/**
 * Plans the deletions that make room for `need` (an upload about to happen).
 *
 * Room is made only when the upload would cross a HARD limit (file count or total bytes): below that
 * the scheduled sweep handles the high-water mark. When it would, usage is brought down to the
 * high-water mark with the upload counted (hysteresis), so the next uploads do not each pay a listing
 * and a deletion; if that cannot be reached, as far as the candidates allow. Candidates, in order:
 * superseded, orphans (past grace), then ready documents' files oldest first (reason `high_water`).
 * A single file larger than the per-file limit never fits: nothing is deleted for it.
 */
export function planRoom(input: PlanInput & { need: Usage }): RoomPlan {
  const { need, config } = input;
  const c = classify(input);
  const limits = config.limits;
  const marks = highWaterMarks(config);
  const after = { ...c.before };
  const fitsHard = () =>
    after.files + need.files <= limits.maxFiles && after.bytes + need.bytes <= limits.maxTotalBytes;
  const atMark = () => after.files + need.files <= marks.files && after.bytes + need.bytes <= marks.bytes;
  const deletions: PlannedDeletion[] = [];
  const impossible =
    need.files > limits.maxFiles ||
    need.bytes > limits.maxTotalBytes ||
    (need.files === 1 && need.bytes > limits.maxFileBytes);
  if (impossible) return { deletions, candidates: [], before: c.before, after, fits: false };
  if (fitsHard()) return { deletions, candidates: [], before: c.before, after, fits: true };

  const stored = [...c.retention, ...c.stored]
    .sort(byAge)
    .map((d) => ({ ...d, reason: "high_water" as const }));
  const candidates = [...c.superseded.sort(byAge), ...c.orphan.sort(byAge), ...stored];
  for (const d of candidates) {
    if (atMark()) break;
    deletions.push(d);
    after.files -= 1;
    after.bytes -= d.bytes;
  }
  return { deletions, candidates, before: c.before, after, fits: fitsHard() };
}
