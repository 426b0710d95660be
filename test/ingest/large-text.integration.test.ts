/**
 * Extracted text is never held whole: it streams from the provider into chunk writes, and a text over
 * the cap fails the version with a clear `too_large` reason. On the real local servers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { documentIdFor } from "../../functions/core/ingest/events";
import type { ProviderApi } from "../../functions/core/provider/types";
import { type IngestHarness, messagesFor, startIngestHarness } from "./harness";

let h: IngestHarness;
beforeAll(async () => {
  h = await startIngestHarness();
});
afterAll(async () => {
  await h?.close();
});

const docId = (key: string) => documentIdFor(h.stack.bucket, key);
const bigText = (mb: number) =>
  Array.from(
    { length: Math.ceil((mb * 1024 * 1024) / 90) },
    (_, i) => `Paragraph ${i} of a long report, with enough words to be a real paragraph of text.\n\n`,
  ).join("");

async function chunkItems(documentId: string): Promise<number> {
  let n = 0;
  for (const count of (await h.store.chunkGenerations(documentId)).values()) n += count;
  return n;
}

describe("extracted text", () => {
  it("streams into chunk writes: chunks are stored before the provider has sent the whole text", async () => {
    const key = "large/streamed.txt";
    const text = bigText(3);
    let seen = 0;
    let storedEarly = false;
    // The real client, watched: after 2 MB of text, chunk items must already be in the table.
    const watched: ProviderApi = Object.create(h.client);
    watched.streamFileContent = async function* (fileId, opts) {
      for await (const piece of h.client.streamFileContent(fileId, opts)) {
        seen += piece.length;
        if (seen > 2 * 1024 * 1024 && !storedEarly) {
          for (let look = 0; look < 100 && !storedEarly; look++) {
            storedEarly = (await chunkItems(docId(key))) > 0;
            if (!storedEarly) await new Promise((r) => setTimeout(r, 100));
          }
        }
        yield piece;
      }
    };
    expect(
      await h.deliver(messagesFor([await h.put(key, text)]), { service: h.service({ provider: watched }) }),
    ).toEqual([]);
    expect(storedEarly).toBe(true);
    const doc = await h.store.get(docId(key));
    expect(doc).toMatchObject({ status: "ready", textBytes: Buffer.byteLength(text) });
    expect(await h.store.getText(doc!)).toBe(text);
  });

  it("over the cap fails the version too_large, leaving no chunks and no remote file", async () => {
    const key = "large/capped.txt";
    const service = h.service({ config: { maxTextBytes: 100_000 } });
    expect(await h.deliver(messagesFor([await h.put(key, bigText(0.3))]), { service })).toEqual([]);
    const doc = await h.store.get(docId(key));
    expect(doc?.status).toBe("failed");
    expect(doc?.error).toEqual({
      code: "too_large",
      message:
        "the extracted text is larger than 0.1 MB, the limit for one document; split the file into smaller ones",
    });
    expect(await chunkItems(docId(key))).toBe(0);
    expect(h.emulator.files().filter((f) => f.filename.endsWith("__capped.txt"))).toEqual([]);
  });
});
