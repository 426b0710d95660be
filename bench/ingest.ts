/**
 * Ingestion benchmarks (issue 3). `npx tsx bench/ingest.ts` prints one JSON object; the exported
 * functions return the same numbers for bench/run.ts.
 *
 * The local S3 server, the local DynamoDB server and the Moonshot emulator run in a CHILD process, so
 * the memory and CPU measured here are the ingest path's own (S3 read stream -> multipart upload ->
 * text -> chunks -> DynamoDB), not the stand-ins'. S3 event records come back from the child over
 * stdout and are fed to IngestService as SQS-shaped batches, as in AWS.
 *
 * (a) memory: peak RSS growth while ingesting one generated 100 MiB object (a PDF whose pages hold a
 *     line of text and whose bulk is an unreferenced binary stream, so the provider extracts a short
 *     text and the measurement is about streaming the bytes). Target <= 64 MB.
 * (b) efficiency: N small documents with the emulator answering every call after `latencyMs`, C at a
 *     time: wall time against the ideal N x (2 calls x latency) / C. Target <= 1.15x.
 * (c) overhead: per-document time outside provider calls with zero emulator latency, one at a time.
 * (a') text memory: peak RSS growth while ingesting one 100 MiB plain text file, whose extracted text
 *     is as big (`npx tsx bench/ingest.ts text-memory [MiB]`). Target <= 128 MB (an eighth of the 1 GB
 *     function) at any size: the text streams (held whole, it grew 385 MB).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { S3EventRecord } from "aws-lambda";
import { DynamoDocumentStore } from "../functions/core/documents/dynamo-store";
import { documentIdFor } from "../functions/core/ingest/events";
import { S3ObjectSource } from "../functions/core/ingest/objects";
import { IngestService } from "../functions/core/ingest/service";
import { MoonshotClient } from "../functions/core/moonshot/adapter";
import { RecordingMetrics } from "../functions/core/runtime/telemetry";
import { ensureDocumentsTable, startLocalDynamo } from "../local/aws/dynamo";
import { startLocalS3 } from "../local/aws/s3";
import { sqsMessageFor } from "../local/aws/sqs";
import { startEmulator } from "../local/emulator/server";

const MiB = 1024 * 1024;
// s3rver accepts only its own access key id (any signature).
const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

interface ServerInfo {
  s3Endpoint: string;
  dynamoEndpoint: string;
  emulatorURL: string;
  baseURL: string;
  bucket: string;
  tableName: string;
}

// ------------------------------------------------------------------ children: the stand-ins

type ServerKind = "s3" | "dynamo" | "emulator";

/** Child mode: one stand-in per process, so none of them competes with another's event loop. */
async function serve(kind: ServerKind, latencyMs: number): Promise<void> {
  let close: () => Promise<void>;
  let endpoint: string;
  if (kind === "s3") {
    const s3 = await startLocalS3({ buckets: [] });
    s3.onEvent((record) => process.stdout.write(`EVENT ${JSON.stringify(record)}\n`));
    ({ endpoint, close } = { endpoint: s3.endpoint, close: () => s3.close() });
  } else if (kind === "dynamo") {
    const dynamo = await startLocalDynamo();
    ({ endpoint, close } = { endpoint: dynamo.endpoint, close: () => dynamo.close() });
  } else {
    const emulator = await startEmulator({ faults: { latencyMs } });
    ({ endpoint, close } = { endpoint: emulator.baseURL, close: () => emulator.close() });
  }
  process.stdout.write(`READY ${JSON.stringify({ endpoint })}\n`);
  // Runs until the parent closes stdin.
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once("end", resolve));
  await close();
  process.exit(0);
}

// ------------------------------------------------------------------ parent: the ingest path

interface Servers extends ServerInfo {
  s3: S3Client;
  store: DynamoDocumentStore;
  client: MoonshotClient;
  /** Calls to, and total milliseconds waiting on, the local DynamoDB server. */
  dynamoStats: { calls: number; ms: number };
  /** Waits for the S3 event of `key`'s latest change. */
  eventFor(key: string): Promise<S3EventRecord>;
  close(): Promise<void>;
}

