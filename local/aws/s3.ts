/**
 * Local S3 for `npm start`, tests and benchmarks: s3rver on 127.0.0.1, with its bucket notifications
 * reshaped into exactly what the ingest handler receives from AWS (aws-lambda's `S3EventRecord`):
 * URL-encoded keys with `+` for spaces, and a fixed-width, strictly increasing upper-case hex
 * `sequencer` per event (s3rver's own is `Date.now()` in hex, which repeats within a millisecond).
 *
 * Clients must use path-style addressing (`forcePathStyle: true` / S3_FORCE_PATH_STYLE=true) and the
 * access key id `S3RVER` (secret `S3RVER`): s3rver rejects other key ids with InvalidAccessKeyId.
 */
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3EventRecord } from "aws-lambda";
import S3rver from "s3rver";

export interface LocalS3 {
  /** `http://127.0.0.1:<port>`, for `new S3Client({ endpoint, forcePathStyle: true })`. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
  /**
   * Subscribes to ObjectCreated/ObjectRemoved records (one per put, copy, multipart completion or
   * delete), in the order S3 stored them. Returns the unsubscribe function.
   */
  onEvent(listener: (record: S3EventRecord) => void): () => void;
}

export interface LocalS3Options {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Where objects are stored; a temporary directory (removed on close) when omitted. */
  dataDir?: string;
  /** Buckets created at start (existing ones are kept). */
  buckets?: string[];
}

/**
 * Encodes a key the way S3 writes it into event notifications: form-URL-encoding per path segment
 * (space -> `+`, `+` -> `%2B`, non-ASCII as UTF-8 percent escapes), `/` kept as is.
 */
export function encodeS3EventKey(key: string): string {
  return key
    .split("/")
    .map((segment) =>
      encodeURIComponent(segment)
        .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
        .replace(/%20/g, "+"),
    )
    .join("/");
}

/**
 * Strictly increasing sequencers: 18 upper-case hex digits (the width AWS uses), derived from the
 * clock (microsecond-ish resolution) so they also increase across restarts with a persistent dataDir.
 */
export function createSequencer(): () => string {
  let last = 0n;
  return () => {
    const fromClock = BigInt(Date.now()) << 20n;
    last = fromClock > last ? fromClock : last + 1n;
    return last.toString(16).toUpperCase().padStart(18, "0");
  };
}

/** Starts s3rver on 127.0.0.1 with silent logs. */
export async function startLocalS3(opts: LocalS3Options = {}): Promise<LocalS3> {
  const ownDir = opts.dataDir === undefined;
  const directory = opts.dataDir ?? (await mkdtemp(join(tmpdir(), "kdp-s3-")));
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port ?? 0,
    silent: true,
    directory,
    configureBuckets: (opts.buckets ?? []).map((name) => ({ name })),
  });
  enforceIfNoneMatch(server);
  makeObjectWritesAtomic(server);
  // First in the chain (Koa composes its middleware when the server starts listening).
  (server as unknown as { middleware: Middleware[] }).middleware.unshift(ifMatch);
  const address = await server.run();
  const nextSequencer = createSequencer();
  const listeners = new Set<(record: S3EventRecord) => void>();

  server.on("event", (event: { Records: S3EventRecord[] }) => {
    for (const raw of event.Records) {
      const record = normaliseRecord(raw, nextSequencer());
      for (const listener of listeners) {
        try {
          listener(record);
        } catch {
          // A listener's failure must not break s3rver's request handling.
        }
      }
    }
  });

  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      closed ??= (async () => {
        listeners.clear();
        const done = server.close();
        server.httpServer?.closeAllConnections();
        await done;
        if (ownDir) await rm(directory, { recursive: true, force: true });
      })();
      return closed;
    },
  };
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface KoaContext {
  method: string;
  status: number;
  body: unknown;
  get(header: string): string;
  set(header: string, value: string): void;
  remove(header: string): void;
  response: { get(header: string): string };
}

/**
 * `If-Match` on GET and HEAD of an object, which s3rver ignores: like S3, a 412 PreconditionFailed
 * when the object's ETag is another (ingestion pins an unversioned object's bytes with it, so an
 * event read after an overwrite is told the version is gone instead of getting the newer bytes).
 */
