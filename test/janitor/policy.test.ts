import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DocumentRecord } from "../../functions/core/documents/model";
import { legacyUploadTagFor, uploadTagFor } from "../../functions/core/ingest/events";
import {
  DEFAULT_POLICY,
  highWaterMarks,
  type JanitorPolicyConfig,
  planRoom,
  planSweep,
  validatePolicyConfig,
} from "../../functions/core/janitor/policy";
import type { RemoteFile } from "../../functions/core/provider/types";
import { DEPLOYMENT, HOUR, NOW, record, remote } from "./fakes";

const MIN = 60_000;
const config = (over: Partial<JanitorPolicyConfig> = {}): JanitorPolicyConfig => ({
  ...DEFAULT_POLICY,
  deploymentId: DEPLOYMENT,
  ...over,
});
const plan = (files: RemoteFile[], records: DocumentRecord[], over: Partial<JanitorPolicyConfig> = {}) =>
  planSweep({ remote: files, records, now: NOW, config: config(over) });
const reasons = (p: ReturnType<typeof plan>) =>
  Object.fromEntries(p.deletions.map((d) => [d.fileId, d.reason]));

describe("planSweep", () => {
  it("deletes an unreferenced file past the grace period as an orphan, and keeps a younger one", () => {
    const p = plan([remote("old", 31 * MIN), remote("young", 29 * MIN)], []);
    expect(reasons(p)).toEqual({ old: "orphan" });
    expect(p.deletions[0]!.documentId).toBeUndefined();
    expect(p.kept.in_grace).toBe(1);
  });

  it("deletes files of replaced versions and deleted documents as superseded, releasing their record", () => {
    const files = [
      remote("v1", 2 * HOUR),
      remote("v2", 1 * HOUR),
      remote("gone", 5 * MIN),
      remote("fly", HOUR, 1, "t1__a.txt"),
    ];
    const records = [
      record("doc", { remoteFileId: "v2", staleFileIds: ["v1"] }),
      // A tombstone: the delete queued its file; no grace, the document is gone.
      record("del", { status: "deleted", staleFileIds: ["gone"] }),
      // An in-flight upload of a version that was replaced before it was recorded.
      record("other", { status: "ready", remoteFileId: "v9", staleUploadTags: ["t1"] }),
    ];
    const p = plan(files, records);
    expect(reasons(p)).toEqual({ v1: "superseded", gone: "superseded", fly: "superseded" });
    const byId = Object.fromEntries(p.deletions.map((d) => [d.fileId, d.documentId]));
    expect(byId).toEqual({ v1: "doc", gone: "del", fly: undefined });
  });

  it("deletes a twin of a ready version's file (same upload tag, unreferenced) at once", () => {
    const ready = record("r", {
      status: "ready",
      remoteFileId: "kept",
      sequencer: "0000000000000000000000000000000A",
    });
    const tag = uploadTagFor("r", ready.sequencer, DEPLOYMENT);
    const files = [
      remote("kept", 2 * MIN, 1000, `${tag}__a.txt`),
      remote("twin", 1 * MIN, 1000, `${tag}__a.txt`),
      // The same version's twin uploaded before tags named the deployment is ours too.
      remote("legacy-twin", 1 * MIN, 1000, `${legacyUploadTagFor("r", ready.sequencer)}__a.txt`),
      remote("young-orphan", 1 * MIN, 1000, `kdp-${DEPLOYMENT}-other__b.txt`),
    ];
    const p = plan(files, [ready]);
    expect(reasons(p)).toEqual({ twin: "superseded", "legacy-twin": "superseded" });
    expect(p.kept.in_grace).toBe(1);
  });

  it("treats a file held only by a tombstone's remoteFileId as superseded", () => {
    const p = plan([remote("f", 10 * MIN)], [record("d", { status: "deleted", remoteFileId: "f" })]);
    expect(reasons(p)).toEqual({ f: "superseded" });
    expect(p.deletions[0]!.documentId).toBe("d");
  });

  it("deletes a ready document's file after the retention period only", () => {
    const files = [remote("old", 25 * HOUR), remote("new", 23 * HOUR)];
    const records = [record("a", { remoteFileId: "old" }), record("b", { remoteFileId: "new" })];
    expect(reasons(plan(files, records))).toEqual({ old: "retention" });
    expect(reasons(plan(files, records, { retentionHours: 1 }))).toEqual({
      old: "retention",
      new: "retention",
    });
  });

  it("gets back under the file-count high-water mark, oldest stored files first", () => {
    const limits = { maxFiles: 10, maxFileBytes: 1_000_000, maxTotalBytes: 1_000_000_000 };
    const files = Array.from({ length: 12 }, (_, i) => remote(`f${i}`, (20 - i) * HOUR));
    const records = files.map((f, i) => record(`d${i}`, { remoteFileId: f.id }));
    const p = plan(files, records, { limits });
    expect(highWaterMarks(config({ limits }))).toEqual({ files: 9, bytes: 900_000_000 });
    expect(p.deletions.map((d) => d.fileId)).toEqual(["f0", "f1", "f2"]);
    expect(p.deletions.every((d) => d.reason === "high_water")).toBe(true);
    expect(p.after.files).toBe(9);
    expect(p.underHighWater).toBe(true);
  });

  it("gets back under the byte high-water mark too", () => {
    const limits = { maxFiles: 1000, maxFileBytes: 1000, maxTotalBytes: 10_000 };
    const files = [remote("a", 5 * HOUR, 4000), remote("b", 4 * HOUR, 4000), remote("c", 3 * HOUR, 2000)];
    const records = files.map((f, i) => record(`d${i}`, { remoteFileId: f.id }));
    const p = plan(files, records, { limits });
    expect(p.deletions.map((d) => [d.fileId, d.reason])).toEqual([["a", "high_water"]]);
    expect(p.after.bytes).toBe(6000);
  });

  it("counts stale deletions before choosing high-water ones", () => {
    const limits = { maxFiles: 10, maxFileBytes: 1000, maxTotalBytes: 1_000_000 };
    const files = [
      ...Array.from({ length: 10 }, (_, i) => remote(`f${i}`, (10 - i) * HOUR)),
      remote("orph", HOUR),
    ];
    const records = files.slice(0, 10).map((f, i) => record(`d${i}`, { remoteFileId: f.id }));
    const p = plan(files, records, { limits });
    expect(p.deletions.map((d) => [d.fileId, d.reason])).toEqual([
      ["orph", "orphan"],
      ["f0", "high_water"],
    ]);
  });

  it("never plans a file of a processing document, whatever its age or the quota pressure", () => {
    const limits = { maxFiles: 2, maxFileBytes: 1000, maxTotalBytes: 1_000_000 };
    const files = [
      remote("held", 100 * HOUR),
      remote("uploading", 100 * HOUR, 1000, "tagP__report.pdf"),
      remote("stale-too", 100 * HOUR, 1000, "tagP__old.pdf"),
    ];
    const records = [
      record("p1", { status: "processing", remoteFileId: "held" }),
      record("p2", { status: "processing", uploadTag: "tagP" }),
      // Another record listing the live tag as stale must not expose it.
      record("x", { status: "deleted", staleUploadTags: ["tagP"] }),
    ];
    const p = plan(files, records, { limits, retentionHours: 0, orphanGraceMinutes: 0 });
    expect(p.deletions).toEqual([]);
    expect(p.kept).toMatchObject({ processing: 1, pending_upload: 2 });
    expect(p.underHighWater).toBe(false);
  });

  it("never plans a high-water deletion of a file whose text is not stored (failed or unknown)", () => {
    const limits = { maxFiles: 2, maxFileBytes: 1000, maxTotalBytes: 1_000_000 };
    const files = [remote("f", 1 * HOUR), remote("g", 1 * HOUR), remote("h", 1 * HOUR)];
    const records = [
      record("a", { status: "failed", remoteFileId: "f" }),
      record("b", { status: "failed", remoteFileId: "g" }),
      record("c", { status: "failed", remoteFileId: "h" }),
    ];
    expect(plan(files, records, { limits }).deletions).toEqual([]);
    // Past retention, a failed version's upload goes.
    expect(reasons(plan(files, records, { retentionHours: 0.5 }))).toEqual({
      f: "retention",
      g: "retention",
      h: "retention",
    });
  });

  it("orders deletions superseded, orphan, retention, high_water, oldest first within each", () => {
    const limits = { maxFiles: 5, maxFileBytes: 1000, maxTotalBytes: 1_000_000 };
    const files = [
      remote("r2", 30 * HOUR),
      remote("r1", 40 * HOUR),
      remote("o1", 2 * HOUR),
      remote("s1", 1 * HOUR),
      remote("h1", 3 * HOUR),
      remote("h2", 2 * HOUR),
      remote("h3", 1 * HOUR),
    ];
    const records = [
      record("a", { remoteFileId: "r1" }),
      record("b", { remoteFileId: "r2" }),
      record("c", { remoteFileId: "h1", staleFileIds: ["s1"] }),
      record("d", { remoteFileId: "h2" }),
      record("e", { remoteFileId: "h3" }),
    ];
    const p = plan(files, records, { limits });
    // 7 files, mark 4: the four stale files go; 3 left is already under the mark, so no high_water.
    expect(p.deletions.map((d) => d.fileId)).toEqual(["s1", "o1", "r1", "r2"]);
    expect(p.after.files).toBe(3);
  });

  it("reports records pointing at files the provider no longer has (past grace) as dangling", () => {
    const records = [
      record("a", { remoteFileId: "gone", remoteFileCreatedAt: new Date(NOW - HOUR).toISOString() }),
      record("b", { remoteFileId: "fresh", remoteFileCreatedAt: new Date(NOW - MIN).toISOString() }),
      record("c", {
        status: "processing",
        remoteFileId: "mid",
        remoteFileCreatedAt: new Date(NOW - HOUR).toISOString(),
      }),
    ];
    expect(plan([], records).dangling).toEqual([{ documentId: "a", fileId: "gone", kind: "current" }]);
  });

  it("reports queued (stale) file ids the provider no longer lists once the record is past grace", () => {
    const old = new Date(NOW - HOUR).toISOString();
    const records = [
      record("a", { staleFileIds: ["deleted", "still-there"], updatedAt: old }),
      record("b", { staleFileIds: ["just-queued"], updatedAt: new Date(NOW - MIN).toISOString() }),
      record("c", { status: "processing", staleFileIds: ["older-version"], updatedAt: old }),
    ];
    const p = plan([remote("still-there", HOUR)], records);
    expect(p.dangling).toEqual([{ documentId: "a", fileId: "deleted", kind: "queued" }]);
    expect(p.deletions.map((d) => d.fileId)).toEqual(["still-there"]);
  });

  it("counts a file listed twice once", () => {
    const f = remote("x", HOUR);
    expect(plan([f, f], []).before).toEqual({ files: 1, bytes: 1000 });
  });

  it("is pure: the same input gives the same plan", () => {
    const files = [remote("a", 30 * HOUR), remote("b", 2 * HOUR)];
    const records = [record("d", { remoteFileId: "a" })];
    expect(plan(files, records)).toEqual(plan(files, records));
  });
});

