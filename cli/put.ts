/**
 * `kdp put <files or folders...>`: uploads to the documents bucket (the local one by default, a
 * deployed one with --bucket and the usual AWS credentials), one progress bar at a time, a result line
 * per file, then (unless --no-wait) follows each document until it is ready or failed.
 *
 * Keys: a file is stored under its name; a folder's files under `<folder name>/<relative path>`;
 * --prefix is put in front of either.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { LOCAL_CREDENTIALS } from "../local/runtime/config";
import { isIgnoredName } from "../local/runtime/drop-folder";
import { uploadFile } from "../local/runtime/upload";
import { type ApiClient, type ApiDocument, CliError } from "./api";
import { formatBytes } from "./format";
import { ProgressBar } from "./progress";

export interface PutOptions {
  paths: string[];
  prefix?: string;
  /** A deployed bucket; otherwise the local stack's. */
  bucket?: string;
  region?: string;
  wait: boolean;
  timeoutSeconds: number;
  /** Seconds between status polls. */
  pollSeconds?: number;
}

interface PlannedFile {
  path: string;
  key: string;
  size: number;
}

interface Uploaded {
  key: string;
  eTag?: string;
  startedAt: string;
}

/** Runs the command; returns the exit code. */
export async function put(api: ApiClient, opts: PutOptions, out = process.stdout): Promise<number> {
  if (opts.paths.length === 0) throw new CliError("kdp put needs at least one file or folder", 2);
  const prefix = normalisePrefix(opts.prefix);
  const { files, missing } = await plan(opts.paths, prefix);
  let failures = missing.length;
  for (const m of missing) out.write(`not found  ${m}: no such file or folder\n`);
  if (files.length === 0) {
    if (missing.length) return 1;
    throw new CliError("nothing to upload: the folders given contain no files", 1);
  }

  const { s3, bucket, where } = s3Target(api, opts);
  const bar = new ProgressBar();
  const uploaded: Uploaded[] = [];
  try {
    for (const [i, file] of files.entries()) {
      const label = files.length > 1 ? `[${i + 1}/${files.length}] ${file.key}` : file.key;
      const startedAt = new Date(Date.now() - 1000).toISOString();
      try {
        const result = await uploadFile({
          s3,
          bucket,
          key: file.key,
          path: file.path,
          onProgress: (sent, total) => bar.update(label, sent, total),
        });
        bar.clear();
        out.write(`uploaded   ${file.key} (${formatBytes(file.size)}) -> s3://${bucket}/${file.key}\n`);
        uploaded.push({ key: file.key, eTag: result.eTag, startedAt });
      } catch (err) {
        bar.clear();
        failures++;
        out.write(`error      ${file.key}: ${describeS3Error(err, where)}\n`);
      }
    }
  } finally {
    s3.destroy();
  }

  if (uploaded.length && opts.wait) {
    if (opts.bucket && api.target.local) {
      out.write(
        "not waiting for ingestion: pass --api/--token (or KDP_API_URL/KDP_API_TOKEN) for the deployed stack\n",
      );
    } else {
      failures += await waitForDocuments(api, uploaded, opts, out);
    }
  }
  return failures > 0 ? 1 : 0;
}

function normalisePrefix(prefix: string | undefined): string {
  if (!prefix) return "";
  const trimmed = prefix.replace(/^\/+/, "");
  return trimmed === "" || trimmed.endsWith("/") ? trimmed : `${trimmed}/`;
}

async function plan(paths: string[], prefix: string): Promise<{ files: PlannedFile[]; missing: string[] }> {
  const files: PlannedFile[] = [];
  const missing: string[] = [];
  for (const given of paths) {
    const path = resolve(given);
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch {
      missing.push(given);
      continue;
    }
    if (info.isFile()) files.push({ path, key: `${prefix}${basename(path)}`, size: info.size });
    else if (info.isDirectory()) {
      for await (const [file, rel, size] of walk(path, ""))
        files.push({ path: file, key: `${prefix}${basename(path)}/${rel}`, size });
    } else missing.push(given);
  }
  return { files, missing };
}

