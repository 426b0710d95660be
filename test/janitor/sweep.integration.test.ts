/**
 * The sweep against real local servers: the Moonshot emulator (file ages set through its clock) and
 * dynalite with the real DynamoDocumentStore, documents driven through the store's ingest transitions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICY, type JanitorPolicyConfig } from "../../functions/core/janitor/policy";
import { QuotaRoomMaker } from "../../functions/core/janitor/room-maker";
import { runSweep } from "../../functions/core/janitor/sweep";
import { FileCountQuotaError } from "../../functions/core/provider/errors";
import { type Harness, startHarness } from "./harness";

let h: Harness;
let policy: JanitorPolicyConfig;
beforeAll(async () => {
  h = await startHarness();
  policy = { ...DEFAULT_POLICY, limits, deploymentId: h.deploymentId };
});
afterAll(async () => {
  await h?.close();
});

const limits = { maxFiles: 10, maxFileBytes: 1_000_000, maxTotalBytes: 100_000_000 };
const listed = async () => new Set((await h.api.listFiles()).map((f) => f.id));

describe("sweep on the emulator and the DynamoDB store", () => {
  it("deletes for each of the four reasons, never a processing document's file, and a dry run predicts it", async () => {
    await h.emulator.reset();
    // retention: ready, uploaded 25 h ago.
    const retained = await h.readyDoc("retention.txt", 1, { ageHours: 25 });
    // superseded: v1 replaced by v2 (the claim queues v1's file), and a deleted document.
    const replaced = await h.readyDoc("replaced.txt", 1, { ageHours: 2 });
    const v1 = replaced.fileId!;
    const v2 = await h.claim("replaced.txt", 2);
    await h.upload(v2);
    await h.ready(v2);
    const removed = await h.readyDoc("removed.txt", 1);
    await h.store.tombstone({
      documentId: removed.documentId,
      bucket: "bucket",
      key: removed.key,
      sequencer: `${removed.sequencer.slice(0, -1)}9`,
      now: new Date(),
    });
    // orphans: one past the 30-min grace, one inside it.
    const orphan = await h.orphan("stray.txt", 2);
    const young = await h.orphan("young.txt", 0.1);
    // processing: one upload recorded, one only announced by its tag; both very old.
    const busy = await h.claim("busy.txt", 1);
    await h.upload(busy, { ageHours: 100 });
    const announced = await h.claim("announced.txt", 1);
    const pending = await h.upload(announced, { ageHours: 100, record: false });
    // high water: 6 fresh ready documents bring the count to 14 (mark 9 of 10).
    const fresh = [];
    for (let i = 0; i < 6; i++) fresh.push(await h.readyDoc(`fresh-${i}.txt`, 1, { ageHours: 6 - i }));
    expect((await listed()).size).toBe(14);

    const deps = { api: h.api, store: h.store };
    const dry = await runSweep(deps, { policy, dryRun: true });
    expect((await listed()).size).toBe(14);
    expect((await h.store.getState(retained.documentId))?.remoteFileId).toBe(retained.fileId);

    const real = await runSweep(deps, { policy });
    const reasons = Object.fromEntries(real.deleted.map((d) => [d.fileId, d.reason]));
    expect(reasons).toEqual({
      [v1]: "superseded",
      [removed.fileId!]: "superseded",
      [orphan.id]: "orphan",
      [retained.fileId!]: "retention",
      // 14 - 4 stale = 10 > 9: the oldest stored file goes.
      [fresh[0]!.fileId!]: "high_water",
    });
    expect(dry.deleted.map((d) => [d.fileId, d.reason])).toEqual(
      real.deleted.map((d) => [d.fileId, d.reason]),
    );
    expect(dry.summary.deletedByReason).toEqual(real.summary.deletedByReason);
    expect(real.summary).toMatchObject({ filesBefore: 14, filesAfter: 9, errors: 0, stoppedEarly: false });

    const left = await listed();
    expect(left.size).toBe(9);
    for (const id of [busy.fileId!, pending.id, young.id, v2.fileId!]) expect(left.has(id)).toBe(true);
    // Records released what was deleted, and point at nothing deleted.
    const state = await h.store.getState(retained.documentId);
    expect(state?.remoteFileId).toBeUndefined();
    expect(state?.remoteFileReleasedAt).toBeDefined();
    expect((await h.store.getState(replaced.documentId))?.staleFileIds ?? []).toEqual([]);
    for (const r of await h.store.listWithRemoteFiles()) {
      if (r.remoteFileId) expect(left.has(r.remoteFileId)).toBe(true);
    }
    // Idempotent: the next sweep has nothing to delete.
    const again = await runSweep(deps, { policy });
    expect(again.deleted).toEqual([]);
  });

  it("stops cleanly at the deadline and the next sweep finishes the job", async () => {
    await h.emulator.reset();
    for (let i = 0; i < 24; i++) await h.orphan(`o${i}.txt`, 1);
    h.emulator.setFaults({ latencyMs: { delete: 50 } });
    try {
      const deps = { api: h.api, store: h.store };
      const started = Date.now();
      // Deletions start only in the first 500 ms (1.5 s reserve), each takes ~50 ms.
      const first = await runSweep(deps, {
        policy,
        deadline: Date.now() + 2_000,
        reserveMs: 1_500,
        concurrency: 1,
      });
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(first.summary.stoppedEarly).toBe(true);
      expect(first.summary.errors).toBe(0);
      expect(first.deleted.length).toBeGreaterThan(0);
      expect(first.deleted.length).toBeLessThan(24);
      expect((await listed()).size).toBe(24 - first.deleted.length);
      const second = await runSweep(deps, { policy, concurrency: 4 });
      expect(second.summary.stoppedEarly).toBe(false);
      expect((await listed()).size).toBe(0);
    } finally {
      h.emulator.setFaults({ latencyMs: 0 });
    }
  });

  it("never deletes another application's files on a shared key: counted and reported, never planned", async () => {
    await h.emulator.reset();
    // Another application on the same Moonshot key, another copy of this stack, and a copy from before
    // deployment prefixes existed: none of it is ours, however old or unreferenced.
    const foreign = await h.withAge(48, async () => [
      await h.uploadNamed("quarterly-report.pdf"),
      await h.uploadNamed("kdp-0123456789abcdef0123__notes.txt"),
      await h.uploadNamed("kdp-otherstack1-0123456789abcdef0123__notes.txt"),
    ]);
    const ours = await h.orphan("stray.txt", 2);
    const deps = { api: h.api, store: h.store };
    const dry = await runSweep(deps, { policy, dryRun: true });
    const real = await runSweep(deps, { policy });
    for (const run of [dry, real]) {
      expect(run.deleted.map((d) => d.fileId)).toEqual([ours.id]);
      expect(run.summary).toMatchObject({ filesBefore: 4, foreignFiles: 3, foreignBytes: 300 });
    }
    const left = await listed();
    for (const f of foreign) expect(left.has(f.id)).toBe(true);
    expect(left.has(ours.id)).toBe(false);

    // Over the high-water mark (9 of 10) with foreign files only: still nothing of theirs goes.
    for (let i = 0; i < 8; i++) await h.withAge(100, () => h.uploadNamed(`their-${i}.txt`));
    const over = await runSweep(deps, { policy });
    expect(over.deleted).toEqual([]);
    expect(over.summary).toMatchObject({ filesBefore: 11, filesAfter: 11, foreignFiles: 11 });
    expect(over.summary.underHighWater).toBe(false);
    expect((await listed()).size).toBe(11);
  });

  it("room maker: deletes only this stack's files to make room; foreign files only count", async () => {
    const h = await startHarness({ limits: { maxFiles: 10 } });
    const listed = async () => new Set((await h.api.listFiles()).map((f) => f.id));
    try {
      const foreign = [];
      for (let i = 0; i < 8; i++)
        foreign.push(await h.withAge(100, () => h.uploadNamed(`other-app-${i}.pdf`)));
      const mine = [];
      for (let i = 0; i < 2; i++) mine.push(await h.readyDoc(`mine-${i}.txt`, 1, { ageHours: 5 - i }));
      const maker = new QuotaRoomMaker(h.api, h.store, { policy: { limits }, deploymentId: h.deploymentId });
      const room = await maker.makeRoom({ files: 1, bytes: 100 });
      // The cap is 10 and the high-water mark 9: our two files go, the eight foreign ones stay.
      expect(room).toEqual({ enough: true, freedFiles: 2, freedBytes: 200 });
      const left = await listed();
      expect(left.size).toBe(8);
      for (const f of foreign) expect(left.has(f.id)).toBe(true);
      // Full of foreign files: no room, and nothing deleted.
      for (let i = 8; i < 10; i++) await h.withAge(100, () => h.uploadNamed(`other-app-${i}.pdf`));
      expect(await maker.makeRoom({ files: 1, bytes: 100 })).toEqual({
        enough: false,
        freedFiles: 0,
        freedBytes: 0,
      });
      expect((await listed()).size).toBe(10);
    } finally {
      await h.close();
    }
  });

  it("room maker: at the emulator's cap, frees the oldest stored files and the upload then fits", async () => {
    // A table of its own: processing records left by the tests above would count as uploads in flight.
    const h = await startHarness({ limits: { maxFiles: 10 } });
    const listed = async () => new Set((await h.api.listFiles()).map((f) => f.id));
    try {
      const docs = [];
      for (let i = 0; i < 9; i++) docs.push(await h.readyDoc(`room-${i}.txt`, 1, { ageHours: 9 - i }));
      const busy = await h.claim("room-busy.txt", 1);
      await h.upload(busy, { ageHours: 50 });
      const maker = new QuotaRoomMaker(h.api, h.store, { policy: { limits }, deploymentId: h.deploymentId });
      const next = await h.claim("room-next.txt", 1);
      await expect(h.upload(next)).rejects.toBeInstanceOf(FileCountQuotaError);
      const room = await maker.makeRoom({ files: 1, bytes: 100 });
      expect(room).toEqual({ enough: true, freedFiles: 2, freedBytes: 200 });
      await h.upload(next);
      const left = await listed();
      expect(left.size).toBe(9);
      expect(left.has(docs[0]!.fileId!)).toBe(false);
      expect(left.has(docs[1]!.fileId!)).toBe(false);
      expect(left.has(busy.fileId!)).toBe(true);
      expect((await h.store.getState(docs[0]!.documentId))?.remoteFileId).toBeUndefined();
    } finally {
      await h.close();
    }
  });
});
