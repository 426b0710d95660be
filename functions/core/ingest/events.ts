/**
 * From SQS messages to the S3 changes ingestion acts on: parsing, key decoding, stable ids, the upload
 * tag, and the checks every object passes before any provider call.
 */
import { createHash } from "node:crypto";
import type { S3EventRecord, SQSRecord } from "aws-lambda";
import type { DocumentFailure } from "../documents/model";
import { type FileRules, isImageExtension, PROVIDER_PROFILES } from "../provider/profiles";

/** One S3 change, decoded. */
export interface ObjectChange {
  kind: "created" | "removed";
  eventName: string;
  bucket: string;
  /** The decoded key. */
  key: string;
  /** The event's raw sequencer (normalise before comparing). */
  sequencer: string;
  size?: number;
  eTag?: string;
  versionId?: string;
  eventTime?: string;
}

/** An SQS body that is not an S3 notification we understand (kept in the queue, then the DLQ). */
export class MalformedMessageError extends Error {
  override readonly name = "MalformedMessageError";
}

/**
 * Decodes an S3 event key: S3 form-URL-encodes keys in notifications (`+` is a space, a real `+` is
 * `%2B`). Throws MalformedMessageError on invalid percent-encoding.
 */
export function decodeS3Key(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, " "));
  } catch {
    throw new MalformedMessageError(`S3 event key is not valid URL encoding: ${JSON.stringify(key)}`);
  }
}

/**
 * The S3 changes in one SQS message. The `s3:TestEvent` S3 sends when notifications are configured
 * yields none. Throws MalformedMessageError for anything else that is not an S3 notification.
 */
export function parseMessage(message: Pick<SQSRecord, "body" | "messageId">): ObjectChange[] {
  let body: unknown;
  try {
    body = JSON.parse(message.body);
  } catch {
    throw new MalformedMessageError(`message ${message.messageId} is not JSON`);
  }
  if (!body || typeof body !== "object")
    throw new MalformedMessageError(`message ${message.messageId}: not an object`);
  const b = body as { Event?: unknown; Records?: unknown };
  if (b.Event === "s3:TestEvent") return [];
  if (!Array.isArray(b.Records)) {
    throw new MalformedMessageError(`message ${message.messageId} has no S3 Records`);
  }
  const out: ObjectChange[] = [];
  for (const r of b.Records as S3EventRecord[]) {
    const name = r?.eventName ?? "";
    const s3 = r?.s3;
    if (!s3?.bucket?.name || typeof s3.object?.key !== "string" || !s3.object.sequencer) {
      throw new MalformedMessageError(
        `message ${message.messageId}: S3 record without bucket, key or sequencer`,
      );
    }
    const kind = name.startsWith("ObjectCreated:")
      ? "created"
      : name.startsWith("ObjectRemoved:")
        ? "removed"
        : undefined;
    if (!kind) continue; // other event types (restore, replication, lifecycle transitions) do not change the text
    out.push({
      kind,
      eventName: name,
      bucket: s3.bucket.name,
      key: decodeS3Key(s3.object.key),
      sequencer: s3.object.sequencer,
      size: typeof s3.object.size === "number" ? s3.object.size : undefined,
      eTag: s3.object.eTag || undefined,
      versionId: s3.object.versionId || undefined,
      eventTime: r.eventTime,
    });
  }
  return out;
}

/** The document id for a bucket + key: stable, URL-safe, 22 characters (132 bits of SHA-256). */
export function documentIdFor(bucket: string, key: string): string {
  return createHash("sha256").update(`${bucket}\n${key}`).digest("base64url").slice(0, 22);
}

/** Prefix of every upload tag, so our remote files are recognisable in a listing. */
export const UPLOAD_TAG_PREFIX = "kdp-";
/** Between the tag and the basename in a remote filename (the janitor parses the same form). */
export const TAG_SEPARATOR = "__";

const versionHash = (documentId: string, normalisedSequencer: string): string =>
  createHash("sha256").update(`${documentId}:${normalisedSequencer}`).digest("hex").slice(0, 20);

