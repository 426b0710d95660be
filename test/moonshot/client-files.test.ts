/**
 * File operations over real HTTP against a scripted server: the streamed multipart body (parsed back
 * with busboy), re-opening the source per attempt, size checks, source failures, both content
 * shapes, list/retrieve/delete, token estimation and the model list.
 */
import { Readable } from "node:stream";
import busboy from "busboy";
import { afterEach, describe, expect, it } from "vitest";
import { MoonshotClient, type MoonshotClientOptions } from "../../functions/core/moonshot/adapter";
import { extractContent } from "../../functions/core/provider/client";
import {
  EmptyFileError,
  FileTooLargeError,
  ServerError,
  UploadSourceError,
} from "../../functions/core/provider/errors";
import type { RemoteFile, UploadSource } from "../../functions/core/provider/types";
import { validateRequest } from "../support/openapi";
import {
  drop,
  fileObject,
  type Handler,
  json,
  providerError,
  type Scripted,
  startScripted,
} from "./support/scripted-server";

let server: Scripted | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function clientFor(handler: Handler, over: Partial<MoonshotClientOptions> = {}) {
  server = await startScripted(handler);
  const client = new MoonshotClient({
    baseURL: server.baseURL,
    apiKey: async () => "sk-test",
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 100, maxElapsedMs: 5_000 },
    requestTimeoutMs: 2_000,
    ...over,
  });
  return { client, server };
}

interface ParsedForm {
  fields: Record<string, string>;
  files: Array<{ field: string; filename: string; mimeType: string; data: Buffer }>;
}

function parseMultipart(
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
): Promise<ParsedForm> {
  return new Promise((resolve, reject) => {
    const out: ParsedForm = { fields: {}, files: [] };
    const bb = busboy({ headers: headers as Record<string, string>, defParamCharset: "utf8" });
    bb.on("field", (name, value) => {
      out.fields[name] = value;
    });
    bb.on("file", (field, stream, info) => {
      const parts: Buffer[] = [];
      stream.on("data", (d: Buffer) => parts.push(d));
      stream.on("end", () =>
        out.files.push({
          field,
          filename: info.filename,
          mimeType: info.mimeType,
          data: Buffer.concat(parts),
        }),
      );
    });
    bb.on("close", () => resolve(out));
    bb.on("error", reject);
    bb.end(body);
  });
}

/** A source over a fixed buffer, emitted in small chunks, counting how often it is opened. */
function bufferSource(data: Buffer, over: Partial<UploadSource> = {}) {
  const state = { opens: 0, destroyed: 0 };
  const source: UploadSource = {
    filename: "notes.txt",
    size: data.length,
    contentType: "text/plain",
    open: () => {
      state.opens++;
      const chunks: Buffer[] = [];
      for (let i = 0; i < data.length; i += 1000) chunks.push(data.subarray(i, i + 1000));
      const stream = Readable.from(chunks);
      stream.on("close", () => state.destroyed++);
      return stream;
    },
    ...over,
  };
  return { source, state };
}

const uploaded = (res: Parameters<Handler>[1], bytes: number) =>
  json(res, 200, fileObject("file-abc", { bytes }));

