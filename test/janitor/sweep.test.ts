import { describe, expect, it, vi } from "vitest";
import { DEFAULT_POLICY, type JanitorPolicyConfig } from "../../functions/core/janitor/policy";
import { reportSweep } from "../../functions/core/janitor/report";
import { QuotaRoomMaker } from "../../functions/core/janitor/room-maker";
import { runSweep, SweepAbortedError, type SweepOptions } from "../../functions/core/janitor/sweep";
import {
  AuthenticationError,
  NotFoundError,
  RateLimitError,
  ServerError,
} from "../../functions/core/provider/errors";
import { DEPLOYMENT, FakeFiles, HOUR, MemoryStore, NOW, record, remote } from "./fakes";

const policy: JanitorPolicyConfig = { ...DEFAULT_POLICY, deploymentId: DEPLOYMENT };

/** 3 retention, 1 orphan, 1 superseded, 1 fresh ready, 1 processing. */
function scenario() {
  const files = [
    remote("r1", 30 * HOUR),
    remote("r2", 26 * HOUR),
    remote("r3", 25 * HOUR),
    remote("orph", 2 * HOUR),
    remote("old-version", 3 * HOUR),
    remote("fresh", 1 * HOUR),
    remote("busy", 40 * HOUR),
  ];
  const records = [
    record("a", { remoteFileId: "r1" }),
    record("b", { remoteFileId: "r2" }),
    record("c", { remoteFileId: "r3", staleFileIds: ["old-version"] }),
    record("d", { remoteFileId: "fresh" }),
    // Processing, its version claimed 1 h ago: a live ingest (not stuck).
    record("p", {
      status: "processing",
      remoteFileId: "busy",
      uploadStartedAt: new Date(NOW - HOUR).toISOString(),
    }),
  ];
  return { api: new FakeFiles(files), store: new MemoryStore(records) };
}

const sweep = (deps: ReturnType<typeof scenario>, opts: Partial<SweepOptions> = {}, now = () => NOW) =>
  runSweep({ ...deps, now, sleep: async () => {} }, { policy, ...opts });

