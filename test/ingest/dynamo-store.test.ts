import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ClaimInput,
  DynamoDocumentStore,
  InvalidCursorError,
  normaliseSequencer,
} from "../../functions/core/documents/dynamo-store";
import { DOCUMENT_SK, documentPk, filesPartition, TABLE_KEYS } from "../../functions/core/documents/table";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let store: DynamoDocumentStore;

beforeAll(async () => {
  stack = await startLocalStack({ prefix: "store" });
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
});
afterAll(async () => {
  await stack?.close();
});

let n = 0;
function claimInput(overrides: Partial<ClaimInput> = {}): ClaimInput {
  return {
    documentId: "doc-a",
    bucket: "b",
    key: "a.txt",
    sequencer: normaliseSequencer("10"),
    size: 10,
    uploadTag: "tag10",
    owner: `owner-${++n}`,
    messageId: `msg-${n}`,
    attempts: 1,
    leaseUntil: Date.now() + 60_000,
    now: new Date(),
    ...overrides,
  };
}

describe("normaliseSequencer", () => {
  it("orders like hex numbers after zero padding", () => {
    expect(normaliseSequencer("ff") < normaliseSequencer("100")).toBe(true);
    expect(normaliseSequencer("0055AED6DCD90281E5")).toBe(normaliseSequencer("55aed6dcd90281e5"));
    expect(() => normaliseSequencer("xyz")).toThrow(/invalid/);
  });
});

