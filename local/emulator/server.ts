/**
 * A provider-compatible HTTP server for tests, benchmarks and `npm start`, with two profiles
 * (profiles.ts): Moonshot (the paths of its OpenAPI document under `/v1`: models, balance, files,
 * content, chat completions, token estimate) and Zhipu GLM (under `/api/paas/v4`: paged files,
 * content, chat completions, tokenizer; contract in glm-contract.json). Either way: the provider's
 * quotas, error bodies and messages, real text extraction, a deterministic offline "model", fault
 * injection, and an inspection/control API under `/_emulator/` (loopback only, no bearer).
 *
 * Built on node:http rather than a framework because it needs low-level control: streaming multipart
 * parsing (busboy) with a size cap enforced while bytes arrive, dropping sockets, and streaming large
 * content bodies without buffering them.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import busboy from "busboy";
import {
  type ChatMessageIn,
  type CompletionParams,
  checkParams,
  complete,
  DEFAULT_PROMPT_CACHE,
  PromptCache,
  type PromptCacheOptions,
  promptTokensOf,
  streamFrames,
} from "./completions";
import { ApiError, type ErrorVocabulary } from "./errors";
import { classifyFile, extractFile } from "./extract";
import { prng } from "./prng";
import {
  type EmulatorLimits,
  type EmulatorProfile,
  type EmulatorProfileName,
  emulatorProfile,
  MOONSHOT_MODELS,
  type ModelSpec,
  OPERATIONS,
  type Operation,
  PROFILES,
  publicFile,
} from "./profiles";
import { FileStore, newFileId, type StoredFile } from "./store";
import { countChatTokens } from "./tokens";

export type { EmulatorLimits, EmulatorProfileName, ModelSpec } from "./profiles";
export { OPERATIONS, type Operation } from "./profiles";

/**
 * Fault injection. Rates are fractions of /v1 requests (0..1) drawn from a seeded PRNG, checked in this
 * order: 429 (rate limited/overloaded), 429 quota exhausted, 500, dropped connection, slow response.
 */
export interface FaultConfig {
  /** Fixed delay before every /v1 response, or per operation. */
  latencyMs: number | Partial<Record<Operation, number>>;
  /** Fraction answered 429 `rate_limit_reached_error` or `engine_overloaded_error` with Retry-After. */
  rate429: number;
  /** Fraction answered 500 `server_error`. */
  rate500: number;
  /** Fraction whose socket is destroyed without an answer. */
  rateDrop: number;
  /** Fraction delayed by `slowMs` before being served (to trip client timeouts). */
  rateSlow: number;
  slowMs: number;
  /** Seconds sent in `Retry-After` (and as ms in `retry-after-ms`) with injected 429s. */
  retryAfterSeconds: number;
  /** Restrict rate-based faults to these operations (latency always applies). Default: all; pass
   * `undefined` (or `null` over HTTP) to lift a restriction. */
  operations?: Operation[];
  /** PRNG seed; setting it restarts the sequence so runs are repeatable. */
  seed?: number;
  /** Fraction answered 429 `exceeded_current_quota_error` (out of credit; must not be retried). */
  rateQuota?: number;
  /** Delay between SSE frames of a streamed chat, so tests can see chunks arrive over time. */
  streamDelayMs?: number;
  /**
   * Fraction of streamed chats whose connection is cut after the first content chunk (no final
   * chunk, no [DONE]), like a stream interrupted mid-answer. Drawn after the other rate faults.
   */
  rateStreamCut?: number;
}

export type { PromptCacheOptions } from "./completions";

export interface EmulatorOptions {
  /** Which provider to stand in for. @default "moonshot" */
  profile?: EmulatorProfileName;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Required bearer; when unset any non-empty bearer is accepted. */
  apiKey?: string;
  limits?: Partial<EmulatorLimits>;
  faults?: Partial<FaultConfig>;
  /** Persist files (metadata, bytes, extracted text) here and reload them on start. Default: memory. */
  dataDir?: string;
  /** Shape of GET /v1/files/{id}/content: a JSON envelope like the real service (default) or plain text. */
  contentFormat?: "json" | "text";
  /** Models served by GET /v1/models and accepted by chat; replaces the profile's list. */
  models?: ModelSpec[];
  /** Models GLM's POST /tokenizer counts (others: 400 1214). @default the profile's (docs.z.ai) */
  tokenizerModels?: string[];
  /** Account balance (CNY) reported by /v1/users/me/balance; chat answers 429 quota errors at <= 0. */
  balance?: number;
  /**
   * The automatic prefix cache (see completions.ts): how long a prompt stays cached and the shortest
   * prefix reported; `false` turns it off (no cached tokens are ever reported).
   */
  promptCache?: Partial<PromptCacheOptions> | false;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  operation: Operation | "admin";
  /** 0 when the connection was dropped before an answer. */
  status: number;
  /** Epoch milliseconds when the request arrived. */
  at: number;
}

export interface FileSummary {
  id: string;
  filename: string;
  bytes: number;
  created_at: number;
  status: string;
}