describe("planRoom", () => {
  const limits = { maxFiles: 20, maxFileBytes: 1000, maxTotalBytes: 100_000 };
  const files = Array.from({ length: 20 }, (_, i) =>
    remote(`f${String(i).padStart(2, "0")}`, (30 - i) * MIN),
  );
  const ready = files.map((f, i) => record(`d${i}`, { remoteFileId: f.id }));
  const room = (need: { files: number; bytes: number }, f = files, r = ready) =>
    planRoom({ remote: f, records: r, now: NOW, config: config({ limits }), need });

  it("deletes nothing while the upload fits under the hard limits", () => {
    const p = room({ files: 1, bytes: 10 }, files.slice(0, 19));
    expect(p).toMatchObject({ deletions: [], fits: true });
  });

  it("at the cap, frees down to the high-water mark (upload counted), oldest stored files first", () => {
    const p = room({ files: 1, bytes: 10 });
    // Mark 18; with the upload counted: 20 - 3 + 1 = 18.
    expect(p.deletions.map((d) => d.fileId)).toEqual(["f00", "f01", "f02"]);
    expect(p.deletions.every((d) => d.reason === "high_water")).toBe(true);
    expect(p.fits).toBe(true);
  });

  it("takes orphans and superseded files before stored ones", () => {
    const r = ready.slice(2); // f00 (30 min old: just past the grace) and f01 lose their records
    const p = room({ files: 1, bytes: 10 }, files, [
      record("t", { status: "deleted", staleFileIds: ["f01"] }),
      ...r,
    ]);
    expect(p.deletions.map((d) => [d.fileId, d.reason])).toEqual([
      ["f01", "superseded"],
      ["f00", "orphan"],
      ["f02", "high_water"],
    ]);
  });

  it("frees what it can and says when it is not enough (processing files stay)", () => {
    const r = ready.map((x, i) => (i < 19 ? { ...x, status: "processing" as const } : x));
    const p = room({ files: 2, bytes: 10 }, files, r);
    expect(p.deletions.map((d) => d.fileId)).toEqual(["f19"]);
    expect(p.fits).toBe(false);
  });

  it("never deletes for an upload that cannot fit at all", () => {
    expect(room({ files: 1, bytes: 5000 })).toMatchObject({ deletions: [], fits: false });
  });
});

