/**
 * Upload routes (authenticated like every API route): the web console and any client upload files
 * straight to the documents bucket through presigned S3 PUT URLs, so file bytes never pass through
 * API Gateway (10 MB payload cap) or the Lambda.
 *
 * - GET /uploads   the policy: `{ maxBytes, extensions, basePrefix, expiresInSeconds }`.
 * - POST /uploads  `{ filename, size, contentType?, prefix?, overwrite? }` -> 201
 *   `{ key, url, method: "PUT", headers: { "Content-Type", "If-None-Match"? }, expiresAt }`.
 *   Never a silent overwrite: unless `overwrite: true`, an existing key is a 409 `conflict_error`, and
 *   the URL is signed with `If-None-Match: *`, so S3 itself refuses (412) an object that appeared in
 *   between (another upload racing this one). Local mode's S3 server enforces the same.
 *   Checked here first: 415 for a type the provider cannot extract, 413 above the provider's 100 MB
 *   per-file limit, 400 for an empty file or a bad name/prefix. The URL signs Content-Type and
 *   Content-Length, so S3 itself refuses a different type or size than the one checked.
 *
 * Config comes from the environment the chat function already has (BUCKET_NAME; S3 endpoint and
 * path-style from the SDK's variables in local mode), read on first use; tests pass it explicitly.
 */
import { HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { Hono } from "hono";
import * as z from "zod/mini";
import { outsideScope, type Scope } from "../../core/auth/scope";
import { ApiError, badRequest } from "../../core/chat/errors";
import { ENV } from "../../core/config";
import type { ChatAppContext, ChatEnv } from "../context";
import { parseWith, readJson } from "../http";
import { describeRoute, errorResponses, jsonBody, jsonResponse } from "../openapi";
import { scopeOf } from "../scope";

/** The provider's per-file limit (100 MB): larger files would only fail at ingestion. */
export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024;
export const DEFAULT_UPLOAD_URL_TTL_SECONDS = 15 * 60;

/**
 * Extensions the provider's file-extract accepts (its documented list, plus common aliases), with the
 * Content-Type stored on the object. Anything else is refused before upload instead of failing later.
 */
export const UPLOAD_TYPES: Readonly<Record<string, string>> = {
  pdf: "application/pdf",
  txt: "text/plain",
  text: "text/plain",
  md: "text/markdown",
  markdown: "text/markdown",
  csv: "text/csv",
  doc: "application/msword",
  dot: "application/msword",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls: "application/vnd.ms-excel",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ppt: "application/vnd.ms-powerpoint",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  epub: "application/epub+zip",
  mobi: "application/x-mobipocket-ebook",
  html: "text/html",
  htm: "text/html",
  json: "application/json",
  log: "text/plain",
  yaml: "application/yaml",
  yml: "application/yaml",
  ini: "text/plain",
  conf: "text/plain",
  go: "text/x-go",
  h: "text/x-c",
  c: "text/x-c",
  cpp: "text/x-c++",
  cxx: "text/x-c++",
  cc: "text/x-c++",
  cs: "text/x-csharp",
  java: "text/x-java",
  js: "text/javascript",
  ts: "text/x-typescript",
  tsx: "text/x-typescript",
  css: "text/css",
  jsp: "text/plain",
  php: "application/x-php",
  py: "text/x-python",
  py3: "text/x-python",
  asp: "text/plain",
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  jfif: "image/jpeg",
  pjp: "image/jpeg",
  pjpeg: "image/jpeg",
  png: "image/png",
  apng: "image/apng",
  bmp: "image/bmp",
  dib: "image/bmp",
  gif: "image/gif",
  svg: "image/svg+xml",
  svgz: "image/svg+xml",
  webp: "image/webp",
  ico: "image/x-icon",
  xbm: "image/x-xbitmap",
  tif: "image/tiff",
  tiff: "image/tiff",
  avif: "image/avif",
};

export interface UploadConfig {
  bucket: string;
  /**
   * Client that signs the URLs. Must be built with `requestChecksumCalculation: "WHEN_REQUIRED"`
   * (see createPresignClient): otherwise the SDK signs a CRC32 of an empty body into the URL and S3
   * rejects every real upload.
   */
  s3?: S3Client;
  /** Prefix every upload is confined to ("" = whole bucket). Normalised to end in "/". */
  basePrefix?: string;
  maxBytes?: number;
  expiresInSeconds?: number;
}

/** The policy clients check against before uploading (GET /uploads). */
export interface UploadPolicy {
  maxBytes: number;
  extensions: string[];
  basePrefix: string;
  expiresInSeconds: number;
}

/** An S3 client suited to presigning: no flexible checksums in URLs; path-style when local mode says so. */
export function createPresignClient(): S3Client {
  return new S3Client({
    forcePathStyle: process.env.S3_FORCE_PATH_STYLE === "true",
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
}

/** Upload config from the chat function's environment, or undefined when BUCKET_NAME is unset. */
export function uploadConfigFromEnv(env: NodeJS.ProcessEnv = process.env): UploadConfig | undefined {
  const bucket = env[ENV.BUCKET_NAME]?.trim();
  if (!bucket) return undefined;
  const basePrefix = env[ENV.UPLOAD_PREFIX]?.trim();
  return { bucket, basePrefix: basePrefix || undefined };
}

/** "a//b/" -> "a/b/", "" -> ""; `..` and `.` segments and control characters are refused. */
export function normalisePrefix(raw: string, param = "prefix"): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(raw)) {
    throw badRequest(`${param} must not contain control characters or backslashes.`, param);
  }
  const parts = raw.split("/").filter((p) => p.trim() !== "");
  if (parts.some((p) => p === "." || p === "..")) {
    throw badRequest(`${param} must not contain "." or ".." segments.`, param);
  }
  return parts.length ? `${parts.map((p) => p.trim()).join("/")}/` : "";
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot <= 0 || dot === name.length - 1 ? "" : name.slice(dot + 1).toLowerCase();
}

export interface UploadRequest {
  filename: string;
  size: number;
  contentType?: string;
  prefix?: string;
}

export interface UploadPlan {
  key: string;
  contentType: string;
  size: number;
}

/**
 * The upload's folder (relative to the base prefix) for a caller with `scope`: the key is
 * `basePrefix + prefix + filename` and must lie inside the scope. Without a prefix, a scoped caller's
 * upload lands at its scope. A prefix outside the scope is a 403 that says which scope the key has.
 */
export function scopedUploadPrefix(scope: Scope, basePrefix: string, asked: string | undefined): string {
  const relative = normalisePrefix(asked ?? "");
  if (scope.prefix === "") return relative;
  if (asked === undefined || relative === "") {
    if (scope.prefix.startsWith(basePrefix)) return scope.prefix.slice(basePrefix.length);
    if (basePrefix.startsWith(scope.prefix)) return "";
    throw new ApiError(
      403,
      "permission_error",
      `This key's scope ${JSON.stringify(scope.prefix)} is outside the upload area ${JSON.stringify(basePrefix)}; it cannot upload.`,
      { param: "prefix" },
    );
  }
  if (!`${basePrefix}${relative}`.startsWith(scope.prefix))
    throw outsideScope(scope, `${basePrefix}${relative}`);
  return relative;
}

/** Checks one upload against the policy and decides its key and stored Content-Type. */
export function planUpload(input: UploadRequest, policy: UploadPolicy): UploadPlan {
  // Browsers send a bare name, but strip any path a client includes ("C:\\x\\a.pdf", "../a.pdf").
  const base = input.filename.split(/[\\/]/).pop()?.trim() ?? "";
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (base === "" || base === "." || base === ".." || /[\u0000-\u001f\u007f]/.test(base)) {
    throw badRequest("filename must be a file name without control characters.", "filename");
  }
  const ext = extensionOf(base);
  const stored = UPLOAD_TYPES[ext];
  if (!stored || !policy.extensions.includes(ext)) {
    throw new ApiError(
      415,
      "invalid_request_error",
      `${ext ? `.${ext} files are` : "Files without an extension are"} not supported: the provider extracts text from ` +
        `${policy.extensions
          .slice(0, 10)
          .map((e) => `.${e}`)
          .join(", ")} and more (GET /uploads lists them all).`,
      { param: "filename", code: "unsupported_type" },
    );
  }
  if (input.size === 0) throw badRequest("The file is empty; there is no text to extract.", "size");
  if (input.size > policy.maxBytes) {
    throw new ApiError(
      413,
      "request_too_large",
      `The file is ${input.size} bytes; the limit is ${policy.maxBytes} bytes (${Math.floor(policy.maxBytes / 1048576)} MB) per file.`,
      { param: "size", code: "too_large" },
    );
  }
  const key = `${policy.basePrefix}${normalisePrefix(input.prefix ?? "")}${base}`;
  if (Buffer.byteLength(key, "utf8") > 1024) {
    throw badRequest("prefix + filename is longer than S3's 1,024-byte key limit.", "filename");
  }
  // The extension decides the stored type: a browser's guess (often "" or octet-stream) is not kept,
  // and a PDF cannot be stored as text/html.
  return { key, contentType: stored, size: input.size };
}

const policySchema = z.object({
  maxBytes: z.number(),
  extensions: z.array(z.string()),
  basePrefix: z.string(),
  expiresInSeconds: z.number(),
  scopePrefix: z.string(),
});
const presignedSchema = z.object({
  key: z.string(),
  url: z.string(),
  method: z.literal("PUT"),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.string(),
});

export const uploadRequest = z.strictObject({
  filename: z
    .string({ error: "must be a string" })
    .check(z.minLength(1, "must not be empty"), z.maxLength(255, "must be at most 255 characters")),
  size: z
    .number({ error: "must be the file size in bytes" })
    .check(
      z.refine(Number.isSafeInteger, "must be a whole number of bytes"),
      z.minimum(0, "must not be negative"),
    ),
  contentType: z.optional(
    z.string({ error: "must be a string" }).check(z.maxLength(255, "must be at most 255 characters")),
  ),
  prefix: z.optional(
    z.string({ error: "must be a string" }).check(z.maxLength(512, "must be at most 512 characters")),
  ),
  overwrite: z.optional(z.boolean({ error: "must be true or false" })),
});

/** True when the key holds an object (HEAD; needs s3:GetObject on the upload area). */
async function objectExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (err) {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === "NotFound" || e.name === "NoSuchKey" || e.$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

/** The origin presigned URLs point at (for the console's Content-Security-Policy `connect-src`). */
export async function uploadOrigin(config: UploadConfig): Promise<string> {
  const s3 = config.s3 ?? createPresignClient();
  const url = await getSignedUrl(s3, new PutObjectCommand({ Bucket: config.bucket, Key: "probe" }), {
    expiresIn: 60,
  });
  return new URL(url).origin;
}

/** Resolves the config once (lazily, so an app built without BUCKET_NAME only fails on these routes). */
export function uploadConfigResolver(config?: UploadConfig): () => Required<UploadConfig> {
  let resolved: Required<UploadConfig> | undefined;
  return () => {
    if (resolved) return resolved;
    const found = config ?? uploadConfigFromEnv();
    if (!found) {
      throw new ApiError(
        503,
        "configuration_error",
        `Uploads are not configured: ${ENV.BUCKET_NAME} is not set for the chat function.`,
      );
    }
    resolved = {
      bucket: found.bucket,
      s3: found.s3 ?? createPresignClient(),
      basePrefix: normalisePrefix(found.basePrefix ?? "", "basePrefix"),
      maxBytes: found.maxBytes ?? DEFAULT_MAX_UPLOAD_BYTES,
      expiresInSeconds: found.expiresInSeconds ?? DEFAULT_UPLOAD_URL_TTL_SECONDS,
    };
    return resolved;
  };
}

function policyOf(config: Required<UploadConfig>): UploadPolicy {
  return {
    maxBytes: config.maxBytes,
    extensions: Object.keys(UPLOAD_TYPES),
    basePrefix: config.basePrefix,
    expiresInSeconds: config.expiresInSeconds,
  };
}

/** Mounts GET/POST /uploads. `config` defaults to the environment (BUCKET_NAME, UPLOAD_PREFIX). */
export function uploadsRoutes(ctx: ChatAppContext, config?: UploadConfig): Hono<ChatEnv> {
  const routes = new Hono<ChatEnv>();
  const resolve = uploadConfigResolver(config);

  routes.get(
    "/uploads",
    describeRoute({
      summary: "What an upload may be (size, types, key prefix, the caller's scope)",
      tags: ["documents"],
      responses: { 200: jsonResponse("The upload policy", policySchema), ...errorResponses(503) },
    }),
    (c) =>
      c.json({ ...policyOf(resolve()), scopePrefix: scopeOf(c).prefix }, 200, {
        "Cache-Control": "no-store",
      }),
  );

  routes.post(
    "/uploads",
    describeRoute({
      summary: "A presigned S3 PUT URL for one file (never a silent overwrite)",
      tags: ["documents"],
      requestBody: jsonBody(uploadRequest),
      responses: {
        201: jsonResponse("PUT the file's bytes to `url` with `headers`", presignedSchema),
        ...errorResponses(400, 403, 409, 413, 415, 503),
      },
    }),
    async (c) => {
      const cfg = resolve();
      const body = parseWith(uploadRequest, await readJson(c));
      const prefix = scopedUploadPrefix(scopeOf(c), cfg.basePrefix, body.prefix);
      const plan = planUpload({ ...body, prefix }, policyOf(cfg));
      const overwrite = body.overwrite === true;
      if (!overwrite && (await objectExists(cfg.s3, cfg.bucket, plan.key))) {
        throw new ApiError(
          409,
          "conflict_error",
          `${plan.key} already exists; send "overwrite": true to replace it (its document is then re-ingested).`,
          { param: "overwrite", code: "object_exists" },
        );
      }
      const conditional = overwrite ? {} : { IfNoneMatch: "*" };
      const url = await getSignedUrl(
        cfg.s3,
        new PutObjectCommand({
          Bucket: cfg.bucket,
          Key: plan.key,
          ContentType: plan.contentType,
          ContentLength: plan.size,
          ...conditional,
        }),
        {
          expiresIn: cfg.expiresInSeconds,
          signableHeaders: new Set([
            "content-type",
            "content-length",
            ...(overwrite ? [] : ["if-none-match"]),
          ]),
        },
      );
      ctx.log.info("presigned upload", {
        key: plan.key,
        size: plan.size,
        contentType: plan.contentType,
        overwrite,
        principal: scopeOf(c).principal,
      });
      return c.json(
        {
          key: plan.key,
          url,
          method: "PUT",
          headers: { "Content-Type": plan.contentType, ...(overwrite ? {} : { "If-None-Match": "*" }) },
          expiresAt: new Date(Date.now() + cfg.expiresInSeconds * 1000).toISOString(),
        },
        201,
        { "Cache-Control": "no-store" },
      );
    },
  );

  return routes;
}
