/**
 * One janitor sweep: list the remote files, read the records, plan (policy.ts), then carry the plan out
 * with a concurrency cap and within the caller's deadline.
 *
 * Ordering that makes a sweep safe next to a running ingest:
 * - The remote listing is read BEFORE the records. Ingestion records its upload intent (tag) before it
 *   uploads, so every file in the listing was announced before the records were read; a file uploaded
 *   later is simply not in this sweep's listing.
 * - A file a record holds is released on the record first (conditional: the record still points at
 *   it): it moves to the record's `staleFileIds`, the to-delete list. Then it is deleted, then the entry
 *   is cleared. If the record changed before the release, the file is left alone and the next sweep
 *   re-plans from fresh state. So no record ever points at a deleted file, and a deletion that does not
 *   happen (a crash, a failed call, the deadline) stays queued on the record for the next sweep instead
 *   of leaving an unreferenced file behind.
 */
import type { DocumentRecord } from "../documents/model";
import { hasTag } from "../ingest/events";
import {
  AuthenticationError,
  NotConfiguredError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  TimeoutError,
} from "../provider/errors";
import type { ProviderApi, RemoteFile } from "../provider/types";
import {
  DELETION_REASONS,
  type DeletionReason,
  type JanitorPolicyConfig,
  type PlannedDeletion,
  planSweep,
  type SweepPlan,
} from "./policy";
import type { JanitorStore } from "./ports";
import {
  DEFAULT_STUCK_PROCESSING_MINUTES,
  findStuckDocuments,
  type StuckDocument,
  stuckFailure,
} from "./stuck";

/** Provider calls the sweep makes (the full ProviderApi also fits). */
export type JanitorApi = Pick<ProviderApi, "listFiles" | "deleteFile">;

