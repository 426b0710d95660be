/**
 * Memory cost of a streamed upload: generates a file on disk (default 100 MB), uploads it through
 * MoonshotClient to the Moonshot emulator running in a child process (so only the client's memory is
 * in this process), samples RSS every 10 ms, and prints the peak RSS growth next to the file size as
 * JSON. `npx tsx bench/upload-memory.ts [--mb 100] [--in-process]`.
 *
 * `main()` is exported for the benchmark runner; `generateFile` and `measureUpload` for tests.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MoonshotClient } from "../functions/core/moonshot/adapter";
import type { RemoteFile } from "../functions/core/provider/types";

const MB = 1024 * 1024;
const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Writes `bytes` of UTF-8 text to `path` through a stream (reusing one 1 MB block, never holding the file). */
export async function generateFile(path: string, bytes: number): Promise<void> {
  const line = "The quick brown fox jumps over the lazy dog; Kimi reads every line of this document.\n";
  const block = Buffer.from(line.repeat(Math.ceil(MB / line.length)).slice(0, MB), "utf8");
  const out = createWriteStream(path);
  let left = bytes;
  while (left > 0) {
    const piece = left >= block.length ? block : block.subarray(0, left);
    left -= piece.length;
    if (!out.write(piece)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

/**
 * V8's full GC, also without `--expose-gc`: lets a measurement see live memory instead of 64 KB
 * chunks that are garbage but not yet collected (V8 collects external buffers lazily).
 */
export function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

export interface UploadMeasurement {
  file: RemoteFile;
  fileBytes: number;
  baselineRssBytes: number;
  peakRssBytes: number;
  /** Peak RSS growth over samples every `sampleMs` (includes garbage not yet collected). */
  peakRssGrowthBytes: number;
  /** With `gcEveryMs`: peak RSS growth right after a full GC, i.e. memory the upload keeps alive. */
  peakLiveRssGrowthBytes?: number;
  /** With `gcEveryMs`: peak growth of live ArrayBuffers (Buffers), where a buffered body would show. */
  peakLiveArrayBuffersGrowthBytes?: number;
  durationMs: number;
  samples: number;
  gcSamples: number;
}

/**
 * Uploads `path` with `client`, sampling RSS every `sampleMs` (default 10) from just before the
 * upload starts. With `gcEveryMs`, a full GC runs that often and live memory is sampled right after
 * it: the natural peak includes 64 KB chunks V8 has not collected yet, the live peak does not.
 */
export async function measureUpload(
  client: MoonshotClient,
  path: string,
  opts: { sampleMs?: number; filename?: string; gcEveryMs?: number } = {},
): Promise<UploadMeasurement> {
  const { size } = await stat(path);
  const gc = fullGc();
  gc();
  const baseline = process.memoryUsage();
  let peak = baseline.rss;
  let livePeak = baseline.rss;
  let liveBuffers = baseline.arrayBuffers;
  let samples = 0;
  let gcSamples = 0;
  const sampler = setInterval(() => {
    samples++;
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
  }, opts.sampleMs ?? 10);
  const collector =
    opts.gcEveryMs === undefined
      ? undefined
      : setInterval(() => {
          gc();
          // V8 frees ArrayBuffer backing stores on a background sweeper: read a moment later.
          setTimeout(() => {
            gcSamples++;
            const now = process.memoryUsage();
            if (now.rss > livePeak) livePeak = now.rss;
            if (now.arrayBuffers > liveBuffers) liveBuffers = now.arrayBuffers;
          }, 25).unref();
        }, opts.gcEveryMs);
  const t0 = performance.now();
  try {
    const file = await client.uploadFile({
      filename: opts.filename ?? "bench-upload.txt",
      size,
      contentType: "text/plain",
      open: () => createReadStream(path),
    });
    const end = process.memoryUsage.rss();
    if (end > peak) peak = end;
    return {
      file,
      fileBytes: size,
      baselineRssBytes: baseline.rss,
      peakRssBytes: peak,
      peakRssGrowthBytes: peak - baseline.rss,
      ...(collector
        ? {
            peakLiveRssGrowthBytes: livePeak - baseline.rss,
            peakLiveArrayBuffersGrowthBytes: liveBuffers - baseline.arrayBuffers,
          }
        : {}),
      durationMs: Math.round(performance.now() - t0),
      samples,
      gcSamples,
    };
  } finally {
    clearInterval(sampler);
    clearInterval(collector);
  }
}

/** Starts `npm run emulator`'s entry point in a child process on a random port (caller kills it). */
export async function startChildEmulator(apiKey: string): Promise<{ baseURL: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "local/emulator/main.ts", "--port", "0", "--api-key", apiKey],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`emulator did not start: ${output}`)), 30_000);
    const onData = (d: Buffer) => {
      output += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`emulator exited with ${code}: ${output}`));
    });
  });
  return { baseURL: `${url.replace(/\/$/, "")}/v1`, child };
}

