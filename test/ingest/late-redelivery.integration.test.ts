/**
 * The janitor's stuck sweep fails a `processing` version whose ingestion seems abandoned (no delivery
 * left after the queue's visibility timeout x receives). A redelivery that was only late (a queue
 * backlog, quota waits) must still finish the version, not ack as a duplicate and leave it failed
 * with a pointer to an empty dead-letter queue. On the real local servers.
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

/** The sweep as it would run hours later. */
const sweepLater = () =>
  runSweep(
    { api: h.client, store: h.store, now: () => Date.now() + 4 * 3_600_000 },
    { policy: { ...DEFAULT_POLICY, deploymentId: INGEST_DEPLOYMENT }, stuckProcessingMinutes: 150 },
  );

describe("a late redelivery after the stuck sweep", () => {
  for (const crashAt of ["beforeUpload", "beforeReady"] as const) {
    it(`takes the version the janitor failed over and finishes it (first attempt died ${crashAt})`, async () => {
      const key = `late/${crashAt}.txt`;
      const body = `The late delivery of ${crashAt} still lands.`;
      const [message] = messagesFor([await h.put(key, body)]);
      const dying = h.service({
        hooks: {
          [crashAt]: () => {
            throw new Error("the invocation timed out");
          },
        },
      });
      expect((await dying.processBatch([message!])).batchItemFailures).toHaveLength(1);

      expect((await sweepLater()).summary.stuckFailed).toBe(1);
      expect((await h.store.get(docId(key)))?.error?.code).toBe("retries_exhausted");

      // The redelivery, with receives left, arrives after all.
      const late = { ...message!, attributes: { ...message!.attributes, ApproximateReceiveCount: "2" } };
      expect(
        await h
          .service()
          .processMessage(late, { deadline: Date.now() + 60_000, leaseUntil: Date.now() + 120_000 }),
      ).toEqual(["ready"]);

      const doc = await h.store.get(docId(key));
      expect(doc).toMatchObject({ status: "ready" });
      expect(doc?.error).toBeUndefined();
      expect(await h.store.getText(doc!)).toBe(body);
      // One live remote file for the document, the one it records; its chunks are the live text's only.
      await sweepLater();
      const files = h.emulator.files().filter((f) => f.filename.endsWith(`__${crashAt}.txt`));
      expect(files.map((f) => f.id)).toEqual([doc!.remoteFileId]);
      expect([...(await h.store.chunkGenerations(docId(key))).keys()]).toEqual([doc!.textGeneration]);
    });
  }

  it("a version failed for a reason of its own is not redone by a duplicate", async () => {
    const key = "late/empty.txt";
    const [message] = messagesFor([await h.put(key, "")]);
    expect(
      await h
        .service()
        .processMessage(message!, { deadline: Date.now() + 60_000, leaseUntil: Date.now() + 120_000 }),
    ).toEqual(["failed"]);
    const again = { ...message!, attributes: { ...message!.attributes, ApproximateReceiveCount: "2" } };
    expect(
      await h
        .service()
        .processMessage(again, { deadline: Date.now() + 60_000, leaseUntil: Date.now() + 120_000 }),
    ).toEqual(["duplicate"]);
    expect((await h.store.get(docId(key)))?.error?.code).toBe("empty");
  });
});
