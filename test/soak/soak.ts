import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DeleteObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3EventRecord } from "aws-lambda";
import { ensureApiKeysTable, ensureDocumentsTable, startLocalDynamoProcess } from "../../local/aws/dynamo";
import { startLocalS3 } from "../../local/aws/s3";
import { prng } from "../../local/emulator/prng";
import type { RunningEmulator } from "../../local/emulator/server";
import { FileStore } from "../../local/emulator/store";
import { LOCAL_CREDENTIALS } from "../../local/runtime/config";
import { createLambdaContext } from "../../local/runtime/lambda-context";
import { LocalQueue } from "../../local/runtime/queue";
import { decodeS3EventKey, s3NotificationBody } from "../../local/runtime/s3-events";
import { DocumentFactory, type Expectation, type GeneratedDocument } from "./documents";
import { WorkerPool } from "./pool";
import { Readers, type ReadersReport } from "./readers";

export interface SoakOptions {
  /** Documents to create (each key once; overwrites and deletes come on top). */
  documents: number;
  /** Hard limit on the whole run, checks included. */
  seconds: number;
  /** Largest ordinary document (bytes). */
  maxBytes: number;
  /** Size of the big documents and how many. */
  bigBytes: number;
  bigCount: number;
  /** Fraction of provider calls answered by a fault (split 429 / 500 / dropped / slow). */
  faultRate: number;
  /** Fraction of ingest invocations whose worker is killed at a random point. */
  killRate: number;
  overwriteRate: number;
  deleteRate: number;
  chatPerMinute: number;
  /** Reader documents overwritten and deleted while chat and search read them (readers.ts). */
  readerDocs: number;
  /** Chat requests a minute against the reader documents (search: about as many). */
  readerChatPerMinute: number;
  janitorSeconds: number;
  /** The emulator's file cap (Moonshot's is 1,000, GLM's 100). */
  maxFiles: number;
  /** Which provider the pipeline and the emulator play. */
  provider: "moonshot" | "glm";
  /** Ingest execution environments (the event source's maxConcurrency). */
  workers: number;
  /** S3 puts in flight. */
  putConcurrency: number;
  seed: number;
  /** Progress lines. */
  log: (line: string) => void;
}

export const FULL_SOAK: Omit<SoakOptions, "log"> = {
  documents: 2000,
  seconds: 570,
  maxBytes: 3_000_000,
  bigBytes: 20 * 1024 * 1024,
  bigCount: 5,
  faultRate: 0.15,
  killRate: 0.01,
  overwriteRate: 0.05,
  deleteRate: 0.05,
  chatPerMinute: 50,
  readerDocs: 8,
  readerChatPerMinute: 60,
  janitorSeconds: 30,
  maxFiles: 200,
  provider: "moonshot",
  workers: 10,
  putConcurrency: 6,
  seed: 8,
};

export const SHORT_SOAK: Omit<SoakOptions, "log"> = {
  ...FULL_SOAK,
  documents: 200,
  // Typically done in ~80 s; the bound leaves room for a loaded CI machine running other test files.
  seconds: 170,
  maxBytes: 400_000,
  bigBytes: 3 * 1024 * 1024,
  bigCount: 2,
  // More kills than 1% so a run of ~100 invocations kills a few.
  killRate: 0.04,
  maxFiles: 100,
  workers: 4,
  janitorSeconds: 15,
};

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface SoakReport {
  options: Omit<SoakOptions, "log">;
  seconds: number;
  drained: boolean;
  documents: {
    keys: number;
    versionsPut: number;
    overwrites: number;
    deletes: number;
    expectedReady: number;
    expectedFailed: number;
    expectedGone: number;
    ready: number;
    failed: number;
    gone: number;
    processing: number;
    failuresByCode: Record<string, number>;
    mismatches: string[];
  };
  remote: {
    files: number;
    bytes: number;
    maxFiles: number;
    peakFiles: number;
    orphansBeforeFinalSweep: number;
    orphans: string[];
    uploads: number;
    duplicateUploads: string[];
  };
  deleted: { checked: number; leftovers: string[] };
  chat: { requests: number; byStatus: Record<string, number>; ourErrors: string[]; providerFaults: number };
  /**
   * Chat with the tenants' scoped keys: `answered` answers (every source must lie in the asker's prefix),
   * `refused` requests naming another tenant's document (must never be answered), `leaks` any breach.
   */
  tenants: { requests: number; answered: number; refused: number; leaks: string[] };
  /** Chat and search against documents while they are overwritten and deleted (readers.ts). */
  readers: ReadersReport;
  /** Chunk items outside a live generation once the run has drained (none allowed). */
  strayChunks: { items: number; documents: number; examples: string[] };
  queue: { sent: number; invocations: number; deadLetters: number; failedReceives: number };
  workers: { kills: number; killsTooLate: number; coldStarts: number; unexpectedExits: number };
  emulator: { requests: number; faulted: number; byStatus: Record<string, number> };
  janitor: { sweeps: number; deleted: number; errors: string[] };
  invariants: Invariant[];
  ok: boolean;
}

const BUCKET = "kdp-soak";
const TABLE = "kdp-soak-documents";
/** The soak stack's deployment id (its uploads are named `kdp-soak1-...`). */
const DEPLOYMENT_ID = "soak1";
const KEYS_TABLE = "kdp-soak-keys";
/** Two tenants with scoped API keys (kinds are folders: soak/<kind>/...). */
const TENANT_PREFIXES = ["soak/txt/", "soak/md/"] as const;
const REGION = "us-east-1";
const API_KEY = "sk-soak";
const API_TOKEN = "kdp_soak_token_0123456789";
const PROVIDER_5XX_TYPES = new Set(["provider_error", "provider_unavailable", "provider_timeout"]);

