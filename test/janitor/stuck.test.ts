/** Documents stuck in `processing` (the last ingest attempt timed out): found, failed, cleaned up. */
import { describe, expect, it } from "vitest";
import { loadJanitorConfig } from "../../functions/core/janitor/config";
import { DEFAULT_POLICY } from "../../functions/core/janitor/policy";
import {
  DEFAULT_STUCK_PROCESSING_MINUTES,
  findStuckDocuments,
  stuckFailure,
} from "../../functions/core/janitor/stuck";
import { runSweep } from "../../functions/core/janitor/sweep";
import { DEFAULT_INGEST_TIMEOUT, DEFAULT_MAX_RECEIVE_COUNT } from "../../lib/defaults";
import { DEPLOYMENT, FakeFiles, HOUR, MemoryStore, NOW, record, remote } from "./fakes";

const ago = (ms: number) => new Date(NOW - ms).toISOString();

/** One stuck document with an uploaded file, one stuck before uploading, one live, one ready. */
function scenario() {
  const api = new FakeFiles([remote("stuck-file", 4 * HOUR), remote("live-file", HOUR), remote("ok", HOUR)]);
  const store = new MemoryStore([
    record("stuck", {
      status: "processing",
      uploadStartedAt: ago(3 * HOUR),
      remoteFileId: "stuck-file",
      uploadTag: "kdp-aaaaaaaaaaaa",
      attempts: 5,
    }),
    record("stuck-early", {
      status: "processing",
      uploadStartedAt: ago(5 * HOUR),
      uploadTag: "kdp-bbbbbbbbbbbb",
    }),
    record("live", { status: "processing", uploadStartedAt: ago(HOUR), remoteFileId: "live-file" }),
    record("ready", { remoteFileId: "ok", remoteFileCreatedAt: ago(HOUR) }),
  ]);
  return { api, store };
}

const run = (deps: ReturnType<typeof scenario>, dryRun = false, minutes?: number) =>
  runSweep(
    { ...deps, now: () => NOW, sleep: async () => {} },
    { policy: { ...DEFAULT_POLICY, deploymentId: DEPLOYMENT }, dryRun, stuckProcessingMinutes: minutes },
  );

describe("stuck processing documents", () => {
  it("defaults to the constructs' visibility timeout x maxReceiveCount", () => {
    expect(DEFAULT_STUCK_PROCESSING_MINUTES).toBe(
      DEFAULT_INGEST_TIMEOUT.toMinutes() * 6 * DEFAULT_MAX_RECEIVE_COUNT,
    );
  });

  it("finds processing records older than the bound, oldest first", () => {
    const { store } = scenario();
    const found = findStuckDocuments([...store.records.values()], NOW, 150);
    expect(found.map((d) => d.documentId)).toEqual(["stuck-early", "stuck"]);
    expect(found[1]).toMatchObject({ attempts: 5, remoteFileId: "stuck-file", startedAt: ago(3 * HOUR) });
    expect(findStuckDocuments([...store.records.values()], NOW, 4 * 60).map((d) => d.documentId)).toEqual([
      "stuck-early",
    ]);
  });

  it("explains the failure in words a user can act on", () => {
    expect(stuckFailure({ attempts: 5 }, 150)).toEqual({
      code: "retries_exhausted",
      message: expect.stringMatching(
        /^ingestion did not finish after 5 attempts .*150 minutes.*dead-letter queue/,
      ),
    });
    expect(stuckFailure({}, 30).message).toContain("after its retries");
  });

  it("marks them failed (retries_exhausted) and deletes their remote file at once; live ones are untouched", async () => {
    const deps = scenario();
    const { summary, stuck, deleted } = await run(deps);
    expect(summary).toMatchObject({ stuckFound: 2, stuckFailed: 2, errors: 0 });
    expect(stuck.map((s) => [s.documentId, s.failed])).toEqual([
      ["stuck-early", true],
      ["stuck", true],
    ]);
    const r = deps.store.records.get("stuck")!;
    expect(r.status).toBe("failed");
    expect(r.error).toEqual(stuckFailure({ attempts: 5 }, DEFAULT_STUCK_PROCESSING_MINUTES));
    // The failed version's file is superseded: deleted in the same sweep, not kept for retention.
    expect(deleted.map((d) => [d.fileId, d.reason])).toEqual([["stuck-file", "superseded"]]);
    expect([...deps.api.files.keys()].sort()).toEqual(["live-file", "ok"]);
    expect(deps.store.records.get("stuck-early")!.status).toBe("failed");
    expect(deps.store.records.get("live")!.status).toBe("processing");

    // Idempotent: nothing stuck any more.
    expect((await run(deps)).summary).toMatchObject({ stuckFound: 0, stuckFailed: 0 });
  });

  it("a dry run reports them without writing anything", async () => {
    const deps = scenario();
    const { summary, stuck } = await run(deps, true);
    expect(summary).toMatchObject({ dryRun: true, stuckFound: 2, stuckFailed: 2 });
    expect(stuck.every((s) => s.failed)).toBe(true);
    expect(deps.store.records.get("stuck")!.status).toBe("processing");
    expect(deps.api.deletes()).toEqual([]);
  });

  it("leaves a record alone when ingestion moved it on meanwhile (a new version claimed)", async () => {
    const deps = scenario();
    deps.store.onFailStuck = (id) => {
      if (id === "stuck") {
        const r = deps.store.records.get(id)!;
        r.sequencer = "0002";
        r.uploadStartedAt = new Date(NOW).toISOString();
      }
    };
    const { summary, stuck } = await run(deps);
    expect(summary).toMatchObject({ stuckFound: 2, stuckFailed: 1 });
    expect(stuck.find((s) => s.documentId === "stuck")!.failed).toBe(false);
    expect(deps.store.records.get("stuck")!.status).toBe("processing");
    expect(deps.api.files.has("stuck-file")).toBe(true);
  });

  it("counts a store error as a sweep error and goes on", async () => {
    const deps = scenario();
    deps.store.onFailStuck = (id) => {
      if (id === "stuck-early") throw new Error("throttled");
    };
    const { summary, failures } = await run(deps);
    expect(summary).toMatchObject({ stuckFound: 2, stuckFailed: 1, errors: 1 });
    expect(failures).toEqual([
      { fileId: "", documentId: "stuck-early", reason: "stuck", error: "Error: throttled" },
    ]);
  });

  it("reads STUCK_PROCESSING_MINUTES (default 150) and rejects nonsense", () => {
    expect(loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "dep1" }).stuckProcessingMinutes).toBe(150);
    expect(
      loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "dep1", STUCK_PROCESSING_MINUTES: "45" })
        .stuckProcessingMinutes,
    ).toBe(45);
    expect(() =>
      loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "dep1", STUCK_PROCESSING_MINUTES: "0" }),
    ).toThrow(/STUCK_PROCESSING_MINUTES/);
    expect(() =>
      loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "dep1", STUCK_PROCESSING_MINUTES: "soon" }),
    ).toThrow(/STUCK_PROCESSING_MINUTES/);
  });
});