export interface RunningEmulator {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + the profile's API root ("/v1" or "/api/paas/v4"), for an OpenAI-compatible client's baseURL. */
  baseURL: string;
  profile: EmulatorProfileName;
  port: number;
  close(): Promise<void>;
  setFaults(f: Partial<FaultConfig>): void;
  setLimits(l: Partial<EmulatorLimits>): void;
  /** Shifts the emulator clock (file `created_at`, `created`) by this many seconds from real time. */
  setClockOffset(seconds: number): void;
  /** Sets the account balance; at <= 0 chat completions answer 429 exceeded_current_quota_error. */
  setBalance(amount: number): void;
  /** Deletes all files, clears the request log, restores start-up faults, limits, clock and balance. */
  reset(): Promise<void>;
  files(): FileSummary[];
  requests(): RequestLogEntry[];
}

/** Moonshot's models (the default profile's). */
export const DEFAULT_MODELS: readonly ModelSpec[] = MOONSHOT_MODELS;

/** Moonshot's limits (the default profile's). */
export const DEFAULT_LIMITS: EmulatorLimits = PROFILES.moonshot.limits;

export const DEFAULT_FAULTS: FaultConfig = {
  latencyMs: 0,
  rate429: 0,
  rate500: 0,
  rateDrop: 0,
  rateSlow: 0,
  slowMs: 30_000,
  retryAfterSeconds: 1,
  rateQuota: 0,
  streamDelayMs: 0,
  rateStreamCut: 0,
  seed: 1,
};

const DEFAULT_BALANCE = 10_000;
/**
 * Price used to debit the balance (CNY per token): credit visibly goes down, but the default balance
 * lasts ~10^10 tokens so no benchmark runs dry by accident; tests that want exhaustion call setBalance(0).
 */
const PRICE_PER_TOKEN = 0.000001;
const MAX_JSON_BODY = 64 * 1024 * 1024;
const MAX_LOG = 50_000;
/** Bounds GET /files?after= lookups of files deleted since a page was served. */
const MAX_CURSOR_MEMORY = 10_000;

/** Starts an emulator; resolves once it listens. */
export async function startEmulator(opts: EmulatorOptions = {}): Promise<RunningEmulator> {
  const store = await FileStore.open(opts.dataDir);
  try {
    // Options are validated here (bad limits/faults throw) before anything listens.
    const emulator = new Emulator(opts, emulatorProfile(opts.profile ?? "moonshot"), store);
    return await emulator.listen(opts.port ?? 0, opts.host ?? "127.0.0.1");
  } catch (err) {
    await store.close(); // e.g. EADDRINUSE: do not leave a temp folder behind
    throw err;
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms).unref()) : Promise.resolve();
}

/** Validates and merges a fault patch; throws a plain Error describing the first bad field. */
export function mergeFaults(base: FaultConfig, patch: Partial<FaultConfig>): FaultConfig {
  const out: FaultConfig = { ...base };
  for (const [key, value] of Object.entries(patch) as [keyof FaultConfig, unknown][]) {
    // An explicit undefined/null for `operations` lifts the restriction; elsewhere it means "unchanged".
    if (key === "operations" && (value === undefined || value === null)) {
      delete out.operations;
      continue;
    }
    if (value === undefined) continue;
    switch (key) {
      case "rate429":
      case "rate500":
      case "rateDrop":
      case "rateSlow":
      case "rateQuota":
      case "rateStreamCut":
        if (typeof value !== "number" || !(value >= 0 && value <= 1))
          throw new Error(`${key} must be a number in [0, 1]`);
        out[key] = value;
        break;
      case "slowMs":
      case "streamDelayMs":
      case "retryAfterSeconds":
        if (typeof value !== "number" || !(value >= 0)) throw new Error(`${key} must be a number >= 0`);
        out[key] = value;
        break;
      case "seed":
        if (typeof value !== "number" || !Number.isFinite(value)) throw new Error("seed must be a number");
        out.seed = value;
        break;
      case "latencyMs":
        if (typeof value === "number") {
          if (!(value >= 0)) throw new Error("latencyMs must be >= 0");
          out.latencyMs = value;
        } else if (value && typeof value === "object") {
          for (const [op, ms] of Object.entries(value)) {
            if (!OPERATIONS.includes(op as Operation)) throw new Error(`latencyMs: unknown operation ${op}`);
            if (typeof ms !== "number" || !(ms >= 0)) throw new Error(`latencyMs.${op} must be >= 0`);
          }
          out.latencyMs = { ...(value as Partial<Record<Operation, number>>) };
        } else throw new Error("latencyMs must be a number or an object of operation -> ms");
        break;
      case "operations":
        if (!Array.isArray(value) || value.some((op) => !OPERATIONS.includes(op as Operation))) {
          throw new Error(`operations must be a list of: ${OPERATIONS.join(", ")}`);
        }
        out.operations = [...(value as Operation[])];
        break;
      default:
        throw new Error(`unknown fault setting ${String(key)}`);
    }
  }
  return out;
}