describe("uploadFile", () => {
  const data = Buffer.from("The quick brown fox jumps over the lazy dog.\n".repeat(200));

  it("streams a multipart body with purpose, filename, type and the exact bytes, with a Content-Length", async () => {
    const { client, server } = await clientFor((_q, res, _n, rec) => uploaded(res, rec.bytes));
    const { source } = bufferSource(data, { filename: '报告 "Q1".txt' });
    const file = await client.uploadFile(source);
    expect(file.id).toBe("file-abc");
    const req = server.requests[0];
    expect(req.method).toBe("POST");
    expect(req.url).toBe("/v1/files");
    expect(Number(req.headers["content-length"])).toBe(req.bytes);
    const form = await parseMultipart(req.headers, req.body!);
    expect(form.fields).toEqual({ purpose: "file-extract" });
    expect(form.files).toHaveLength(1);
    expect(form.files[0].field).toBe("file");
    expect(form.files[0].filename).toBe("报告 %22Q1%22.txt");
    expect(form.files[0].mimeType).toBe("text/plain");
    expect(form.files[0].data.equals(data)).toBe(true);
    // The form's fields against the upload's request schema (the file part as its text).
    const v = validateRequest(
      "POST",
      req.url,
      { ...form.fields, file: form.files[0].data.toString("utf8") },
      String(req.headers["content-type"]),
    );
    expect(v.errors).toBe("");
    expect(v.valid).toBe(true);
  });

  it("without a known size it streams chunked and still sends every byte", async () => {
    const { client, server } = await clientFor((_q, res, _n, rec) => uploaded(res, rec.bytes));
    const { source } = bufferSource(data, { size: undefined, contentType: undefined });
    await client.uploadFile(source, "file-extract");
    const req = server.requests[0];
    expect(req.headers["content-length"]).toBeUndefined();
    expect(req.headers["transfer-encoding"]).toBe("chunked");
    const form = await parseMultipart(req.headers, req.body!);
    expect(form.files[0].mimeType).toBe("application/octet-stream");
    expect(form.files[0].data.equals(data)).toBe(true);
  });

  it("re-opens the source for each attempt, so a retried upload sends the whole file again", async () => {
    const { client, server } = await clientFor((_q, res, n, rec) =>
      n === 0 ? providerError(res, 503, "server_error", "busy") : uploaded(res, rec.bytes),
    );
    const { source, state } = bufferSource(data);
    await client.uploadFile(source);
    expect(state.opens).toBe(2);
    expect(server.requests).toHaveLength(2);
    for (const req of server.requests) {
      const form = await parseMultipart(req.headers, req.body!);
      expect(form.files[0].data.equals(data)).toBe(true);
    }
  });

  it("after an unanswered attempt, asks findEarlier before re-sending and uses the file it finds", async () => {
    // The first attempt's connection is dropped after the body arrived: the provider may have stored it.
    let dropNext = true;
    const { client, server } = await clientFor((_q, res, _n, rec) => {
      if (!dropNext) return uploaded(res, rec.bytes);
      dropNext = false;
      drop(res);
    });
    const landed = fileObject("file-landed") as unknown as RemoteFile;
    const looks: number[] = [];
    const { source, state } = bufferSource(data, {
      findEarlier: async () => {
        looks.push(server.requests.length);
        return landed;
      },
    });
    expect((await client.uploadFile(source)).id).toBe("file-landed");
    expect(looks).toEqual([1]);
    expect(server.requests).toHaveLength(1);
    expect(state.opens).toBe(1);

    // Nothing found: the bytes are sent again.
    dropNext = true;
    const again = bufferSource(data, { findEarlier: async () => undefined });
    expect((await client.uploadFile(again.source)).id).toBe("file-abc");
    expect(again.state.opens).toBe(2);
  });

  it("does not look for an earlier upload after an answered failure (the provider stored nothing)", async () => {
    const { client } = await clientFor((_q, res, n, rec) =>
      n === 0 ? providerError(res, 503, "server_error", "busy") : uploaded(res, rec.bytes),
    );
    let looked = 0;
    const { source } = bufferSource(data, {
      findEarlier: async () => {
        looked++;
        return undefined;
      },
    });
    await client.uploadFile(source);
    expect(looked).toBe(0);
  });

  it("rejects a known empty or over-limit file before sending anything", async () => {
    const { client, server } = await clientFor((_q, res) => uploaded(res, 0));
    const empty = bufferSource(Buffer.alloc(0));
    await expect(client.uploadFile(empty.source)).rejects.toBeInstanceOf(EmptyFileError);
    const huge = bufferSource(data, { size: 100 * 1024 * 1024 + 1 });
    await expect(client.uploadFile(huge.source)).rejects.toBeInstanceOf(FileTooLargeError);
    expect(server.requests).toHaveLength(0);
    const exact = bufferSource(data, { size: 100 * 1024 * 1024, open: () => Readable.from([]) });
    // Exactly 100 MB is allowed through the pre-check (the stream then disagrees with its size).
    await expect(client.uploadFile(exact.source)).rejects.toBeInstanceOf(UploadSourceError);
    expect(empty.state.opens + huge.state.opens).toBe(0);
  });

  it("stops an unknown-size stream as soon as it passes the limit, without retrying", async () => {
    const { client } = await clientFor((_q, res, _n, rec) => uploaded(res, rec.bytes), {
      maxFileBytes: 5_000,
    });
    const { source, state } = bufferSource(data, { size: undefined });
    const err = await client.uploadFile(source).catch((e) => e);
    expect(err).toBeInstanceOf(FileTooLargeError);
    expect(state.opens).toBe(1);
    await new Promise((r) => setImmediate(r)); // 'close' is emitted on the next tick
    expect(state.destroyed).toBe(1);
  });

  it("a source that cannot be opened fails with UploadSourceError and is not retried", async () => {
    const { client, server } = await clientFor((_q, res) => uploaded(res, 0));
    let opens = 0;
    const err = await client
      .uploadFile({
        filename: "gone.pdf",
        open: () => {
          opens++;
          throw Object.assign(new Error("NoSuchKey: the object vanished"), { code: "NoSuchKey" });
        },
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(UploadSourceError);
    expect(err.message).toContain("NoSuchKey");
    expect(opens).toBe(1);
    expect(server.requests).toHaveLength(0);
  });

  it("a source that breaks off mid-stream fails with UploadSourceError", async () => {
    const { client } = await clientFor((_q, res, _n, rec) => uploaded(res, rec.bytes));
    let opens = 0;
    const err = await client
      .uploadFile({
        filename: "broken.bin",
        size: 10_000,
        open: () => {
          opens++;
          return Readable.from(
            (async function* () {
              yield Buffer.alloc(4_000, 1);
              throw new Error("socket reset while reading from S3");
            })(),
          );
        },
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(UploadSourceError);
    expect(err.message).toContain("socket reset while reading from S3");
    expect(opens).toBe(1);
  });

  it("a source longer than its declared size fails instead of sending a corrupt body", async () => {
    const { client } = await clientFor((_q, res, _n, rec) => uploaded(res, rec.bytes));
    const { source } = bufferSource(data, { size: 100 });
    await expect(client.uploadFile(source)).rejects.toBeInstanceOf(UploadSourceError);
  });
});

describe("getFileContent", () => {
  const envelope = {
    content: "Extracted text.\nSecond line.",
    file_type: "application/pdf",
    filename: "a.pdf",
    title: "",
    type: "file",
  };

  it("unwraps the JSON envelope", async () => {
    const { client, server } = await clientFor((_q, res) => json(res, 200, envelope));
    expect(await client.getFileContent("file-1")).toBe(envelope.content);
    expect(server.requests[0].url).toBe("/v1/files/file-1/content");
  });

  it("returns plain text as is", async () => {
    const { client } = await clientFor((_q, res) => {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("Plain extracted text ✓");
    });
    expect(await client.getFileContent("file-1")).toBe("Plain extracted text ✓");
  });

  it("a JSON document served as text/plain is the text, not an envelope", async () => {
    const doc = '{"content": "inner", "other": 1}';
    const { client } = await clientFor((_q, res) => {
      res.writeHead(200, { "content-type": "text/plain" }).end(doc);
    });
    expect(await client.getFileContent("file-1")).toBe(doc);
  });

  it("extractContent: an envelope without a content type is still recognised by its fields", () => {
    expect(extractContent(JSON.stringify(envelope), null)).toBe(envelope.content);
    expect(extractContent('{"content":"x"}', null)).toBe('{"content":"x"}');
    expect(extractContent('{"content":"x"}', "application/json")).toBe("x");
    expect(extractContent("{not json", "application/json")).toBe("{not json");
  });
});

describe("list, retrieve, delete", () => {
  it("lists files from {object:'list', data:[...]}", async () => {
    const { client } = await clientFor((_q, res) =>
      json(res, 200, {
        object: "list",
        data: [fileObject("a"), fileObject("b", { status: "error", status_details: "bad pdf" })],
      }),
    );
    const files = await client.listFiles();
    expect(files.map((f) => [f.id, f.status])).toEqual([
      ["a", "ok"],
      ["b", "error"],
    ]);
  });

  it("a list without data is an unexpected-response error", async () => {
    const { client } = await clientFor((_q, res) => json(res, 200, { object: "list" }));
    await expect(client.listFiles()).rejects.toBeInstanceOf(ServerError);
  });

  it("retrieves by id, escaping it in the path", async () => {
    const { client, server } = await clientFor((_q, res) => json(res, 200, fileObject("a/b")));
    expect((await client.retrieveFile("a/b")).id).toBe("a/b");
    expect(server.requests[0].url).toBe("/v1/files/a%2Fb");
  });

  it("delete: true when deleted, false when already gone (404)", async () => {
    const { client, server } = await clientFor((_q, res, n) =>
      n === 0
        ? json(res, 200, { id: "a", object: "file", deleted: true })
        : providerError(res, 404, "resource_not_found_error", "file not found"),
    );
    expect(await client.deleteFile("a")).toBe(true);
    expect(await client.deleteFile("a")).toBe(false);
    expect(server.requests.map((r) => r.method)).toEqual(["DELETE", "DELETE"]);
  });

  it("delete: other failures still throw", async () => {
    const { client } = await clientFor((_q, res) =>
      providerError(res, 401, "invalid_authentication_error", "bad key"),
    );
    await expect(client.deleteFile("a")).rejects.toThrow(/bad key/);
  });
});

describe("estimateTokenCount and listModels", () => {
  it("posts {model, messages} and returns data.total_tokens", async () => {
    const { client, server } = await clientFor((_q, res) => json(res, 200, { data: { total_tokens: 42 } }));
    const messages = [{ role: "user" as const, content: "hello" }];
    expect(await client.estimateTokenCount({ model: "kimi-k2.6", messages })).toBe(42);
    const req = server.requests[0];
    expect(req.url).toBe("/v1/tokenizers/estimate-token-count");
    expect(req.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(req.body!.toString())).toEqual({ model: "kimi-k2.6", messages });
  });

  it("an estimate without total_tokens is an unexpected-response error", async () => {
    const { client } = await clientFor((_q, res) => json(res, 200, { data: {} }));
    await expect(client.estimateTokenCount({ model: "m", messages: [] })).rejects.toBeInstanceOf(ServerError);
  });

  it("lists models with their context_length", async () => {
    const { client, server } = await clientFor((_q, res) =>
      json(res, 200, {
        object: "list",
        data: [
          { id: "kimi-k2.6", object: "model", owned_by: "moonshot", context_length: 262144 },
          { id: "moonshot-v1-8k", object: "model", owned_by: "moonshot", context_length: 8192 },
        ],
      }),
    );
    const models = await client.listModels();
    expect(models.map((m) => [m.id, m.context_length])).toEqual([
      ["kimi-k2.6", 262144],
      ["moonshot-v1-8k", 8192],
    ]);
    expect(server.requests[0].url).toBe("/v1/models");
    expect(server.requests[0].headers.authorization).toBe("Bearer sk-test");
  });
});