export interface SweepDeps {
  api: JanitorApi;
  store: JanitorStore;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface SweepOptions {
  policy: JanitorPolicyConfig;
  /** Plan and report without releasing or deleting anything. */
  dryRun?: boolean;
  /** Absolute epoch-ms deadline (Lambda: now + getRemainingTimeInMillis()). None: run to the end. */
  deadline?: number;
  /** Provider calls in flight at once. @default 4 */
  concurrency?: number;
  /**
   * No new deletion starts with less than this left before the deadline. Each call's own deadline is
   * 1 s before the sweep's, so this is raised to at least 1.5 s: a call that starts has time to finish
   * (an aborted delete may or may not have happened; the next sweep settles it). @default 5000
   */
  reserveMs?: number;
  /** Times one deletion is retried after a RateLimitError the client gave up on. @default 3 */
  rateLimitRetries?: number;
  /**
   * Minutes after which a `processing` version counts as stuck and is marked failed (stuck.ts).
   * @default DEFAULT_STUCK_PROCESSING_MINUTES
   */
  stuckProcessingMinutes?: number;
}

export const DEFAULT_SWEEP_CONCURRENCY = 4;
export const DEFAULT_RESERVE_MS = 5_000;
/** Time kept back from the deadline for each provider call, so reporting always has time to finish. */
const FINISH_MARGIN_MS = 1_000;
/** Items in progress per provider slot (see executeDeletions). */
const RELEASE_LOOKAHEAD = 2;
/** Least time left for a deletion to start: the finish margin plus room for the call itself. */
const MIN_RESERVE_MS = FINISH_MARGIN_MS + 500;

export interface SweepSummary {
  filesBefore: number;
  bytesBefore: number;
  /** After the deletions done (dry run: projected, as if the plan were carried out). */
  filesAfter: number;
  bytesAfter: number;
  /**
   * Of `filesBefore` / `bytesBefore`, files that are not this deployment's (another application on the
   * same API key, another copy of the stack, or from before deployment ids with no record left):
   * counted, never deleted (ownership.ts).
   */
  foreignFiles: number;
  foreignBytes: number;
  /** Deleted (dry run: would delete), by reason. A 404 on delete counts as deleted. */
  deletedByReason: Record<DeletionReason, number>;
  /** Deletions planned (the dry-run set). */
  planned: number;
  /** Planned files left alone because their record changed under the sweep (a concurrent ingest). */
  skippedChanged: number;
  /** Records cleared because they pointed at a file the provider no longer lists. */
  releasedDangling: number;
  /** Documents found `processing` past the stuck bound. */
  stuckFound: number;
  /** Of those, marked failed (`retries_exhausted`); dry run: would be marked. */
  stuckFailed: number;
  /**
   * Chunk generations deleted that records had queued (`staleGenerations`: replaced texts, chunks of
   * abandoned attempts); dry run: the records that have some queued.
   */
  generationsDeleted: number;
  /** Queued upload tags taken off their records because no file carries them any more. */
  uploadTagsForgotten: number;
  errors: number;
  dryRun: boolean;
  /** The deadline (or a persistent rate limit) stopped the sweep before the plan was done. */
  stoppedEarly: boolean;
  /** False when the high-water marks could not be reached without touching files that must stay. */
  underHighWater: boolean;
  durationMs: number;
}

export interface SweepFailure {
  fileId: string;
  documentId?: string;
  /** The file concerned; for "stuck", the document's remote file or "" ("" for "chunks", queued chunks or tags). */
  reason: DeletionReason | "dangling" | "stuck" | "chunks";
  error: string;
}

export interface SweepResult {
  summary: SweepSummary;
  plan: SweepPlan;
  /** Files deleted (dry run: the files a real run would delete), in plan order. */
  deleted: PlannedDeletion[];
  failures: SweepFailure[];
  /** Documents found stuck in `processing`, with whether this sweep marked them failed. */
  stuck: (StuckDocument & { failed: boolean })[];
}

/** A sweep stopped by an error no retry can fix (bad or missing API key); the Lambda must fail. */
export class SweepAbortedError extends Error {
  override readonly name = "SweepAbortedError";
  constructor(
    readonly summary: SweepSummary,
    cause: unknown,
  ) {
    super(`janitor sweep aborted: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Errors that make every further call pointless: fail the run loudly. */
export function isFatalProviderError(err: unknown): boolean {
  return (
    err instanceof AuthenticationError ||
    err instanceof NotConfiguredError ||
    err instanceof PermissionDeniedError
  );
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const emptyByReason = (): Record<DeletionReason, number> =>
  Object.fromEntries(DELETION_REASONS.map((r) => [r, 0])) as Record<DeletionReason, number>;
const message = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/**
 * Lists the remote files, then the records. A RateLimitError the client gave up on is retried with
 * backoff while the deadline allows.
 */
export async function readState(
  deps: SweepDeps,
  opts: Pick<SweepOptions, "deadline" | "reserveMs" | "rateLimitRetries">,
): Promise<{ remote: RemoteFile[]; records: DocumentRecord[] }> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const reserve = opts.reserveMs ?? DEFAULT_RESERVE_MS;
  const retries = opts.rateLimitRetries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      const deadline = opts.deadline === undefined ? undefined : opts.deadline - FINISH_MARGIN_MS;
      const remote = await deps.api.listFiles({ deadline });
      const records = await deps.store.listWithRemoteFiles();
      return { remote, records };
    } catch (err) {
      if (!(err instanceof RateLimitError) || attempt >= retries) throw err;
      const wait = err.retryAfterMs ?? 1000 * 2 ** attempt;
      if (opts.deadline !== undefined && now() + wait + reserve > opts.deadline) throw err;
      await sleep(wait);
    }
  }
}

/** Runs one sweep. Throws SweepAbortedError on an authentication / configuration error. */
export async function runSweep(deps: SweepDeps, opts: SweepOptions): Promise<SweepResult> {
  const now = deps.now ?? Date.now;
  const started = now();
  const dryRun = opts.dryRun ?? false;
  const reserve = Math.max(opts.reserveMs ?? DEFAULT_RESERVE_MS, MIN_RESERVE_MS);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_SWEEP_CONCURRENCY));
  const rateLimitRetries = opts.rateLimitRetries ?? 3;
  const timeLeft = () => (opts.deadline === undefined ? Number.POSITIVE_INFINITY : opts.deadline - now());

  const { remote, records } = await readState(deps, opts);
  const failures: SweepFailure[] = [];
  const stuck = await failStuckDocuments(deps, records, {
    dryRun,
    minutes: opts.stuckProcessingMinutes ?? DEFAULT_STUCK_PROCESSING_MINUTES,
    hasTime: () => timeLeft() >= reserve,
    failures,
  });
  // Planned on the records as they are now: a stuck document just failed has its files queued.
  const plan = planSweep({ remote, records, now: now(), config: opts.policy });

  const deletedByReason = emptyByReason();
  const deleted: PlannedDeletion[] = [];
  let releasedDangling = 0;
  let generationsDeleted = 0;
  let uploadTagsForgotten = 0;
  let skippedChanged = 0;
  let stoppedEarly = false;

  const summarize = (): SweepSummary => {
    let files = plan.before.files;
    let bytes = plan.before.bytes;
    for (const d of deleted) {
      files -= 1;
      bytes -= d.bytes;
    }
    return {
      filesBefore: plan.before.files,
      bytesBefore: plan.before.bytes,
      filesAfter: files,
      bytesAfter: bytes,
      foreignFiles: plan.foreign.files,
      foreignBytes: plan.foreign.bytes,
      deletedByReason,
      planned: plan.deletions.length,
      skippedChanged,
      releasedDangling,
      stuckFound: stuck.length,
      stuckFailed: stuck.filter((s) => s.failed).length,
      generationsDeleted,
      uploadTagsForgotten,
      errors: failures.length,
      dryRun,
      stoppedEarly,
      underHighWater: dryRun ? plan.underHighWater : files <= plan.marks.files && bytes <= plan.marks.bytes,
      durationMs: now() - started,
    };
  };

  const owingChunks = records.filter((r) => (r.staleGenerations ?? []).some((g) => g !== r.textGeneration));
  if (dryRun) {
    for (const d of plan.deletions) {
      deleted.push(d);
      deletedByReason[d.reason] += 1;
    }
    generationsDeleted = owingChunks.length;
    return { summary: summarize(), plan, deleted, failures, stuck };
  }

  const run = await executeDeletions(deps, plan.deletions, {
    concurrency,
    deadline: opts.deadline,
    reserveMs: reserve,
    rateLimitRetries,
  });
  for (const d of run.deleted) {
    deleted.push(d);
    deletedByReason[d.reason] += 1;
  }
  failures.push(...run.failures);
  skippedChanged = run.skippedChanged;
  stoppedEarly = run.stoppedEarly;
  const fatal = run.fatal;

  // Dangling pointers (store writes only, no provider calls), once the deletions are done.
  for (const ref of fatal === undefined && !stoppedEarly ? plan.dangling : []) {
    if (timeLeft() < reserve) {
      stoppedEarly = true;
      break;
    }
    try {
      const at = new Date(now()).toISOString();
      if (ref.kind === "queued" || (await deps.store.releaseRemoteFile(ref.documentId, ref.fileId, at))) {
        await deps.store.forgetDeletedFile(ref.documentId, ref.fileId);
        releasedDangling += 1;
      }
    } catch (err) {
      failures.push({
        fileId: ref.fileId,
        documentId: ref.documentId,
        reason: "dangling",
        error: message(err),
      });
    }
  }

  // Queued chunk generations (store work only): storage, not quota, so after the files.
  const drain = deps.store.deleteStaleGenerations?.bind(deps.store);
  for (const record of drain && fatal === undefined && !stoppedEarly ? owingChunks : []) {
    if (timeLeft() < reserve) {
      stoppedEarly = true;
      break;
    }
    try {
      generationsDeleted += await drain!(record.documentId);
    } catch (err) {
      failures.push({ fileId: "", documentId: record.documentId, reason: "chunks", error: message(err) });
    }
  }

  // Queued upload tags with nothing left under them (no listed file carries the tag, or this sweep
  // deleted every one): they come off the record, so it can leave the janitor's index. A file of
  // such a tag that lands even later is this deployment's by its name: an orphan, deleted after the
  // grace period.
  const forget = deps.store.forgetUploadTags?.bind(deps.store);
  if (forget && fatal === undefined && !stoppedEarly) {
    const gone = new Set(deleted.map((d) => d.fileId));
    for (const record of records) {
      const tags = (record.staleUploadTags ?? []).filter(
        (t) => t !== record.uploadTag && !remote.some((f) => hasTag(f.filename, t) && !gone.has(f.id)),
      );
      if (tags.length === 0) continue;
      if (timeLeft() < reserve) {
        stoppedEarly = true;
        break;
      }
      try {
        await forget(record.documentId, tags);
        uploadTagsForgotten += tags.length;
      } catch (err) {
        failures.push({ fileId: "", documentId: record.documentId, reason: "chunks", error: message(err) });
      }
    }
  }

  const summary = summarize();
  if (fatal !== undefined) throw new SweepAbortedError(summary, fatal);
  return { summary, plan, deleted, failures, stuck };
}

/**
 * Finds the documents stuck in `processing` and (unless dry run) marks each failed through the store's
 * conditional write, replacing its entry in `records` (in place) with the updated record so the plan
 * sees its remote file queued for deletion. A record that moved on in the meantime is left alone. In a
 * dry run every stuck document counts as "would fail" and the records are untouched.
 */
async function failStuckDocuments(
  deps: SweepDeps,
  records: DocumentRecord[],
  opts: { dryRun: boolean; minutes: number; hasTime: () => boolean; failures: SweepFailure[] },
): Promise<(StuckDocument & { failed: boolean })[]> {
  const now = deps.now ?? Date.now;
  const at = now();
  const found = findStuckDocuments(records, at, opts.minutes);
  const fail = deps.store.failStuckProcessing?.bind(deps.store);
  const out: (StuckDocument & { failed: boolean })[] = [];
  for (const doc of found) {
    if (opts.dryRun) {
      out.push({ ...doc, failed: true });
      continue;
    }
    if (!fail || !opts.hasTime()) {
      out.push({ ...doc, failed: false });
      continue;
    }
    try {
      const updated = await fail({
        documentId: doc.documentId,
        sequencer: doc.sequencer,
        startedBefore: new Date(at - opts.minutes * 60_000),
        failure: stuckFailure(doc, opts.minutes),
        now: new Date(now()),
      });
      if (updated) {
        const i = records.findIndex((r) => r.documentId === doc.documentId);
        if (i >= 0) records[i] = updated;
      }
      out.push({ ...doc, failed: updated !== undefined });
    } catch (err) {
      opts.failures.push({
        fileId: doc.remoteFileId ?? "",
        documentId: doc.documentId,
        reason: "stuck",
        error: message(err),
      });
      out.push({ ...doc, failed: false });
    }
  }
  return out;
}

export interface ExecuteOptions {
  concurrency: number;
  deadline?: number;
  reserveMs: number;
  rateLimitRetries: number;
}

export interface ExecuteResult {
  /** In plan order. */
  deleted: PlannedDeletion[];
  failures: SweepFailure[];
  skippedChanged: number;
  /** Of `deleted`, files that were already gone (404): someone else deleted them. */
  notFound: number;
  stoppedEarly: boolean;
  /** The fatal error that stopped the run, if any (the caller throws it). */
  fatal?: unknown;
}

/**
 * Carries out planned deletions with at most `concurrency` provider calls in flight: release the
 * record (when one holds the file: it moves to the record's to-delete list), delete, then clear the
 * entry; 404 counts as deleted. Releases are store writes, so up to RELEASE_LOOKAHEAD x `concurrency`
 * items are worked on at once, their releases overlapping the provider calls (which a slot semaphore
 * keeps at `concurrency`): the store never idles the provider slots, and a released file left
 * undeleted when the run stops stays queued on its record for the next sweep. No new deletion starts
 * with less than `reserveMs` left; a RateLimitError pauses every worker for its Retry-After (or an
 * exponential backoff) and retries; an auth/config error stops everything and is returned as `fatal`.
 * Never throws.
 */
export async function executeDeletions(
  deps: SweepDeps,
  deletions: readonly PlannedDeletion[],
  opts: ExecuteOptions,
): Promise<ExecuteResult> {
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const timeLeft = () => (opts.deadline === undefined ? Number.POSITIVE_INFINITY : opts.deadline - now());
  const callDeadline = opts.deadline === undefined ? undefined : opts.deadline - FINISH_MARGIN_MS;
  const reserveMs = opts.deadline === undefined ? 0 : Math.max(opts.reserveMs, MIN_RESERVE_MS);
  const deleted: PlannedDeletion[] = [];
  const failures: SweepFailure[] = [];
  let skippedChanged = 0;
  let notFound = 0;
  let stoppedEarly = false;
  let fatal: unknown;
  let stop = false;
  let next = 0;
  let pausedUntil = 0;
  const slots = Math.max(1, Math.floor(opts.concurrency));
  let busy = 0;
  const waiting: (() => void)[] = [];
  const acquire = async () => {
    while (busy >= slots) await new Promise<void>((resolve) => waiting.push(resolve));
    busy += 1;
  };
  const releaseSlot = () => {
    busy -= 1;
    waiting.shift()?.();
  };

  /** The file is gone: clear it from its record's to-delete list (if that fails, a later sweep does). */
  const forget = async (d: PlannedDeletion) => {
    if (d.documentId === undefined) return;
    try {
      await deps.store.forgetDeletedFile(d.documentId, d.fileId);
    } catch {
      // Left queued: the next sweep finds it unlisted and clears it (policy: dangling, `queued`).
    }
  };

  /** Deletes one planned file; returns when done, skipped or failed (never throws). */
  const execute = async (d: PlannedDeletion): Promise<void> => {
    if (d.documentId !== undefined && !d.queued) {
      try {
        const released = await deps.store.releaseRemoteFile(
          d.documentId,
          d.fileId,
          new Date(now()).toISOString(),
        );
        if (!released) {
          skippedChanged += 1;
          return;
        }
      } catch (err) {
        failures.push({ fileId: d.fileId, documentId: d.documentId, reason: d.reason, error: message(err) });
        return;
      }
    }
    for (let attempt = 0; ; attempt++) {
      const wait = pausedUntil - now();
      if (wait > 0) await sleep(wait);
      await acquire();
      if (stop || timeLeft() < reserveMs) {
        // Stopped while waiting for a slot: a released file stays undeleted, an orphan for next time.
        if (!stop) stoppedEarly = stop = true;
        releaseSlot();
        return;
      }
      try {
        await deps.api.deleteFile(d.fileId, { deadline: callDeadline });
        deleted.push(d);
        await forget(d);
        return;
      } catch (err) {
        if (err instanceof NotFoundError) {
          deleted.push(d);
          notFound += 1;
          await forget(d);
          return;
        }
        if (isFatalProviderError(err)) {
          fatal ??= err;
          stop = true;
          return;
        }
        if (err instanceof TimeoutError && timeLeft() < reserveMs + FINISH_MARGIN_MS) {
          // The deadline ran out inside the call: stop cleanly, the next sweep continues.
          stoppedEarly = stop = true;
          return;
        }
        if (err instanceof RateLimitError && attempt < opts.rateLimitRetries) {
          // The client already retried; back off every worker together before trying again.
          const backoff = err.retryAfterMs ?? 1000 * 2 ** attempt;
          if (timeLeft() < backoff + reserveMs) {
            stoppedEarly = stop = true;
            return;
          }
          pausedUntil = Math.max(pausedUntil, now() + backoff);
          continue;
        }
        failures.push({ fileId: d.fileId, documentId: d.documentId, reason: d.reason, error: message(err) });
        return;
      } finally {
        releaseSlot();
      }
    }
  };

  const worker = async () => {
    while (!stop && next < deletions.length) {
      if (timeLeft() < reserveMs) {
        stoppedEarly = stop = true;
        return;
      }
      await execute(deletions[next++]!);
    }
  };
  const workers = Math.min(slots * RELEASE_LOOKAHEAD, deletions.length);
  await Promise.all(Array.from({ length: workers }, worker));

  // Plan order for reports, whatever order the workers finished in.
  const order = new Map(deletions.map((d, i) => [d.fileId, i]));
  deleted.sort((a, b) => order.get(a.fileId)! - order.get(b.fileId)!);
  return { deleted, failures, skippedChanged, notFound, stoppedEarly, fatal };
}
