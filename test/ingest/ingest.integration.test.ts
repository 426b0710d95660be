/**
 * The ingest path end to end on real local servers: s3rver -> SQS-shaped batches -> IngestService ->
 * the provider emulator -> dynalite. Runs once per provider (TEST_PROVIDER, see vitest.config.ts).
 */
import { Readable } from "node:stream";
import { CopyObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { SQSRecord } from "aws-lambda";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { normaliseSequencer } from "../../functions/core/documents/dynamo-store";
import { documentIdFor, uploadTagFor } from "../../functions/core/ingest/events";
import { ObjectGoneError, type ObjectSource } from "../../functions/core/ingest/objects";
import type { RoomMaker } from "../../functions/core/quota/types";
import { s3TestEventMessage, sqsMessageFor } from "../../local/aws/sqs";
import { makeDocx, makePdf } from "../support/pdf-docx";
import { isGlm, testClient } from "../support/provider";
import {
  FAST_RETRY,
  INGEST_DEPLOYMENT,
  type IngestHarness,
  messagesFor,
  startIngestHarness,
} from "./harness";

let h: IngestHarness;

beforeAll(async () => {
  h = await startIngestHarness();
});
afterAll(async () => {
  await h?.close();
});
afterEach(() => {
  h.emulator.setFaults({
    rate429: 0,
    rate500: 0,
    rateDrop: 0,
    rateSlow: 0,
    latencyMs: 0,
    operations: undefined,
  });
  h.emulator.setLimits({ maxFiles: 1000, maxFileBytes: 100 * 1024 * 1024, maxTotalBytes: 10 * 1024 ** 3 });
});

const docId = (key: string) => documentIdFor(h.stack.bucket, key);

async function storedText(key: string): Promise<string | undefined> {
  const doc = await h.store.get(docId(key));
  return doc ? h.store.getText(doc) : undefined;
}

/** Remote files whose names carry the upload tag of `key`'s recorded version. */
function remoteFilesOf(key: string): string[] {
  return h.emulator
    .files()
    .filter((f) => f.filename.includes("__") && f.filename.endsWith(key.split("/").pop()!))
    .map((f) => f.id);
}

describe("ingest end to end", () => {
  it("stores what the provider extracted, for awkward keys and several formats", async () => {
    const html = "<html><body><h1>Head</h1><p>Para &amp; more</p><script>x()</script></body></html>";
    const inputs: [string, string | Buffer][] = [
      ["e2e/plain file.txt", "Hello world.\n\nSecond paragraph."],
      ["e2e/deep/er/a+b=c, d.md", "# Title\n\nMarkdown *body*."],
      ["e2e/ünïcødé 文件.txt", "Unicode 文字 body"],
      ["e2e/table.csv", "name,amount\nalice,3\n"],
      // GLM's file-extract takes no HTML: refused before any upload (below).
      ...(isGlm ? [] : [["e2e/page.html", html] as [string, string]]),
      ["e2e/report.pdf", await makePdf(["A PDF line", "Another line"])],
      ["e2e/letter.docx", await makeDocx(["Dear reader,", "Kind regards."])],
    ];
    const records = [];
    for (const [key, body] of inputs) records.push(await h.put(key, body));
    expect(records[1]!.s3.object.key).toContain("a%2Bb%3Dc%2C+d.md");
    const refused = isGlm ? [await h.put("e2e/page.html", html)] : [];
    expect(await h.deliver(messagesFor([...records, ...refused]))).toEqual([]);
    if (isGlm) {
      expect(await h.store.get(docId("e2e/page.html"))).toMatchObject({
        status: "failed",
        error: { code: "unsupported_type" },
      });
      expect(h.emulator.files().some((f) => f.filename.endsWith("page.html"))).toBe(false);
    }

    for (const [key] of inputs) {
      const doc = await h.store.get(docId(key));
      expect(doc, key).toMatchObject({ status: "ready", key, bucket: h.stack.bucket });
      expect(doc!.remoteFileId).toBeTruthy();
      const extracted = await h.client.getFileContent(doc!.remoteFileId!);
      expect(extracted.length).toBeGreaterThan(0);
      expect(await storedText(key)).toBe(extracted);
      expect(doc!.tokenEstimate).toBeGreaterThan(0);
      expect(doc!.textBytes).toBe(Buffer.byteLength(extracted));
      const remote = h.emulator.files().find((f) => f.id === doc!.remoteFileId)!;
      const tag = uploadTagFor(doc!.documentId, doc!.sequencer, INGEST_DEPLOYMENT);
      expect(remote.filename.startsWith(`${tag}__`)).toBe(true);
      expect(remote.filename.endsWith(key.slice(key.lastIndexOf(".")))).toBe(true);
      expect(remote.filename).toBe(`${tag}__${key.split("/").pop()}`);
    }
    expect(await storedText("e2e/plain file.txt")).toBe("Hello world.\n\nSecond paragraph.");
    const listed = await h.store.list({ prefix: "e2e/", status: "ready" });
    expect(listed.items.map((d) => d.key).sort()).toEqual(inputs.map(([k]) => k).sort());
  });

  it("ingests copies (the local server's copy events carry no ETag: metadata comes from HEAD)", async () => {
    await h.put("copy/source.txt", "copied text");
    await h.stack.s3Client.send(
      new CopyObjectCommand({
        Bucket: h.stack.bucket,
        Key: "copy/target.txt",
        CopySource: `${h.stack.bucket}/copy/source.txt`,
      }),
    );
    const copied = await h.eventFor("copy/target.txt");
    expect(copied.eventName).toBe("ObjectCreated:Copy");
    expect(await h.deliver(messagesFor([copied]))).toEqual([]);
    expect(await storedText("copy/target.txt")).toBe("copied text");
    expect((await h.store.get(docId("copy/target.txt")))?.contentType).toBeTruthy();
  });

  it("hands records back untouched when the invocation's deadline has passed", async () => {
    const record = await h.put("late/doc.txt", "too late");
    const uploads = h.emulator.requests().filter((r) => r.operation === "upload").length;
    const [message] = messagesFor([record]);
    const res = await h.service().processBatch([message!], { deadline: Date.now() - 1 });
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: message!.messageId }]);
    expect(h.emulator.requests().filter((r) => r.operation === "upload").length).toBe(uploads);
    expect(await h.store.get(docId("late/doc.txt"))).toBeUndefined();
  });

  it("ignores s3:TestEvent and keeps malformed messages for the DLQ", async () => {
    const malformed = { ...sqsMessageFor([]), body: "not json" };
    const res = await h.service().processBatch([s3TestEventMessage(h.stack.bucket), malformed]);
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: malformed.messageId }]);
  });
});