async function* walk(dir: string, rel: string): AsyncGenerator<[string, string, number]> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (isIgnoredName(entry.name)) continue;
    const path = join(dir, entry.name);
    const relPath = rel ? `${rel}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* walk(path, relPath);
    else if (entry.isFile()) yield [path, relPath, (await stat(path)).size];
  }
}

function s3Target(
  api: ApiClient,
  opts: PutOptions,
): { s3: S3Client; bucket: string; where: "local" | "aws" } {
  if (opts.bucket) {
    // A deployed bucket: the SDK's default credential chain and region (AWS_PROFILE, AWS_REGION, ...).
    return {
      s3: new S3Client(opts.region ? { region: opts.region } : {}),
      bucket: opts.bucket,
      where: "aws",
    };
  }
  const runtime = api.target.runtime;
  if (!runtime)
    throw new CliError(
      `no local stack found (${join(api.target.dataDir, "runtime.json")} is missing) — run \`npm start\` first, ` +
        "or pass --bucket <name> to upload to a deployed stack",
    );
  return {
    s3: new S3Client({
      endpoint: runtime.s3Endpoint,
      forcePathStyle: true,
      region: runtime.region,
      credentials: LOCAL_CREDENTIALS,
      maxAttempts: 2,
    }),
    bucket: runtime.bucket,
    where: "local",
  };
}

function describeS3Error(err: unknown, where: "local" | "aws"): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string } };
  const code = e.code ?? e.cause?.code ?? "";
  if (where === "local" && /ECONNREFUSED/.test(`${code} ${e.message}`))
    return "the local S3 server is not running — run `npm start` first";
  if (e.name === "NoSuchBucket") return "the bucket does not exist";
  if (e.name === "AccessDenied")
    return "access denied by S3 (check your AWS credentials and the bucket name)";
  if (e.name === "CredentialsProviderError")
    return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID)";
  return e.message ?? String(err);
}

/** Polls until each upload's document is ready or failed; returns how many did not end ready. */
async function waitForDocuments(
  api: ApiClient,
  uploads: Uploaded[],
  opts: PutOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  const pending = new Map(uploads.map((u) => [u.key, u]));
  const pollMs = (opts.pollSeconds ?? 1) * 1000;
  let problems = 0;
  if (process.stderr.isTTY)
    process.stderr.write(`waiting for ${pending.size} document(s) to be ingested...\n`);
  while (pending.size > 0) {
    for (const upload of [...pending.values()]) {
      const doc = await findDocument(api, upload);
      if (!doc || doc.status === "processing") continue;
      pending.delete(upload.key);
      if (doc.status === "ready") {
        out.write(
          `ready      ${doc.key}  id=${doc.documentId}  ${doc.chunkCount ?? "?"} chunk(s), ~${doc.tokenEstimate ?? "?"} tokens\n`,
        );
      } else {
        problems++;
        const reason = doc.error ? `${doc.error.message} [${doc.error.code}]` : `status ${doc.status}`;
        out.write(`failed     ${doc.key}  id=${doc.documentId}  ${reason}\n`);
      }
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      for (const key of pending.keys())
        out.write(
          `timeout    ${key}: still processing after ${opts.timeoutSeconds}s (check later with \`kdp ls\`)\n`,
        );
      return problems + pending.size;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  return problems;
}

/** The document of this upload: same key, and this version (same ETag, or updated since the upload). */
async function findDocument(api: ApiClient, upload: Uploaded): Promise<ApiDocument | undefined> {
  const docs = await api.listDocuments({ prefix: upload.key, max: 100 });
  const doc = docs.find((d) => d.key === upload.key);
  if (!doc) return undefined;
  const sameVersion = (upload.eTag && doc.eTag === upload.eTag) || doc.updatedAt >= upload.startedAt;
  return sameVersion ? doc : undefined;
}