function spawnServer(
  kind: ServerKind,
  latencyMs: number,
  onLine: (line: string) => void,
): Promise<{ endpoint: string; child: ChildProcess }> {
  const self = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [...process.execArgv, self, "--serve", kind, String(latencyMs)], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`bench ${kind} server exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.startsWith("READY ")) resolve({ endpoint: JSON.parse(line.slice(6)).endpoint, child });
      else onLine(line);
    });
  });
}

async function startServers(latencyMs: number): Promise<Servers> {
  const events = new Map<string, S3EventRecord>();
  const waiters = new Map<string, (r: S3EventRecord) => void>();
  const onS3Line = (line: string) => {
    if (!line.startsWith("EVENT ")) return;
    const record = JSON.parse(line.slice(6)) as S3EventRecord;
    const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, " "));
    events.set(key, record);
    waiters.get(key)?.(record);
  };
  const [s3s, dyn, emu] = await Promise.all([
    spawnServer("s3", 0, onS3Line),
    spawnServer("dynamo", 0, () => {}),
    spawnServer("emulator", latencyMs, () => {}),
  ]);
  const children = [s3s.child, dyn.child, emu.child];
  const info: ServerInfo = {
    s3Endpoint: s3s.endpoint,
    dynamoEndpoint: dyn.endpoint,
    emulatorURL: emu.endpoint.replace(/\/v1$/, ""),
    baseURL: emu.endpoint,
    bucket: `bench-${randomBytes(4).toString("hex")}`,
    tableName: `bench-documents-${randomBytes(4).toString("hex")}`,
  };
  const s3 = new S3Client({
    endpoint: info.s3Endpoint,
    forcePathStyle: true,
    region: "us-east-1",
    credentials: CREDENTIALS,
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  const dynamo = new DynamoDBClient({
    endpoint: info.dynamoEndpoint,
    region: "us-east-1",
    credentials: CREDENTIALS,
  });
  await s3.send(new CreateBucketCommand({ Bucket: info.bucket }));
  await ensureDocumentsTable(dynamo, info.tableName);
  const documentClient = DynamoDBDocumentClient.from(dynamo, {
    marshallOptions: { removeUndefinedValues: true },
  });
  // Time every DynamoDB call, to tell the local server's latency apart from our own CPU time.
  const dynamoStats = { calls: 0, ms: 0 };
  const send = documentClient.send.bind(documentClient) as (...args: unknown[]) => Promise<unknown>;
  (documentClient as unknown as { send: typeof send }).send = async (...args: unknown[]) => {
    const started = performance.now();
    try {
      return await send(...args);
    } finally {
      dynamoStats.calls++;
      dynamoStats.ms += performance.now() - started;
    }
  };
  const store = new DynamoDocumentStore({ client: documentClient, tableName: info.tableName });
  const client = new MoonshotClient({ baseURL: info.baseURL, apiKey: async () => "bench" });
  return {
    ...info,
    s3,
    store,
    client,
    dynamoStats,
    eventFor(key) {
      const known = events.get(key);
      if (known) return Promise.resolve(known);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no S3 event for ${key}`)), 30_000);
        waiters.set(key, (r) => {
          clearTimeout(timer);
          waiters.delete(key);
          resolve(r);
        });
      });
    },
    async close() {
      s3.destroy();
      dynamo.destroy();
      await Promise.all(
        children.map((child) => {
          const exited = new Promise((resolve) => child.once("exit", resolve));
          child.stdin?.end();
          return exited;
        }),
      );
    },
  };
}

function service(servers: Servers, concurrency: number, metrics = new RecordingMetrics()): IngestService {
  return new IngestService({
    deploymentId: "benchingest",
    store: servers.store,
    provider: servers.client,
    objects: new S3ObjectSource(servers.s3),
    metrics,
    config: { concurrency },
  });
}

/**
 * A valid PDF of exactly `size` bytes: one page with one line of text, plus an unreferenced binary
 * stream object that makes up the bulk. Produced as a stream (never held in memory).
 */