describe("exactly once", () => {
  it("creates one remote file per version when every event arrives 3 times, some concurrently", async () => {
    const before = h.emulator.files().length;
    const records = [];
    for (let i = 0; i < 6; i++) records.push(await h.put(`dup/doc-${i}.txt`, `document ${i}`));
    // Two copies in one batch (processed concurrently), then a third copy later.
    const first = [...messagesFor(records), ...messagesFor(records)];
    expect(await h.deliver(first)).toEqual([]);
    expect(await h.deliver(messagesFor(records))).toEqual([]);
    expect(h.emulator.files().length - before).toBe(6);
    for (let i = 0; i < 6; i++) expect(await storedText(`dup/doc-${i}.txt`)).toBe(`document ${i}`);
  });

  it("survives 20% provider faults (429 with Retry-After, 500, dropped connections) with no orphan", async () => {
    h.emulator.setFaults({ rate429: 0.07, rate500: 0.07, rateDrop: 0.06, retryAfterSeconds: 0.05, seed: 7 });
    const records = [];
    for (let i = 0; i < 15; i++) records.push(await h.put(`faults/doc-${i}.txt`, `faulty ${i}`));
    const dead = await h.deliver(messagesFor(records), {
      service: h.service({ config: { maxReceiveCount: 20 } }),
      maxReceiveCount: 20,
    });
    h.emulator.setFaults({ rate429: 0, rate500: 0, rateDrop: 0 });
    expect(dead).toEqual([]);
    const requests = h.emulator
      .requests()
      .filter((r) => r.status === 0 || r.status === 429 || r.status === 500);
    expect(requests.length).toBeGreaterThan(0); // faults really happened
    const recorded = new Set<string>();
    for (let i = 0; i < 15; i++) {
      const doc = await h.store.get(docId(`faults/doc-${i}.txt`));
      expect(doc?.status).toBe("ready");
      expect(await storedText(`faults/doc-${i}.txt`)).toBe(`faulty ${i}`);
      recorded.add(doc!.remoteFileId!);
    }
    // Every remote file of these documents is the one its record holds: no orphan, no twin.
    const tags = new Set(
      records.map((r) =>
        uploadTagFor(
          docId(decodeURIComponent(r.s3.object.key)),
          normaliseSequencer(r.s3.object.sequencer),
          INGEST_DEPLOYMENT,
        ),
      ),
    );
    const tagged = h.emulator.files().filter((f) => tags.has(f.filename.split("__")[0]!));
    expect(tagged.map((f) => f.id).sort()).toEqual([...recorded].sort());
    expect(recorded.size).toBe(15);
  });

  it("a crash between upload and record write, then redelivery, leaves one remote file", async () => {
    const record = await h.put("crash/doc.txt", "crash me");
    const tag = uploadTagFor(
      docId("crash/doc.txt"),
      normaliseSequencer(record.s3.object.sequencer),
      INGEST_DEPLOYMENT,
    );
    let crashes = 0;
    const crashing = h.service({
      hooks: {
        afterUpload: () => {
          if (crashes++ === 0) throw new Error("simulated crash after upload");
        },
      },
    });
    const [message] = messagesFor([record]);
    const first = await crashing.processBatch([message!]);
    expect(first.batchItemFailures).toHaveLength(1);
    expect(h.emulator.files().filter((f) => f.filename.startsWith(tag))).toHaveLength(1);
    expect((await h.store.get(docId("crash/doc.txt")))?.status).toBe("processing");

    // A duplicate copy of the event (another message) while the crashed claim's lease is live: acked.
    const duplicate = sqsMessageFor([record]);
    expect((await crashing.processBatch([duplicate])).batchItemFailures).toEqual([]);
    // SQS redelivers the crashed message (same id): it takes over and reuses the upload.
    const again: SQSRecord = {
      ...message!,
      attributes: { ...message!.attributes, ApproximateReceiveCount: "2" },
    };
    expect((await crashing.processBatch([again])).batchItemFailures).toEqual([]);
    expect(h.emulator.files().filter((f) => f.filename.startsWith(tag))).toHaveLength(1);
    expect(await storedText("crash/doc.txt")).toBe("crash me");
    expect(h.metrics.counts.get("UploadsReused")).toBeGreaterThanOrEqual(1);
  });

  it("a takeover waits for a crashed attempt's upload that lands late, and reuses it (no second upload)", async () => {
    const key = "crash/late.txt";
    const record = await h.put(key, "landed late");
    const tag = uploadTagFor(docId(key), normaliseSequencer(record.s3.object.sequencer), INGEST_DEPLOYMENT);
    const uploads = () => h.emulator.requests().filter((r) => r.operation === "upload").length;
    const before = uploads();
    let late: Promise<unknown> | undefined;
    const crashing = h.service({
      hooks: {
        beforeUpload: () => {
          // The crashed invocation's request reaches the provider, which stores it a moment later.
          late = new Promise((r) => setTimeout(r, 1_500)).then(() =>
            h.client.uploadFile({ filename: `${tag}__late.txt`, open: () => Readable.from(["landed late"]) }),
          );
          throw new Error("simulated crash while uploading");
        },
      },
    });
    const [message] = messagesFor([record]);
    expect((await crashing.processBatch([message!])).batchItemFailures).toHaveLength(1);
    expect((await h.store.getState(docId(key)))?.uploadingSince).toBeDefined();

    const again: SQSRecord = {
      ...message!,
      attributes: { ...message!.attributes, ApproximateReceiveCount: "2" },
    };
    const takeover = h.service({ config: { takeoverSettleMs: 10_000 } });
    expect((await takeover.processBatch([again])).batchItemFailures).toEqual([]);
    await late;
    expect(uploads() - before).toBe(1);
    expect(h.emulator.files().filter((f) => f.filename.startsWith(tag))).toHaveLength(1);
    expect(await storedText(key)).toBe("landed late");
  });

  it("after the lease expires any delivery takes over a crashed claim", async () => {
    const record = await h.put("crash/lease.txt", "lease");
    const tag = uploadTagFor(
      docId("crash/lease.txt"),
      normaliseSequencer(record.s3.object.sequencer),
      INGEST_DEPLOYMENT,
    );
    const crashing = h.service({
      config: { defaultBudgetMs: 60_000, leaseMarginMs: -120_000 }, // the claim is born expired
      hooks: {
        beforeReady: () => {
          throw new Error("simulated crash before ready");
        },
      },
    });
    expect((await crashing.processBatch(messagesFor([record]))).batchItemFailures).toHaveLength(1);
    expect(await h.deliver(messagesFor([record]))).toEqual([]);
    expect(h.emulator.files().filter((f) => f.filename.startsWith(tag))).toHaveLength(1);
    const doc = await h.store.get(docId("crash/lease.txt"));
    expect(doc?.status).toBe("ready");
    expect((await h.store.getChunks(doc!)).length).toBe(doc!.chunkCount);
  });
});

