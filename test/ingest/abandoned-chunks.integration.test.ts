/**
 * Chunks written by an attempt that never finishes its version must not stay behind. On the real
 * local servers: an attempt writes its chunks and dies before flipping the record to ready; then the
 * version is superseded by a newer one, deleted, failed on its last delivery, or failed by the
 * janitor's stuck sweep. Afterwards the document's only chunk items are its live text's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { documentIdFor } from "../../functions/core/ingest/events";
import { DEFAULT_POLICY } from "../../functions/core/janitor/policy";
import { runSweep } from "../../functions/core/janitor/sweep";
import { INGEST_DEPLOYMENT, type IngestHarness, messagesFor, startIngestHarness } from "./harness";

let h: IngestHarness;
beforeAll(async () => {
  h = await startIngestHarness();
});
afterAll(async () => {
  await h?.close();
});

const docId = (key: string) => documentIdFor(h.stack.bucket, key);
/** A text of several chunks. */
const text = (word: string) => `${word} `.repeat(40_000);

class Crash extends Error {}
/** A service whose attempts die after writing their chunks, before the record flips to ready. */
const crashingBeforeReady = (config = {}) =>
  h.service({
    config,
    hooks: {
      beforeReady: () => {
        throw new Crash("killed after writing chunks");
      },
    },
  });

/** Delivers once with `service`; the crash makes it a batch item failure. */
async function deliverOnce(key: string, body: string, service = crashingBeforeReady()) {
  const [message] = messagesFor([await h.put(key, body)]);
  const res = await service.processBatch([message!]);
  expect(res.batchItemFailures).toHaveLength(1);
  return message!;
}

/** Generations holding chunk items, and the one the record reads. */
async function chunkState(key: string) {
  const generations = [...(await h.store.chunkGenerations(docId(key))).keys()];
  const record = await h.store.getState(docId(key));
  return { generations, live: record?.textGeneration };
}

describe("chunks of an abandoned attempt are deleted", () => {
  it("when a newer version supersedes it", async () => {
    const key = "abandon/superseded.txt";
    await deliverOnce(key, text("old"));
    expect((await chunkState(key)).generations).toHaveLength(1);
    expect(await h.deliver(messagesFor([await h.put(key, text("new"))]))).toEqual([]);
    const { generations, live } = await chunkState(key);
    expect(live).toBeDefined();
    expect(generations).toEqual([live]);
  });

  it("when the object is deleted", async () => {
    const key = "abandon/deleted.txt";
    await deliverOnce(key, text("doomed"));
    expect(await h.deliver(messagesFor([await h.remove(key)]))).toEqual([]);
    expect(await chunkState(key)).toEqual({ generations: [], live: undefined });
  });

  it("when its last delivery fails it", async () => {
    const key = "abandon/last.txt";
    const dead = await h.deliver(messagesFor([await h.put(key, text("retried"))]), {
      service: crashingBeforeReady({ maxReceiveCount: 2 }),
    });
    expect(dead).toHaveLength(1);
    expect((await h.store.get(docId(key)))?.error?.code).toBe("retries_exhausted");
    expect(await chunkState(key)).toEqual({ generations: [], live: undefined });
  });

  it("when the janitor's stuck sweep fails it", async () => {
    const key = "abandon/stuck.txt";
    await deliverOnce(key, text("stuck"));
    // The message went to the DLQ without a word: the sweep, hours later, gives up on the version.
    const later = () => Date.now() + 4 * 3_600_000;
    const result = await runSweep(
      { api: h.client, store: h.store, now: later },
      { policy: { ...DEFAULT_POLICY, deploymentId: INGEST_DEPLOYMENT }, stuckProcessingMinutes: 150 },
    );
    expect(result.summary.stuckFailed).toBe(1);
    expect((await h.store.get(docId(key)))?.status).toBe("failed");
    expect(await chunkState(key)).toEqual({ generations: [], live: undefined });
    // Nothing is left queued on the record: its upload tag is forgotten once no file carries it.
    const state = await h.store.getState(docId(key));
    expect(state?.staleGenerations ?? []).toEqual([]);
    expect(state?.staleUploadTags ?? []).toEqual([]);
    expect(result.summary.uploadTagsForgotten).toBe(1);
  });

  it("when a takeover redoes the version (the crashed attempt's partial chunks go)", async () => {
    const key = "abandon/takeover.txt";
    const message = await deliverOnce(key, text("twice"));
    // The same message again (SQS redelivery after the crash) takes the claim over and finishes.
    const redelivered = { ...message, attributes: { ...message.attributes, ApproximateReceiveCount: "2" } };
    expect((await h.service().processBatch([redelivered])).batchItemFailures).toEqual([]);
    const { generations, live } = await chunkState(key);
    expect(generations).toEqual([live]);
    expect(await h.store.getText((await h.store.get(docId(key)))!)).toBe(text("twice"));
  });
});