interface KeyState {
  key: string;
  documentId: string;
  n: number;
  kind: Parameters<DocumentFactory["make"]>[1];
  versions: number;
  /** Last operation applied to S3 (what the pipeline must converge to). */
  last: { op: "put"; expect: Expectation } | { op: "delete" };
  /** Sequencers of every S3 event seen for the key (to find its uploads by tag). */
  sequencers: string[];
  chain: Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the soak; never throws for an invariant (see `report.ok`), only for a broken setup. */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const started = Date.now();
  const hardDeadline = started + opts.seconds * 1000;
  const rand = prng(opts.seed);
  const log = opts.log;
  const dir = await mkdtemp(join(tmpdir(), "kdp-soak-"));
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };

  // Every file the emulator stores, even one whose response never reached the client: the duplicate
  // upload check counts stored uploads per object version (upload tag), not what the client saw.
  const stored: { id: string; filename: string }[] = [];
  const originalAdd = FileStore.prototype.add;
  FileStore.prototype.add = function (this: FileStore, file, path, text) {
    stored.push({ id: file.id, filename: file.filename });
    return originalAdd.call(this, file, path, text);
  };
  closers.push(async () => {
    FileStore.prototype.add = originalAdd;
  });

  try {
    const s3server = await startLocalS3({ dataDir: join(dir, "s3"), buckets: [BUCKET, SEARCH_INDEX_BUCKET] });
    closers.push(() => s3server.close());
    // DynamoDB in its own process (a real DynamoDB is another machine): this process already runs S3,
    // the emulator (with real PDF/DOCX extraction), the chat app and the janitor on one event loop.
    const dynamo = await startLocalDynamoProcess();
    closers.push(() => dynamo.close());
    const admin = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    closers.push(async () => admin.destroy());
    await ensureDocumentsTable(admin, TABLE);
    await ensureApiKeysTable(admin, KEYS_TABLE);

    const { startEmulator } = await import("../../local/emulator/server");
    const f = opts.faultRate;
    const faults = {
      rate429: f * 0.4,
      rate500: f * 0.27,
      rateDrop: f * 0.26,
      rateSlow: f * 0.07,
      slowMs: 9_000,
      retryAfterSeconds: 1,
      seed: opts.seed,
    };
    const emulator: RunningEmulator = await startEmulator({
      profile: opts.provider,
      apiKey: API_KEY,
      limits: { maxFiles: opts.maxFiles },
    });
    closers.push(() => emulator.close());

    // The handlers read these at import (cold start), as in Lambda; see local/runtime/stack.ts.
    Object.assign(process.env, {
      TABLE_NAME: TABLE,
      DEPLOYMENT_ID,
      KEYS_TABLE_NAME: KEYS_TABLE,
      BUCKET_NAME: BUCKET,
      SEARCH_INDEX_BUCKET,
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_S3: s3server.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      PROVIDER: opts.provider,
      [opts.provider === "glm" ? "GLM_BASE_URL" : "MOONSHOT_BASE_URL"]: emulator.baseURL,
      [opts.provider === "glm" ? "GLM_API_KEY" : "MOONSHOT_API_KEY"]: API_KEY,
      // Ingestion's room maker and the janitor plan against the emulator's cap, as against the
      // provider's documented one in AWS.
      PROVIDER_MAX_FILES: String(opts.maxFiles),
      API_TOKEN,
      MAX_RECEIVE_COUNT: "6",
      INGEST_CONCURRENCY: "10",
      HIGH_WATER_MARK: "0.8",
      POWERTOOLS_SERVICE_NAME: "kimi-doc-pipeline-soak",
      POWERTOOLS_LOG_LEVEL: process.env.SOAK_LOG_LEVEL ?? "WARN",
      POWERTOOLS_METRICS_DISABLED: "true",
      POWERTOOLS_TRACE_ENABLED: "false",
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      SOAK_CLIENT_TIMEOUT_MS: "3000",
      SOAK_UPLOAD_TIMEOUT_MS: "8000",
    });
    delete process.env.AWS_PROFILE;
    delete process.env.AWS_SESSION_TOKEN;

    // Kept after the run (outside the data folder) for post-mortems.
    const logFile = join(tmpdir(), `kdp-soak-workers-${process.pid}.log`);
    const pool = new WorkerPool({
      size: opts.workers,
      killRate: opts.killRate,
      rand,
      logFile,
      env: { ...process.env },
    });
    closers.push(() => pool.close());
    await pool.start();
    log(`ingest workers up (${opts.workers}); worker logs: ${logFile}`);

    const queue = new LocalQueue({
      name: "kdp-soak-ingest",
      functionName: "kdp-soak-ingest",
      region: REGION,
      handler: (event, context) => pool.invoke(event, context.getRemainingTimeInMillis()),
      batchSize: 10,
      maxConcurrency: opts.workers,
      functionTimeoutMs: 120_000,
      maxReceiveCount: 6,
      retryDelayMs: (n) => Math.min(4000, 400 * 2 ** (n - 1)),
    });
    closers.push(() => queue.close({ drainMs: 2000 }));

    const [{ DynamoDocumentStore }, { documentIdFor, uploadTagFor }, clients, { normaliseSequencer }] =
      await Promise.all([
        import("../../functions/core/documents/dynamo-store"),
        import("../../functions/core/ingest/events"),
        import("../../functions/core/runtime/clients"),
        import("../../functions/core/documents/dynamo-store"),
      ]);
    const store = new DynamoDocumentStore({ client: clients.documents, tableName: TABLE });

    // S3 events -> the queue, each delivered twice; a fifth held back so they arrive out of order.
    const keys = new Map<string, KeyState>();
    let pendingSends = 0;
    const delayedSend = (body: string, delayMs: number) => {
      if (delayMs <= 0) return void queue.send(body);
      pendingSends++;
      setTimeout(() => {
        pendingSends--;
        if (!queue.isClosed) queue.send(body);
      }, delayMs);
    };
    let readers: Readers | undefined;
    s3server.onEvent((record: S3EventRecord) => {
      // Only the documents bucket notifies the ingest queue (as in AWS): the search index's own bucket
      // is on the same local server, and its segment writes are not documents.
      if (record.s3.bucket.name !== BUCKET) return;
      const key = decodeS3EventKey(record.s3.object.key);
      keys.get(key)?.sequencers.push(record.s3.object.sequencer);
      if (Readers.owns(key)) readers?.onS3Event(record, key);
      const body = s3NotificationBody(record);
      const first = rand() < 0.2 ? Math.floor(rand() * 2000) : 0;
      delayedSend(body, first);
      delayedSend(body, first + Math.floor(rand() * 3000));
    });

    // The chat API over HTTP, as a client sees it.
    const { loadChatFetch } = await import("../../local/runtime/chat");
    const chatFetch = await loadChatFetch();
    const { serve } = await import("@hono/node-server");
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: chatFetch, port: 0, hostname: "127.0.0.1" }, () =>
        resolve(s as Server),
      ) as Server;
    });
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    const apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const { handler: janitor } = (await import("../../functions/janitor/handler")) as unknown as {
      handler: (event: object, context: unknown) => Promise<{ deleted: number }>;
    };
    const { loadJanitorConfig } = await import("../../functions/core/janitor/config");
    const planned = loadJanitorConfig();
    if (planned.policy.limits.maxFiles !== opts.maxFiles || planned.provider.profile.name !== opts.provider) {
      throw new Error(
        "the janitor was configured before the soak set its provider and file cap; run the soak in a fresh process",
      );
    }
    emulator.setFaults(faults);
    log(
      `stack up: S3 ${s3server.endpoint}, DynamoDB ${dynamo.endpoint}, emulator ${emulator.baseURL} (${opts.provider}, cap ${opts.maxFiles} files, ${(f * 100).toFixed(0)}% faults), chat ${apiUrl}`,
    );

    // Janitor on its schedule.
    const jan = { sweeps: 0, deleted: 0, errors: [] as string[] };
    let sweeping: Promise<void> | undefined;
    const sweep = () => {
      if (sweeping) return sweeping;
      const context = createLambdaContext({
        functionName: "kdp-soak-janitor",
        timeoutMs: 60_000,
        region: REGION,
      });
      sweeping = janitor({}, context)
        .then((r) => {
          jan.sweeps++;
          jan.deleted += r.deleted;
        })
        .catch((err) => {
          jan.sweeps++;
          jan.errors.push(err instanceof Error ? err.message : String(err));
        })
        .finally(() => {
          sweeping = undefined;
        });
      return sweeping;
    };
    const janitorTimer = setInterval(() => void sweep(), opts.janitorSeconds * 1000);
    closers.push(async () => clearInterval(janitorTimer));

    // The search indexer keeps up as in `npm start` (one run at a time, every 2 s), so chat answers
    // from the index while documents change under it.
    const indexing = await startIndexing(store, clients.s3);
    closers.push(() => indexing.stop());

    // Quota usage sampled every second (the emulator refuses uploads past the cap; this shows the peak).
    let peakFiles = 0;
    const sampler = setInterval(() => {
      peakFiles = Math.max(peakFiles, emulator.files().length);
    }, 1000);
    closers.push(async () => clearInterval(sampler));

    // Chat: chatPerMinute requests against documents that were ready a moment ago.
    const chat = { requests: 0, byStatus: {} as Record<string, number>, ourErrors: [] as string[] };
    // Two tenants, keys made by the admin (the API token) through the API, as `kdp keys create` does.
    const tenants = { requests: 0, answered: 0, refused: 0, leaks: [] as string[] };
    const tenantKeys: { prefix: string; key: string }[] = [];
    for (const prefix of TENANT_PREFIXES) {
      const res = await fetch(`${apiUrl}/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ prefix, name: `soak tenant ${prefix}` }),
      });
      if (res.status !== 201) throw new Error(`creating the ${prefix} key answered ${res.status}`);
      tenantKeys.push({ prefix, key: ((await res.json()) as { key: string }).key });
    }
    let readyDocs: { documentId: string; key: string }[] = [];
    let readyIds: string[] = [];
    let chatStop = false;
    const refreshReady = async () => {
      const ids: string[] = [];
      const docs: { documentId: string; key: string }[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.list({ status: "ready", limit: 100, cursor });
        ids.push(...page.items.map((d) => d.documentId));
        docs.push(...page.items.map((d) => ({ documentId: d.documentId, key: d.key })));
        cursor = page.cursor;
      } while (cursor && ids.length < 1000);
      readyIds = ids;
      readyDocs = docs;
    };
    /**
     * A tenant asks about a narrower prefix, 1-3 of its own ready documents, or names another tenant's.
     * Naming another tenant's document must never be answered; every answer's sources must lie in the
     * tenant's prefix.
     */
    const tenantChatOnce = async () => {
      if (readyDocs.length === 0) return;
      const tenant = tenantKeys[Math.floor(rand() * tenantKeys.length)]!;
      const own = readyDocs.filter((d) => d.key.startsWith(tenant.prefix));
      const others = readyDocs.filter((d) => !d.key.startsWith(tenant.prefix));
      const some = (from: typeof readyDocs, n: number) =>
        from.length === 0 ? [] : Array.from({ length: n }, () => from[Math.floor(rand() * from.length)]!);
      // 10% a narrower prefix (one of its own keys), 60% its own documents (answered), 30% naming
      // another tenant's (refused). Never its whole scope: with the full soak's 3 MB documents that
      // reads hundreds of MB per question (test/chat/tenants.test.ts covers the whole-scope case).
      const roll = rand();
      if (own.length === 0 && roll < 0.7) return;
      const narrower = roll < 0.1 ? own[Math.floor(rand() * own.length)]!.key : undefined;
      const picked = narrower
        ? []
        : [
            ...new Set(
              roll < 0.7
                ? some(own, 1 + Math.floor(rand() * 3))
                : [...some(own, Math.floor(rand() * 2)), ...some(others, 1)],
            ),
          ];
      if (!narrower && picked.length === 0) return;
      const foreign = picked.filter((d) => !d.key.startsWith(tenant.prefix));
      tenants.requests++;
      try {
        const res = await fetch(`${apiUrl}/chat`, {
          method: "POST",
          headers: { authorization: `Bearer ${tenant.key}`, "content-type": "application/json" },
          body: JSON.stringify({
            question: "What does this document begin with?",
            ...(narrower ? { prefix: narrower } : { documentIds: picked.map((d) => d.documentId) }),
            maxTokens: 256,
          }),
          signal: AbortSignal.timeout(60_000),
        });
        const text = await res.text();
        for (const d of foreign) {
          if (text.includes(d.key)) tenants.leaks.push(`${tenant.prefix} saw ${d.key} (HTTP ${res.status})`);
        }
        if (res.status === 200) {
          if (foreign.length > 0)
            tenants.leaks.push(`${tenant.prefix} got an answer naming ${foreign[0]!.key}`);
          const body = JSON.parse(text) as { sources?: { key: string }[] };
          for (const s of body.sources ?? []) {
            if (!s.key.startsWith(tenant.prefix))
              tenants.leaks.push(`${tenant.prefix} answer sourced ${s.key}`);
          }
          tenants.answered++;
        } else if (foreign.length > 0 && res.status === 404) {
          tenants.refused++;
        }
      } catch {
        // A slow provider under faults: no answer is no leak.
      }
    };
    const chatOnce = async () => {
      if (readyIds.length === 0) return;
      const pick = Array.from(
        { length: 1 + Math.floor(rand() * 3) },
        () => readyIds[Math.floor(rand() * readyIds.length)]!,
      );
      const documentIds = [...new Set(pick)];
      chat.requests++;
      let status = "network";
      try {
        const res = await fetch(`${apiUrl}/chat`, {
          method: "POST",
          headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({
            question: "What does this document begin with?",
            documentIds,
            maxTokens: 256,
          }),
          signal: AbortSignal.timeout(60_000),
        });
        status = String(res.status);
        const body = (await res.json().catch(() => ({}))) as { error?: { type?: string; message?: string } };
        if (res.status >= 500 && !PROVIDER_5XX_TYPES.has(body.error?.type ?? "")) {
          chat.ourErrors.push(`${res.status} ${body.error?.type}: ${body.error?.message}`);
        }
        if (res.status !== 200) status = `${res.status} ${body.error?.type ?? "?"}`;
      } catch (err) {
        // No answer within the client's patience (a slow provider on a loaded machine): not a 5xx,
        // reported under its own status.
        const timedOut = err instanceof Error && err.name === "TimeoutError";
        status = timedOut ? "no answer in 60 s" : "network";
        if (!timedOut)
          chat.ourErrors.push(`request failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      chat.byStatus[status] = (chat.byStatus[status] ?? 0) + 1;
    };
    const chatLoop = (async () => {
      const interval = 60_000 / opts.chatPerMinute;
      const inflight = new Set<Promise<void>>();
      let lastRefresh = 0;
      while (!chatStop) {
        if (Date.now() - lastRefresh > 5000) {
          lastRefresh = Date.now();
          await refreshReady().catch(() => undefined);
        }
        // Every other request is a tenant's (its own key, scoped to its prefix).
        const p = (rand() < 0.5 ? chatOnce() : tenantChatOnce()).finally(() => inflight.delete(p));
        inflight.add(p);
        await sleep(interval);
      }
      await Promise.all(inflight);
    })();

    // Readers: chat and search against documents overwritten and deleted while they read them.
    readers = new Readers({
      apiUrl,
      token: API_TOKEN,
      bucket: BUCKET,
      s3: clients.s3,
      getState: (id) => store.getState(id),
      documentIdFor,
      normaliseSequencer,
      rand: prng(opts.seed + 7),
      docs: opts.readerDocs,
      chatPerMinute: opts.readerChatPerMinute,
      searchPerMinute: opts.readerChatPerMinute,
      writesPerMinute: opts.readerChatPerMinute,
      log,
    });
    readers.start();

    // The workload: puts, then overwrites and deletes of earlier keys while ingestion runs.
    const factory = new DocumentFactory({
      maxBytes: opts.maxBytes,
      bigBytes: opts.bigBytes,
      seed: opts.seed + 1,
      // GLM's file-extract takes no JSON or HTML (unsupported types are already among the bad inputs).
      kinds: opts.provider === "glm" ? ["txt", "md", "csv", "pdf", "docx"] : undefined,
    });
    const s3 = new S3Client({
      endpoint: s3server.endpoint,
      forcePathStyle: true,
      region: REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    closers.push(async () => s3.destroy());
    let versionsPut = 0;
    let overwrites = 0;
    let deletes = 0;
    const put = async (doc: GeneratedDocument) => {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: doc.key, Body: doc.body }));
      versionsPut++;
    };
    const later: Promise<void>[] = [];
    const deletedKeys = new Set<string>();
    const overwriteCandidates: string[] = [];
    const schedule = (state: KeyState, delayMs: number, fn: () => Promise<void>) => {
      const p = sleep(delayMs).then(() => {
        state.chain = state.chain.then(fn).catch((err) => log(`workload: ${state.key}: ${String(err)}`));
        return state.chain;
      });
      later.push(p);
    };

    // Production stops early enough to leave time for the pipeline to settle and the checks to run.
    const produceUntil = started + opts.seconds * 1000 * 0.6;
    let next = 0;
    const producer = async () => {
      while (next < opts.documents && Date.now() < produceUntil) {
        const n = next++;
        const kind = factory.kindOf(n, opts.documents, opts.bigCount);
        const doc = await factory.make(n, kind);
        const state: KeyState = {
          key: doc.key,
          documentId: documentIdFor(BUCKET, doc.key),
          n,
          kind,
          versions: 1,
          last: { op: "put", expect: doc.expect },
          sequencers: [],
          chain: Promise.resolve(),
        };
        keys.set(doc.key, state);
        state.chain = put(doc);
        await state.chain;
        if (doc.expect.status === "ready" && kind !== "big") overwriteCandidates.push(doc.key);
        // Overwrite or delete a random earlier key a little later (often while it is being ingested).
        if (rand() < opts.overwriteRate && overwriteCandidates.length) {
          const target = keys.get(overwriteCandidates[Math.floor(rand() * overwriteCandidates.length)]!)!;
          if (!deletedKeys.has(target.key)) {
            schedule(target, Math.floor(rand() * 4000), async () => {
              if (deletedKeys.has(target.key)) return;
              const v = target.versions + 1;
              const next = await factory.make(target.n, target.kind, v, target.key);
              await put(next);
              target.versions = v;
              target.last = { op: "put", expect: next.expect };
              overwrites++;
            });
          }
        }
        if (rand() < opts.deleteRate && keys.size > 1) {
          const all = [...keys.values()];
          const target = all[Math.floor(rand() * all.length)]!;
          if (!deletedKeys.has(target.key)) {
            deletedKeys.add(target.key);
            schedule(target, Math.floor(rand() * 6000), async () => {
              await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: target.key }));
              target.last = { op: "delete" };
              deletes++;
            });
          }
        }
        if (n % 200 === 199) {
          const st = queue.stats();
          log(
            `put ${n + 1}/${opts.documents}; queue waiting ${st.waiting}, in flight ${st.inFlight}; ` +
              `remote files ${emulator.files().length}/${opts.maxFiles}; kills ${pool.stats.kills}; ${Math.round((Date.now() - started) / 1000)} s`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: opts.putConcurrency }, producer));
    await Promise.all(later);
    for (const s of keys.values()) await s.chain;
    // Readers write a while longer when the workload was quick (at least 30% of the run), then stop so
    // the pipeline can drain; they read until the checks.
    await readers.finishWrites(started + opts.seconds * 1000 * 0.3);
    log(
      `workload done: ${keys.size} keys, ${versionsPut} puts, ${overwrites} overwrites, ${deletes} deletes`,
    );

    // Wait for the pipeline to settle (bounded).
    const checkBudgetMs = Math.min(45_000, Math.max(15_000, opts.seconds * 100));
    let drained = false;
    let lastLog = 0;
    while (Date.now() < hardDeadline - checkBudgetMs) {
      const st = queue.stats();
      if (pendingSends === 0 && st.waiting === 0 && st.inFlight === 0 && st.running === 0) {
        drained = true;
        break;
      }
      if (Date.now() - lastLog > 15_000) {
        lastLog = Date.now();
        log(`draining: waiting ${st.waiting}, in flight ${st.inFlight}, dead letters ${st.deadLetters}`);
      }
      await sleep(500);
    }
    chatStop = true;
    await chatLoop;
    await readers.untilSearchHit(hardDeadline - checkBudgetMs);
    const readersReport = await readers.stop();
    clearInterval(janitorTimer);
    await sweeping;
    // Stop the pipeline (no more deliveries, running invocations finish or are dropped with their
    // workers) so the checks see a still picture.
    await queue.close({ drainMs: drained ? 0 : 3000 });
    await pool.close();
    const filesBeforeSweep = emulator.files();
    const recordsBefore = await store.listWithRemoteFiles();
    const orphansBeforeFinalSweep = orphanFiles(filesBeforeSweep, recordsBefore).length;
    // The scheduled sweep that would come next (it deletes superseded files queued by crashed runs).
    await sweep();
    // Read while the search index catches up below (both only read).
    const strayChunksRead = findStrayChunks(clients.documents);
    log(`drained: ${drained}; final janitor sweep done; checking invariants`);

    // The search index, once its lag has passed (the indexer run to an empty to-do list; nothing is in
    // flight any more, so a to-do whose write never landed is dropped at once): it must hold every
    // searchable document's latest text, and nothing else.
    await indexing.stop();
    const searchIndex = await checkSearchIndex(store, clients.s3);
    const strayChunks = await strayChunksRead;

    // ---- Checks ----
    const files = emulator.files();
    const records = await store.listWithRemoteFiles();
    // Which key each upload tag belongs to, to explain any orphan.
    const tagKey = new Map<string, KeyState>();
    for (const k of keys.values())
      for (const q of k.sequencers)
        tagKey.set(uploadTagFor(k.documentId, normaliseSequencer(q), DEPLOYMENT_ID), k);
    const allRequests = emulator.requests();
    const orphans: string[] = [];
    for (const o of orphanFiles(files, records)) {
      const k = tagKey.get(o.filename.split("__")[0]!);
      const rec = k ? await store.getState(k.documentId) : undefined;
      const calls = allRequests
        .filter((r) => r.path.includes(o.id))
        .map((r) => `${r.method} ${r.status}`)
        .join(",");
      orphans.push(
        `${o.id} ${o.filename} (key ${k?.key ?? "?"}, last ${k?.last.op ?? "?"} v${k?.versions ?? "?"}; record ${rec?.status ?? "none"} file=${rec?.remoteFileId ?? "-"} stale=${JSON.stringify(rec ? store.staleWork(rec) : {})}; calls on it: ${calls || "none"})`,
      );
    }

    const documents = {
      keys: keys.size,
      versionsPut,
      overwrites,
      deletes,
      expectedReady: 0,
      expectedFailed: 0,
      expectedGone: 0,
      ready: 0,
      failed: 0,
      gone: 0,
      processing: 0,
      failuresByCode: {} as Record<string, number>,
      mismatches: [] as string[],
    };
    const deleted = { checked: 0, leftovers: [] as string[] };
    const liveIds = new Set(files.map((x) => x.id));
    const checkKey = async (s: KeyState) => {
      const rec = await store.get(s.documentId);
      if (rec?.status === "ready") documents.ready++;
      else if (rec?.status === "failed") {
        documents.failed++;
        const code = rec.error?.code ?? "?";
        documents.failuresByCode[code] = (documents.failuresByCode[code] ?? 0) + 1;
      } else if (rec?.status === "processing") documents.processing++;
      else documents.gone++;

      if (s.last.op === "delete") {
        documents.expectedGone++;
        deleted.checked++;
        if (rec && rec.status !== "deleted") deleted.leftovers.push(`${s.key}: record is ${rec.status}`);
        const chunks = await countChunks(clients.documents, s.documentId);
        if (chunks > 0) deleted.leftovers.push(`${s.key}: ${chunks} chunk item(s) left`);
        const tags = new Set(
          s.sequencers.map((q) => uploadTagFor(s.documentId, normaliseSequencer(q), DEPLOYMENT_ID)),
        );
        const remote = files.filter((x) => tags.has(x.filename.split("__")[0]!));
        if (remote.length)
          deleted.leftovers.push(`${s.key}: remote file(s) ${remote.map((x) => x.id).join(", ")} left`);
        if (rec?.remoteFileId && liveIds.has(rec.remoteFileId))
          deleted.leftovers.push(`${s.key}: remote file ${rec.remoteFileId} still referenced and present`);
        return;
      }
      const expect = s.last.expect;
      if (expect.status === "ready") {
        documents.expectedReady++;
        if (rec?.status !== "ready") {
          documents.mismatches.push(
            `${s.key}: expected ready, got ${rec?.status ?? "no record"}${rec?.error ? ` (${rec.error.code}: ${rec.error.message})` : ""}`,
          );
        } else {
          const text = (await store.getText(rec)) ?? "";
          if (!text.includes(expect.marker))
            documents.mismatches.push(
              `${s.key}: ready but its text is not version ${s.versions}'s (${expect.marker} missing)`,
            );
        }
      } else {
        documents.expectedFailed++;
        if (rec?.status !== "failed" || !expect.codes.includes(rec.error?.code ?? "")) {
          documents.mismatches.push(
            `${s.key} (${expect.because}): expected failed [${expect.codes.join("|")}], got ${rec?.status ?? "no record"}${rec?.error ? ` [${rec.error.code}: ${rec.error.message}]` : ""}`,
          );
        } else if (!rec.error?.message) {
          documents.mismatches.push(`${s.key}: failed without a message`);
        }
      }
    };
    const queueOfKeys = [...keys.values()];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let s = queueOfKeys.shift(); s; s = queueOfKeys.shift()) await checkKey(s);
      }),
    );

    const byTag = new Map<string, string[]>();
    for (const u of stored) {
      const tag = u.filename.split("__")[0]!;
      byTag.set(tag, [...(byTag.get(tag) ?? []), u.id]);
    }
    const liveByTag = new Map<string, number>();
    for (const x of files)
      liveByTag.set(x.filename.split("__")[0]!, (liveByTag.get(x.filename.split("__")[0]!) ?? 0) + 1);
    const duplicatesAlive = [...liveByTag.values()].filter((n) => n > 1).length;
    const duplicateUploads = [...byTag.entries()]
      .filter(([, ids]) => ids.length > 1)
      .map(([t, ids]) => `${t}: ${ids.length} uploads`);

    const requests = emulator.requests();
    const emuByStatus: Record<string, number> = {};
    for (const r of requests) emuByStatus[r.status] = (emuByStatus[r.status] ?? 0) + 1;
    const providerFaults = requests.filter(
      (r) =>
        (r.operation === "chat" ||
          r.operation === "estimate" ||
          r.operation === "tokenizer" ||
          r.operation === "models") &&
        (r.status >= 500 || r.status === 0),
    ).length;
    const chat5xx = Object.entries(chat.byStatus)
      .filter(([s]) => s.startsWith("5"))
      .reduce((n, [, c]) => n + c, 0);
    const qs = queue.stats();
    const totalBytes = files.reduce((n, x) => n + x.bytes, 0);

    const invariants: Invariant[] = [
      { name: "pipeline drained before the time limit", ok: drained, detail: `queue ${JSON.stringify(qs)}` },
      {
        name: "every live document ready or failed as its input says",
        ok: documents.mismatches.length === 0 && documents.processing === 0,
        detail: `${documents.mismatches.length} mismatch(es), ${documents.processing} still processing`,
      },
      { name: "orphan remote files: 0", ok: orphans.length === 0, detail: `${orphans.length} orphan(s)` },
      {
        name: "search index: every ready document's latest text, and nothing else",
        ok: searchIndex.missing.length === 0 && searchIndex.extra.length === 0 && searchIndex.caughtUp,
        detail: `${searchIndex.indexed} indexed, ${searchIndex.missing.length} missing, ${searchIndex.extra.length} extra${searchIndex.caughtUp ? "" : ", to-dos left"}; ${indexing.runs} runs during the soak, ${indexing.errors.length} failed`,
      },
      {
        name: "duplicate uploads per object version: 0",
        ok: duplicateUploads.length === 0,
        detail: `${stored.length} uploads stored, ${duplicateUploads.length} version(s) uploaded twice, ${duplicatesAlive} version(s) with two live files now`,
      },
      {
        name: "deleted objects fully gone (record, chunks, remote file)",
        ok: deleted.leftovers.length === 0,
        detail: `${deleted.checked} checked, ${deleted.leftovers.length} leftover(s)`,
      },
      {
        name: "chat: no 5xx caused by us",
        ok: chat.ourErrors.length === 0 && chat5xx <= providerFaults,
        detail: `${chat5xx} provider 5xx for ${providerFaults} provider faults on chat calls; ${chat.ourErrors.length} of ours`,
      },
      {
        name: "every planned document was put",
        ok: keys.size === opts.documents,
        detail: `${keys.size} of ${opts.documents}`,
      },
      { name: "chat requests made", ok: chat.requests > 0, detail: `${chat.requests} requests` },
      {
        name: "readers see whole versions",
        ok: readersReport.violations.length === 0 && readersReport.chat.sources > 0,
        detail: `${readersReport.chat.sources} sources (${readersReport.chat.current} current, ${readersReport.chat.previous} previous, ${readersReport.chat.partial} ranked) in ${readersReport.chat.answered} answers, ${readersReport.search.hits} search hits, ${readersReport.violations.length} violation(s)`,
      },
      {
        name: "readers: no 5xx caused by us",
        ok: readersReport.serverErrors.length === 0,
        detail: `${readersReport.serverErrors.length} of ${readersReport.chat.requests + readersReport.search.requests} reader requests`,
      },
      {
        name: "no stray chunks",
        ok: strayChunks.items === 0,
        detail: `${strayChunks.items} chunk item(s) outside a live generation, in ${strayChunks.documents} document(s)`,
      },
      {
        name: "tenants: every answer's sources inside the asker's prefix, another tenant's documents never answered",
        ok: tenants.leaks.length === 0 && tenants.requests > 0,
        detail: `${tenants.requests} tenant requests: ${tenants.answered} answered, ${tenants.refused} naming another tenant's document refused (404), ${tenants.leaks.length} leak(s)${tenants.leaks.length ? `: ${tenants.leaks.slice(0, 3).join("; ")}` : ""}`,
      },
      {
        name: "no dead letters",
        ok: qs.deadLetters === 0,
        detail: `${qs.deadLetters} dead letter(s)${
          qs.deadLetters
            ? `: ${queue
                .deadLetters()
                .slice(0, 3)
                .map((d) => d.lastError)
                .join("; ")}`
            : ""
        }`,
      },
      {
        name: "quota within the cap",
        ok: files.length <= opts.maxFiles && peakFiles <= opts.maxFiles,
        detail: `${files.length} files now, peak ${peakFiles}, cap ${opts.maxFiles}`,
      },
      {
        name: "janitor sweeps succeeded",
        ok: jan.errors.length === 0 && jan.sweeps > 0,
        detail: `${jan.sweeps} sweeps, ${jan.errors.length} error(s)`,
      },
      {
        name: "within the time limit",
        ok: Date.now() <= hardDeadline,
        detail: `${Math.round((Date.now() - started) / 1000)} s of ${opts.seconds}`,
      },
    ];
    const { log: _log, ...options } = opts;
    return {
      options,
      seconds: Math.round((Date.now() - started) / 1000),
      drained,
      documents,
      remote: {
        files: files.length,
        bytes: totalBytes,
        maxFiles: opts.maxFiles,
        peakFiles,
        orphansBeforeFinalSweep,
        orphans,
        uploads: stored.length,
        duplicateUploads,
      },
      deleted,
      chat: { requests: chat.requests, byStatus: chat.byStatus, ourErrors: chat.ourErrors, providerFaults },
      tenants,
      readers: readersReport,
      strayChunks,
      queue: {
        sent: qs.sent,
        invocations: qs.invocations,
        deadLetters: qs.deadLetters,
        failedReceives: qs.failedReceives,
      },
      workers: { ...pool.stats },
      emulator: {
        requests: requests.length,
        faulted: requests.filter((r) => r.status === 429 || r.status === 500 || r.status === 0).length,
        byStatus: emuByStatus,
      },
      janitor: jan,
      invariants,
      ok: invariants.every((i) => i.ok),
    };
  } finally {
    await close();
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Remote files no live record holds as its current upload. */
function orphanFiles<F extends { id: string }>(
  files: F[],
  records: { status: string; remoteFileId?: string }[],
): F[] {
  const held = new Set(
    records.filter((r) => r.status !== "deleted" && r.remoteFileId).map((r) => r.remoteFileId!),
  );
  return files.filter((f) => !held.has(f.id));
}

async function countChunks(
  client: import("@aws-sdk/lib-dynamodb").DynamoDBDocumentClient,
  documentId: string,
) {
  const { QueryCommand } = await import("@aws-sdk/lib-dynamodb");
  const { documentPk, CHUNK_SK_PREFIX } = await import("../../functions/core/documents/table");
  const r = await client.send(
    new QueryCommand({
      TableName: TABLE,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :sk)",
      ExpressionAttributeValues: { ":pk": documentPk(documentId), ":sk": CHUNK_SK_PREFIX },
      Select: "COUNT",
    }),
  );
  return r.Count ?? 0;
}