describe("bad input", () => {
  it("fails each bad object with a reason while the rest of the batch succeeds", async () => {
    const limit = 2_000;
    h.emulator.setLimits({ maxFileBytes: limit });
    const service = h.service({ config: { maxFileBytes: limit } });
    const uploadsBefore = h.emulator.requests().filter((r) => r.operation === "upload").length;
    const bad: [string, string | Buffer, string][] = [
      ["bad/zero.txt", "", "empty"],
      ["bad/big.txt", "x".repeat(limit + 1), "too_large"],
      ["bad/tool.exe", "MZ binary", "unsupported_type"],
      ["bad/noext", "plain", "unsupported_type"],
    ];
    const providerSide: [string, string | Buffer, string][] = [
      ["bad/corrupt.pdf", "%PDF-1.4\nthis is not really a pdf\n%%EOF", "extraction_failed"],
      ["bad/binary.txt", Buffer.from([0x00, 0xff, 0xfe, 0x00, 0x01, 0x02, 0x80, 0x81]), "extraction_failed"],
    ];
    const good: [string, string][] = [
      ["bad/good-1.txt", "fine one"],
      ["bad/good-2.md", "fine two"],
    ];
    const records = [];
    for (const [key, body] of [...bad, ...providerSide, ...good]) records.push(await h.put(key, body));
    expect(await h.deliver(messagesFor(records), { service })).toEqual([]);

    for (const [key, , code] of [...bad, ...providerSide]) {
      const doc = await h.store.get(docId(key));
      expect(doc?.status, key).toBe("failed");
      expect(doc?.error?.code, key).toBe(code);
      expect(doc?.error?.message.length, key).toBeGreaterThan(10);
      expect(doc?.remoteFileId).toBeUndefined();
    }
    expect((await h.store.get(docId("bad/corrupt.pdf")))?.error?.message).toMatch(/could not extract/);
    for (const [key, text] of good) expect(await storedText(key)).toBe(text);
    // Only the provider-side cases and the good ones reached the provider; failed uploads were removed.
    const uploads = h.emulator.requests().filter((r) => r.operation === "upload").length - uploadsBefore;
    expect(uploads).toBe(providerSide.length + good.length);
    expect(h.emulator.files().filter((f) => /__(corrupt\.pdf|binary\.txt)$/.test(f.filename))).toEqual([]);
  });

  it("stores a several-MB text as many chunks that reassemble exactly", async () => {
    const paragraph = (i: number) =>
      `Paragraph ${i}: ${"lorem ipsum dolor sit amet ".repeat(20)}文字 ${i}.\n\n`;
    const text = Array.from({ length: 6_000 }, (_, i) => paragraph(i)).join("");
    expect(text.length).toBeGreaterThan(3_000_000);
    const record = await h.put("big/large.txt", text);
    expect(await h.deliver(messagesFor([record]))).toEqual([]);
    const doc = await h.store.get(docId("big/large.txt"));
    expect(doc?.chunkCount).toBeGreaterThan(300);
    expect(await storedText("big/large.txt")).toBe(text);
  });

  it("marks retries_exhausted on the last delivery, matching the DLQ", async () => {
    h.emulator.setFaults({ rate500: 1, operations: ["upload"] });
    const record = await h.put("retry/doc.txt", "never uploaded");
    const service = h.service({ config: { maxReceiveCount: 2 } });
    const dead = await h.deliver(messagesFor([record]), { service });
    expect(dead).toHaveLength(1);
    const doc = await h.store.get(docId("retry/doc.txt"));
    expect(doc?.status).toBe("failed");
    expect(doc?.error?.code).toBe("retries_exhausted");
    expect(doc?.error?.message).toMatch(/^gave up after 2 attempts: /);
  });

  it("reports a missing API key as provider_not_configured", async () => {
    const record = await h.put("nokey/doc.txt", "no key");
    const client = testClient({
      baseURL: h.emulator.baseURL,
      apiKey: async () => undefined,
      retry: FAST_RETRY,
    });
    expect(await h.deliver(messagesFor([record]), { service: h.service({ provider: client }) })).toEqual([]);
    expect((await h.store.get(docId("nokey/doc.txt")))?.error).toEqual({
      code: "provider_not_configured",
      message: "provider API key not configured",
    });
  });

  it("asks the room maker, retries while nothing is freeable, and fails as quota on the last delivery", async () => {
    const count = h.emulator.files().length;
    h.emulator.setLimits({ maxFiles: count });
    const freeing: RoomMaker = {
      async makeRoom() {
        h.emulator.setLimits({ maxFiles: count + 1 });
        return { enough: true, freedFiles: 1, freedBytes: 10 };
      },
    };
    const full: RoomMaker = { makeRoom: async () => ({ enough: false, freedFiles: 0, freedBytes: 0 }) };
    const a = await h.put("quota/a.txt", "room was made");
    expect(await h.deliver(messagesFor([a]), { service: h.service({ roomMaker: freeing }) })).toEqual([]);
    expect(await storedText("quota/a.txt")).toBe("room was made");
    const b = await h.put("quota/b.txt", "no room");
    // Not the last delivery: the record goes back to the queue and the document keeps processing.
    const first = sqsMessageFor([b], { receiveCount: 1 });
    const once = { service: h.service({ roomMaker: full }), maxReceiveCount: 1 };
    expect(await h.deliver([first], once)).toEqual([first.messageId]);
    const waiting = await h.store.getState(docId("quota/b.txt"));
    expect(waiting?.status).toBe("processing");
    // The provider refused the upload: none is in flight, so the redelivery will not wait for one.
    expect(waiting?.uploadingSince).toBeUndefined();
    // The redrive limit's delivery: the document says why it gave up.
    const last = { ...first, attributes: { ...first.attributes, ApproximateReceiveCount: "5" } };
    expect(await h.deliver([last], { service: h.service({ roomMaker: full }) })).toEqual([]);
    const doc = await h.store.get(docId("quota/b.txt"));
    expect(doc?.status).toBe("failed");
    expect(doc?.error?.code).toBe("quota");
    expect(doc?.error?.message).toMatch(/quota/);
  });
});

