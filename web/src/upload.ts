/**
 * Uploads: the client-side checks (same rules the server applies on POST /uploads, from its policy)
 * and the PUT to the presigned URL with XMLHttpRequest, the one browser API that reports upload
 * progress.
 */
import type { UploadPolicy, UploadTicket } from "./api";
import { formatBytes } from "./format";

/** The file's extension, lower case, without the dot ("" when it has none). */
export function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot <= 0 || dot === name.length - 1 ? "" : name.slice(dot + 1).toLowerCase();
}

/** Why this file cannot be uploaded, in words the user can act on; undefined when it can. */
export function checkFile(file: { name: string; size: number }, policy: UploadPolicy): string | undefined {
  const ext = extensionOf(file.name);
  if (!ext || !policy.extensions.includes(ext)) {
    const shown = policy.extensions
      .slice(0, 12)
      .map((e) => `.${e}`)
      .join(", ");
    return `${ext ? `.${ext} files are` : "Files without an extension are"} not supported. Supported types include ${shown}…`;
  }
  if (file.size === 0) return "The file is empty.";
  if (file.size > policy.maxBytes) {
    return `The file is ${formatBytes(file.size)}; the limit is ${formatBytes(policy.maxBytes)}.`;
  }
  return undefined;
}

/** Normalises a folder the user typed: no leading slash, one trailing slash, no empty segments. */
export function normalisePrefix(input: string): string {
  const parts = input
    .split("/")
    .map((p) => p.trim())
    .filter((p) => p !== "" && p !== "." && p !== "..");
  return parts.length ? `${parts.join("/")}/` : "";
}

export class UploadError extends Error {
  constructor(
    message: string,
    /** S3's error code, e.g. PreconditionFailed: another upload stored the key first. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** PUTs the file to the presigned URL, reporting progress as a fraction (0..1). */
export function putFile(
  ticket: UploadTicket,
  file: Blob,
  onProgress: (fraction: number) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(ticket.method, ticket.url);
    for (const [name, value] of Object.entries(ticket.headers)) {
      // The browser sets Content-Length itself and refuses to let scripts set it.
      if (name.toLowerCase() !== "content-length" && name.toLowerCase() !== "host") {
        xhr.setRequestHeader(name, value);
      }
    }
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
        return;
      }
      const code = /<Code>([^<]+)<\/Code>/.exec(xhr.responseText)?.[1];
      const message = /<Message>([^<]+)<\/Message>/.exec(xhr.responseText)?.[1];
      const hint =
        code === "AccessDenied" && /expired/i.test(message ?? "")
          ? "The upload link expired; try again."
          : (message ?? `Storage refused the upload (HTTP ${xhr.status}).`);
      if (code === "PreconditionFailed") {
        reject(new UploadError("A file with this name was stored meanwhile.", code));
        return;
      }
      reject(new UploadError(code ? `${hint} (${code})` : hint, code));
    };
    xhr.onerror = () =>
      reject(
        new UploadError(
          navigator.onLine === false
            ? "You appear to be offline; the upload stopped."
            : "The upload could not reach storage (network error or the bucket does not allow this origin).",
        ),
      );
    xhr.onabort = () => reject(new DOMException("Upload cancelled", "AbortError"));
    signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