/**
 * Chunk items outside a live generation: every chunk must belong to its record's text (or, for a
 * record still processing, to its running attempt). One keys-only Scan of the table.
 */
async function findStrayChunks(client: import("@aws-sdk/lib-dynamodb").DynamoDBDocumentClient) {
  const { ScanCommand } = await import("@aws-sdk/lib-dynamodb");
  const { CHUNK_SK_PREFIX, DOCUMENT_SK } = await import("../../functions/core/documents/table");
  const live = new Map<string, Set<string>>();
  const chunks = new Map<string, Map<string, number>>();
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: TABLE,
        ProjectionExpression: "pk, sk, textGeneration, pendingGeneration, #status",
        ExpressionAttributeNames: { "#status": "status" },
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of page.Items ?? []) {
      const pk = item.pk as string;
      const sk = item.sk as string;
      if (sk === DOCUMENT_SK) {
        const gens = new Set<string>();
        if (item.textGeneration) gens.add(item.textGeneration as string);
        if (item.status === "processing" && item.pendingGeneration)
          gens.add(item.pendingGeneration as string);
        live.set(pk, gens);
      } else if (sk.startsWith(CHUNK_SK_PREFIX)) {
        const generation = sk.slice(CHUNK_SK_PREFIX.length, sk.lastIndexOf("#"));
        const byGen = chunks.get(pk) ?? new Map<string, number>();
        byGen.set(generation, (byGen.get(generation) ?? 0) + 1);
        chunks.set(pk, byGen);
      }
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  let items = 0;
  const documents = new Set<string>();
  const examples: string[] = [];
  for (const [pk, byGen] of chunks) {
    for (const [generation, count] of byGen) {
      if (live.get(pk)?.has(generation)) continue;
      items += count;
      documents.add(pk);
      if (examples.length < 10) examples.push(`${pk} generation ${generation}: ${count} item(s)`);
    }
  }
  return { items, documents: documents.size, examples };
}