/**
 * A versioned bucket, played by a fake ObjectSource (the local S3 server keeps no versions): each
 * version's bytes by version id, and which one is current. DynamoDB and the provider are real.
 */
function versionedObjects(versions: Record<string, string>) {
  const state = { current: undefined as string | undefined };
  const objects: ObjectSource = {
    async head(_bucket, key, pin) {
      const id = pin.versionId ?? state.current;
      if (!id || versions[id] === undefined) throw new ObjectGoneError(`${key} is gone`);
      return {
        size: Buffer.byteLength(versions[id]!),
        eTag: `etag-${id}`,
        versionId: id,
        contentType: "text/plain",
      };
    },
    async open(_bucket, key, pin) {
      const id = pin.versionId ?? state.current;
      if (!id || versions[id] === undefined) throw new ObjectGoneError(`${key} is gone`);
      return { body: Readable.from([versions[id]!]), contentType: "text/plain" };
    },
  };
  return { objects, state };
}

function versionEvent(key: string, eventName: string, sequencer: string, versionId: string, text?: string) {
  const object: Record<string, unknown> = { key: encodeURIComponent(key), sequencer, versionId };
  if (text !== undefined) Object.assign(object, { size: Buffer.byteLength(text), eTag: `etag-${versionId}` });
  return sqsMessageFor([
    {
      eventName,
      eventTime: new Date().toISOString(),
      s3: { bucket: { name: h.stack.bucket }, object },
    } as never,
  ]);
}