/** Validates and merges a limits patch. */
export function mergeLimits(base: EmulatorLimits, patch: Partial<EmulatorLimits>): EmulatorLimits {
  // A file cap under the image cap would let an image through that the file cap refuses: follow it.
  if (patch.maxFileBytes !== undefined && patch.maxImageBytes === undefined)
    patch = { ...patch, maxImageBytes: Math.min(base.maxImageBytes, patch.maxFileBytes) };
  const out = { ...base };
  for (const [key, value] of Object.entries(patch) as [keyof EmulatorLimits, unknown][]) {
    if (value === undefined) continue;
    if (!(key in DEFAULT_LIMITS)) throw new Error(`unknown limit ${String(key)}`);
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      throw new Error(`${key} must be a non-negative integer`);
    }
    out[key] = value;
  }
  return out;
}

interface Route {
  operation: Operation;
  fileId?: string;
}

function route(profile: EmulatorProfile, method: string, path: string): Route | "method" | undefined {
  const p = path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
  if (!p.startsWith(`${profile.basePath}/`)) return undefined;
  const sub = p.slice(profile.basePath.length);
  const known = profile.routes[sub];
  if (known) return known[method] ? { operation: known[method] } : "method";
  const m = /^\/files\/([^/]+)(\/content)?$/.exec(sub);
  if (m) {
    const fileId = decodeURIComponent(m[1]!);
    if (m[2]) return method === "GET" ? { operation: "content", fileId } : "method";
    if (method === "GET") return { operation: "retrieve", fileId };
    if (method === "DELETE") return { operation: "delete", fileId };
    return "method";
  }
  return undefined;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

function sendError(res: ServerResponse, err: ApiError): void {
  sendJson(res, err.status, err.body(), err.headers);
}

function isLoopback(socket: Socket): boolean {
  const a = socket.remoteAddress ?? "";
  return a === "::1" || a.startsWith("127.") || a.startsWith("::ffff:127.");
}

/** Reads a JSON body up to `max` bytes; rejects with 400 errors the provider would send. */
async function readJson(
  req: IncomingMessage,
  errors: ErrorVocabulary,
  max = MAX_JSON_BODY,
): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max)
      tooLarge = true; // keep draining so the client can read our answer
    else chunks.push(chunk);
  }
  if (tooLarge) throw errors.invalid(`Invalid request: request body exceeds ${max} bytes`);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") throw errors.invalid("Invalid request: empty request body");
  try {
    return JSON.parse(text);
  } catch {
    throw errors.invalid("Invalid request: the request body is not valid JSON");
  }
}

