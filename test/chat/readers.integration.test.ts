/**
 * What a reader sees while writers work, on the real local servers: dynalite, s3rver, the Moonshot
 * emulator and the chat app over HTTP. A document replaced or deleted between chat's selection and
 * its read is sent whole at its new version or listed in `skipped` (never with holes, never silently
 * dropped); an overwritten document stays answerable from its previous text while the new version is
 * ingested, and says so in `sources`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { s3ObjectDeleter } from "../../functions/chat/objects";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { type DynamoDocumentStore, normaliseSequencer } from "../../functions/core/documents/dynamo-store";
import { documentIdFor } from "../../functions/core/ingest/events";
import { type IngestHarness, messagesFor, startIngestHarness } from "../ingest/harness";
import { testClient } from "../support/provider";
import { type ServedApp, serveApp, TOKEN } from "./support";

let h: IngestHarness;
let served: ServedApp;
/** Runs once, right after the next `list` or `get` the chat app makes (between selection and reading). */
let afterSelection: (() => Promise<void>) | undefined;

/** The real store, with a hook between chat's selection and its reads. */
function interceptedStore(store: DynamoDocumentStore): DynamoDocumentStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop !== "list" && prop !== "get") return value.bind(target);
      return async (...args: unknown[]) => {
        const out = await value.apply(target, args);
        const hook = afterSelection;
        afterSelection = undefined;
        await hook?.();
        return out;
      };
    },
  });
}

beforeAll(async () => {
  h = await startIngestHarness();
  const app = createChatApp({
    store: interceptedStore(h.store),
    provider: testClient({
      baseURL: h.emulator.baseURL,
      apiKey: async () => "sk",
      retry: { maxAttempts: 1 },
    }),
    objects: s3ObjectDeleter(h.stack.s3Client),
    defaultModel: "kimi-k2.6",
    authenticate: bearerAuthenticator(async () => TOKEN),
    logger: { info() {}, warn() {}, error() {} },
  });
  served = await serveApp(app);
}, 60_000);

afterAll(async () => {
  await served?.close();
  await h?.close();
});

interface Source {
  documentId: string;
  key: string;
  complete: boolean;
  version: string;
  chunks: { index: number; text: string }[];
}
interface Answer {
  sources: Source[];
  skipped: { documentId: string; status: string; reason: string }[];
}

async function ask(body: object): Promise<Answer> {
  const res = await fetch(`${served.url}/chat`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ question: "What does the handbook say?", ...body }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Answer;
}

/** A text of several chunks, each paragraph naming `marker`. */
const longText = (marker: string) =>
  Array.from(
    { length: 600 },
    (_, i) =>
      `Paragraph ${i} of the ${marker} handbook lists the duties of ${marker} staff on shift ${i}.\n\n`,
  ).join("");

/** The source's chunks are 0..n-1 in order, and their text is exactly `text`. */
function expectWhole(source: Source | undefined, text: string) {
  expect(source).toBeDefined();
  expect(source!.complete).toBe(true);
  expect(source!.chunks.map((c) => c.index)).toEqual(source!.chunks.map((_, i) => i));
  expect(source!.chunks.map((c) => c.text).join("")).toBe(text);
}

describe("a document replaced or deleted while chat reads it", () => {
  it("is sent whole at its new version when it was overwritten between selection and reading", async () => {
    const first = longText("alpha");
    const second = longText("bravo");
    const doc = await h.store.putDocumentText(
      { documentId: "race-over", key: "race/over.txt", bucket: h.stack.bucket, textGeneration: "g1" },
      first,
    );
    expect(doc.chunkCount).toBeGreaterThan(3);
    afterSelection = async () => {
      // The overwrite flips the record to g2, and the deletion of g1 is half done.
      await h.store.putDocumentText(
        { documentId: "race-over", key: "race/over.txt", bucket: h.stack.bucket, textGeneration: "g2" },
        second,
      );
      await h.store.deleteGeneration("race-over", "g1", 2);
    };
    const answer = await ask({ documentIds: ["race-over"] });
    expect(answer.sources).toHaveLength(1);
    expectWhole(answer.sources[0], second);
    expect(answer.sources[0]!.version).toBe("current");
  });

  it("is listed in skipped, not silently dropped, when it was deleted between selection and reading", async () => {
    await h.store.putDocumentText(
      { documentId: "race-keep", key: "race2/keep.txt", bucket: h.stack.bucket },
      longText("keep"),
    );
    const gone = await h.store.putDocumentText(
      { documentId: "race-gone", key: "race2/gone.txt", bucket: h.stack.bucket, textGeneration: "gg" },
      longText("gone"),
    );
    afterSelection = async () => {
      await h.store.tombstone({
        documentId: "race-gone",
        bucket: h.stack.bucket,
        key: "race2/gone.txt",
        sequencer: normaliseSequencer("1"),
        now: new Date(),
      });
      await h.store.deleteGeneration("race-gone", gone.textGeneration!, 1);
    };
    const answer = await ask({ prefix: "race2/" });
    expect(answer.sources.map((s) => s.documentId)).toEqual(["race-keep"]);
    expect(answer.skipped).toEqual([
      {
        documentId: "race-gone",
        key: "race2/gone.txt",
        status: "deleted",
        reason: expect.stringMatching(/deleted/),
      },
    ]);
  });
});

describe("an overwritten document during its re-ingest", () => {
  it("is answered from its previous text, marked as such, until the new version is ready", async () => {
    const key = "over/handbook.txt";
    const v1 = longText("first");
    const v2 = longText("second");
    expect(await h.deliver(messagesFor([await h.put(key, v1)]))).toEqual([]);
    const documentId = documentIdFor(h.stack.bucket, key);
    expect((await h.store.get(documentId))?.status).toBe("ready");

    // Version 2 is claimed, then its ingestion waits (a slow provider, a quota wait) before uploading.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let waiting!: () => void;
    const atUpload = new Promise<void>((resolve) => {
      waiting = resolve;
    });
    const slow = h.service({
      hooks: {
        beforeUpload: async () => {
          waiting();
          await gate;
        },
      },
    });
    const ingesting = h.deliver(messagesFor([await h.put(key, v2)]), { service: slow });
    await atUpload;
    expect((await h.store.get(documentId))?.status).toBe("processing");

    const during = await ask({ documentIds: [documentId] });
    expect(during.skipped).toEqual([]);
    expect(during.sources).toHaveLength(1);
    expectWhole(during.sources[0], v1);
    expect(during.sources[0]!.version).toBe("previous");
    const shown = await (
      await fetch(`${served.url}/documents/${documentId}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json();
    expect(shown).toMatchObject({ status: "processing", textVersion: "previous" });

    release();
    expect(await ingesting).toEqual([]);
    const after = await ask({ documentIds: [documentId] });
    expectWhole(after.sources[0], v2);
    expect(after.sources[0]!.version).toBe("current");
  });
});
