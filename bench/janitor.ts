/**
 * Janitor sweep cost: 1,000 remote files and 1,000 document records (real DynamoDB store on dynalite,
 * documents driven through the ingest transitions), then one sweep with the Moonshot emulator answering
 * every call after a fixed latency (default 50 ms). Reports wall time and the provider calls made
 * against the floor (one list + one delete per stale file), as JSON.
 * `npx tsx bench/janitor.ts [--latency 50] [--concurrency 4] [--memory-store]`.
 *
 * The mix (1,000 records, 1,000 files): 600 fresh ready documents (kept), 250 ready documents uploaded
 * 25 h ago (retention), 50 tombstones whose file is queued for deletion (superseded), 50 processing
 * documents holding a 30 h old upload (kept: the guard), 50 processing documents still uploading (no
 * file yet) and 50 files no record knows, 2 h old (orphans). Stale: 350.
 *
 * `main()` is exported for the benchmark runner.
 */
import { pathToFileURL } from "node:url";
import type { DocumentRecord } from "../functions/core/documents/model";
import { DEFAULT_POLICY } from "../functions/core/janitor/policy";
import type { JanitorStore } from "../functions/core/janitor/ports";
import { runSweep, type SweepSummary } from "../functions/core/janitor/sweep";
import type { RemoteFile } from "../functions/core/provider/types";
import { MemoryStore } from "../test/janitor/fakes";
import { type Harness, startHarness } from "../test/janitor/harness";

export interface JanitorBenchOptions {
  /** Emulator latency per call during the sweep. @default 50 */
  latencyMs?: number;
  /** Deletions in flight (the handler's default is 4). @default 4 */
  concurrency?: number;
  /**
   * `dynamo`: the real DynamoDocumentStore on dynalite (in this process). `memory`: the same records
   * copied into an in-memory store, isolating the sweep's own overhead from local DynamoDB's.
   * @default "dynamo"
   */
  store?: "dynamo" | "memory";
}