/**
 * The upload tag of one object version, `kdp-<deploymentId>-<hash>`: deterministic, so every delivery
 * of the version agrees, and named for the deployment, so a listing of a Moonshot account shared with
 * other applications (or other copies of this stack) shows which files are this deployment's
 * (functions/core/janitor/ownership.ts).
 */
export function uploadTagFor(documentId: string, normalisedSequencer: string, deploymentId: string): string {
  return `${UPLOAD_TAG_PREFIX}${deploymentId}-${versionHash(documentId, normalisedSequencer)}`;
}

/**
 * The tag the same version had before tags named the deployment (`kdp-<hash>`). The janitor still
 * recognises files carrying it when its own table records the version (see ownership.ts).
 */
export function legacyUploadTagFor(documentId: string, normalisedSequencer: string): string {
  return `${UPLOAD_TAG_PREFIX}${versionHash(documentId, normalisedSequencer)}`;
}

const MAX_BASENAME = 180;

/** The remote filename for an upload: `<tag>__<basename>`, keeping the real extension. */
export function remoteFilename(tag: string, key: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we strip
  let base = (key.split("/").pop() || "document").replace(/[\u0000-\u001f\u007f"\\]/g, "_");
  if (base.length > MAX_BASENAME) {
    const ext = extensionOf(base);
    base = base.slice(0, MAX_BASENAME - ext.length) + ext;
  }
  return `${tag}${TAG_SEPARATOR}${base}`;
}

/** True when a listed remote file carries `tag`. */
export function hasTag(filename: string, tag: string): boolean {
  return filename.startsWith(`${tag}${TAG_SEPARATOR}`);
}

/** Lower-case extension with the dot ("" when none) of the key's last segment. */
export function extensionOf(key: string): string {
  const base = key.split("/").pop() ?? "";
  const dot = base.lastIndexOf(".");
  return dot > 0 && dot < base.length - 1 ? base.slice(dot).toLowerCase() : "";
}

/** Moonshot's per-file limit (100 MB), the default provider's. */
export const DEFAULT_MAX_FILE_BYTES = PROVIDER_PROFILES.moonshot.files.maxFileBytes;

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1).replace(/\.0$/, "")} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1).replace(/\.0$/, "")} KB`;
  return `${n} bytes`;
}

/**
 * Checks made before any provider call, against the provider's rules (provider/profiles.ts: size caps,
 * images' lower cap, the types it extracts); a failure here never reaches the provider.
 */
export function validateObject(key: string, size: number, rules: FileRules): DocumentFailure | undefined {
  if (size === 0)
    return { code: "empty", message: "the file is empty (0 bytes); there is nothing to extract" };
  const ext = extensionOf(key);
  const image = rules.maxImageBytes !== undefined && isImageExtension(ext);
  const cap = image ? Math.min(rules.maxImageBytes!, rules.maxFileBytes) : rules.maxFileBytes;
  if (size > cap) {
    return {
      code: "too_large",
      message: `the ${image ? "image" : "file"} is ${formatBytes(size)}; the provider accepts ${image ? "images" : "files"} up to ${formatBytes(cap)}`,
    };
  }
  if (!rules.extensions.has(ext)) {
    return {
      code: "unsupported_type",
      message: ext
        ? `"${ext}" files are not supported; ${rules.typesSummary ?? `supported types are ${[...rules.extensions].join(", ")}`}`
        : "files without an extension are not supported; name the file with its type, e.g. report.pdf",
    };
  }
  return undefined;
}

const CONTENT_TYPES: Record<string, string> = {
  ".pdf": "application/pdf",
  ".txt": "text/plain",
  ".md": "text/markdown",
  ".csv": "text/csv",
  ".html": "text/html",
  ".htm": "text/html",
  ".json": "application/json",
  ".doc": "application/msword",
  ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  ".xls": "application/vnd.ms-excel",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".ppt": "application/vnd.ms-powerpoint",
  ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".epub": "application/epub+zip",
};

/** A content type for the upload's multipart part, from the key's extension (undefined: octet-stream). */
export function contentTypeFor(key: string): string | undefined {
  return CONTENT_TYPES[extensionOf(key)];
}
