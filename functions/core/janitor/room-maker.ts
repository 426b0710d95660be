/**
 * Ingestion's quota valve: before an upload that would cross the provider's hard limits, delete stale
 * remote files (the janitor's policy: superseded, orphans, then ready documents' files oldest first)
 * so the upload fits. See planRoom in policy.ts for the exact rule and why it frees down to the
 * high-water mark rather than to the limit.
 *
 * Cost: one `GET /v1/files` and one records read per call, then one release + delete per freed file.
 * Ingestion calls it when an upload is refused for quota, not before every upload.
 *
 * Uploads in flight (processing records whose announced upload is not listed yet) are counted as
 * usage, so N ingests refused together at the cap make room for N uploads, not one.
 */
import type { DocumentRecord } from "../documents/model";
import type { CallOptions, RemoteFile } from "../provider/types";
import type { RoomMaker, RoomRequest, RoomResult } from "../quota/types";
import {
  DEFAULT_POLICY,
  type JanitorPolicyConfig,
  type PlannedDeletion,
  planRoom,
  type Usage,
  validatePolicyConfig,
} from "./policy";
import type { JanitorStore } from "./ports";
import { executeDeletions, isFatalProviderError, type JanitorApi } from "./sweep";
import { uploadTagOfFilename } from "./upload-tag";

export interface QuotaRoomMakerOptions {
  /** This deployment's id: only its own remote files are deleted (ownership.ts). */
  deploymentId: string;
  /** Policy (retention, high-water mark, grace, limits); unset fields take DEFAULT_POLICY's. */
  policy?: Partial<Omit<JanitorPolicyConfig, "deploymentId">>;
  /** Deletions in flight at once. @default 4 */
  concurrency?: number;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Notified after every call that deleted something (ingestion logs it). */
  onFreed?: (event: { request: RoomRequest; result: RoomResult; fileIds: string[] }) => void;
}

/** The janitor's policy behind ingestion's RoomMaker port. */
export class QuotaRoomMaker implements RoomMaker {
  private readonly policy: JanitorPolicyConfig;

  constructor(
    private readonly api: JanitorApi,
    private readonly store: JanitorStore,
    private readonly options: QuotaRoomMakerOptions,
  ) {
    this.policy = validatePolicyConfig({
      ...DEFAULT_POLICY,
      ...options.policy,
      limits: { ...DEFAULT_POLICY.limits, ...options.policy?.limits },
      deploymentId: options.deploymentId,
    });
  }

