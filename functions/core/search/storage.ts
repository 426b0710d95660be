/**
 * Where the index lives: objects in an S3 bucket (the stack's own, no always-on service). Segment and
 * document-table objects are immutable (a new key per write, gzip-compressed JSON); only the manifest
 * is overwritten, and readers revalidate it with its ETag, so a warm reader downloads only what changed.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";

export interface StoredObject {
  body: Buffer;
  etag?: string;
}

/** The index's object storage (S3 in AWS and locally; a Map in unit tests). */
export interface IndexObjects {
  /** The object, undefined when absent, "unchanged" when `ifNoneMatch` still matches. */
  get(key: string, ifNoneMatch?: string): Promise<StoredObject | "unchanged" | undefined>;
  put(key: string, body: Buffer, contentType: string): Promise<void>;
  delete(keys: string[]): Promise<void>;
  /** Every index object with its last write time (the sweep of objects no manifest names). */
  list(): Promise<{ key: string; lastModified: Date }[]>;
}

/** JSON in, gzip bytes out (and back): segments of numbers compress about 4x. */
export const packText = (json: string): Buffer => gzipSync(Buffer.from(json, "utf8"), { level: 6 });
export const packJson = (value: unknown): Buffer => packText(JSON.stringify(value));
export const unpackText = (body: Buffer): string => gunzipSync(body).toString("utf8");
export const unpackJson = <T>(body: Buffer): T => JSON.parse(unpackText(body)) as T;

export interface S3IndexObjectsOptions {
  client: S3Client;
  bucket: string;
  /** Key prefix of every index object. @default "search/" */
  prefix?: string;
}

export class S3IndexObjects implements IndexObjects {
  private readonly prefix: string;
  constructor(private readonly opts: S3IndexObjectsOptions) {
    this.prefix = opts.prefix ?? "search/";
  }

  async get(key: string, ifNoneMatch?: string): Promise<StoredObject | "unchanged" | undefined> {
    try {
      const out = await this.opts.client.send(
        new GetObjectCommand({ Bucket: this.opts.bucket, Key: this.prefix + key, IfNoneMatch: ifNoneMatch }),
      );
      const bytes = await out.Body?.transformToByteArray();
      return { body: Buffer.from(bytes ?? new Uint8Array()), etag: out.ETag };
    } catch (err) {
      if (err instanceof NoSuchKey || (err as { name?: string }).name === "NoSuchKey") return undefined;
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 304)
        return "unchanged";
      throw err;
    }
  }

  async put(key: string, body: Buffer, contentType: string): Promise<void> {
    await this.opts.client.send(
      new PutObjectCommand({
        Bucket: this.opts.bucket,
        Key: this.prefix + key,
        Body: body,
        ContentType: contentType,
      }),
    );
  }

  async list(): Promise<{ key: string; lastModified: Date }[]> {
    const out: { key: string; lastModified: Date }[] = [];
    let token: string | undefined;
    do {
      const page = await this.opts.client.send(
        new ListObjectsV2Command({ Bucket: this.opts.bucket, Prefix: this.prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key)
          out.push({ key: o.Key.slice(this.prefix.length), lastModified: o.LastModified ?? new Date(0) });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      await this.opts.client.send(
        new DeleteObjectsCommand({
          Bucket: this.opts.bucket,
          Delete: { Objects: batch.map((k) => ({ Key: this.prefix + k })), Quiet: true },
        }),
      );
    }
  }
}

/** In-memory objects (unit tests). */
export class MemoryIndexObjects implements IndexObjects {
  readonly objects = new Map<string, StoredObject & { lastModified: Date }>();
  private counter = 0;
  constructor(private readonly now: () => Date = () => new Date()) {}
  async get(key: string, ifNoneMatch?: string) {
    const o = this.objects.get(key);
    if (!o) return undefined;
    return ifNoneMatch && o.etag === ifNoneMatch ? "unchanged" : o;
  }
  async put(key: string, body: Buffer) {
    this.objects.set(key, { body, etag: `"${++this.counter}"`, lastModified: this.now() });
  }
  async list() {
    return [...this.objects].map(([key, o]) => ({ key, lastModified: o.lastModified }));
  }
  async delete(keys: string[]) {
    for (const k of keys) this.objects.delete(k);
  }
}
