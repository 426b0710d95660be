/**
 * Stuck `processing` documents against dynalite (the real DynamoDocumentStore and its conditional
 * write) and the Moonshot emulator: the sweep, run "3 hours later", fails the abandoned version and
 * deletes its upload, and leaves alone a version whose claim is still live.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normaliseSequencer } from "../../functions/core/documents/dynamo-store";
import { DEFAULT_POLICY } from "../../functions/core/janitor/policy";
import { runSweep } from "../../functions/core/janitor/sweep";
import { type Harness, startHarness } from "./harness";

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

const HOUR = 3_600_000;

describe("stuck processing documents on the DynamoDB store", () => {
  it("fails an abandoned version (conditional write) and deletes its file; a live claim is kept", async () => {
    await h.emulator.reset();
    const abandoned = await h.claim("abandoned.txt", 1);
    const file = await h.upload(abandoned);
    // A version still being worked on 3 h from now (its lease runs 5 h).
    const live = await h.store.claimVersion({
      documentId: "doc-live",
      bucket: "bucket",
      key: "live.txt",
      sequencer: normaliseSequencer("1"),
      size: 100,
      uploadTag: "kdp-live00000000",
      owner: "owner-live",
      messageId: "m-live",
      attempts: 5,
      leaseUntil: Date.now() + 5 * HOUR,
      now: new Date(),
    });
    expect(live.outcome).toBe("claimed");

    const later = () => Date.now() + 3 * HOUR;
    const deps = { api: h.api, store: h.store, now: later };
    const opts = { policy: { ...DEFAULT_POLICY, deploymentId: h.deploymentId }, stuckProcessingMinutes: 150 };

    const dry = await runSweep(deps, { ...opts, dryRun: true });
    expect(dry.stuck.map((s) => s.documentId).sort()).toEqual([abandoned.documentId, "doc-live"].sort());
    expect((await h.store.get(abandoned.documentId))?.status).toBe("processing");

    // Wrong sequencer: the store refuses (nothing written).
    await expect(
      h.store.failStuckProcessing({
        documentId: abandoned.documentId,
        sequencer: normaliseSequencer("2"),
        startedBefore: new Date(later()),
        failure: { code: "retries_exhausted", message: "x" },
        now: new Date(later()),
      }),
    ).resolves.toBeUndefined();

    const real = await runSweep(deps, opts);
    expect(real.summary).toMatchObject({ stuckFound: 2, stuckFailed: 1, errors: 0 });
    expect(real.stuck.find((s) => s.documentId === "doc-live")?.failed).toBe(false);

    const failed = await h.store.getState(abandoned.documentId);
    expect(failed).toMatchObject({ status: "failed", error: { code: "retries_exhausted" } });
    expect(failed?.error?.message).toMatch(/^ingestion did not finish after 1 attempt .*dead-letter queue/);
    expect(failed?.remoteFileId).toBeUndefined();
    expect(failed?.claimOwner).toBeUndefined();
    expect(real.deleted.map((d) => [d.fileId, d.reason])).toEqual([[file.id, "superseded"]]);
    expect((await h.api.listFiles()).map((f) => f.id)).not.toContain(file.id);
    // The stale reference is gone too once deleted.
    expect((await h.store.getState(abandoned.documentId))?.staleFileIds ?? []).toEqual([]);

    expect((await h.store.get("doc-live"))?.status).toBe("processing");
  });
});
