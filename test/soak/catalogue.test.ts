/**
 * Bad inputs from the README's bad-input catalogue that no other test file covered: a file the
 * provider extracts no text from, and deleting a document twice through the chat API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import { bearerAuthenticator } from "../../functions/core/auth/token";
import { documentIdFor } from "../../functions/core/ingest/events";
import { authHeader, FakeMoonshot, MemoryStore, TOKEN } from "../chat/support";
import { type IngestHarness, messagesFor, startIngestHarness } from "../ingest/harness";

describe("ingest: the provider extracts no text", () => {
  let h: IngestHarness;
  beforeAll(async () => {
    h = await startIngestHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("fails the document as extraction_failed instead of storing an empty ready document", async () => {
    const key = "catalogue/only-markup.html";
    const record = await h.put(
      key,
      "<html><head><style>p{}</style><script>var a = 1;</script></head><body></body></html>",
    );
    expect(await h.deliver(messagesFor([record]))).toEqual([]);
    const doc = await h.store.get(documentIdFor(h.stack.bucket, key));
    expect(doc?.status).toBe("failed");
    expect(doc?.error).toEqual({
      code: "extraction_failed",
      message: "the provider extracted no text from this file",
    });
    // The useless remote file is not kept.
    expect(h.emulator.files().filter((f) => f.filename.endsWith("only-markup.html"))).toEqual([]);
  });
});

describe("chat API: DELETE of a document that is already deleted", () => {
  // Stores hide tombstones (DynamoDocumentStore.get returns undefined for them), so a second DELETE
  // is a 404, not the 409 functions/chat/API.md lists.
  it("answers a JSON 404 and touches no S3 object", async () => {
    const store = new MemoryStore();
    store.add({ documentId: "doc-gone", key: "reports/gone.txt", status: "deleted" });
    const deleted: string[] = [];
    const app = createChatApp({
      store,
      provider: new FakeMoonshot(),
      objects: {
        async deleteObject(_bucket, key) {
          deleted.push(key);
        },
      },
      defaultModel: "kimi-k2.6",
      authenticate: bearerAuthenticator(async () => TOKEN),
      logger: { info() {}, warn() {}, error() {} },
    });
    const res = await app.request("/documents/doc-gone", { method: "DELETE", headers: authHeader });
    expect(res.status).toBe(404);
    const body = (await res.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe("not_found_error");
    expect(body.error.message).toBe("Unknown document id: doc-gone.");
    expect(deleted).toEqual([]);
  });
});