describe("runSweep", () => {
  it("deletes the stale files, releases their records, and summarises by reason", async () => {
    const deps = scenario();
    const { summary, deleted } = await sweep(deps);
    expect(deleted.map((d) => d.fileId)).toEqual(["old-version", "orph", "r1", "r2", "r3"]);
    expect([...deps.api.files.keys()].sort()).toEqual(["busy", "fresh"]);
    expect(summary).toMatchObject({
      filesBefore: 7,
      bytesBefore: 7000,
      filesAfter: 2,
      bytesAfter: 2000,
      deletedByReason: { superseded: 1, orphan: 1, retention: 3, high_water: 0 },
      errors: 0,
      dryRun: false,
      stoppedEarly: false,
    });
    const a = deps.store.records.get("a")!;
    expect(a.remoteFileId).toBeUndefined();
    expect(a.remoteFileReleasedAt).toBe(new Date(NOW).toISOString());
    expect(a.staleFileIds).toBeUndefined();
    expect(deps.store.records.get("c")!.staleFileIds).toBeUndefined();
    expect(deps.store.records.get("p")!.remoteFileId).toBe("busy");
    // Floor: one list and one delete per stale file.
    expect(deps.api.calls.length).toBe(1 + 5);
  });

  it("a deletion that fails after the release stays queued on the record, and the next sweep does it", async () => {
    const deps = scenario();
    deps.api.onDelete = (id) => {
      if (id === "r1") throw new ServerError("server_error", "upstream down", { status: 500 });
    };
    const first = await sweep(deps);
    expect(first.failures.map((f) => f.fileId)).toEqual(["r1"]);
    const a = deps.store.records.get("a")!;
    expect(a.remoteFileId).toBeUndefined();
    expect(a.staleFileIds).toEqual(["r1"]);

    deps.api.onDelete = undefined;
    const second = await sweep(deps);
    expect(second.deleted.map((d) => [d.fileId, d.reason])).toEqual([["r1", "superseded"]]);
    expect(deps.store.records.get("a")!.staleFileIds).toBeUndefined();
    expect([...deps.api.files.keys()].sort()).toEqual(["busy", "fresh"]);
  });

  it("dry run deletes nothing and reports exactly the set a real run deletes", async () => {
    const dry = scenario();
    const report = await sweep(dry, { dryRun: true });
    expect(dry.api.deletes()).toEqual([]);
    expect(dry.api.files.size).toBe(7);
    expect(dry.store.records.get("a")!.remoteFileId).toBe("r1");
    expect(report.summary.dryRun).toBe(true);

    const real = scenario();
    const done = await sweep(real);
    expect(report.deleted.map((d) => [d.fileId, d.reason])).toEqual(
      done.deleted.map((d) => [d.fileId, d.reason]),
    );
    expect(report.summary.deletedByReason).toEqual(done.summary.deletedByReason);
    expect(report.summary.filesAfter).toBe(done.summary.filesAfter);
  });

  it("is idempotent: a second sweep finds nothing more to do", async () => {
    const deps = scenario();
    await sweep(deps);
    const again = await sweep(deps);
    expect(again.deleted).toEqual([]);
    expect(again.summary.filesBefore).toBe(2);
  });

  it("counts a 404 on delete as deleted", async () => {
    const deps = scenario();
    deps.api.onDelete = (id) => {
      if (id === "r1") {
        deps.api.files.delete(id);
        throw new NotFoundError("not_found", "gone", { status: 404 });
      }
    };
    const { summary } = await sweep(deps);
    expect(summary.deletedByReason.retention).toBe(3);
    expect(summary.errors).toBe(0);
  });

  it("leaves a file alone when its record changed under the sweep (a concurrent ingest)", async () => {
    const deps = scenario();
    deps.store.onRelease = (documentId) => {
      // Another version was claimed and recorded its own upload in between.
      if (documentId === "b") deps.store.records.get("b")!.remoteFileId = "r2-new";
    };
    const { summary } = await sweep(deps);
    expect(deps.api.files.has("r2")).toBe(true);
    expect(deps.api.deletes()).not.toContain("r2");
    expect(summary.skippedChanged).toBe(1);
    expect(deps.store.records.get("b")!.remoteFileId).toBe("r2-new");
  });

  it("caps the deletions in flight", async () => {
    const files = Array.from({ length: 40 }, (_, i) => remote(`o${i}`, 2 * HOUR));
    const deps = { api: new FakeFiles(files), store: new MemoryStore() };
    deps.api.onDelete = () => new Promise((r) => setTimeout(r, 5));
    const { summary } = await sweep(deps, { concurrency: 3 });
    expect(summary.deletedByReason.orphan).toBe(40);
    expect(deps.api.maxInFlight).toBe(3);
  });

  it("stops cleanly when the deadline runs low; the next sweep continues", async () => {
    const files = Array.from({ length: 20 }, (_, i) => remote(`o${String(i).padStart(2, "0")}`, 2 * HOUR));
    const deps = { api: new FakeFiles(files), store: new MemoryStore() };
    let clock = NOW;
    deps.api.onDelete = () => {
      clock += 1000; // every delete takes a second of the budget
    };
    const first = await sweep(deps, { deadline: NOW + 10_000, reserveMs: 3000, concurrency: 1 }, () => clock);
    expect(first.summary.stoppedEarly).toBe(true);
    expect(first.summary.errors).toBe(0);
    expect(first.deleted.length).toBe(8); // starts only while >= 3 s are left
    expect(deps.api.files.size).toBe(12);

    const second = await sweep(deps, {}, () => clock);
    expect(second.summary.stoppedEarly).toBe(false);
    expect(deps.api.files.size).toBe(0);
  });

  it("backs off on a rate limit the client gave up on, then carries on", async () => {
    const deps = scenario();
    const sleeps: number[] = [];
    deps.api.onDelete = (id, attempt) => {
      if (id === "r2" && attempt === 1)
        throw new RateLimitError("rate_limited", "slow down", { retryAfterMs: 1500 });
    };
    const { summary } = await runSweep(
      { ...deps, now: () => NOW, sleep: async (ms) => void sleeps.push(ms) },
      { policy, concurrency: 1 },
    );
    expect(sleeps).toContain(1500);
    expect(summary.deletedByReason.retention).toBe(3);
    expect(summary.errors).toBe(0);
  });

  it("stops early instead of backing off past the deadline", async () => {
    const deps = scenario();
    deps.api.onDelete = () => {
      throw new RateLimitError("rate_limited", "slow down", { retryAfterMs: 60_000 });
    };
    const { summary } = await sweep(deps, { deadline: NOW + 30_000, concurrency: 1 });
    expect(summary.stoppedEarly).toBe(true);
    expect(deps.api.files.size).toBe(7);
  });

  it("counts other provider errors and goes on with the rest", async () => {
    const deps = scenario();
    deps.api.onDelete = (id) => {
      if (id === "orph") throw new ServerError("server_error", "boom", { status: 500 });
    };
    const result = await sweep(deps);
    expect(result.summary.errors).toBe(1);
    expect(result.failures).toEqual([expect.objectContaining({ fileId: "orph", reason: "orphan" })]);
    expect(result.summary.deletedByReason.retention).toBe(3);
  });

  it("fails loudly on an authentication error", async () => {
    const deps = scenario();
    deps.api.onDelete = () => {
      throw new AuthenticationError("auth", "invalid key", { status: 401 });
    };
    const err = await sweep(deps, { concurrency: 2 }).catch((e) => e);
    expect(err).toBeInstanceOf(SweepAbortedError);
    expect((err as SweepAbortedError).cause).toBeInstanceOf(AuthenticationError);
    // Each worker stops after the refused call: no retry loop against a rejected key.
    expect(deps.api.deletes().length).toBe(2);
    expect((err as SweepAbortedError).summary.filesAfter).toBe(7);
  });

  it("fails loudly when the listing is refused", async () => {
    const deps = scenario();
    deps.api.listFiles = async () => {
      throw new AuthenticationError("auth", "invalid key", { status: 401 });
    };
    await expect(sweep(deps)).rejects.toBeInstanceOf(AuthenticationError);
  });

  it("clears records that point at files the provider no longer has", async () => {
    const deps = {
      api: new FakeFiles([]),
      store: new MemoryStore([
        record("a", { remoteFileId: "lost", remoteFileCreatedAt: new Date(NOW - 2 * HOUR).toISOString() }),
      ]),
    };
    const { summary } = await sweep(deps);
    expect(summary.releasedDangling).toBe(1);
    expect(deps.store.records.get("a")!.remoteFileId).toBeUndefined();
  });
});