/** Stops a child emulator with SIGTERM (it removes its temp folder) and waits up to 5 s for it to exit. */
export async function stopChildEmulator(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000).unref())]);
}

export interface UploadMemoryResult {
  benchmark: "upload-memory";
  server: "emulator (child process)";
  fileBytes: number;
  fileMB: number;
  peakRssGrowthBytes: number;
  peakRssGrowthMB: number;
  /** Peak RSS growth as a fraction of the file size. */
  growthToFileRatio: number;
  /** Same upload again with a full GC every 100 ms, sampled after each: memory the upload keeps alive. */
  liveRssGrowthMB: number;
  liveArrayBuffersGrowthMB: number;
  durationMs: number;
  throughputMBps: number;
  rssSamples: number;
  remoteFileBytes: number;
  node: string;
}

/** Runs the measurement once and returns the result (also what the CLI prints). */
export async function main(opts: { sizeBytes?: number } = {}): Promise<UploadMemoryResult> {
  // Exactly the provider's per-file cap (100 MiB).
  const sizeBytes = opts.sizeBytes ?? 100 * MB;
  const dir = await mkdtemp(join(tmpdir(), "kdp-upload-bench-"));
  const path = join(dir, "bench-upload.txt");
  const apiKey = "sk-bench";
  const { baseURL, child } = await startChildEmulator(apiKey);
  try {
    await generateFile(path, sizeBytes);
    const client = new MoonshotClient({ baseURL, apiKey: async () => apiKey, retry: { maxAttempts: 1 } });
    const m = await measureUpload(client, path);
    if (m.file.bytes !== sizeBytes)
      throw new Error(`emulator stored ${m.file.bytes} bytes, expected ${sizeBytes}`);
    await client.deleteFile(m.file.id);
    const live = await measureUpload(client, path, { gcEveryMs: 100 });
    await client.deleteFile(live.file.id);
    return {
      benchmark: "upload-memory",
      server: "emulator (child process)",
      fileBytes: m.fileBytes,
      fileMB: +(m.fileBytes / MB).toFixed(1),
      peakRssGrowthBytes: m.peakRssGrowthBytes,
      peakRssGrowthMB: +(m.peakRssGrowthBytes / MB).toFixed(1),
      growthToFileRatio: +(m.peakRssGrowthBytes / m.fileBytes).toFixed(4),
      liveRssGrowthMB: +((live.peakLiveRssGrowthBytes ?? 0) / MB).toFixed(1),
      liveArrayBuffersGrowthMB: +((live.peakLiveArrayBuffersGrowthBytes ?? 0) / MB).toFixed(1),
      durationMs: m.durationMs,
      throughputMBps: +(m.fileBytes / MB / (m.durationMs / 1000)).toFixed(1),
      rssSamples: m.samples,
      remoteFileBytes: m.file.bytes,
      node: process.version,
    };
  } finally {
    await stopChildEmulator(child);
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const mbArg = process.argv.indexOf("--mb");
  const sizeBytes = mbArg > 0 ? Number(process.argv[mbArg + 1]) * MB : undefined;
  main({ sizeBytes })
    .then((r) => console.log(JSON.stringify(r, null, 2)))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
