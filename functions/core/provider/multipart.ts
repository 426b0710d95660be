/**
 * A `multipart/form-data` body built as a pull-based stream: the file's bytes flow from the source
 * stream to the socket with back-pressure and are never collected in memory (a 100 MB upload costs
 * a few socket/stream buffers, not 100 MB). Built here rather than with `FormData` because undici's
 * FormData wants a Blob, and a Blob of an S3 object means reading it whole first.
 */
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { FileTooLargeError, UploadSourceError } from "./errors";

const CRLF = "\r\n";

export interface MultipartFile {
  /** Form field name of the file part. */
  field: string;
  filename: string;
  contentType: string;
  stream: Readable;
  /** Declared size; when set, the body has an exact Content-Length and the source must match it. */
  size?: number;
  /** Stop (FileTooLargeError) as soon as the source yields more than this many bytes. */
  maxBytes: number;
}

export interface MultipartBody {
  body: ReadableStream<Uint8Array>;
  contentType: string;
  /** Exact body length when the file size is known (lets the request skip chunked encoding). */
  contentLength?: number;
  /** File bytes pulled from the source so far. */
  bytesSent: () => number;
  /** Why the body stopped early (source error, size violation), if it did. */
  failure: () => Error | undefined;
}

/**
 * Escapes a header parameter the way browsers and undici's FormData do (WHATWG HTML "multipart/form-data
 * encoding"): CR, LF and `"` percent-encoded, everything else sent as raw UTF-8 (which servers read).
 */
export function escapeFormValue(value: string): string {
  return value.replace(/\r/g, "%0D").replace(/\n/g, "%0A").replace(/"/g, "%22");
}

/** Builds the body: plain text fields first, then the file part, then the closing boundary. */
export function buildMultipart(fields: Record<string, string>, file: MultipartFile): MultipartBody {
  const boundary = `----kimi-doc-pipeline-${randomBytes(12).toString("hex")}`;
  let head = "";
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}${CRLF}Content-Disposition: form-data; name="${escapeFormValue(name)}"${CRLF}${CRLF}`;
    head += `${value}${CRLF}`;
  }
  head +=
    `--${boundary}${CRLF}Content-Disposition: form-data; name="${escapeFormValue(file.field)}"; ` +
    `filename="${escapeFormValue(file.filename)}"${CRLF}` +
    `Content-Type: ${file.contentType.replace(/[\r\n]/g, "")}${CRLF}${CRLF}`;
  const preamble = Buffer.from(head, "utf8");
  const epilogue = Buffer.from(`${CRLF}--${boundary}--${CRLF}`, "utf8");

  let sent = 0;
  let failure: Error | undefined;
  const iterator = file.stream[Symbol.asyncIterator]() as AsyncIterator<unknown>;
  let stage: "preamble" | "file" | "done" = "preamble";
  const fail = (err: Error): Error => {
    failure = err;
    file.stream.destroy();
    return err;
  };

  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (stage === "preamble") {
        stage = "file";
        controller.enqueue(preamble);
        return;
      }
      if (stage === "done") return;
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (cause) {
        throw fail(
          new UploadSourceError(`reading "${file.filename}" failed: ${errorText(cause)}`, { cause }),
        );
      }
      if (next.done) {
        if (file.size !== undefined && sent !== file.size) {
          throw fail(
            new UploadSourceError(
              `"${file.filename}" ended after ${sent} bytes but its declared size is ${file.size}`,
            ),
          );
        }
        stage = "done";
        controller.enqueue(epilogue);
        controller.close();
        return;
      }
      let chunk: Uint8Array;
      try {
        chunk = toBytes(next.value);
      } catch (err) {
        throw fail(err as Error);
      }
      sent += chunk.byteLength;
      if (sent > file.maxBytes) {
        throw fail(
          new FileTooLargeError(
            "file_too_large",
            `"${file.filename}" is larger than ${file.maxBytes} bytes`,
            {
              retryable: false,
            },
          ),
        );
      }
      if (file.size !== undefined && sent > file.size) {
        throw fail(
          new UploadSourceError(
            `"${file.filename}" yielded more than its declared size of ${file.size} bytes`,
          ),
        );
      }
      controller.enqueue(chunk);
    },
    async cancel() {
      // The request gave up (server answered early, connection dropped): release the source.
      file.stream.destroy();
      await iterator.return?.().catch(() => undefined);
    },
  });

  return {
    body,
    contentType: `multipart/form-data; boundary=${boundary}`,
    contentLength:
      file.size === undefined ? undefined : preamble.byteLength + file.size + epilogue.byteLength,
    bytesSent: () => sent,
    failure: () => failure,
  };
}

function toBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return Buffer.from(value, "utf8");
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new UploadSourceError(`upload source yielded a ${typeof value}, expected bytes`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
