/**
 * Uploading a local file to S3 as a stream (multipart above 8 MB, so a large file is never held in
 * memory), shared by the drop-folder watcher and `kdp put`.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { extname, relative, sep } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const CONTENT_TYPES: Record<string, string> = {
  ".pdf": "application/pdf",
  ".doc": "application/msword",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".ppt": "application/vnd.ms-powerpoint",
  ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  ".xls": "application/vnd.ms-excel",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".csv": "text/csv; charset=utf-8",
  ".json": "application/json",
  ".html": "text/html; charset=utf-8",
  ".htm": "text/html; charset=utf-8",
  ".epub": "application/epub+zip",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
};

/** A content type from the file name (S3 stores it; ingestion records it). */
export function contentTypeFor(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
}

/** An S3 key from a path relative to `root`, with `/` separators whatever the platform. */
export function keyFor(root: string, path: string, prefix = ""): string {
  const rel = relative(root, path).split(sep).join("/");
  return `${prefix}${rel}`;
}

export interface UploadResult {
  key: string;
  size: number;
  /** The object's ETag without quotes. */
  eTag?: string;
  versionId?: string;
}

/** Streams `path` to `s3://bucket/key`, reporting bytes sent. */
export async function uploadFile(opts: {
  s3: S3Client;
  bucket: string;
  key: string;
  path: string;
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}): Promise<UploadResult> {
  const { size } = await stat(opts.path);
  const upload = new Upload({
    client: opts.s3,
    params: {
      Bucket: opts.bucket,
      Key: opts.key,
      Body: createReadStream(opts.path),
      ContentType: contentTypeFor(opts.path),
      ContentLength: size,
    },
    partSize: 8 * 1024 * 1024,
    queueSize: 2,
    leavePartsOnError: false,
    abortController: opts.signal ? abortControllerFor(opts.signal) : undefined,
  });
  upload.on("httpUploadProgress", (p) => opts.onProgress?.(p.loaded ?? 0, p.total ?? size));
  const out = await upload.done();
  opts.onProgress?.(size, size);
  const eTag = (out as { ETag?: string }).ETag?.replace(/"/g, "");
  const versionId = (out as { VersionId?: string }).VersionId;
  return { key: opts.key, size, ...(eTag ? { eTag } : {}), ...(versionId ? { versionId } : {}) };
}

function abortControllerFor(signal: AbortSignal): AbortController {
  const controller = new AbortController();
  if (signal.aborted) controller.abort();
  else signal.addEventListener("abort", () => controller.abort(), { once: true });
  return controller;
}
