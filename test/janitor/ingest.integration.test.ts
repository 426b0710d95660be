/**
 * The janitor next to the real ingest path (local S3 + DynamoDB, the emulator, IngestService fed with
 * SQS-shaped batches of the S3 server's own events): quota room-making during ingestion, and sweeps
 * racing ingestion.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_POLICY, type JanitorPolicyConfig } from "../../functions/core/janitor/policy";
import { QuotaRoomMaker } from "../../functions/core/janitor/room-maker";
import { runSweep } from "../../functions/core/janitor/sweep";
import { INGEST_DEPLOYMENT, type IngestHarness, messagesFor, startIngestHarness } from "../ingest/harness";

let h: IngestHarness;
beforeAll(async () => {
  h = await startIngestHarness();
});
afterAll(async () => {
  await h?.close();
});

const CAP = 12;
const limits = { maxFiles: CAP, maxFileBytes: 100 * 1024 * 1024, maxTotalBytes: 10 * 1024 * 1024 * 1024 };

describe("janitor with ingestion", () => {
  it("quota: ingesting more documents than the file cap succeeds because room is made; the cap is never crossed", async () => {
    await h.emulator.reset();
    h.emulator.setLimits({ maxFiles: CAP });
    try {
      const freed: string[] = [];
      const roomMaker = new QuotaRoomMaker(h.client, h.store, {
        deploymentId: INGEST_DEPLOYMENT,
        policy: { limits },
        onFreed: (e) => freed.push(...e.fileIds),
      });
      const service = h.service({ roomMaker });
      const total = CAP + 8;
      let peak = 0;
      const sample = setInterval(() => {
        peak = Math.max(peak, h.emulator.files().length);
      }, 2);
      try {
        // Batches of 4 processed concurrently: room makers race each other at the cap.
        for (let i = 0; i < total; i += 4) {
          const events = [];
          for (let j = i; j < Math.min(i + 4, total); j++) {
            events.push(
              await h.put(`quota/doc-${String(j).padStart(2, "0")}.txt`, `Document ${j}.\n\nSome text.`),
            );
          }
          expect(await h.deliver(messagesFor(events), { service })).toEqual([]);
          expect(h.emulator.files().length).toBeLessThanOrEqual(CAP);
        }
      } finally {
        clearInterval(sample);
      }
      expect(peak).toBeLessThanOrEqual(CAP);
      expect(peak).toBeGreaterThanOrEqual(CAP - 1);
      const docs = (await h.store.list({ prefix: "quota/", limit: 100 })).items;
      expect(docs).toHaveLength(total);
      expect(docs.filter((d) => d.status !== "ready").map((d) => [d.key, d.status, d.error])).toEqual([]);
      // Room was made by deleting earlier (ready) documents' files, which the records then released.
      expect(freed.length).toBeGreaterThanOrEqual(total - CAP);
      const remote = new Set(h.emulator.files().map((f) => f.id));
      for (const d of docs) {
        if (d.remoteFileId) expect(remote.has(d.remoteFileId)).toBe(true);
        else expect(d.remoteFileReleasedAt).toBeDefined();
      }
      // The provider refused no upload for good: every refusal was followed by room and a retry.
      const uploads = h.emulator.requests().filter((r) => r.operation === "upload");
      expect(uploads.filter((r) => r.status === 200).length).toBe(total);
    } finally {
      h.emulator.setLimits({ maxFiles: 1000 });
    }
  });

  it("concurrency: sweeps racing ingestion delete nothing ingestion needs and leave no dangling file id", async () => {
    await h.emulator.reset();
    // The most aggressive policy: every stored document's file is due at once, no grace for orphans,
    // so only the processing guard and the upload-intent tags keep ingestion's files alive.
    const policy: JanitorPolicyConfig = {
      ...DEFAULT_POLICY,
      retentionHours: 0,
      orphanGraceMinutes: 0,
      deploymentId: INGEST_DEPLOYMENT,
    };
    h.emulator.setFaults({ latencyMs: { upload: 30, content: 30 } });
    try {
      const service = h.service();
      const keys = Array.from({ length: 24 }, (_, i) => `race/doc-${String(i).padStart(2, "0")}.txt`);
      let ingesting = true;
      let sweeps = 0;
      let deletedBySweeps = 0;
      const sweeper = (async () => {
        while (ingesting) {
          const result = await runSweep({ api: h.client, store: h.store }, { policy, concurrency: 4 });
          expect(result.summary.errors).toBe(0);
          sweeps += 1;
          deletedBySweeps += result.deleted.length;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const ingest = async (batch: string[]) => {
        const events = [];
        for (const key of batch) events.push(await h.put(key, `Text of ${key}.\n\nSecond paragraph.`));
        return h.deliver(messagesFor(events), { service });
      };
      const dead = (
        await Promise.all([
          ingest(keys.slice(0, 8)),
          ingest(keys.slice(8, 16)),
          ingest(keys.slice(16)),
        ]).finally(() => {
          ingesting = false;
        })
      ).flat();
      await sweeper;
      expect(dead).toEqual([]);
      expect(sweeps).toBeGreaterThan(1);
      expect(deletedBySweeps).toBeGreaterThan(0);

      const docs = (await h.store.list({ prefix: "race/", limit: 100 })).items;
      expect(docs.map((d) => d.status)).toEqual(keys.map(() => "ready"));
      for (const d of docs) expect(await h.store.getText(d)).toBe(`Text of ${d.key}.\n\nSecond paragraph.`);
      const remote = new Set(h.emulator.files().map((f) => f.id));
      for (const r of await h.store.listWithRemoteFiles()) {
        if (r.remoteFileId) expect(remote.has(r.remoteFileId)).toBe(true);
      }
      // A final sweep leaves nothing behind: every remote file was an upload ingestion had finished with.
      await runSweep({ api: h.client, store: h.store }, { policy });
      expect(h.emulator.files()).toEqual([]);
    } finally {
      h.emulator.setFaults({ latencyMs: 0 });
    }
  });
});
