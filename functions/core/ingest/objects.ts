/**
 * Reading objects from S3 for ingestion: metadata first, then a fresh stream per upload attempt,
 * pinned to the version the event describes (VersionId when the bucket is versioned, else If-Match on
 * the ETag) so a retry never sends different bytes than the first attempt.
 */
import type { Readable } from "node:stream";
import { GetObjectCommand, HeadObjectCommand, type S3Client } from "@aws-sdk/client-s3";

export interface ObjectPin {
  versionId?: string;
  eTag?: string;
}

export interface ObjectInfo {
  size: number;
  contentType?: string;
  eTag?: string;
  versionId?: string;
}

export interface OpenedObject {
  body: Readable;
  contentType?: string;
}

/** The object (version) no longer exists or changed since the event: a newer event will follow. */
export class ObjectGoneError extends Error {
  override readonly name = "ObjectGoneError";
}

/** What ingestion needs from the bucket (S3ObjectSource in AWS and local mode; fakes in tests). */
export interface ObjectSource {
  /** Metadata of the pinned version; ObjectGoneError when it is gone or replaced. */
  head(bucket: string, key: string, pin: ObjectPin): Promise<ObjectInfo>;
  /** A new stream of the pinned version's bytes (never buffered whole), with its content type. */
  open(bucket: string, key: string, pin: ObjectPin): Promise<OpenedObject>;
}

function quoteETag(eTag: string): string {
  return eTag.startsWith('"') || eTag.startsWith('W/"') ? eTag : `"${eTag}"`;
}

function isGone(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  return (
    e?.name === "NoSuchKey" ||
    e?.name === "NotFound" ||
    e?.name === "NoSuchVersion" ||
    e?.name === "PreconditionFailed" ||
    status === 404 ||
    status === 412
  );
}

/** ObjectSource over the S3 API. */
export class S3ObjectSource implements ObjectSource {
  constructor(private readonly s3: S3Client) {}

  private params(bucket: string, key: string, pin: ObjectPin) {
    return {
      Bucket: bucket,
      Key: key,
      VersionId: pin.versionId,
      // A version id already pins the bytes; If-Match guards unversioned buckets.
      IfMatch: pin.versionId || !pin.eTag ? undefined : quoteETag(pin.eTag),
    };
  }

  async head(bucket: string, key: string, pin: ObjectPin): Promise<ObjectInfo> {
    try {
      const out = await this.s3.send(new HeadObjectCommand(this.params(bucket, key, pin)));
      return {
        size: out.ContentLength ?? 0,
        contentType: out.ContentType,
        eTag: out.ETag?.replace(/"/g, ""),
        versionId: out.VersionId ?? pin.versionId,
      };
    } catch (err) {
      if (isGone(err)) throw new ObjectGoneError(`s3://${bucket}/${key} is gone or changed`, { cause: err });
      throw err;
    }
  }

  async open(bucket: string, key: string, pin: ObjectPin): Promise<OpenedObject> {
    try {
      const out = await this.s3.send(new GetObjectCommand(this.params(bucket, key, pin)));
      return { body: out.Body as Readable, contentType: out.ContentType };
    } catch (err) {
      if (isGone(err)) throw new ObjectGoneError(`s3://${bucket}/${key} is gone or changed`, { cause: err });
      throw err;
    }
  }
}