/** The report as the lines `npm run soak` prints. */
export function formatReport(r: SoakReport): string {
  const d = r.documents;
  const lines = [
    `soak: ${r.options.documents} documents, ${r.seconds} s, ${(r.options.faultRate * 100).toFixed(0)}% provider faults, ` +
      `${(r.options.killRate * 100).toFixed(0)}% killed invocations, events delivered twice`,
    `documents: ${d.keys} keys, ${d.versionsPut} puts (${d.overwrites} overwrites), ${d.deletes} deletes`,
    `  expected ready ${d.expectedReady} -> ready ${d.ready}; expected failed ${d.expectedFailed} -> failed ${d.failed} ${JSON.stringify(d.failuresByCode)}; expected gone ${d.expectedGone} -> gone ${d.gone}; processing ${d.processing}`,
    ...d.mismatches.slice(0, 15).map((m) => `  MISMATCH ${m}`),
    `remote files: ${r.remote.files} live (${(r.remote.bytes / 1024 / 1024).toFixed(1)} MB), peak ${r.remote.peakFiles} of cap ${r.remote.maxFiles}; ` +
      `orphans ${r.remote.orphans.length} (before the final sweep ${r.remote.orphansBeforeFinalSweep}); ` +
      `uploads stored ${r.remote.uploads}, duplicate uploads ${r.remote.duplicateUploads.length}`,
    ...r.remote.orphans.slice(0, 5).map((o) => `  ORPHAN ${o}`),
    ...r.remote.duplicateUploads.slice(0, 5).map((o) => `  DUPLICATE ${o}`),
    `deleted objects: ${r.deleted.checked} checked, ${r.deleted.leftovers.length} leftover(s)`,
    ...r.deleted.leftovers.slice(0, 5).map((o) => `  LEFTOVER ${o}`),
    `chat: ${r.chat.requests} requests ${JSON.stringify(r.chat.byStatus)}; provider faults on chat calls ${r.chat.providerFaults}`,
    ...r.chat.ourErrors.slice(0, 5).map((o) => `  OUR ERROR ${o}`),
    `tenants: ${r.tenants.requests} requests, ${r.tenants.answered} answered inside their prefix, ${r.tenants.refused} refused for naming another tenant's document, ${r.tenants.leaks.length} leak(s)`,
    ...r.tenants.leaks.slice(0, 5).map((l) => `  LEAK ${l}`),
    `readers: ${r.readers.puts} puts and ${r.readers.deletes} deletes of ${r.options.readerDocs} documents while read; chat ${r.readers.chat.requests} requests ${JSON.stringify(r.readers.chat.byStatus)}, ${r.readers.chat.sources} sources checked (${r.readers.chat.current} current, ${r.readers.chat.previous} previous, ${r.readers.chat.partial} ranked); search ${r.readers.search.requests} requests ${JSON.stringify(r.readers.search.byStatus)}, ${r.readers.search.hits} hits checked; seen applied: ${r.readers.observed.ready} versions, ${r.readers.observed.deleted} deletes`,
    ...r.readers.violations.slice(0, 10).map((v) => `  READER ${v}`),
    ...r.readers.serverErrors.slice(0, 5).map((v) => `  READER 5XX ${v}`),
    `chunks: ${r.strayChunks.items} stray item(s) in ${r.strayChunks.documents} document(s)`,
    ...r.strayChunks.examples.slice(0, 5).map((e) => `  STRAY ${e}`),
    `queue: ${r.queue.sent} messages, ${r.queue.invocations} invocations, ${r.queue.failedReceives} failed receives, ${r.queue.deadLetters} dead letters`,
    `workers: ${r.workers.kills} killed mid-invocation (${r.workers.killsTooLate} kill timers fired after the answer), ${r.workers.coldStarts} cold starts, ${r.workers.unexpectedExits} unexpected exits`,
    `provider (emulator): ${r.emulator.requests} requests, ${r.emulator.faulted} faulted ${JSON.stringify(r.emulator.byStatus)}`,
    `janitor: ${r.janitor.sweeps} sweeps, ${r.janitor.deleted} files released${r.janitor.errors.length ? `, errors: ${r.janitor.errors.slice(0, 3).join("; ")}` : ""}`,
    `quota: ${r.remote.files}/${r.remote.maxFiles} files, ${(r.remote.bytes / 1024 / 1024).toFixed(1)} MB of 10240 MB`,
    "invariants:",
    ...r.invariants.map((i) => `  ${i.ok ? "PASS" : "FAIL"} ${i.name} (${i.detail})`),
    r.ok ? "SOAK PASSED" : "SOAK FAILED",
  ];
  return lines.join("\n");
}