describe("reportSweep", () => {
  it("logs one line and emits RemoteFiles, RemoteBytes, JanitorErrors and JanitorDeletions per reason", async () => {
    const { summary, failures } = await sweep(scenario());
    const info = vi.fn();
    const added: [string, string, number][] = [];
    const singles: { dims: Record<string, string>; metrics: [string, number][] }[] = [];
    const metrics = {
      addMetric: (name: string, unit: string, value: number) => added.push([name, unit, value]),
      singleMetric: () => {
        const s = { dims: {} as Record<string, string>, metrics: [] as [string, number][] };
        singles.push(s);
        return {
          addDimension: (k: string, v: string) => {
            s.dims[k] = v;
          },
          addMetric: (name: string, _u: string, value: number) => s.metrics.push([name, value]),
        };
      },
    };
    reportSweep(summary, failures, { logger: { info }, metrics });
    expect(info).toHaveBeenCalledTimes(1);
    expect(info.mock.calls[0]![1]).toMatchObject({ summary: { filesAfter: 2 } });
    expect(added).toEqual([
      ["RemoteFiles", "Count", 2],
      ["RemoteBytes", "Bytes", 2000],
      ["ForeignRemoteFiles", "Count", 0],
      ["ForeignRemoteBytes", "Bytes", 0],
      ["JanitorErrors", "Count", 0],
    ]);
    expect(singles).toContainEqual({ dims: { Reason: "retention" }, metrics: [["JanitorDeletions", 3]] });
    expect(singles).toHaveLength(4);
  });
});