class Emulator {
  private server!: Server;
  private limits: EmulatorLimits;
  private faults: FaultConfig;
  private random: () => number;
  private clockOffset = 0;
  private balance: number;
  private readonly log: RequestLogEntry[] = [];
  private readonly models: ModelSpec[];
  private readonly promptCache?: PromptCache;
  private readonly contentFormat: "json" | "text";
  private readonly errors: ErrorVocabulary;
  /**
   * Upload order of each file (GLM pages in it), kept a while for deleted files so a page cursor
   * naming one still places the next page.
   */
  private readonly uploadOrder = new Map<string, number>();
  private nextOrder = 0;
  /** Uploads holding a file-count reservation (so concurrent uploads cannot overshoot the cap). */
  private inflightUploads = 0;
  /** Bytes of uploads that passed the total-size check but are still being extracted/stored. */
  private reservedBytes = 0;
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly opts: EmulatorOptions,
    private readonly profile: EmulatorProfile,
    private readonly store: FileStore,
  ) {
    this.errors = profile.errors;
    this.limits = mergeLimits(profile.limits, opts.limits ?? {});
    this.faults = mergeFaults(DEFAULT_FAULTS, opts.faults ?? {});
    this.random = prng(this.faults.seed ?? 1);
    this.balance = opts.balance ?? DEFAULT_BALANCE;
    this.models = (opts.models ?? profile.models).map((m) => ({ ...m }));
    if (opts.promptCache !== false)
      this.promptCache = new PromptCache({ ...DEFAULT_PROMPT_CACHE, ...opts.promptCache });
    this.contentFormat = opts.contentFormat ?? "json";
  }

  private now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffset;
  }

  listen(port: number, host: string): Promise<RunningEmulator> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        // Last resort: never let a handler bug crash the process.
        if (!res.headersSent && !res.destroyed)
          sendError(res, this.errors.server(`emulator error: ${String(err)}`));
        else res.destroy();
      });
    });
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.server.on("clientError", (_err, socket) => socket.destroy());
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        const addr = this.server.address() as AddressInfo;
        const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
        const url = `http://${shownHost}:${addr.port}`;
        resolve(this.handleObject(url, addr.port));
      });
    });
  }

  private handleObject(url: string, port: number): RunningEmulator {
    return {
      url,
      baseURL: `${url}${this.profile.basePath}`,
      profile: this.profile.name,
      port,
      close: () => this.close(),
      setFaults: (f) => {
        this.faults = mergeFaults(this.faults, f);
        if (f.seed !== undefined) this.random = prng(f.seed);
      },
      setLimits: (l) => {
        this.limits = mergeLimits(this.limits, l);
      },
      setClockOffset: (seconds) => {
        if (!Number.isFinite(seconds)) throw new Error("clock offset must be a finite number of seconds");
        this.clockOffset = Math.trunc(seconds);
      },
      setBalance: (amount) => {
        if (!Number.isFinite(amount)) throw new Error("balance must be a finite number");
        this.balance = amount;
      },
      reset: () => this.reset(),
      files: () =>
        this.store.list().map((f) => ({
          id: f.id,
          filename: f.filename,
          bytes: f.bytes,
          created_at: f.created_at,
          status: f.status,
        })),
      requests: () => this.log.map((e) => ({ ...e })),
    };
  }

  private async reset(): Promise<void> {
    await this.store.clear();
    this.log.length = 0;
    this.limits = mergeLimits(this.profile.limits, this.opts.limits ?? {});
    this.uploadOrder.clear();
    this.faults = mergeFaults(DEFAULT_FAULTS, this.opts.faults ?? {});
    this.random = prng(this.faults.seed ?? 1);
    this.clockOffset = 0;
    this.balance = this.opts.balance ?? DEFAULT_BALANCE;
    this.promptCache?.clear();
  }

  private async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await this.store.close();
  }

  private record(entry: RequestLogEntry): void {
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const url = new URL(req.url ?? "/", "http://emulator");
    const path = url.pathname;
    const at = Date.now();

    if (path === "/_emulator" || path.startsWith("/_emulator/")) {
      res.on("close", () =>
        this.record({ method, path, operation: "admin", status: res.headersSent ? res.statusCode : 0, at }),
      );
      await this.admin(req, res, method, path);
      return;
    }

    const r = route(this.profile, method, path);
    if (r === undefined || r === "method") {
      req.resume();
      const what = r === "method" ? `method ${method} for ${path}` : `path ${path}`;
      sendError(res, this.errors.notFound(`The emulator has no ${what}; resource`));
      return;
    }
    res.on("close", () =>
      this.record({ method, path, operation: r.operation, status: res.headersSent ? res.statusCode : 0, at }),
    );

    const latency =
      typeof this.faults.latencyMs === "number"
        ? this.faults.latencyMs
        : (this.faults.latencyMs[r.operation] ?? 0);
    await sleep(latency);

    try {
      this.authorize(req);
      if (await this.injectFault(req, res, r.operation)) return;
      await this.dispatch(req, res, r);
    } catch (err) {
      if (!req.complete) req.resume(); // drain so the client reads the answer instead of EPIPE
      if (err instanceof ApiError) sendError(res, err);
      else throw err;
    }
  }

  private authorize(req: IncomingMessage): void {
    const header = req.headers.authorization ?? "";
    const m = /^Bearer\s+(\S.*)$/i.exec(header.trim());
    if (!m?.[1]) throw this.errors.missingAuth();
    if (this.opts.apiKey !== undefined && m[1].trim() !== this.opts.apiKey) throw this.errors.wrongKey();
  }

  /** Applies rate-based faults; true when the request was answered (or dropped) by a fault. */
  private async injectFault(req: IncomingMessage, res: ServerResponse, op: Operation): Promise<boolean> {
    const f = this.faults;
    if (f.operations && !f.operations.includes(op)) return false;
    const total = f.rate429 + (f.rateQuota ?? 0) + f.rate500 + f.rateDrop + f.rateSlow;
    if (total <= 0) return false;
    const x = this.random();
    let edge = f.rate429;
    if (x < edge) {
      // Alternate between the two retryable 429 flavours, deterministically.
      throw this.random() < 0.5
        ? this.errors.rateLimited(f.retryAfterSeconds)
        : this.errors.overloaded(f.retryAfterSeconds);
    }
    edge += f.rateQuota ?? 0;
    if (x < edge) throw this.errors.quotaExhausted();
    edge += f.rate500;
    if (x < edge) throw this.errors.server();
    edge += f.rateDrop;
    if (x < edge) {
      req.socket.destroy();
      res.destroy();
      return true;
    }
    edge += f.rateSlow;
    if (x < edge) await sleep(f.slowMs);
    return false;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, r: Route): Promise<void> {
    switch (r.operation) {
      case "models":
        req.resume();
        return sendJson(res, 200, {
          object: "list",
          data: this.models.map((m) => ({
            id: m.id,
            object: "model",
            created: 1_700_000_000,
            owned_by: this.profile.ownedBy,
            context_length: m.context_length,
            supports_image_in:
              m.id.includes("vision") || m.id.startsWith("kimi-k2.5") || m.id.startsWith("kimi-k2.6"),
            supports_video_in: m.id.startsWith("kimi-k2.5") || m.id.startsWith("kimi-k2.6"),
            supports_reasoning: this.profile.thinks(m.id, undefined),
          })),
        });
      case "balance":
        req.resume();
        return sendJson(res, 200, {
          code: 0,
          data: {
            available_balance: round5(this.balance),
            voucher_balance: 0,
            cash_balance: round5(this.balance),
          },
          scode: "0x0",
          status: true,
        });
      case "list":
        req.resume();
        if (this.profile.listing === "paged") return this.listPage(res, new URL(req.url ?? "/", "http://e"));
        return sendJson(res, 200, {
          object: "list",
          data: this.store.list().map((f) => publicFile(this.profile, f)),
        });
      case "retrieve": {
        req.resume();
        const f = this.store.get(r.fileId!);
        if (!f) throw this.errors.fileNotFound(r.fileId!);
        return sendJson(res, 200, publicFile(this.profile, f));
      }
      case "delete": {
        req.resume();
        const f = this.store.get(r.fileId!);
        if (!f || !(await this.store.delete(r.fileId!))) throw this.errors.fileNotFound(r.fileId!);
        this.rememberCursor(f);
        return sendJson(res, 200, { id: r.fileId, object: "file", deleted: true });
      }
      case "content":
        req.resume();
        return this.content(res, r.fileId!);
      case "upload":
        return this.upload(req, res);
      case "chat":
        return this.chat(req, res);
      case "estimate":
        return this.estimate(req, res);
      case "tokenizer":
        return this.tokenizer(req, res);
    }
  }

  /** Where a file sits in upload order (files loaded from disk get theirs in the store's order). */
  private orderOf(id: string): number {
    let n = this.uploadOrder.get(id);
    if (n === undefined) {
      n = this.nextOrder++;
      this.uploadOrder.set(id, n);
    }
    return n;
  }

  /** Keeps a deleted file's place for cursors, forgetting the oldest beyond MAX_CURSOR_MEMORY. */
  private rememberCursor(f: StoredFile): void {
    if (this.profile.listing !== "paged") return;
    this.orderOf(f.id);
    const live = this.store.count();
    while (this.uploadOrder.size > live + MAX_CURSOR_MEMORY) {
      const oldest = [...this.uploadOrder.keys()].find((id) => !this.store.get(id));
      if (oldest === undefined) break;
      this.uploadOrder.delete(oldest);
    }
  }

  /**
   * GLM's paged list: `purpose` (required), `limit` 1-100 (default 20), `after` (a file id: the page
   * starts after it, even if it was deleted since), `order` (only `created_at`); `has_more` says
   * whether another page follows (docs.bigmodel.cn "文件列表").
   */
  private listPage(res: ServerResponse, url: URL): void {
    const q = url.searchParams;
    const purpose = q.get("purpose");
    if (purpose === null || purpose === "")
      throw new ApiError(400, "", "purpose parameter not received properly", {}, "1213");
    if (!this.profile.purposes.includes(purpose))
      throw this.errors.invalid(`Invalid purpose parameter: ${purpose}`);
    const order = q.get("order");
    if (order !== null && order !== "created_at")
      throw this.errors.invalid(`Invalid order parameter: ${order} (only created_at)`);
    const limitText = q.get("limit");
    const limit = limitText === null ? 20 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw this.errors.invalid(`Invalid limit parameter: ${limitText} (1 to 100)`);
    const all = this.store.list();
    for (const f of all) this.orderOf(f.id);
    const files = all
      .filter((f) => f.purpose === purpose)
      .sort((a, b) => this.orderOf(a.id) - this.orderOf(b.id));
    let start = 0;
    const after = q.get("after");
    if (after !== null) {
      const place = this.uploadOrder.get(after);
      if (place === undefined) throw this.errors.invalid(`Invalid after parameter: no file ${after}`);
      start = files.findIndex((f) => this.orderOf(f.id) > place);
      if (start < 0) start = files.length;
    }
    const data = files.slice(start, start + limit).map((f) => publicFile(this.profile, f));
    sendJson(res, 200, { object: "list", data, has_more: start + limit < files.length });
  }

  // ---------------------------------------------------------------- files

  private async upload(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const contentType = req.headers["content-type"] ?? "";
    if (!/^multipart\/form-data/i.test(contentType)) {
      throw this.errors.invalid(
        "Invalid request: the body must be multipart/form-data with a file and a purpose",
      );
    }
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // Clients (undici FormData, the openai SDK) send UTF-8 filenames raw; busboy assumes latin1.
        defParamCharset: "utf8",
        // busboy flags a file as truncated when it *reaches* fileSize, so allow one byte more: a file of
        // exactly maxFileBytes is accepted, one byte over is refused.
        limits: { fileSize: this.limits.maxFileBytes + 1, files: 1, fields: 20, fieldSize: 64 * 1024 },
      });
    } catch (err) {
      throw this.errors.invalid(`Invalid request: ${(err as Error).message}`);
    }

    const fields: Record<string, string> = {};
    const limits = this.limits;
    let file:
      | {
          filename: string;
          tempPath?: string;
          bytes: number;
          truncated: boolean;
          countExceeded: boolean;
          totalExceeded: boolean;
          written: Promise<void>;
        }
      | undefined;
    let reserved = false;

    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      if (name !== "file" || file) {
        stream.resume();
        return;
      }
      const current = {
        filename: info.filename ?? "",
        tempPath: undefined as string | undefined,
        bytes: 0,
        truncated: false,
        countExceeded: false,
        totalExceeded: false,
        written: Promise.resolve(),
      };
      file = current;
      stream.on("limit", () => {
        current.truncated = true;
      });
      if (this.store.count() + this.inflightUploads >= limits.maxFiles) {
        current.countExceeded = true;
        stream.resume();
        return;
      }
      if (classifyFile(current.filename).kind === "unsupported") {
        // Refused once the body is read; count the bytes (for the size checks) but keep nothing.
        stream.on("data", (chunk: Buffer) => {
          current.bytes += chunk.length;
        });
        return;
      }
      this.inflightUploads += 1;
      reserved = true;
      const baseTotal = this.store.totalBytes() + this.reservedBytes;
      current.tempPath = this.store.tempPath();
      // Count while streaming to disk; past the total quota, keep draining but stop writing.
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          current.bytes += chunk.length;
          if (baseTotal + current.bytes > limits.maxTotalBytes) current.totalExceeded = true;
          if (current.totalExceeded || current.truncated) cb();
          else cb(null, chunk);
        },
      });
      current.written = pipeline(stream, counter, createWriteStream(current.tempPath));
      current.written.catch(() => undefined);
    });

    // Not stream.pipeline: on a parse error it would destroy the request, and the client would get a
    // reset instead of the 400 it deserves. Parse errors drain the rest; a vanished client aborts.
    const parsed = new Promise<"ok" | "gone">((resolve, reject) => {
      parser.on("close", () => resolve("ok"));
      parser.on("error", reject);
      req.on("close", () => {
        if (!req.complete) resolve("gone");
      });
    });
    req.pipe(parser);

    let committed = false;
    let bytesReserved = 0;
    try {
      let outcome: "ok" | "gone";
      try {
        outcome = await parsed;
      } catch (err) {
        req.unpipe(parser);
        throw this.errors.invalid(`Invalid request: malformed multipart body (${(err as Error).message})`);
      }
      if (outcome === "gone") {
        res.destroy(); // the client went away mid-upload: nobody to answer
        return;
      }
      try {
        if (file) await file.written;
      } catch (err) {
        throw this.errors.server(`failed to store the upload: ${(err as Error).message}`);
      }

      if (!file) throw this.errors.invalid("Invalid request: missing the file field");
      const purpose = fields.purpose;
      if (purpose === undefined) throw this.errors.invalid("Invalid request: missing the purpose field");
      if (!this.profile.purposes.includes(purpose)) {
        throw this.errors.invalid(
          `Invalid request: purpose must be one of ${this.profile.purposes.join(", ")}, got ${purpose}`,
        );
      }
      if (file.countExceeded) throw this.errors.fileCount(limits.maxFiles);
      if (file.truncated) throw this.errors.fileTooLarge(limits.maxFileBytes);
      if (file.bytes === 0) throw this.errors.fileEmpty();
      const classified = classifyFile(file.filename);
      const refused =
        purpose === "file-extract" &&
        this.profile.extractExtensions !== undefined &&
        !this.profile.extractExtensions.has(classified.ext);
      const cls = refused ? { ...classified, kind: "unsupported" as const } : classified;
      if (cls.kind !== "unsupported" && cls.mime.startsWith("image/") && file.bytes > limits.maxImageBytes)
        throw this.errors.fileTooLarge(limits.maxImageBytes);
      if (
        cls.kind !== "unsupported" &&
        (file.totalExceeded ||
          this.store.totalBytes() + this.reservedBytes + file.bytes > limits.maxTotalBytes)
      ) {
        throw this.errors.totalTooLarge(limits.maxTotalBytes);
      }
      if (cls.kind === "unsupported") throw this.errors.unsupportedType(cls.ext);
      // Hold the bytes against the quota while extracting, so concurrent uploads cannot overshoot it.
      this.reservedBytes += file.bytes;
      bytesReserved = file.bytes;

      const stored: StoredFile = {
        id: newFileId(),
        object: "file",
        bytes: file.bytes,
        created_at: this.now(),
        filename: file.filename,
        purpose,
        status: "ok",
        file_type: cls.mime,
        text: "none",
      };
      let extracted: string | undefined;
      if (purpose === "file-extract") {
        const result = await extractFile(file.tempPath!, cls);
        if (result.ok) {
          stored.text = result.text === undefined ? "blob" : "extracted";
          extracted = result.text;
        } else {
          stored.status = "error";
          stored.status_details = result.details;
        }
      }
      // Files loaded from disk take their places before this one.
      if (this.profile.listing === "paged") for (const f of this.store.list()) this.orderOf(f.id);
      await this.store.add(stored, file.tempPath!, extracted);
      this.orderOf(stored.id);
      committed = true;
      sendJson(res, 200, publicFile(this.profile, stored));
    } finally {
      this.reservedBytes -= bytesReserved;
      if (reserved) this.inflightUploads -= 1;
      if (file?.tempPath && !committed) await rm(file.tempPath, { force: true });
    }
  }

  private async content(res: ServerResponse, id: string): Promise<void> {
    const f = this.store.get(id);
    if (!f) throw this.errors.fileNotFound(id);
    if (f.status === "error") throw this.errors.extractionFailed(f.status_details ?? "unknown error");
    if (f.purpose !== "file-extract" || f.text === "none") {
      throw this.errors.invalid(
        `Invalid request: file ${id} was uploaded with purpose ${f.purpose}, not file-extract`,
      );
    }
    // Sized before answering: a file deleted concurrently becomes a clean 404, not a broken 200.
    const size = await this.store.textBytes(f).catch(() => undefined);
    if (size === undefined) throw this.errors.fileNotFound(id);
    const source = this.store.openText(f);
    if (this.contentFormat === "text") {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "content-length": size });
      await pipeline(source, res).catch(() => res.destroy());
      return;
    }
    res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
    const tail = `,"file_type":${JSON.stringify(f.file_type)},"filename":${JSON.stringify(f.filename)},"title":"","type":"file"}`;
    // Escape the text as a JSON string chunk by chunk so a large document is never held whole.
    async function* envelope() {
      yield '{"content":"';
      const decoder = new TextDecoder("utf-8");
      for await (const chunk of source as AsyncIterable<Buffer>) {
        yield JSON.stringify(decoder.decode(chunk, { stream: true })).slice(1, -1);
      }
      yield `${JSON.stringify(decoder.decode()).slice(1, -1)}"${tail}`;
    }
    await pipeline(envelope, res).catch(() => res.destroy());
  }

  // ---------------------------------------------------------------- chat

  private model(id: unknown): ModelSpec {
    if (typeof id !== "string" || id === "") throw this.errors.invalid("Invalid request: model is required");
    const m = this.models.find((x) => x.id === id);
    if (!m) throw this.errors.modelNotFound(id);
    return m;
  }

  private async estimate(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = asObject(await readJson(req, this.errors), this.errors);
    this.model(body.model);
    const messages = checkMessages(body.messages, this.errors);
    sendJson(res, 200, { data: { total_tokens: countChatTokens(messages) } });
  }

  /**
   * GLM's `POST /tokenizer` (docs.z.ai "Tokenizer", docs.bigmodel.cn "文本分词器"): `{model, messages}`
   * -> `{id, created, request_id, usage: {prompt_tokens}}`, for the models it documents only; any
   * other model is an invalid parameter (1214). Counts like chat completions do.
   */
  private async tokenizer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = asObject(await readJson(req, this.errors), this.errors);
    const model = body.model;
    if (typeof model !== "string" || model === "")
      throw this.errors.invalid("model parameter not received properly");
    const supported = this.opts.tokenizerModels ?? this.profile.tokenizerModels ?? [];
    if (!supported.includes(model)) {
      throw this.errors.invalid(`Invalid model parameter: the tokenizer does not support ${model}`);
    }
    const messages = checkMessages(body.messages, this.errors);
    const id = randomBytes(12).toString("hex");
    sendJson(res, 200, {
      id,
      created: this.now(),
      request_id: id,
      usage: { prompt_tokens: countChatTokens(messages) },
    });
  }

  private async chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = asObject(await readJson(req, this.errors), this.errors);
    const model = this.model(body.model);
    const messages = checkMessages(body.messages, this.errors);
    const params: CompletionParams = checkParams(body, model, this.profile);

    const promptTokens = promptTokensOf(messages);
    if (promptTokens + (params.maxTokens ?? 0) > model.context_length)
      throw this.errors.tokenLimit(model.context_length);
    if (this.balance <= 0) throw this.errors.quotaExhausted();

    const nowMs = Date.now() + this.clockOffset * 1000;
    const cached = this.promptCache?.lookup(model.id, messages, nowMs) ?? 0;
    this.promptCache?.remember(model.id, messages, nowMs);
    const completion = complete(model, messages, params, promptTokens, cached);
    const { usage } = completion;
    this.balance -= usage.total_tokens * PRICE_PER_TOKEN;
    const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
    const created = this.now();
    const glm = this.profile.name === "glm";
    // GLM answers carry a request_id (docs.z.ai chat completion); Moonshot's do not.
    const requestId = glm ? { request_id: id } : {};

    if (body.stream !== true) {
      const message: Record<string, unknown> = { role: "assistant", content: completion.content };
      if (completion.reasoning !== undefined) message.reasoning_content = completion.reasoning;
      return sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model: model.id,
        choices: Array.from({ length: params.n }, (_, index) => ({
          index,
          message,
          finish_reason: completion.finish,
        })),
        usage,
        ...requestId,
      });
    }

    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
    });
    const frames = streamFrames(
      { id, created, model: model.id, ...(glm ? { requestId: id } : {}) },
      completion,
      params,
      { usageInChoice: !glm },
    );
    const cutAfter =
      (this.faults.rateStreamCut ?? 0) > 0 &&
      (!this.faults.operations || this.faults.operations.includes("chat")) &&
      this.random() < (this.faults.rateStreamCut ?? 0)
        ? frames.findIndex((f) => f.includes('"content":"') && !f.includes('"content":""'))
        : -1;
    const delay = this.faults.streamDelayMs ?? 0;
    for (const [i, f] of frames.entries()) {
      if (res.destroyed) return;
      if (i > 0) await sleep(delay);
      if (!res.write(f)) await new Promise((r) => res.once("drain", r));
      if (i === cutAfter) {
        // Let the chunk reach the client, then drop the connection mid-answer.
        await new Promise((r) => setTimeout(r, 20));
        res.socket?.destroy();
        return;
      }
    }
    res.end();
  }

  // ---------------------------------------------------------------- admin

  private async admin(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
  ): Promise<void> {
    const bad = (message: string, status = 400) =>
      sendJson(res, status, { error: { type: "invalid_request_error", message } });
    if (!isLoopback(req.socket)) {
      req.resume();
      return sendJson(res, 403, {
        error: { type: "permission_denied_error", message: "admin API is loopback-only" },
      });
    }
    const sub = path.slice("/_emulator".length) || "/";
    const readBody = async (): Promise<Record<string, unknown>> => {
      const value = await readJson(req, this.errors, 1024 * 1024).catch((err: ApiError) => {
        throw new Error(err.message);
      });
      if (!value || typeof value !== "object" || Array.isArray(value))
        throw new Error("body must be a JSON object");
      return value as Record<string, unknown>;
    };
    const handle = this.handleObject("", 0);
    try {
      switch (`${method} ${sub}`) {
        case "GET /state":
          req.resume();
          return sendJson(res, 200, {
            // The emulator's own view: extraction status included, whatever the profile answers.
            files: this.store.list().map((f) => publicFile(PROFILES.moonshot, f)),
            profile: this.profile.name,
            count: this.store.count(),
            totalBytes: this.store.totalBytes(),
            limits: this.limits,
            faults: this.faults,
            clockOffsetSeconds: this.clockOffset,
            now: this.now(),
            balance: this.balance,
            contentFormat: this.contentFormat,
            models: this.models,
          });
        case "GET /requests":
          req.resume();
          return sendJson(res, 200, { requests: this.log });
        case "DELETE /requests": {
          req.resume();
          const cleared = this.log.length;
          this.log.length = 0;
          return sendJson(res, 200, { cleared });
        }
        case "PUT /faults":
          handle.setFaults((await readBody()) as Partial<FaultConfig>);
          return sendJson(res, 200, { faults: this.faults });
        case "PUT /limits":
          handle.setLimits((await readBody()) as Partial<EmulatorLimits>);
          return sendJson(res, 200, { limits: this.limits });
        case "PUT /clock": {
          const body = await readBody();
          if (typeof body.offsetSeconds !== "number") return bad("offsetSeconds must be a number");
          handle.setClockOffset(body.offsetSeconds);
          return sendJson(res, 200, { offsetSeconds: this.clockOffset, now: this.now() });
        }
        case "PUT /balance": {
          const body = await readBody();
          if (typeof body.balance !== "number") return bad("balance must be a number");
          handle.setBalance(body.balance);
          return sendJson(res, 200, { balance: this.balance });
        }
        case "POST /reset":
          req.resume();
          await this.reset();
          return sendJson(res, 200, { reset: true });
        default:
          req.resume();
          return bad(`unknown admin route ${method} ${path}`, 404);
      }
    } catch (err) {
      return bad(err instanceof Error ? err.message : String(err));
    }
  }
}