const SEARCH_INDEX_BUCKET = "kdp-soak-search-index";

/** Runs the indexer until its to-do list is empty, then compares the index with the records. */
async function checkSearchIndex(
  store: import("../../functions/core/documents/dynamo-store").DynamoDocumentStore,
  s3: import("@aws-sdk/client-s3").S3Client,
): Promise<{ indexed: number; missing: string[]; extra: string[]; caughtUp: boolean }> {
  const [{ SearchIndexer }, { IndexSearcher }, { S3IndexObjects }, { isSearchable }] = await Promise.all([
    import("../../functions/core/search/indexer"),
    import("../../functions/core/search/searcher"),
    import("../../functions/core/search/storage"),
    import("../../functions/core/search/model"),
  ]);
  const objects = new S3IndexObjects({ client: s3, bucket: SEARCH_INDEX_BUCKET });
  const indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects,
    config: { staleTodoMs: 0, todoSettleMs: 0 },
  });
  let caughtUp = false;
  for (let i = 0; i < 50 && !caughtUp; i++) caughtUp = (await indexer.run()).todos === 0;
  const want = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await store.list({ limit: 1000, cursor });
    for (const r of page.items) if (isSearchable(r)) want.add(`${r.documentId}@${r.textGeneration}`);
    cursor = page.cursor;
  } while (cursor);
  const have = new Set(
    (await new IndexSearcher({ objects, refreshMs: 0 }).documents()).map(
      (d) => `${d.documentId}@${d.generation}`,
    ),
  );
  return {
    indexed: have.size,
    missing: [...want].filter((k) => !have.has(k)),
    extra: [...have].filter((k) => !want.has(k)),
    caughtUp,
  };
}

/** Runs the indexer every 2 s, one run at a time, until stopped. */
async function startIndexing(
  store: import("../../functions/core/documents/dynamo-store").DynamoDocumentStore,
  s3: import("@aws-sdk/client-s3").S3Client,
): Promise<{ stop(): Promise<void>; runs: number; errors: string[] }> {
  const [{ SearchIndexer }, { S3IndexObjects }] = await Promise.all([
    import("../../functions/core/search/indexer"),
    import("../../functions/core/search/storage"),
  ]);
  const indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects: new S3IndexObjects({ client: s3, bucket: SEARCH_INDEX_BUCKET }),
  });
  const state = { runs: 0, errors: [] as string[] };
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = indexer
      .run()
      .then(() => void state.runs++)
      .catch((err) => void state.errors.push(err instanceof Error ? err.message : String(err)))
      .finally(() => {
        running = undefined;
      });
  }, 2000);
  let stopped: Promise<void> | undefined;
  return {
    get runs() {
      return state.runs;
    },
    errors: state.errors,
    stop() {
      stopped ??= (async () => {
        clearInterval(timer);
        await running;
      })();
      return stopped;
    },
  };
}