describe("validatePolicyConfig", () => {
  it.each([
    [{ highWaterMark: 0 }, /highWaterMark/],
    [{ highWaterMark: 1.5 }, /highWaterMark/],
    [{ retentionHours: -1 }, /retentionHours/],
    [{ orphanGraceMinutes: Number.NaN }, /orphanGraceMinutes/],
    [{ limits: { maxFiles: 0, maxFileBytes: 1, maxTotalBytes: 1 } }, /limits.maxFiles/],
  ])("rejects %o", (over, re) => {
    expect(() => validatePolicyConfig(config(over))).toThrow(re);
  });

  it("accepts the defaults with a deployment id, and refuses a missing or malformed one", () => {
    const ok = config();
    expect(validatePolicyConfig(ok)).toBe(ok);
    for (const deploymentId of ["", "AB12", "ab", "a-b-c-d", "kdp_x1", "x".repeat(25), undefined]) {
      expect(() => validatePolicyConfig({ ...ok, deploymentId } as JanitorPolicyConfig)).toThrow(
        /deploymentId/,
      );
    }
  });
});

describe("ownership: only this deployment's files are ever planned", () => {
  it("leaves files of other applications and other deployments alone, counting them as foreign", () => {
    const limits = { maxFiles: 4, maxFileBytes: 1000, maxTotalBytes: 1_000_000 };
    const files = [
      remote("theirs", 100 * HOUR, 500, "invoice.pdf"),
      remote("other-stack", 100 * HOUR, 500, "kdp-otherstack-0123__a.txt"),
      remote("pre-upgrade-unknown", 100 * HOUR, 500, "kdp-0123456789abcdef0123__a.txt"),
      remote("our-orphan", 100 * HOUR),
      remote("ours", 1 * HOUR),
      // Legacy-named, but our table references it: ours whatever its name.
      remote("legacy-held", 100 * HOUR, 1000, "kdp-aaaaaaaaaaaaaaaaaaaa__b.txt"),
    ];
    const records = [record("d", { remoteFileId: "ours" }), record("e", { remoteFileId: "legacy-held" })];
    const p = plan(files, records, { limits });
    expect(reasons(p)).toEqual({ "our-orphan": "orphan", "legacy-held": "retention", ours: "high_water" });
    expect(p.kept.foreign).toBe(3);
    expect(p.foreign).toEqual({ files: 3, bytes: 1500 });
    expect(p.before.files).toBe(6);
    // Foreign files count toward usage: 3 remain, over the mark of 3 with nothing of ours left.
    expect(p.after.files).toBe(3);
    expect(p.underHighWater).toBe(true);
    const room = planRoom({
      remote: files,
      records,
      now: NOW,
      config: config({ limits }),
      need: { files: 1, bytes: 1 },
    });
    expect(room.candidates.map((d) => d.fileId).sort()).toEqual(["legacy-held", "our-orphan", "ours"]);
  });

  it("model: whatever the files and records, a planned deletion is referenced, tagged by our table or carries our prefix", () => {
    const name = fc.oneof(
      fc.constantFrom("report.pdf", "kdp-0123__x.txt", "kdp-otherstack-1__y.txt", "t1__z.txt"),
      fc.constant(`kdp-${DEPLOYMENT}-9__mine.txt`),
      fc.string({ maxLength: 12 }),
    );
    const fileArb = fc.record({
      id: fc.constantFrom("f0", "f1", "f2", "f3", "f4", "f5"),
      age: fc.integer({ min: 0, max: 60 * HOUR }),
      bytes: fc.integer({ min: 1, max: 5000 }),
      filename: name,
    });
    const recordArb = fc.record({
      id: fc.constantFrom("a", "b", "c"),
      status: fc.constantFrom("processing", "ready", "failed", "deleted") as fc.Arbitrary<
        DocumentRecord["status"]
      >,
      remoteFileId: fc.option(fc.constantFrom("f0", "f1", "f2", "f3", "f4", "f5"), { nil: undefined }),
      staleFileIds: fc.array(fc.constantFrom("f0", "f1", "f2", "f3", "f4", "f5"), { maxLength: 2 }),
      uploadTag: fc.option(fc.constantFrom("t1", "kdp-0123"), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(fileArb, { maxLength: 8 }), fc.array(recordArb, { maxLength: 4 }), (fs, rs) => {
        const files = fs.map((f) => remote(f.id, f.age, f.bytes, f.filename));
        const records = rs.map((r) =>
          record(r.id, {
            status: r.status,
            remoteFileId: r.remoteFileId,
            staleFileIds: r.staleFileIds,
            uploadTag: r.uploadTag,
          }),
        );
        const limits = { maxFiles: 3, maxFileBytes: 10_000, maxTotalBytes: 8000 };
        const referenced = new Set(records.flatMap((r) => [r.remoteFileId, ...(r.staleFileIds ?? [])]));
        const known = new Set(records.flatMap((r) => [r.uploadTag, ...(r.staleUploadTags ?? [])]));
        for (const r of records) {
          if (r.status !== "ready") continue;
          known.add(uploadTagFor(r.documentId, r.sequencer, DEPLOYMENT));
          known.add(legacyUploadTagFor(r.documentId, r.sequencer));
        }
        const ours = (id: string, filename: string) =>
          referenced.has(id) ||
          filename.startsWith(`kdp-${DEPLOYMENT}-`) ||
          (filename.indexOf("__") > 0 && known.has(filename.slice(0, filename.indexOf("__"))));
        // The planner counts the first listing of an id (a provider listing a file twice).
        const firstName = (id: string) => files.find((f) => f.id === id)!.filename;
        const sweep = plan(files, records, { limits, retentionHours: 1 });
        const room = planRoom({
          remote: files,
          records,
          now: NOW,
          config: config({ limits, retentionHours: 1 }),
          need: { files: 1, bytes: 100 },
        });
        for (const d of [...sweep.deletions, ...room.candidates])
          expect(ours(d.fileId, firstName(d.fileId))).toBe(true);
        const foreignIds = [...new Set(files.map((f) => f.id))].filter((id) => !ours(id, firstName(id)));
        expect(sweep.kept.foreign).toBe(foreignIds.length);
      }),
      { numRuns: 300 },
    );
  });
});