describe("QuotaRoomMaker", () => {
  const limits = { maxFiles: 10, maxFileBytes: 1000, maxTotalBytes: 100_000 };
  const setup = (count: number) => {
    const files = Array.from({ length: count }, (_, i) => remote(`f${i}`, (20 - i) * HOUR));
    const records = files.map((f, i) => record(`d${i}`, { remoteFileId: f.id }));
    const api = new FakeFiles(files);
    const store = new MemoryStore(records);
    return {
      api,
      store,
      maker: new QuotaRoomMaker(api, store, { deploymentId: DEPLOYMENT, policy: { limits }, now: () => NOW }),
    };
  };

  it("only lists when there is room", async () => {
    const { api, maker } = setup(5);
    expect(await maker.makeRoom({ files: 1, bytes: 100 })).toEqual({
      enough: true,
      freedFiles: 0,
      freedBytes: 0,
    });
    expect(api.calls).toEqual([{ op: "list" }]);
  });

  it("at the cap deletes the oldest stored files down to the high-water mark and releases them", async () => {
    const { api, store, maker } = setup(10);
    const result = await maker.makeRoom({ files: 1, bytes: 100 });
    // Mark 9 with the upload counted: 10 - 2 + 1 = 9.
    expect(result).toEqual({ enough: true, freedFiles: 2, freedBytes: 2000 });
    expect(api.deletes()).toEqual(["f0", "f1"]);
    expect(store.records.get("d0")!.remoteFileId).toBeUndefined();
  });

  it("says not enough when only processing files remain", async () => {
    const { api, store, maker } = setup(10);
    for (const r of store.records.values()) r.status = "processing";
    expect(await maker.makeRoom({ files: 1, bytes: 100 })).toEqual({
      enough: false,
      freedFiles: 0,
      freedBytes: 0,
    });
    expect(api.deletes()).toEqual([]);
  });

  it("throws an authentication error instead of pretending there is no room", async () => {
    const { api, maker } = setup(10);
    api.onDelete = () => {
      throw new AuthenticationError("auth", "invalid key", { status: 401 });
    };
    await expect(maker.makeRoom({ files: 1, bytes: 100 })).rejects.toBeInstanceOf(AuthenticationError);
  });
});

describe("QuotaRoomMaker under contention", () => {
  it("counts uploads in flight, so racing ingests at the cap all get a slot", async () => {
    const limits = { maxFiles: 10, maxFileBytes: 1000, maxTotalBytes: 100_000 };
    const files = Array.from({ length: 10 }, (_, i) => remote(`f${i}`, (20 - i) * HOUR));
    const records = [
      ...files.map((f, i) => record(`d${i}`, { remoteFileId: f.id })),
      // Three ingests refused at the cap, their intents recorded, uploads not listed yet.
      ...["x", "y", "z"].map((id) => record(id, { status: "processing" as const, uploadTag: `kdp-${id}` })),
    ];
    const api = new FakeFiles(files);
    const store = new MemoryStore(records);
    const makers = [0, 1, 2].map(
      () => new QuotaRoomMaker(api, store, { deploymentId: DEPLOYMENT, policy: { limits }, now: () => NOW }),
    );
    const results = await Promise.all(makers.map((m) => m.makeRoom({ files: 1, bytes: 100 })));
    expect(results.every((r) => r.enough)).toBe(true);
    // Room for all three uploads (and the high-water headroom: 9 with the three counted).
    expect(api.files.size + 3).toBeLessThanOrEqual(9);
    expect(results.reduce((n, r) => n + r.freedFiles, 0)).toBe(10 - api.files.size);
    // No file was deleted twice and none a processing record holds.
    expect(new Set(api.deletes()).size).toBe(api.deletes().length);
  });
});