function bigPdf(size: number, line: string): Readable {
  const content = `BT /F1 24 Tf 72 720 Td (${line}) Tj ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  const header = "%PDF-1.4\n";
  let head = header;
  const offsets: number[] = [];
  for (const [i, body] of objects.entries()) {
    offsets.push(head.length);
    head += `${i + 1} 0 obj\n${body}\nendobj\n`;
  }
  const build = (padding: number) => {
    const padHead = `6 0 obj\n<< /Length ${padding} >>\nstream\n`;
    const padTail = "\nendstream\nendobj\n";
    const padOffset = head.length;
    const xrefOffset = padOffset + padHead.length + padding + padTail.length;
    const entries = [...offsets, padOffset].map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("");
    const tail = `${padTail}xref\n0 7\n0000000000 65535 f \n${entries}trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n${xrefOffset}\n%%EOF\n`;
    return { padHead, tail, total: head.length + padHead.length + padding + tail.length };
  };
  let padding = size - build(0).total;
  while (build(padding).total !== size) padding += size - build(padding).total;
  const { padHead, tail } = build(padding);
  async function* generate() {
    yield Buffer.from(head + padHead, "latin1");
    const block = Buffer.alloc(MiB, 0x20);
    let left = padding;
    while (left > 0) {
      const n = Math.min(left, block.length);
      yield n === block.length ? block : block.subarray(0, n);
      left -= n;
    }
    yield Buffer.from(tail, "latin1");
  }
  return Readable.from(generate(), { objectMode: false });
}

export interface MemoryResult {
  objectBytes: number;
  baselineRssMB: number;
  peakRssMB: number;
  peakRssGrowthMB: number;
  targetMB: 64;
  status: string;
  error?: string;
  extractedChars: number;
  seconds: number;
}

/** (a) Peak RSS growth while one `bytes`-sized object goes S3 -> handler core -> emulator. */
export async function benchMemory(opts: { bytes?: number } = {}): Promise<MemoryResult> {
  const bytes = opts.bytes ?? 100 * MiB;
  const servers = await startServers(0);
  try {
    const key = "big/hundred-mb.pdf";
    const run = await ingestOneMeasured(
      servers,
      key,
      bigPdf(bytes, "Benchmark document"),
      bytes,
      "application/pdf",
    );
    const { doc } = run;
    const text = doc ? ((await servers.store.getText(doc)) ?? "") : "";
    return {
      objectBytes: bytes,
      baselineRssMB: round(run.baseline / MiB),
      peakRssMB: round(run.peak.rss / MiB),
      peakRssGrowthMB: round((run.peak.rss - run.baseline) / MiB),
      targetMB: 64,
      status: doc?.status ?? "missing",
      error: doc?.error ? `${doc.error.code}: ${doc.error.message}` : undefined,
      extractedChars: text.length,
      seconds: round(run.seconds),
    };
  } finally {
    await servers.close();
  }
}

/**
 * Ingests one object through the handler core (after a small warm-up document loads every module and
 * opens every connection) while sampling RSS every 10 ms: the baseline, the memory at the RSS peak,
 * the time and the stored record.
 */
async function ingestOneMeasured(
  servers: Servers,
  key: string,
  body: Buffer | Readable,
  contentLength: number,
  contentType: string,
) {
  const svc = service(servers, 1);
  await servers.s3.send(new PutObjectCommand({ Bucket: servers.bucket, Key: "warm.txt", Body: "warm up" }));
  await svc.processBatch([sqsMessageFor([await servers.eventFor("warm.txt")])]);
  await servers.s3.send(
    new PutObjectCommand({
      Bucket: servers.bucket,
      Key: key,
      Body: body,
      ContentLength: contentLength,
      ContentType: contentType,
    }),
  );
  const event = await servers.eventFor(key);
  (globalThis as { gc?: () => void }).gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = process.memoryUsage();
  const sample = () => {
    const m = process.memoryUsage();
    if (m.rss > peak.rss) peak = m;
  };
  const sampler = setInterval(sample, 10);
  const started = performance.now();
  const result = await svc.processBatch([sqsMessageFor([event])]);
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  sample();
  if (result.batchItemFailures.length) throw new Error(`${key} was not ingested`);
  const doc = await servers.store.get(documentIdFor(servers.bucket, key));
  return { baseline, peak, seconds, doc };
}

/** A text of exactly `size` bytes in paragraphs, produced as a stream (never held in memory). */
function bigText(size: number): Readable {
  const paragraph = Buffer.from(
    "A paragraph of the long report: findings, figures and the words around them, in plain text.\n\n",
  );
  async function* generate() {
    const block = Buffer.alloc(MiB - (MiB % paragraph.length));
    for (let at = 0; at < block.length; at += paragraph.length) paragraph.copy(block, at);
    let left = size;
    while (left > 0) {
      const n = Math.min(left, block.length);
      yield n === block.length ? block : block.subarray(0, n);
      left -= n;
    }
  }
  return Readable.from(generate(), { objectMode: false });
}

export interface TextMemoryResult {
  textBytes: number;
  baselineRssMB: number;
  peakRssMB: number;
  peakRssGrowthMB: number;
  /** V8 heap in use when RSS peaked (the rest of the growth is buffers and allocator slack). */
  heapUsedAtPeakMB: number;
  status: string;
  error?: string;
  storedTextBytes: number;
  chunks: number;
  seconds: number;
}

/**
 * (a') Peak RSS growth while one `bytes`-sized plain text file goes S3 -> provider -> extracted text
 * -> chunks -> DynamoDB: the text is as big as the file, so this measures holding the extracted text.
 */
export async function benchTextMemory(opts: { bytes?: number } = {}): Promise<TextMemoryResult> {
  const bytes = opts.bytes ?? 100 * MiB;
  const servers = await startServers(0);
  try {
    const run = await ingestOneMeasured(servers, "big/hundred-mb.txt", bigText(bytes), bytes, "text/plain");
    const { doc } = run;
    return {
      textBytes: bytes,
      baselineRssMB: round(run.baseline / MiB),
      peakRssMB: round(run.peak.rss / MiB),
      peakRssGrowthMB: round((run.peak.rss - run.baseline) / MiB),
      heapUsedAtPeakMB: round(run.peak.heapUsed / MiB),
      status: doc?.status ?? "missing",
      error: doc?.error ? `${doc.error.code}: ${doc.error.message}` : undefined,
      storedTextBytes: doc?.textBytes ?? 0,
      chunks: doc?.chunkCount ?? 0,
      seconds: round(run.seconds),
    };
  } finally {
    await servers.close();
  }
}

async function putSmallDocuments(servers: Servers, prefix: string, n: number) {
  const messages = [];
  for (let i = 0; i < n; i += 25) {
    const keys = Array.from({ length: Math.min(25, n - i) }, (_, j) => `${prefix}/doc-${i + j}.txt`);
    await Promise.all(
      keys.map((key, j) =>
        servers.s3.send(
          new PutObjectCommand({
            Bucket: servers.bucket,
            Key: key,
            Body: `Document ${i + j}.\n\n${"Some words of text in a paragraph. ".repeat(30)}`,
          }),
        ),
      ),
    );
    for (const key of keys) messages.push(sqsMessageFor([await servers.eventFor(key)]));
  }
  return messages;
}

export interface EfficiencyResult {
  documents: number;
  concurrency: number;
  latencyMsPerCall: number;
  providerCallsPerDocument: number;
  wallSeconds: number;
  idealSeconds: number;
  ratio: number;
  target: 1.15;
  ready: number;
  /** Mean observed duration of each provider operation (latency + transfer + queueing). */
  meanProviderMs: Record<string, number>;
  /**
   * Wall time against N x (observed provider time per document) / C: how much our own code adds on
   * top of the provider as it actually answered (on a loaded machine the emulator itself is slower
   * than its configured latency, which the plain `ratio` charges to us).
   */
  ratioToObservedProvider: number;
}

/** (b) N documents at concurrency C with a fixed emulator latency per call. */
export async function benchEfficiency(
  opts: { documents?: number; concurrency?: number; latencyMs?: number } = {},
): Promise<EfficiencyResult> {
  const documents = opts.documents ?? 500;
  const concurrency = opts.concurrency ?? 8;
  const latencyMs = opts.latencyMs ?? 200;
  const servers = await startServers(latencyMs);
  try {
    const messages = await putSmallDocuments(servers, "eff", documents);
    const metrics = new RecordingMetrics();
    const svc = service(servers, concurrency, metrics);
    const started = performance.now();
    const result = await svc.processBatch(messages);
    const wallSeconds = (performance.now() - started) / 1000;
    const calls = [...metrics.timings.entries()]
      .filter(([k]) => k.startsWith("ProviderLatency:"))
      .reduce((n, [, list]) => n + list.length, 0);
    const perDocCalls = calls / documents;
    const providerMs = [...metrics.timings.entries()]
      .filter(([k]) => k.startsWith("ProviderLatency:"))
      .reduce((n, [, list]) => n + list.reduce((a, b) => a + b, 0), 0);
    const observedIdealSeconds = providerMs / 1000 / concurrency;
    const idealSeconds = (documents * perDocCalls * latencyMs) / 1000 / concurrency;
    return {
      documents,
      concurrency,
      latencyMsPerCall: latencyMs,
      providerCallsPerDocument: round(perDocCalls),
      wallSeconds: round(wallSeconds),
      idealSeconds: round(idealSeconds),
      ratio: round(wallSeconds / idealSeconds, 3),
      target: 1.15,
      ready: documents - result.batchItemFailures.length,
      ratioToObservedProvider: round(wallSeconds / observedIdealSeconds, 3),
      meanProviderMs: Object.fromEntries(
        [...metrics.timings.entries()]
          .filter(([k]) => k.startsWith("ProviderLatency:"))
          .map(([k, list]) => [
            k.slice("ProviderLatency:".length),
            round(list.reduce((a, b) => a + b, 0) / list.length),
          ]),
      ),
    };
  } finally {
    await servers.close();
  }
}

export interface OverheadResult {
  documents: number;
  wallMsPerDocument: number;
  providerMsPerDocument: number;
  /** Wall time outside provider calls (our code + the local DynamoDB server). */
  ownMsPerDocument: number;
  dynamoCallsPerDocument: number;
  /**
   * Time spent waiting on the local DynamoDB server (dynalite). One of the calls (recording the file
   * id) runs while the text is fetched, so this overlaps provider time and can exceed ownMsPerDocument.
   */
  dynamoMsPerDocument: number;
  documentsPerSecondAtConcurrency8: number;
}

/**
 * (c) Per-document time of our own code (S3 reads, DynamoDB claims/chunks/flip, chunking) with zero
 * emulator latency, one document at a time: wall time minus time inside provider calls.
 */
export async function benchOverhead(opts: { documents?: number } = {}): Promise<OverheadResult> {
  const documents = opts.documents ?? 200;
  const servers = await startServers(0);
  try {
    const messages = await putSmallDocuments(servers, "ovh", documents);
    const metrics = new RecordingMetrics();
    const svc = service(servers, 1, metrics);
    await svc.processBatch(messages.slice(0, 5)); // warm-up
    for (const list of metrics.timings.values()) list.length = 0;
    const timed = messages.slice(5);
    servers.dynamoStats.calls = 0;
    servers.dynamoStats.ms = 0;
    let started = performance.now();
    for (const m of timed) await svc.processBatch([m]);
    const wall = performance.now() - started;
    const dynamo = { ...servers.dynamoStats };
    const provider = [...metrics.timings.entries()]
      .filter(([k]) => k.startsWith("ProviderLatency:"))
      .reduce((n, [, list]) => n + list.reduce((a, b) => a + b, 0), 0);

    const more = await putSmallDocuments(servers, "ovh8", documents);
    started = performance.now();
    await service(servers, 8).processBatch(more);
    const wall8 = (performance.now() - started) / 1000;
    return {
      documents: timed.length,
      wallMsPerDocument: round(wall / timed.length),
      providerMsPerDocument: round(provider / timed.length),
      ownMsPerDocument: round((wall - provider) / timed.length),
      dynamoCallsPerDocument: round(dynamo.calls / timed.length),
      dynamoMsPerDocument: round(dynamo.ms / timed.length),
      documentsPerSecondAtConcurrency8: round(documents / wall8),
    };
  } finally {
    await servers.close();
  }
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** All three, in order. */
export async function runIngestBenchmarks() {
  const memory = await benchMemory();
  const efficiency = await benchEfficiency();
  const overhead = await benchOverhead();
  return { memory, efficiency, overhead };
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  if (process.argv[2] === "--serve") {
    await serve(process.argv[3] as ServerKind, Number(process.argv[4] ?? "0"));
  } else {
    const which = process.argv[2];
    const result =
      which === "memory"
        ? { memory: await benchMemory() }
        : which === "text-memory"
          ? { textMemory: await benchTextMemory({ bytes: Number(process.argv[3]) * MiB || undefined }) }
          : which === "efficiency"
            ? { efficiency: await benchEfficiency({ documents: Number(process.argv[3]) || undefined }) }
            : which === "overhead"
              ? { overhead: await benchOverhead() }
              : await runIngestBenchmarks();
    console.log(
      JSON.stringify({ command: "npx tsx bench/ingest.ts", node: process.version, ...result }, null, 2),
    );
  }
}