export interface JanitorBenchResult {
  remoteFiles: number;
  records: number;
  staleFiles: number;
  latencyMs: number;
  concurrency: number;
  store: "dynamo" | "memory";
  wallMs: number;
  /** Provider calls the sweep made (from the emulator's request log). */
  providerCalls: number;
  /** One list + one delete per stale file. */
  floorCalls: number;
  callRatio: number;
  /** Floor latency with the concurrency cap: one list, then ceil(stale / concurrency) rounds of deletes. */
  idealWallMs: number;
  /** Null at zero latency (no floor to compare with). */
  wallRatio: number | null;
  /** Store calls during the sweep (one records read + one release per deleted file that a record held). */
  storeCalls: number;
  /** Sum of store call durations (they overlap the provider calls; see executeDeletions). */
  storeBusyMs: number;
  /** Dry run over the same state (one list, no deletes). */
  dryRunWallMs: number;
  setupMs: number;
  summary: SweepSummary;
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/**
 * Seeds the files (uploaded through the client, one emulator clock setting per age group) and the
 * records (written whole with the store's seeding helper, one Put each, shaped as ingestion leaves
 * them). Returns the number of stale files.
 */
async function seed(h: Harness): Promise<number> {
  const names = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  const upload = (group: string[], ageHours: number) =>
    h.withAge(ageHours, async () => {
      const ids = new Map<string, RemoteFile>();
      await pool(group, 16, async (name) =>
        ids.set(name, await h.uploadNamed(`kdp-${h.deploymentId}-${name}__${name}.txt`)),
      );
      return ids;
    });
  const old = await upload(names(250, "old"), 25);
  const busy = await upload(names(50, "busy"), 30);
  await upload(names(50, "stray"), 2);
  const fresh = await upload([...names(600, "fresh"), ...names(50, "removed")], 0);

  const put = (name: string, fields: Partial<DocumentRecord>) =>
    h.store.putDocumentText({ documentId: `doc-${name}`, key: `${name}.txt`, ...fields }, "extracted text");
  const held = (file: RemoteFile) => ({
    remoteFileId: file.id,
    remoteFileBytes: file.bytes,
    remoteFileCreatedAt: new Date(file.created_at * 1000).toISOString(),
  });
  const jobs: (() => Promise<unknown>)[] = [];
  for (const [name, file] of old) jobs.push(() => put(name, { status: "ready", ...held(file) }));
  for (const [name, file] of busy)
    jobs.push(() =>
      put(name, { status: "processing", uploadTag: `kdp-${h.deploymentId}-${name}`, ...held(file) }),
    );
  for (const name of names(50, "uploading"))
    jobs.push(() => put(name, { status: "processing", uploadTag: `kdp-${h.deploymentId}-${name}` }));
  for (const [name, file] of fresh) {
    if (name.startsWith("removed"))
      jobs.push(() => put(name, { status: "deleted", staleFileIds: [file.id] }));
    else jobs.push(() => put(name, { status: "ready", ...held(file) }));
  }
  await pool(jobs, 16, (job) => job());
  return 250 + 50 + 50;
}

/** Seeds the state, runs a dry run and a real sweep, and returns the measurements. */
export async function main(opts: JanitorBenchOptions = {}): Promise<JanitorBenchResult> {
  const latencyMs = opts.latencyMs ?? 50;
  const concurrency = opts.concurrency ?? 4;
  const h = await startHarness();
  try {
    const setupStarted = performance.now();
    const stale = await seed(h);
    const setupMs = performance.now() - setupStarted;
    const files = (await h.api.listFiles()).length;
    const records = (await h.store.listWithRemoteFiles()).length;

    h.emulator.setFaults({ latencyMs });
    const timing = { calls: 0, busyMs: 0 };
    const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      try {
        return await fn();
      } finally {
        timing.calls += 1;
        timing.busyMs += performance.now() - t;
      }
    };
    const backing: JanitorStore =
      opts.store === "memory" ? new MemoryStore(await h.store.listWithRemoteFiles()) : h.store;
    const store: JanitorStore = {
      listWithRemoteFiles: () => timed(() => backing.listWithRemoteFiles()),
      releaseRemoteFile: (id, fileId, at) => timed(() => backing.releaseRemoteFile(id, fileId, at)),
      forgetDeletedFile: (id, fileId) => timed(() => backing.forgetDeletedFile(id, fileId)),
    };
    const deps = { api: h.api, store };
    const policy = { ...DEFAULT_POLICY, deploymentId: h.deploymentId };
    const dryStarted = performance.now();
    await runSweep(deps, { policy, dryRun: true, concurrency });
    const dryRunWallMs = performance.now() - dryStarted;

    timing.calls = 0;
    timing.busyMs = 0;
    const since = Date.now();
    const started = performance.now();
    const result = await runSweep(deps, { policy, concurrency, deadline: Date.now() + 15 * 60_000 });
    const wallMs = performance.now() - started;
    const providerCalls = h.emulator
      .requests()
      .filter((r) => r.at >= since && r.operation !== "admin").length;
    const floorCalls = 1 + stale;
    const idealWallMs = latencyMs * (1 + Math.ceil(stale / concurrency));
    if (result.deleted.length !== stale) {
      throw new Error(
        `expected ${stale} deletions, got ${result.deleted.length}: ${JSON.stringify(result.summary)}`,
      );
    }
    return {
      remoteFiles: files,
      records,
      staleFiles: stale,
      latencyMs,
      concurrency,
      store: opts.store ?? "dynamo",
      wallMs: Math.round(wallMs),
      providerCalls,
      floorCalls,
      callRatio: Number((providerCalls / floorCalls).toFixed(3)),
      idealWallMs,
      wallRatio: idealWallMs > 0 ? Number((wallMs / idealWallMs).toFixed(3)) : null,
      storeCalls: timing.calls,
      storeBusyMs: Math.round(timing.busyMs),
      dryRunWallMs: Math.round(dryRunWallMs),
      setupMs: Math.round(setupMs),
      summary: result.summary,
    };
  } finally {
    await h.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const storeArg = process.argv.includes("--memory-store") ? "memory" : "dynamo";
  main({ latencyMs: arg("latency"), concurrency: arg("concurrency"), store: storeArg })
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