const ifMatch: Middleware = async (ctx, next) => {
  const wanted = ctx.get("if-match");
  await next();
  if (!wanted || (ctx.method !== "GET" && ctx.method !== "HEAD") || ctx.status >= 300) return;
  const etag = ctx.response.get("etag");
  const matches = wanted
    .split(",")
    .map((t) => t.trim().replace(/^W\//, ""))
    .some((t) => t === "*" || t === etag);
  if (matches) return;
  const body = ctx.body as { destroy?: () => void } | undefined;
  body?.destroy?.();
  // The body first: Koa turns an empty body into 204 unless the status is set after it.
  ctx.body =
    ctx.method === "HEAD"
      ? null
      : '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-Match</Condition></Error>';
  ctx.status = 412;
  ctx.remove("etag");
  ctx.remove("last-modified");
  ctx.set("content-type", "application/xml");
};

/**
 * S3 refuses a PutObject carrying `If-None-Match: *` when the key exists (412 PreconditionFailed): the
 * presigned uploads rely on it so a race never overwrites. s3rver ignores the header on PUT, so this
 * middleware, first in s3rver's Koa chain, does what S3 does. Conditional PUTs of one key are
 * serialised (each waits for the previous to finish), so check-then-write is atomic here as in S3.
 */
function enforceIfNoneMatch(server: S3rver): void {
  const inFlight = new Map<string, Promise<void>>();
  const middleware = async (
    ctx: {
      method: string;
      path: string;
      query: Record<string, unknown>;
      get(h: string): string;
      status: number;
      type: string;
      body: unknown;
    },
    next: () => Promise<void>,
  ): Promise<void> => {
    if (ctx.method !== "PUT" || "uploadId" in ctx.query) return next();
    // S3 refuses a presigned request that lacks a header it signed; s3rver does not check that.
    const signed = String(ctx.query["X-Amz-SignedHeaders"] ?? "").split(";");
    if (signed.includes("if-none-match") && ctx.get("if-none-match") === "") {
      ctx.status = 403;
      ctx.type = "application/xml";
      ctx.body =
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>' +
        "<Message>The request signature we calculated does not match the signature you provided.</Message></Error>";
      return;
    }
    if (ctx.get("if-none-match").trim() !== "*") return next();
    const [, bucket, ...rest] = ctx.path.split("/");
    const key = rest.map((s) => decodeURIComponent(s)).join("/");
    if (!bucket || !key) return next();
    const id = `${bucket}/${key}`;
    const previous = inFlight.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = new Promise<void>((resolve) => {
      done = resolve;
    });
    const chained = previous.then(() => mine);
    inFlight.set(id, chained);
    try {
      await previous;
      if (await server.store.existsObject(bucket, key)) {
        ctx.status = 412;
        ctx.type = "application/xml";
        ctx.body =
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
          "<Message>At least one of the pre-conditions you specified did not hold</Message>" +
          "<Condition>If-None-Match</Condition></Error>";
        return;
      }
      await next();
    } finally {
      done();
      if (inFlight.get(id) === chained) inFlight.delete(id);
    }
  };
  server.middleware.unshift(middleware);
}

interface FilesystemStore {
  getResourcePath(bucket: string, key: string, resource: string): string;
  getObject(bucket: string, key: string, options?: unknown): Promise<unknown>;
  putObject(object: { bucket: string; key: string; content: Buffer | Readable; metadata: unknown }): Promise<{
    size: number;
    md5: string;
  }>;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
}

/**
 * S3 serves every GET a whole object version, however a PUT of the same key races it. s3rver writes
 * an object's bytes in place (truncating the file a reader may be streaming) and its metadata after
 * them, so a GET racing a PUT could get a truncated body, or new bytes with old metadata (seen by the
 * soak's readers: the search index's manifest, rewritten while chat read it, failed to parse). Here a
 * PUT writes the bytes to a temporary file, then renames it over the object (a reader keeps the file
 * it opened) and writes the metadata, in one turn with the GETs of that key (each reads the metadata
 * and opens the bytes in its turn).
 */
function makeObjectWritesAtomic(server: S3rver): void {
  const store = (server as unknown as { store: FilesystemStore }).store;
  const turns = new Map<string, Promise<void>>();
  const inTurn = async <T>(id: string, fn: () => Promise<T>): Promise<T> => {
    const before = turns.get(id) ?? Promise.resolve();
    let done!: () => void;
    const mine = before.then(() => new Promise<void>((resolve) => (done = resolve)));
    turns.set(id, mine);
    await before;
    try {
      return await fn();
    } finally {
      done();
      if (turns.get(id) === mine) turns.delete(id);
    }
  };
  const getObject = store.getObject.bind(store);
  store.getObject = (bucket, key, options) =>
    inTurn(`${bucket}/${key}`, () => getObject(bucket, key, options));
  store.putObject = async (object) => {
    const objectPath = store.getResourcePath(object.bucket, object.key, "object");
    await mkdir(dirname(objectPath), { recursive: true });
    // The bytes go to a file of their own first (GETs meanwhile serve the previous version whole)...
    const temporary = `${objectPath}.${randomBytes(6).toString("hex")}.tmp`;
    const md5 = createHash("md5");
    let size = 0;
    const source = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
    try {
      await pipeline(
        source,
        new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            md5.update(chunk);
            size += chunk.length;
            callback(null, chunk);
          },
        }),
        createWriteStream(temporary),
      );
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    const digest = md5.digest("hex");
    // ...then they replace the object and its metadata in one turn.
    await inTurn(`${object.bucket}/${object.key}`, async () => {
      await rename(temporary, objectPath);
      await store.putMetadata(object.bucket, object.key, object.metadata, digest);
    });
    return { size, md5: digest };
  };
}

function normaliseRecord(raw: S3EventRecord, sequencer: string): S3EventRecord {
  const object = raw.s3.object as S3EventRecord["s3"]["object"] & { size?: number; eTag?: string };
  const normalised: S3EventRecord["s3"]["object"] = {
    key: encodeS3EventKey(object.key),
    size: object.size as number,
    eTag: object.eTag as string,
    sequencer,
  };
  // AWS omits size and eTag on ObjectRemoved records.
  if (object.size === undefined) delete (normalised as { size?: number }).size;
  if (object.eTag === undefined) delete (normalised as { eTag?: string }).eTag;
  return {
    ...raw,
    eventVersion: "2.1",
    s3: {
      ...raw.s3,
      bucket: { ...raw.s3.bucket, arn: `arn:aws:s3:::${raw.s3.bucket.name}` },
      object: normalised,
    },
  };
}
