/**
 * Ingestion's quota valve: before an upload that would cross the provider's hard limits, delete stale
 * remote files (the janitor's policy: superseded, orphans, then ready documents' files oldest first)
 * so the upload fits. See planRoom in policy.ts for the exact rule and why it frees down to the
 * high-water mark rather than to the limit.
 *
 * Cost: one `GET /v1/files` per call; only when room is needed, one records read and one release +
 * delete per freed file. Ingestion should call it when an upload is refused for quota (or when it knows
 * the account is near it), not before every upload.
 */
import type { CallOptions } from "../moonshot/types";
import type { RoomMaker, RoomRequest, RoomResult } from "../quota/types";
import { DEFAULT_POLICY, type JanitorPolicyConfig, planRoom, validatePolicyConfig } from "./policy";
import type { JanitorStore } from "./ports";
import { DEFAULT_RESERVE_MS, executeDeletions, isFatalProviderError, type JanitorApi } from "./sweep";

export interface QuotaRoomMakerOptions {
  /** Policy (retention, high-water mark, grace, limits); unset fields take DEFAULT_POLICY's. */
  policy?: Partial<JanitorPolicyConfig>;
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
    private readonly options: QuotaRoomMakerOptions = {},
  ) {
    this.policy = validatePolicyConfig({
      ...DEFAULT_POLICY,
      ...options.policy,
      limits: { ...DEFAULT_POLICY.limits, ...options.policy?.limits },
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
    // Listing first is enough when there is room: the records are read only when something must go.
    const remote = await this.api.listFiles(opts);
    const listedFiles = new Set(remote.map((f) => f.id)).size;
    const listedBytes = remote.reduce((n, f) => n + f.bytes, 0);
    if (need.files === 1 && need.bytes > limits.maxFileBytes)
      return { enough: false, freedFiles: 0, freedBytes: 0 };
    if (listedFiles + need.files <= limits.maxFiles && listedBytes + need.bytes <= limits.maxTotalBytes) {
      return { enough: true, freedFiles: 0, freedBytes: 0 };
    }
    const records = await this.store.listWithRemoteFiles();
    const plan = planRoom({ remote, records, now: now(), config: this.policy, need });
    if (plan.deletions.length === 0) return { enough: plan.fits, freedFiles: 0, freedBytes: 0 };

    const run = await executeDeletions(deps, plan.deletions, {
      concurrency: this.options.concurrency ?? 4,
      deadline: opts.deadline,
      reserveMs: Math.min(DEFAULT_RESERVE_MS, 2_000),
      rateLimitRetries: 2,
    });
    if (run.fatal !== undefined && isFatalProviderError(run.fatal)) throw run.fatal;
    const freedFiles = run.deleted.length;
    const freedBytes = run.deleted.reduce((n, d) => n + d.bytes, 0);
    const files = plan.before.files - freedFiles;
    const bytes = plan.before.bytes - freedBytes;
    const result = {
      enough:
        plan.fits && files + need.files <= limits.maxFiles && bytes + need.bytes <= limits.maxTotalBytes,
      freedFiles,
      freedBytes,
    };
    if (freedFiles > 0)
      this.options.onFreed?.({ request: need, result, fileIds: run.deleted.map((d) => d.fileId) });
    return result;
  }
}
