/**
 * The console's server side without a browser: static serving (caching, ETags, encodings, CSP, the
 * stage-path redirect) and the presign route against the real local S3 (s3rver), including a PUT
 * through the presigned URL and the CORS preflight a browser makes.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { gunzipSync } from "node:zlib";
import { GetObjectCommand, HeadObjectCommand, PutBucketCorsCommand, S3Client } from "@aws-sdk/client-s3";
import { Hono } from "hono";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ChatAppContext, type ChatEnv, createChatApp } from "../../functions/chat/app";
import { errorResponse } from "../../functions/chat/http";
import { type StreamingRuntime, streamingHandler } from "../../functions/chat/lambda-stream";
import { consoleRoutes, contentSecurityPolicy, IMMUTABLE } from "../../functions/chat/routes/console";
import { planUpload, type UploadPolicy, uploadsRoutes } from "../../functions/chat/routes/uploads";
import { ADMIN_SCOPE } from "../../functions/core/auth/scope";
import type { ProviderApi } from "../../functions/core/provider/types";
import { type LocalStack, startLocalStack } from "../support/local-stack";

const ctx = {
  log: { info() {}, warn() {}, error() {} },
} as unknown as ChatAppContext;

function appWith(...routes: Hono<ChatEnv>[]): Hono<ChatEnv> {
  const app = new Hono<ChatEnv>();
  app.onError((err, c) => errorResponse(c, err));
  // The app's auth middleware sets the caller's scope; these route-level tests act as the admin.
  app.use("*", async (c, next) => {
    c.set("scope", ADMIN_SCOPE);
    await next();
  });
  for (const r of routes) app.route("/", r);
  return app;
}

describe("console static routes", () => {
  let dir: string;
  const js = `console.log(${JSON.stringify("x".repeat(4000))});`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kdp-console-"));
    await mkdir(join(dir, "assets"));
    await writeFile(join(dir, "index.html"), `<!doctype html><title>t</title>${"<!-- pad -->".repeat(100)}`);
    await writeFile(join(dir, "assets", "index-abc123.js"), js);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const uploads = {
    bucket: "docs",
    s3: new S3Client({
      region: "eu-west-1",
      credentials: { accessKeyId: "a", secretAccessKey: "b" },
      requestChecksumCalculation: "WHEN_REQUIRED",
    }),
  };

  it("serves index.html with no-cache, an ETag, a strict CSP allowing the S3 upload origin", async () => {
    const app = appWith(consoleRoutes(ctx, { dir, uploads }));
    const res = await app.request("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const csp = res.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self' https://docs.s3.eu-west-1.amazonaws.com");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("strict-transport-security")).toBeNull(); // plain http here
    const etag = res.headers.get("etag");
    expect(etag).toMatch(/^".+"$/);
    const again = await app.request("/", { headers: { "If-None-Match": etag ?? "" } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
  });

  it("serves hashed assets as immutable, compressed by Accept-Encoding", async () => {
    const app = appWith(consoleRoutes(ctx, { dir, uploads }));
    const plain = await app.request("/assets/index-abc123.js");
    expect(plain.status).toBe(200);
    expect(plain.headers.get("cache-control")).toBe(IMMUTABLE);
    expect(plain.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(plain.headers.get("content-encoding")).toBeNull();
    expect(await plain.text()).toBe(js);

    const gz = await app.request("/assets/index-abc123.js", { headers: { "Accept-Encoding": "gzip" } });
    expect(gz.headers.get("content-encoding")).toBe("gzip");
    expect(gz.headers.get("vary")).toBe("Accept-Encoding");
    const bytes = Buffer.from(await gz.arrayBuffer());
    expect(bytes.length).toBeLessThan(js.length / 5);
    expect(gunzipSync(bytes).toString()).toBe(js);

    const br = await app.request("/assets/index-abc123.js", {
      headers: { "Accept-Encoding": "gzip, deflate, br" },
    });
    expect(br.headers.get("content-encoding")).toBe("br");
    const noBr = await app.request("/assets/index-abc123.js", {
      headers: { "Accept-Encoding": "br;q=0, gzip" },
    });
    expect(noBr.headers.get("content-encoding")).toBe("gzip");

    const missing = await app.request("/assets/index-old.js");
    expect(missing.status).toBe(404);
    const traversal = await app.request("/assets/..%2F..%2Findex.html");
    expect(traversal.status).toBe(404);
  });

  it("redirects an API Gateway stage path without its trailing slash", async () => {
    const app = appWith(consoleRoutes(ctx, { dir, uploads }));
    const res = await app.request("/", {}, { event: { requestContext: { path: "/prod" } } } as never);
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("/prod/");
    const ok = await app.request("/", {}, { event: { requestContext: { path: "/prod/" } } } as never);
    expect(ok.status).toBe(200);
  });

  it("says how to build the console when it is missing", async () => {
    const empty = await mkdtemp(join(tmpdir(), "kdp-console-empty-"));
    try {
      const app = appWith(consoleRoutes(ctx, { dir: empty, uploads }));
      const res = await app.request("/");
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
        "npm run build:web",
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it("builds a CSP without duplicate origins", () => {
    expect(contentSecurityPolicy(["http://a", "http://a"])).toContain("connect-src 'self' http://a;");
  });
});

describe("upload policy", () => {
  const policy: UploadPolicy = {
    maxBytes: 1000,
    extensions: ["pdf", "docx", "txt"],
    basePrefix: "in/",
    expiresInSeconds: 60,
  };
  const status = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return (e as { status: number }).status;
    }
    return 0;
  };

  it("decides the key and the stored type from the extension", () => {
    expect(
      planUpload({ filename: "Report Q1.PDF", size: 10, contentType: "", prefix: "a//b/" }, policy),
    ).toEqual({
      key: "in/a/b/Report Q1.PDF",
      contentType: "application/pdf",
      size: 10,
    });
    expect(planUpload({ filename: "C:\\Users\\me\\notes.txt", size: 1 }, policy).key).toBe("in/notes.txt");
    expect(planUpload({ filename: "../../x.txt", size: 1, contentType: "text/html" }, policy)).toEqual({
      key: "in/x.txt",
      contentType: "text/plain",
      size: 1,
    });
  });

  it("refuses what would fail later, with the right status", () => {
    expect(status(() => planUpload({ filename: "tool.exe", size: 10 }, policy))).toBe(415);
    expect(status(() => planUpload({ filename: "README", size: 10 }, policy))).toBe(415);
    expect(status(() => planUpload({ filename: "big.pdf", size: 1001 }, policy))).toBe(413);
    expect(status(() => planUpload({ filename: "empty.pdf", size: 0 }, policy))).toBe(400);
    expect(status(() => planUpload({ filename: "a.pdf", size: 1, prefix: "../etc" }, policy))).toBe(400);
    expect(status(() => planUpload({ filename: "a\u0000.pdf", size: 1 }, policy))).toBe(400);
  });
});

describe("POST /uploads against local S3", () => {
  let stack: LocalStack;
  let app: Hono<ChatEnv>;
  let presigner: S3Client;

  beforeAll(async () => {
    stack = await startLocalStack({ prefix: "kdp-web" });
    presigner = new S3Client({
      endpoint: stack.s3Endpoint,
      forcePathStyle: true,
      region: "us-east-1",
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      requestChecksumCalculation: "WHEN_REQUIRED",
    });
    app = appWith(uploadsRoutes(ctx, { bucket: stack.bucket, s3: presigner, maxBytes: 1024 * 1024 }));
    await stack.s3Client.send(
      new PutBucketCorsCommand({
        Bucket: stack.bucket,
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedMethods: ["PUT"],
              AllowedOrigins: ["*"],
              AllowedHeaders: ["*"],
              ExposeHeaders: ["ETag"],
            },
          ],
        },
      }),
    );
  });
  afterAll(async () => {
    presigner?.destroy();
    await stack?.close();
  });

  const post = (body: unknown) =>
    app.request("/uploads", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });

  it("GET /uploads returns the policy", async () => {
    const res = await app.request("/uploads");
    expect(res.status).toBe(200);
    const policy = (await res.json()) as UploadPolicy;
    expect(policy.maxBytes).toBe(1024 * 1024);
    expect(policy.extensions).toEqual(expect.arrayContaining(["pdf", "docx", "md", "txt"]));
    expect(policy.extensions).not.toContain("exe");
  });

  it("presigns a PUT that stores the file under the prefix with the checked type", async () => {
    const content = Buffer.from("hello from the console\n");
    const res = await post({
      filename: "hello.txt",
      size: content.length,
      contentType: "text/plain",
      prefix: "web/",
    });
    expect(res.status).toBe(201);
    const ticket = (await res.json()) as { key: string; url: string; headers: Record<string, string> };
    expect(ticket.key).toBe("web/hello.txt");
    const url = new URL(ticket.url);
    expect(url.origin).toBe(stack.s3Endpoint);
    expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe(
      "content-length;content-type;host;if-none-match",
    );
    expect(url.searchParams.has("x-amz-checksum-crc32")).toBe(false);

    const preflight = await fetch(ticket.url, {
      method: "OPTIONS",
      headers: {
        Origin: "http://127.0.0.1:3000",
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    expect(preflight.status).toBe(200);
    expect(preflight.headers.get("access-control-allow-methods")).toContain("PUT");

    const put = await fetch(ticket.url, { method: "PUT", headers: ticket.headers, body: content });
    expect(put.status).toBe(200);
    const head = await stack.s3Client.send(
      new HeadObjectCommand({ Bucket: stack.bucket, Key: "web/hello.txt" }),
    );
    expect(head.ContentType).toBe("text/plain");
    const got = await stack.s3Client.send(
      new GetObjectCommand({ Bucket: stack.bucket, Key: "web/hello.txt" }),
    );
    expect(await got.Body?.transformToString()).toBe(content.toString());
  });

  it("never overwrites silently: 409 for an existing key, a conditional PUT that S3 refuses (412) in a race", async () => {
    const content = Buffer.from("first version\n");
    const first = (await (await post({ filename: "once.txt", size: content.length })).json()) as {
      key: string;
      url: string;
      headers: Record<string, string>;
    };
    expect(first.headers["If-None-Match"]).toBe("*");
    expect(new URL(first.url).searchParams.get("X-Amz-SignedHeaders")).toBe(
      "content-length;content-type;host;if-none-match",
    );
    // A second ticket for the same key, taken before the first upload lands: the race.
    const racing = (await (
      await post({ filename: "once.txt", size: content.length })
    ).json()) as typeof first;
    expect((await fetch(first.url, { method: "PUT", headers: first.headers, body: content })).status).toBe(
      200,
    );
    const lost = await fetch(racing.url, {
      method: "PUT",
      headers: racing.headers,
      body: Buffer.from("other\n"),
    });
    expect(lost.status).toBe(412);
    expect(await lost.text()).toContain("PreconditionFailed");
    // Dropping the header breaks the signature: a client cannot opt out of the condition.
    const again = (await (await post({ filename: "twice.txt", size: 3 })).json()) as typeof first;
    const unsigned = await fetch(again.url, {
      method: "PUT",
      headers: { "Content-Type": again.headers["Content-Type"]! },
      body: "abc",
    });
    expect(unsigned.status).toBe(403);

    const conflict = await post({ filename: "once.txt", size: content.length });
    expect(conflict.status).toBe(409);
    const error = ((await conflict.json()) as { error: { type: string; message: string; param: string } })
      .error;
    expect(error).toMatchObject({ type: "conflict_error", param: "overwrite" });
    expect(error.message).toMatch(/once\.txt already exists; send "overwrite": true/);

    const replace = (await (
      await post({ filename: "once.txt", size: content.length, overwrite: true })
    ).json()) as typeof first;
    expect(replace.headers["If-None-Match"]).toBeUndefined();
    const newer = Buffer.from("second version\n".slice(0, content.length));
    expect((await fetch(replace.url, { method: "PUT", headers: replace.headers, body: newer })).status).toBe(
      200,
    );
    const got = await stack.s3Client.send(new GetObjectCommand({ Bucket: stack.bucket, Key: "once.txt" }));
    expect(await got.Body?.transformToString()).toBe(newer.toString());
  });

  it("conditional PUTs of one new key at once: exactly one wins", async () => {
    const tickets = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const res = await post({ filename: "contended.txt", size: 4 });
        return (await res.json()) as { url: string; headers: Record<string, string> };
      }),
    );
    const statuses = await Promise.all(
      tickets.map((t, i) => fetch(t.url, { method: "PUT", headers: t.headers, body: `v${i}..`.slice(0, 4) })),
    ).then((rs) => rs.map((r) => r.status));
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(5);
  });

  it("answers bad uploads with a 4xx that says what to fix", async () => {
    const tooBig = await post({ filename: "big.pdf", size: 2 * 1024 * 1024 });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as { error: { message: string } }).error.message).toMatch(
      /limit is 1048576 bytes/,
    );
    const badType = await post({ filename: "setup.exe", size: 10 });
    expect(badType.status).toBe(415);
    expect(((await badType.json()) as { error: { message: string } }).error.message).toMatch(
      /\.exe files are not supported/,
    );
    const noSize = await post({ filename: "a.pdf" });
    expect(noSize.status).toBe(400);
    expect(((await noSize.json()) as { error: { message: string } }).error.message).toMatch(/size/);
    const extra = await post({ filename: "a.pdf", size: 1, bucket: "other" });
    expect(extra.status).toBe(400);
  });
});

describe("inside the chat app", () => {
  const TOKEN = "console-test-token";
  const makeApp = () =>
    createChatApp({
      store: {
        get: async () => undefined,
        list: async () => ({ items: [] }),
        getChunks: async () => [],
        readText: async () => ({ ok: false, record: undefined, status: "deleted", reason: "none" }),
      },
      provider: {} as ProviderApi,
      objects: { deleteObject: async () => {} },
      defaultModel: "kimi-k2.6",
      authenticate: async (header) => (header === `Bearer ${TOKEN}` ? ADMIN_SCOPE : undefined),
    });

  it("serves the console without a token but keeps every API route, uploads included, authenticated", async () => {
    process.env.BUCKET_NAME = "docs";
    process.env.AWS_REGION ??= "us-east-1";
    // Presigning is local computation, but the SDK still wants credentials to sign with.
    process.env.AWS_ACCESS_KEY_ID ??= "test";
    process.env.AWS_SECRET_ACCESS_KEY ??= "test";
    const app = makeApp();
    // Public: the sign-in page (503 "not built" is fine here: the point is it is not 401).
    expect((await app.request("/")).status).not.toBe(401);
    expect((await app.request("/assets/missing.js")).status).not.toBe(401);
    for (const [method, path] of [
      ["GET", "/uploads"],
      ["POST", "/uploads"],
      ["GET", "/health"],
      ["GET", "/documents"],
      ["POST", "/", "x"],
      ["GET", "/index.html"],
    ]) {
      const res = await app.request(path, { method, headers: { authorization: "Bearer wrong" } });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    const policy = await app.request("/uploads", { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(policy.status).toBe(200);
    const created = await app.request("/uploads", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      // No S3 server here: overwrite skips the existence check (presigning itself is local).
      body: JSON.stringify({ filename: "a.pdf", size: 10, overwrite: true }),
    });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { url: string }).url).toContain("docs");
  });

  it("in AWS mode (no authenticate) the console still loads while API routes need the authorizer", async () => {
    const app = createChatApp({
      store: {
        get: async () => undefined,
        list: async () => ({ items: [] }),
        getChunks: async () => [],
        readText: async () => ({ ok: false, record: undefined, status: "deleted", reason: "none" }),
      },
      provider: {} as ProviderApi,
      objects: { deleteObject: async () => {} },
      defaultModel: "kimi-k2.6",
    });
    expect((await app.request("/")).status).not.toBe(401);
    expect((await app.request("/uploads")).status).toBe(401);
  });
});

describe("through the streaming Lambda adapter (API Gateway REST, no authorizer on the console methods)", () => {
  let dir: string;
  const js = `export const x = ${JSON.stringify("y".repeat(3000))};`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kdp-console-lambda-"));
    await mkdir(join(dir, "assets"));
    await writeFile(
      join(dir, "index.html"),
      '<!doctype html><script type="module" src="./assets/app-1.js"></script>',
    );
    await writeFile(join(dir, "assets", "app-1.js"), js);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function invoke(path: string, stagePath: string, headers: Record<string, string> = {}) {
    let metadata: Record<string, unknown> = {};
    const runtime: StreamingRuntime = {
      streamifyResponse: (h) => h,
      HttpResponseStream: {
        from(stream, m) {
          metadata = m;
          return stream;
        },
      },
    };
    process.env.CONSOLE_DIR = dir;
    const app = createChatApp({
      store: {
        get: async () => undefined,
        list: async () => ({ items: [] }),
        getChunks: async () => [],
        readText: async () => ({ ok: false, record: undefined, status: "deleted", reason: "none" }),
      },
      provider: {} as ProviderApi,
      objects: { deleteObject: async () => {} },
      defaultModel: "kimi-k2.6",
    });
    const handler = streamingHandler(app, runtime) as (
      e: unknown,
      s: NodeJS.WritableStream,
      c: unknown,
    ) => Promise<void>;
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (d: Buffer) => chunks.push(d));
    const done = new Promise((r) => out.on("finish", r));
    await handler(
      {
        httpMethod: "GET",
        path,
        headers,
        multiValueHeaders: {},
        queryStringParameters: null,
        multiValueQueryStringParameters: null,
        body: null,
        isBase64Encoded: false,
        requestContext: { domainName: "abc.execute-api.eu-west-1.amazonaws.com", path: stagePath },
      },
      out,
      {},
    );
    await done;
    const h = (metadata.headers ?? {}) as Record<string, string>;
    return { status: metadata.statusCode as number, headers: h, body: Buffer.concat(chunks) };
  }

  it("serves the page and its assets with no authorizer context, and nothing else", async () => {
    const page = await invoke("/", "/prod/");
    expect(page.status).toBe(200);
    expect(page.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(page.headers["strict-transport-security"]).toContain("max-age=");
    expect(page.body.toString()).toContain('src="./assets/app-1.js"');

    const noSlash = await invoke("/", "/prod");
    expect(noSlash.status).toBe(301);
    expect(noSlash.headers.location).toBe("/prod/");

    const asset = await invoke("/assets/app-1.js", "/prod/assets/app-1.js", { "Accept-Encoding": "gzip" });
    expect(asset.status).toBe(200);
    expect(asset.headers["content-encoding"]).toBe("gzip");
    expect(asset.headers["cache-control"]).toBe(IMMUTABLE);
    expect(gunzipSync(asset.body).toString()).toBe(js);

    // A method deployed without the authorizer by mistake still fails closed for data routes.
    expect((await invoke("/documents", "/prod/documents")).status).toBe(401);
    expect((await invoke("/uploads", "/prod/uploads")).status).toBe(401);
    delete process.env.CONSOLE_DIR;
  });
});