describe("versioned buckets", () => {
  it("purging the current version brings the previous one back; purging the last one deletes", async () => {
    const key = "versioned/notes.txt";
    const texts = { v1: "the first draft", v2: "the second draft" };
    const { objects, state } = versionedObjects(texts);
    const svc = h.service({ objects });
    const deliver = (m: SQSRecord) => h.deliver([m], { service: svc });

    state.current = "v1";
    expect(await deliver(versionEvent(key, "ObjectCreated:Put", "10", "v1", texts.v1))).toEqual([]);
    state.current = "v2";
    expect(await deliver(versionEvent(key, "ObjectCreated:Put", "20", "v2", texts.v2))).toEqual([]);
    expect(await storedText(key)).toBe(texts.v2);

    // Purging a noncurrent version changes nothing.
    expect(await deliver(versionEvent(key, "ObjectRemoved:Delete", "28", "v0"))).toEqual([]);
    expect(await storedText(key)).toBe(texts.v2);

    // Purging the current version: S3 makes v1 current again, and so does the document.
    state.current = "v1";
    expect(await deliver(versionEvent(key, "ObjectRemoved:Delete", "30", "v2"))).toEqual([]);
    const doc = await h.store.get(docId(key));
    expect(doc?.status).toBe("ready");
    expect(doc?.versionId).toBe("v1");
    expect(await storedText(key)).toBe(texts.v1);
    expect(h.metrics.counts.get("VersionsRestored")).toBeGreaterThanOrEqual(1);
    // One live remote file for the document: the restored version's.
    expect(h.emulator.files().filter((f) => f.id === doc?.remoteFileId)).toHaveLength(1);
    expect(remoteFilesOf(key)).toEqual([doc?.remoteFileId]);

    // Purging the last version deletes the document.
    state.current = undefined;
    expect(await deliver(versionEvent(key, "ObjectRemoved:Delete", "40", "v1"))).toEqual([]);
    expect(await h.store.get(docId(key))).toBeUndefined();
    expect(remoteFilesOf(key)).toEqual([]);
  });
});