describe("DynamoDocumentStore", () => {
  it("lists by prefix and status with limit and cursor, in key order", async () => {
    const keys = ["p/one.txt", "p/two.txt", "p/sub/three.txt", "q/four.txt", "p/five.txt"];
    for (const [i, key] of keys.entries()) {
      await store.putDocumentText(
        { documentId: `list-${i}`, key, status: i === 1 ? "failed" : "ready" },
        `text ${i}`,
      );
    }
    const all = await store.list({ prefix: "p/" });
    expect(all.items.map((d) => d.key)).toEqual(["p/five.txt", "p/one.txt", "p/sub/three.txt", "p/two.txt"]);
    const ready: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ prefix: "p/", status: "ready", limit: 1, cursor });
      expect(page.items.length).toBeLessThanOrEqual(1);
      ready.push(...page.items.map((d) => d.key));
      cursor = page.cursor;
    } while (cursor);
    expect(ready).toEqual(["p/five.txt", "p/one.txt", "p/sub/three.txt"]);
    await expect(store.list({ cursor: "garbage" })).rejects.toBeInstanceOf(InvalidCursorError);
  });

  it("stores big texts as ordered chunks that reassemble exactly", async () => {
    const text = Array.from({ length: 3000 }, (_, i) => `Paragraph ${i} — ünïcødé 文字.\n\n`).join("");
    const record = await store.putDocumentText({ documentId: "big", key: "big.txt" }, text);
    expect(record.chunkCount).toBeGreaterThan(5);
    const chunks = await store.getChunks(record);
    expect(chunks.map((c) => c.index)).toEqual([...chunks.keys()]);
    expect(chunks.map((c) => c.text).join("")).toBe(text);
    expect(record.tokenEstimate).toBe(chunks.reduce((s, c) => s + c.tokens, 0));
  });

  it("claims: one winner among concurrent deliveries, then duplicate/busy/stale", async () => {
    const base = { documentId: "claim-1", sequencer: normaliseSequencer("20") };
    const results = await Promise.all(Array.from({ length: 5 }, () => store.claimVersion(claimInput(base))));
    expect(results.filter((r) => r.outcome === "claimed")).toHaveLength(1);
    expect(results.filter((r) => r.outcome === "busy")).toHaveLength(4);
    const winner = results.find((r) => r.outcome === "claimed")!;
    if (winner.outcome !== "claimed") throw new Error("unreachable");

    // The same SQS message redelivered (after a crash) takes over at once.
    const again = await store.claimVersion(claimInput({ ...base, messageId: winner.record.claimMessageId }));
    expect(again.outcome).toBe("claimed");
    if (again.outcome !== "claimed") throw new Error("unreachable");
    expect(again.takeover).toBe(true);

    // An older version is stale.
    expect(
      (await store.claimVersion(claimInput({ ...base, sequencer: normaliseSequencer("1F") }))).outcome,
    ).toBe("stale");

    expect(
      await store.finaliseReady({
        documentId: base.documentId,
        sequencer: base.sequencer,
        owner: winner.record.claimOwner!,
        generation: "g1",
        chunkCount: 0,
        textBytes: 0,
        tokenEstimate: 0,
        now: new Date(),
      }),
    ).toBe(false); // the takeover owns it now
    expect(
      await store.finaliseReady({
        documentId: base.documentId,
        sequencer: base.sequencer,
        owner: again.record.claimOwner!,
        generation: "g1",
        chunkCount: 0,
        textBytes: 0,
        tokenEstimate: 0,
        now: new Date(),
      }),
    ).toBe(true);
    expect((await store.claimVersion(claimInput(base))).outcome).toBe("duplicate");
    const doc = await store.get(base.documentId);
    expect(doc?.status).toBe("ready");
    expect(doc?.uploadTag).toBeUndefined();
  });

  it("lets any delivery take over after the lease expires", async () => {
    const base = { documentId: "claim-2", sequencer: normaliseSequencer("30") };
    const first = await store.claimVersion(claimInput({ ...base, leaseUntil: Date.now() - 1 }));
    expect(first.outcome).toBe("claimed");
    const second = await store.claimVersion(claimInput(base));
    expect(second.outcome).toBe("claimed");
    if (second.outcome === "claimed") expect(second.takeover).toBe(true);
  });

  it("a newer version queues the old remote file; tombstones hide and block older events", async () => {
    const id = "claim-3";
    const v1 = await store.claimVersion(claimInput({ documentId: id, key: "t/x.txt", sequencer: "40" }));
    if (v1.outcome !== "claimed") throw new Error("expected claim");
    await store.recordUpload(
      id,
      "40",
      v1.record.claimOwner!,
      { id: "file-1", bytes: 3, createdAt: "t" },
      new Date(),
    );
    expect((await store.listWithRemoteFiles()).map((d) => d.documentId)).toContain(id);

    const v2 = await store.claimVersion(claimInput({ documentId: id, key: "t/x.txt", sequencer: "41" }));
    expect(v2.outcome).toBe("claimed");
    const state = await store.getState(id);
    expect(state?.remoteFileId).toBeUndefined();
    expect(state?.staleFileIds).toEqual(["file-1"]);
    expect(state?.staleUploadTags).toEqual(["tag10"]);
    // Queued files are not released (they are already on the to-delete list); deleted, they are forgotten.
    expect(await store.releaseRemoteFile(id, "file-1", new Date().toISOString())).toBe(false);
    await store.forgetDeletedFile(id, "file-1");
    expect((await store.getState(id))?.staleFileIds).toBeUndefined();

    expect(
      await store.tombstone({
        documentId: id,
        bucket: "b",
        key: "t/x.txt",
        sequencer: "50",
        now: new Date(),
      }),
    ).toBe(true);
    expect(await store.get(id)).toBeUndefined();
    expect((await store.list({ prefix: "t/" })).items).toEqual([]);
    expect((await store.getState(id))?.status).toBe("deleted");
    expect((await store.claimVersion(claimInput({ documentId: id, sequencer: "42" }))).outcome).toBe("stale");
    expect(
      await store.tombstone({
        documentId: id,
        bucket: "b",
        key: "t/x.txt",
        sequencer: "45",
        now: new Date(),
      }),
    ).toBe(false);
    // A newer create resurrects it.
    expect(
      (await store.claimVersion(claimInput({ documentId: id, key: "t/x.txt", sequencer: "51" }))).outcome,
    ).toBe("claimed");
    expect((await store.list({ prefix: "t/" })).items.map((d) => d.status)).toEqual(["processing"]);
  });

  it("purging a noncurrent version leaves the document alone; purging the current one deletes it", async () => {
    const id = "purge";
    const v = await store.claimVersion(
      claimInput({ documentId: id, key: "v.txt", sequencer: "60", versionId: "v2" }),
    );
    expect(v.outcome).toBe("claimed");
    const base = { documentId: id, bucket: "b", key: "v.txt", now: new Date() };
    expect(await store.tombstone({ ...base, sequencer: "61", purgedVersionId: "v1" })).toBe(false);
    expect((await store.getState(id))?.status).toBe("processing");
    expect(await store.tombstone({ ...base, sequencer: "62", purgedVersionId: "v2" })).toBe(true);
    expect((await store.getState(id))?.status).toBe("deleted");
  });

  it("releaseRemoteFile moves the held file to the to-delete list, only while the record holds it", async () => {
    await store.putDocumentText({ documentId: "rel", key: "rel.txt", remoteFileId: "f-rel" }, "hello");
    expect(await store.releaseRemoteFile("rel", "other", "2026-01-01T00:00:00Z")).toBe(false);
    expect(await store.releaseRemoteFile("rel", "f-rel", "2026-01-01T00:00:00Z")).toBe(true);
    const doc = await store.get("rel");
    expect(doc?.remoteFileId).toBeUndefined();
    expect(doc?.remoteFileReleasedAt).toBe("2026-01-01T00:00:00Z");
    expect(doc?.staleFileIds).toEqual(["f-rel"]);
    // A second (racing) janitor loses.
    expect(await store.releaseRemoteFile("rel", "f-rel", "2026-01-01T00:00:00Z")).toBe(false);
    await store.forgetDeletedFile("rel", "f-rel");
    expect((await store.get("rel"))?.staleFileIds).toBeUndefined();
  });

  it("lists the records holding files from the sparse holdsFiles index, and prunes those that hold none", async () => {
    const inIndex = async (documentId: string) => {
      const { Item } = await stack.documentClient.send(
        new GetCommand({ TableName: stack.tableName, Key: { pk: documentPk(documentId), sk: DOCUMENT_SK } }),
      );
      return Item?.[TABLE_KEYS.holdsFilesIndex.partitionKey] === filesPartition(documentId);
    };
    const listed = async () => (await store.listWithRemoteFiles()).map((d) => d.documentId);
    await store.putDocumentText({ documentId: "idx-held", key: "idx/held.txt", remoteFileId: "f-idx" }, "x");
    await store.putDocumentText({ documentId: "idx-none", key: "idx/none.txt" }, "word ".repeat(30_000));
    expect(await inIndex("idx-held")).toBe(true);
    expect(await inIndex("idx-none")).toBe(false);
    expect(await listed()).toContain("idx-held");
    expect(await listed()).not.toContain("idx-none");

    // Released and deleted: still in the index until the next listing sees it holds nothing, then out.
    expect(await store.releaseRemoteFile("idx-held", "f-idx", new Date().toISOString())).toBe(true);
    expect(await listed()).toContain("idx-held");
    await store.forgetDeletedFile("idx-held", "f-idx");
    expect(await inIndex("idx-held")).toBe(true);
    expect(await listed()).not.toContain("idx-held");
    expect(await inIndex("idx-held")).toBe(false);

    // A claim (upload intent) and an upload bring it back.
    const claim = await store.claimVersion(
      claimInput({ documentId: "idx-held", key: "idx/held.txt", sequencer: normaliseSequencer("99") }),
    );
    if (claim.outcome !== "claimed") throw new Error("expected claim");
    expect(await inIndex("idx-held")).toBe(true);
    expect(await listed()).toContain("idx-held");
  });

  it("deletes a generation's chunks", async () => {
    const record = await store.putDocumentText(
      { documentId: "gen", key: "gen.txt", textGeneration: "gX" },
      "word ".repeat(30_000),
    );
    expect(record.chunkCount).toBeGreaterThan(1);
    expect(await store.deleteGeneration("gen", "gX", 1)).toBe(record.chunkCount! - 1);
    expect(await store.chunkGenerations("gen")).toEqual(new Map([["gX", 1]]));
    expect(await store.deleteGeneration("gen", "gX")).toBe(1);
    expect(await store.chunkGenerations("gen")).toEqual(new Map());
  });

  it("reads chosen chunks with each document's version, or why it has no text any more", async () => {
    const text = (word: string) => `${word} `.repeat(30_000);
    await store.putDocumentText({ documentId: "ck-a", key: "ck/a.txt", textGeneration: "a1" }, text("a"));
    await store.putDocumentText({ documentId: "ck-b", key: "ck/b.txt", textGeneration: "b1" }, text("b"));
    await store.putDocumentText({ documentId: "ck-c", key: "ck/c.txt", textGeneration: "c1" }, text("c"));
    const keys = [
      { documentId: "ck-a", generation: "a1", index: 1 },
      { documentId: "ck-b", generation: "b1", index: 0 },
      { documentId: "ck-c", generation: "c1", index: 0 },
    ];
    // b is overwritten (its chunks still there), c deleted with its chunks.
    await store.putDocumentText({ documentId: "ck-b", key: "ck/b.txt", textGeneration: "b2" }, text("B"));
    await store.tombstone({
      documentId: "ck-c",
      bucket: "b",
      key: "ck/c.txt",
      sequencer: normaliseSequencer("7"),
      now: new Date(),
    });
    await store.deleteGeneration("ck-c", "c1");
    const read = await store.readChunksAt(keys);
    expect(read.documents.get("ck-a")).toMatchObject({ ok: true, version: "current" });
    expect(read.documents.get("ck-b")).toMatchObject({ ok: true, version: "previous" });
    expect(read.documents.get("ck-c")).toMatchObject({ ok: false, status: "deleted" });
    expect(read.chunks.map((c) => c?.generation)).toEqual(["a1", "b1", undefined]);
  });

  it("reads a text whole or reports why not: never with holes", async () => {
    const text = (word: string) => `${word} `.repeat(30_000);
    const v1 = await store.putDocumentText(
      { documentId: "rt", key: "rt.txt", textGeneration: "r1" },
      text("one"),
    );
    expect(v1.chunkCount).toBeGreaterThan(2);
    const whole = await store.readText(v1);
    expect(whole).toMatchObject({ ok: true, version: "current" });
    expect(whole.ok && whole.chunks.map((c) => c.text).join("")).toBe(text("one"));

    // Overwritten and half deleted under a reader holding v1: it follows the record to r2.
    await store.putDocumentText({ documentId: "rt", key: "rt.txt", textGeneration: "r2" }, text("two"));
    await store.deleteGeneration("rt", "r1", 1);
    const followed = await store.readText(v1);
    expect(followed.ok && followed.record.textGeneration).toBe("r2");
    expect(followed.ok && followed.chunks.map((c) => c.text).join("")).toBe(text("two"));

    // A record pointing at a generation with a hole is never read as a text.
    const v2 = (await store.get("rt"))!;
    await store.deleteGeneration("rt", "r2", 1);
    const holed = await store.readText(v2);
    expect(holed).toMatchObject({ ok: false, status: "ready", reason: expect.stringMatching(/incomplete/) });
    await expect(store.getChunks(v2)).rejects.toThrow(/incomplete/);

    // Deleted under the reader: reported as deleted.
    await store.tombstone({
      documentId: "rt",
      bucket: "b",
      key: "rt.txt",
      sequencer: normaliseSequencer("5"),
      now: new Date(),
    });
    expect(await store.readText(v2)).toMatchObject({
      ok: false,
      status: "deleted",
      reason: expect.stringMatching(/deleted/),
    });
  });
});