  /**
   * Makes room for `need`. Resolves `enough: true` when the upload fits under the hard limits now.
   * Throws the provider's error when listing fails or the API key is rejected (ingestion reports it);
   * a deletion that fails for another reason only reduces what is freed.
   */
  async makeRoom(need: RoomRequest, opts: CallOptions = {}): Promise<RoomResult> {
    const now = this.options.now ?? Date.now;
    const deps = { api: this.api, store: this.store, now, sleep: this.options.sleep };
    const limits = this.policy.limits;
    if (need.files === 1 && need.bytes > limits.maxFileBytes)
      return { enough: false, freedFiles: 0, freedBytes: 0 };
    // Listing first, then the records (as the sweep does: every listed upload's intent is visible).
    const remote = await this.api.listFiles(opts);
    const records = await this.store.listWithRemoteFiles();
    // Uploads other ingests are making right now are not listed yet but will take room: count them,
    // or concurrent uploads at the cap would each be told "it fits" and be refused again.
    const inFlight = pendingUploads(remote, records, now(), this.policy.orphanGraceMinutes * 60_000);
    const want = {
      files: need.files + Math.max(0, inFlight.files - need.files),
      bytes: need.bytes + Math.max(0, inFlight.bytes - need.bytes),
    };
    const plan = planRoom({ remote, records, now: now(), config: this.policy, need: want });
    if (plan.deletions.length === 0) {
      // Nothing to free (or nothing deletable): say whether our own upload fits as things stand.
      const fits =
        plan.before.files + need.files <= limits.maxFiles &&
        plan.before.bytes + need.bytes <= limits.maxTotalBytes;
      return { enough: fits, freedFiles: 0, freedBytes: 0 };
    }

    // Concurrent ingests hit the cap together and plan the same oldest files; a file another room
    // maker released first is skipped here (its release fails). After such a round, the provider is
    // asked again: if the uploads in flight (ours included) now fit, we are done; otherwise we go on
    // down the candidates, freeing at least our own upload's worth, so N racing uploads get N slots.
    const execute = {
      concurrency: this.options.concurrency ?? 4,
      deadline: opts.deadline,
      reserveMs: 2_000,
      rateLimitRetries: 2,
    };
    const fitsAll = (u: Usage) =>
      u.files + want.files <= limits.maxFiles && u.bytes + want.bytes <= limits.maxTotalBytes;
    const deleted: PlannedDeletion[] = [];
    let skipped = 0;
    let tried = 0;
    let usage: Usage = { ...plan.before };
    let batch = plan.deletions;
    while (batch.length > 0) {
      tried += batch.length;
      const run = await executeDeletions(deps, batch, execute);
      if (run.fatal !== undefined && isFatalProviderError(run.fatal)) throw run.fatal;
      deleted.push(...run.deleted);
      usage = { files: usage.files - run.deleted.length, bytes: usage.bytes - sumBytes(run.deleted) };
      if (run.stoppedEarly || run.fatal !== undefined) break;
      // A 404 means another room maker or sweep deleted that file: it may be counted twice, so re-list.
      if (run.skippedChanged === 0 && run.failures.length === 0 && run.notFound === 0) break;
      skipped += run.skippedChanged;
      // Others freed files too (or some deletions failed): count what the provider holds now.
      usage = usageOf(await this.api.listFiles(opts));
      if (fitsAll(usage)) break;
      const target = Math.max(plan.deletions.length - skipped, need.files);
      batch = plan.candidates.slice(tried, tried + Math.max(0, target - deleted.length));
    }
    const freedFiles = deleted.length;
    const freedBytes = sumBytes(deleted);
    const { files, bytes } = usage;
    const result = {
      enough: files + need.files <= limits.maxFiles && bytes + need.bytes <= limits.maxTotalBytes,
      freedFiles,
      freedBytes,
    };
    if (freedFiles > 0)
      this.options.onFreed?.({ request: need, result, fileIds: deleted.map((d) => d.fileId) });
    return result;
  }
}

const sumBytes = (items: readonly { bytes: number }[]): number => items.reduce((n, f) => n + f.bytes, 0);

/** Files and bytes of a listing (a file listed twice counts once). */
function usageOf(remote: readonly RemoteFile[]): Usage {
  const seen = new Map(remote.map((f) => [f.id, f.bytes]));
  return { files: seen.size, bytes: sumBytes([...seen.values()].map((bytes) => ({ bytes }))) };
}

/**
 * Processing records whose upload is announced (upload tag recorded) but not listed yet, by tag or
 * by recorded file id: uploads in flight (the caller's own among them). Intents older than `maxAgeMs`
 * (by `uploadStartedAt`) are a crashed attempt's, not an upload in flight, and are not counted.
 */
export function pendingUploads(
  remote: readonly RemoteFile[],
  records: readonly DocumentRecord[],
  now: number,
  maxAgeMs: number,
): Usage {
  const listedIds = new Set(remote.map((f) => f.id));
  const listedTags = new Set<string>();
  for (const f of remote) {
    const tag = uploadTagOfFilename(f.filename);
    if (tag !== undefined) listedTags.add(tag);
  }
  const out = { files: 0, bytes: 0 };
  for (const r of records) {
    if (r.status !== "processing" || !r.uploadTag) continue;
    const started = r.uploadStartedAt ? Date.parse(r.uploadStartedAt) : Number.NaN;
    if (Number.isFinite(started) && now - started > maxAgeMs) continue;
    if (listedTags.has(r.uploadTag) || (r.remoteFileId !== undefined && listedIds.has(r.remoteFileId)))
      continue;
    out.files += 1;
    out.bytes += r.size;
  }
  return out;
}