describe("order, overwrite and delete", () => {
  it("an older create never overwrites a newer version", async () => {
    const v1 = await h.put("order/ordered.txt", "version one");
    const v2 = await h.put("order/ordered.txt", "version two");
    // In S3 the older event's HEAD (If-Match on its ETag) answers 412; s3rver ignores If-Match, so
    // this exercises the sequencer check itself.
    expect(await h.deliver(messagesFor([v2]))).toEqual([]);
    expect(await h.deliver(messagesFor([v1]))).toEqual([]);
    expect(await storedText("order/ordered.txt")).toBe("version two");
    expect(remoteFilesOf("order/ordered.txt")).toHaveLength(1);
  });

  it("an older create after a delete does not resurrect the document", async () => {
    const v1 = await h.put("order/gone.txt", "short lived");
    const del = await h.remove("order/gone.txt");
    expect(await h.deliver(messagesFor([del]))).toEqual([]);
    expect(await h.deliver(messagesFor([v1]))).toEqual([]);
    expect(await h.store.get(docId("order/gone.txt"))).toBeUndefined();
    expect((await h.store.getState(docId("order/gone.txt")))?.status).toBe("deleted");
    expect(remoteFilesOf("order/gone.txt")).toHaveLength(0);
  });

  it("a newer version landing while an older one is mid-upload wins, with no leftover file", async () => {
    const key = "race/new.txt";
    const v1 = await h.put(key, "old bytes");
    const slow = h.service({
      hooks: {
        afterUpload: async () => {
          // While v1's upload is between the provider and the record, v2 is put and fully ingested.
          expect(await h.deliver(messagesFor([await h.put(key, "new bytes")]))).toEqual([]);
        },
      },
    });
    expect((await slow.processBatch(messagesFor([v1]))).batchItemFailures).toEqual([]);
    const doc = await h.store.get(docId(key));
    expect(doc?.status).toBe("ready");
    expect(await storedText(key)).toBe("new bytes");
    expect(
      h.emulator
        .files()
        .filter((f) => f.filename.endsWith("__new.txt"))
        .map((f) => f.id),
    ).toEqual([doc!.remoteFileId]);
  });

  it("a delete landing mid-upload leaves nothing behind", async () => {
    const key = "race/deleted.txt";
    const v1 = await h.put(key, "short lived");
    const del = await h.remove(key);
    const slow = h.service({
      hooks: {
        afterUpload: async () => {
          expect(await h.deliver(messagesFor([del]))).toEqual([]);
        },
      },
    });
    // s3rver has already removed the bytes: give the old version's read something to send.
    await h.stack.s3Client.send(
      new PutObjectCommand({ Bucket: h.stack.bucket, Key: key, Body: "short lived" }),
    );
    expect((await slow.processBatch(messagesFor([v1]))).batchItemFailures).toEqual([]);
    expect(await h.store.get(docId(key))).toBeUndefined();
    expect(h.emulator.files().filter((f) => f.filename.endsWith("__deleted.txt"))).toEqual([]);
  });

  it("overwrite replaces text, chunks and remote file; delete removes everything", async () => {
    const key = "life/doc.txt";
    expect(await h.deliver(messagesFor([await h.put(key, "first text")]))).toEqual([]);
    const first = (await h.store.get(docId(key)))!;
    expect(await h.deliver(messagesFor([await h.put(key, "second text")]))).toEqual([]);
    const second = (await h.store.get(docId(key)))!;
    expect(await storedText(key)).toBe("second text");
    expect(second.textGeneration).not.toBe(first.textGeneration);
    expect([...(await h.store.chunkGenerations(docId(key))).keys()]).toEqual([second.textGeneration]);
    expect(h.emulator.files().map((f) => f.id)).not.toContain(first.remoteFileId);
    expect(h.emulator.files().map((f) => f.id)).toContain(second.remoteFileId);

    expect(await h.deliver(messagesFor([await h.remove(key)]))).toEqual([]);
    expect(await h.store.get(docId(key))).toBeUndefined();
    expect(await h.store.chunkGenerations(docId(key))).toEqual(new Map());
    expect(h.emulator.files().map((f) => f.id)).not.toContain(second.remoteFileId);
    expect((await h.store.list({ prefix: "life/" })).items).toEqual([]);
    const state = await h.store.getState(docId(key));
    expect(state?.staleFileIds).toBeUndefined();
    expect(state?.staleGenerations).toBeUndefined();
  });
});