function round5(x: number): number {
  return Math.round(x * 1e5) / 1e5;
}

function asObject(value: unknown, errors: ErrorVocabulary): Record<string, unknown> {
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw errors.invalid("Invalid request: the request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

const ROLES = ["system", "user", "assistant", "tool"];

function checkMessages(value: unknown, errors: ErrorVocabulary): ChatMessageIn[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw errors.invalid("Invalid request: messages must be a non-empty array");
  }
  value.forEach((m, i) => {
    if (!m || typeof m !== "object")
      throw errors.invalid(`Invalid request: the message at position ${i} is not an object`);
    const { role, content, tool_calls: toolCalls } = m as Record<string, unknown>;
    if (typeof role !== "string" || !ROLES.includes(role)) {
      throw errors.invalid(
        `Invalid request: the message at position ${i} has an invalid role ${String(role)}`,
      );
    }
    const empty =
      content === undefined ||
      content === null ||
      (typeof content === "string" && content.length === 0) ||
      (Array.isArray(content) && content.length === 0);
    const assistantWithTools = role === "assistant" && Array.isArray(toolCalls) && toolCalls.length > 0;
    if (empty && !assistantWithTools) {
      throw errors.invalid(
        `Invalid request: the message at position ${i} with role '${role}' must not be empty`,
      );
    }
    if (!empty && typeof content !== "string" && !Array.isArray(content)) {
      throw errors.invalid(
        `Invalid request: the content of the message at position ${i} must be a string or an array`,
      );
    }
  });
  return value as ChatMessageIn[];
}
