/**
 * Readers in the soak: chat and search requests against a few documents that are overwritten and
 * deleted all the while, checking what every answer shows (issue 17).
 *
 * The reader documents (`soak/readers/rd<i>.txt`) carry a tag in every paragraph, `[rd<i> v<v> p<p>]`,
 * so any chunk says which version it came from; their texts are deterministic, so the chunks each
 * version must have are known (chunkText). A poller watches the records (strongly consistent) and
 * notes when each version was first seen ready and each delete first seen applied. Then, for every
 * chat answer's sources and every search hit on a reader document:
 * - never a mix: all chunks of a source come from one version;
 * - never holes: each chunk is exactly that version's chunk at its index, and a source marked
 *   `complete` has every chunk 0..n-1 of it;
 * - `version: "current"` only when no newer version had been seen claimed (processing or ready), nor
 *   a delete of it applied, before the request started;
 * - `version: "previous"` only when a newer version had been put before the answer came back, and
 *   no newer version (nor a delete) had been seen applied before the request started.
 * Requests that name a reader document deleted in the meantime may be a 404: counted, not a fault.
 */
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { S3EventRecord } from "aws-lambda";
import { chunkText } from "../../functions/core/text/chunking";

export const READER_PREFIX = "soak/readers/";
const TAG = /\[rd(\d+) v(\d+) p\d+\]/g;
const WORDS = "duty shift roster harbour ledger signal beacon tariff cargo quay pilot tide".split(" ");

export interface ReadersOptions {
  apiUrl: string;
  token: string;
  bucket: string;
  s3: S3Client;
  /** Strongly consistent record reads (the store's getState). */
  getState(documentId: string): Promise<{ status: string; sequencer: string } | undefined>;
  documentIdFor(bucket: string, key: string): string;
  normaliseSequencer(sequencer: string): string;
  rand: () => number;
  /** Reader documents. */
  docs: number;
  chatPerMinute: number;
  searchPerMinute: number;
  writesPerMinute: number;
  log: (line: string) => void;
}

export interface ReadersReport {
  puts: number;
  deletes: number;
  chat: {
    requests: number;
    answered: number;
    byStatus: Record<string, number>;
    sources: number;
    current: number;
    previous: number;
    partial: number;
  };
  search: { requests: number; byStatus: Record<string, number>; hits: number };
  observed: { ready: number; deleted: number };
  violations: string[];
  /** 5xx answers not caused by the provider (kept apart from what the answers showed). */
  serverErrors: string[];
}

interface DocState {
  i: number;
  key: string;
  documentId: string;
  /** Versions put, with the time their PUT returned. */
  puts: { v: number; at: number }[];
  exists: boolean;
  version: number;
  /** Events by normalised sequencer: the version a put wrote, or the last version a delete removed. */
  events: Map<string, { op: "put"; v: number } | { op: "delete"; afterV: number }>;
  /** First time each applied state was seen by the poller: a version claimed (processing), ready. */
  seenClaimed: { v: number; at: number }[];
  seenReady: { v: number; at: number }[];
  seenDeleted: { afterV: number; at: number }[];
  busy: Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The text of reader document `i` at version `v` (small, medium or large, from both). */
export function readerText(i: number, v: number): string {
  const size = [3, 80, 400][(i * 7 + v * 3) % 3]!;
  return Array.from({ length: size }, (_, p) => {
    const words = Array.from({ length: 8 }, (_, w) => WORDS[(i + v * 5 + p * 3 + w) % WORDS.length]);
    return `[rd${i} v${v} p${p}] The ${words.join(" ")} notes of reader document ${i}.\n\n`;
  }).join("");
}

export class Readers {
  private readonly docs: DocState[];
  private readonly chunkCache = new Map<string, string[]>();
  private stopped = false;
  /** Aborts the requests still in flight when the readers stop (the soak's checks must not wait). */
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private writer: Promise<void> = Promise.resolve();
  private writesUntil = 0;
  private readonly r: ReadersReport = {
    puts: 0,
    deletes: 0,
    chat: { requests: 0, answered: 0, byStatus: {}, sources: 0, current: 0, previous: 0, partial: 0 },
    search: { requests: 0, byStatus: {}, hits: 0 },
    observed: { ready: 0, deleted: 0 },
    violations: [],
    serverErrors: [],
  };

  constructor(private readonly o: ReadersOptions) {
    this.docs = Array.from({ length: o.docs }, (_, i) => {
      const key = `${READER_PREFIX}rd${i}.txt`;
      return {
        i,
        key,
        documentId: o.documentIdFor(o.bucket, key),
        puts: [],
        exists: false,
        version: 0,
        events: new Map(),
        seenClaimed: [],
        seenReady: [],
        seenDeleted: [],
        busy: Promise.resolve(),
      };
    });
  }

  /** Whether an S3 key is a reader document's (the soak routes its events here). */
  static owns(key: string): boolean {
    return key.startsWith(READER_PREFIX);
  }

  /** An S3 event of a reader document (called by the soak's S3 listener). */
  onS3Event(record: S3EventRecord, key: string): void {
    const doc = this.docs.find((d) => d.key === key);
    if (!doc) return;
    const sequencer = this.o.normaliseSequencer(record.s3.object.sequencer);
    // The PUT or DELETE that caused it has not returned yet: the state it set is the one to record.
    doc.events.set(
      sequencer,
      record.eventName.startsWith("ObjectRemoved")
        ? { op: "delete", afterV: doc.version }
        : { op: "put", v: doc.version },
    );
  }

  /** Starts writing (until finishWrites), polling and reading. */
  start(): void {
    this.writesUntil = Number.POSITIVE_INFINITY;
    this.writer = this.every(
      60_000 / this.o.writesPerMinute,
      () => this.writeOnce(),
      () => Date.now() < this.writesUntil,
    );
    this.loops = [
      this.writer,
      this.every(400, () => this.pollOnce()),
      this.every(60_000 / this.o.chatPerMinute, () => this.chatOnce()),
      this.every(60_000 / this.o.searchPerMinute, () => this.searchOnce()),
    ];
  }

  /** Stops writing at `until` (now if past) and waits for the last write; reading goes on. */
  async finishWrites(until: number): Promise<void> {
    this.writesUntil = until;
    await this.writer;
    for (const d of this.docs) await d.busy;
  }

  /**
   * Reads on (until `deadline`) until a search has hit a reader document, while one exists: the index
   * follows the writes with a lag, and on a loaded machine it may reach a reader document's latest
   * version only after the writes stopped.
   */
  async untilSearchHit(deadline: number): Promise<void> {
    while (this.r.search.hits === 0 && this.docs.some((d) => d.exists) && Date.now() < deadline) {
      await sleep(250);
    }
  }

  async stop(): Promise<ReadersReport> {
    this.stopped = true;
    this.stopping.abort();
    await Promise.all(this.loops);
    for (const d of this.docs) await d.busy;
    return this.r;
  }

  private async every(ms: number, fn: () => Promise<void>, more: () => boolean = () => true) {
    const inflight = new Set<Promise<void>>();
    while (!this.stopped && more()) {
      const p: Promise<void> = fn()
        .catch((err) => {
          this.violation(`reader loop error: ${(err as Error).message}`);
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 3) await Promise.race(inflight);
      await sleep(ms * (0.5 + this.o.rand()));
    }
    await Promise.all(inflight);
  }

  // ---------------------------------------------------------------- writers

  private async writeOnce(): Promise<void> {
    const doc = this.docs[Math.floor(this.o.rand() * this.docs.length)]!;
    const del = doc.exists && this.o.rand() < 0.2;
    doc.busy = doc.busy.then(async () => {
      if (del) {
        await this.o.s3.send(new DeleteObjectCommand({ Bucket: this.o.bucket, Key: doc.key }));
        doc.exists = false;
        this.r.deletes++;
        return;
      }
      const v = doc.version + 1;
      doc.version = v;
      await this.o.s3.send(
        new PutObjectCommand({ Bucket: this.o.bucket, Key: doc.key, Body: readerText(doc.i, v) }),
      );
      doc.puts.push({ v, at: Date.now() });
      doc.exists = true;
      this.r.puts++;
    });
    await doc.busy;
  }

  // ---------------------------------------------------------------- poller

  private async pollOnce(): Promise<void> {
    await Promise.all(
      this.docs.map(async (doc) => {
        const state = await this.o.getState(doc.documentId);
        if (!state) return;
        const event = doc.events.get(state.sequencer);
        const now = Date.now();
        if ((state.status === "ready" || state.status === "processing") && event?.op === "put") {
          if (!doc.seenClaimed.some((s) => s.v === event.v)) doc.seenClaimed.push({ v: event.v, at: now });
        }
        if (state.status === "ready" && event?.op === "put") {
          if (!doc.seenReady.some((s) => s.v === event.v)) {
            doc.seenReady.push({ v: event.v, at: now });
            this.r.observed.ready++;
          }
        } else if (state.status === "deleted" && event?.op === "delete") {
          if (!doc.seenDeleted.some((s) => s.afterV === event.afterV)) {
            doc.seenDeleted.push({ afterV: event.afterV, at: now });
            this.r.observed.deleted++;
          }
        }
      }),
    );
  }

  // ---------------------------------------------------------------- readers

  private chunksOf(i: number, v: number): string[] {
    const id = `${i}/${v}`;
    let chunks = this.chunkCache.get(id);
    if (!chunks) {
      chunks = chunkText(readerText(i, v)).map((c) => c.text);
      this.chunkCache.set(id, chunks);
    }
    return chunks;
  }

  /** The one version a text's tags name (undefined: none, or several: a mix). */
  private versionOf(i: number, text: string): number | "mix" | undefined {
    let found: number | undefined;
    for (const m of text.matchAll(TAG)) {
      if (Number(m[1]) !== i) return "mix";
      const v = Number(m[2]);
      if (found !== undefined && found !== v) return "mix";
      found = v;
    }
    return found;
  }

  private violation(what: string): void {
    if (this.r.violations.length < 200) this.r.violations.push(what);
  }

  private async chatOnce(): Promise<void> {
    const byPrefix = this.o.rand() < 0.3;
    // Mostly documents put a moment ago: their new version is likely being ingested right now.
    const recent = this.docs.filter((d) => (d.puts.at(-1)?.at ?? 0) > Date.now() - 8_000);
    const pool = recent.length > 0 && this.o.rand() < 0.7 ? recent : this.docs;
    const picked = [
      ...new Set(
        Array.from(
          { length: 1 + Math.floor(this.o.rand() * 3) },
          () => pool[Math.floor(this.o.rand() * pool.length)]!,
        ),
      ),
    ].filter((d) => d.puts.length > 0);
    if (!byPrefix && picked.length === 0) return;
    // A small window sometimes, so the context is ranked and sources are partial.
    const model = this.o.rand() < 0.4 ? "moonshot-v1-8k" : undefined;
    const started = Date.now();
    this.r.chat.requests++;
    let status = "network";
    try {
      const res = await fetch(`${this.o.apiUrl}/chat`, {
        method: "POST",
        headers: { authorization: `Bearer ${this.o.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          question: `What does the harbour roster say about the pilot on duty? ${byPrefix ? "" : picked.map((d) => `rd${d.i}`).join(" ")}`,
          ...(byPrefix ? { prefix: READER_PREFIX } : { documentIds: picked.map((d) => d.documentId) }),
          ...(model ? { model } : {}),
          maxTokens: 256,
        }),
        signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(60_000)]),
      });
      status = String(res.status);
      const body = (await res.json().catch(() => ({}))) as {
        sources?: {
          key: string;
          complete: boolean;
          version: string;
          chunks: { index: number; text: string }[];
        }[];
        error?: { type?: string };
      };
      if (res.status !== 200) status = `${res.status} ${body.error?.type ?? "?"}`;
      if (res.status >= 500 && !/provider_/.test(body.error?.type ?? "")) {
        if (this.r.serverErrors.length < 50) this.r.serverErrors.push(`chat answered ${status}`);
      }
      if (res.status === 200) {
        this.r.chat.answered++;
        const ended = Date.now();
        for (const s of body.sources ?? []) this.checkSource(s, started, ended);
      }
    } catch (err) {
      status = this.stopping.signal.aborted
        ? "stopped with the run"
        : err instanceof Error && err.name === "TimeoutError"
          ? "no answer in 60 s"
          : "network";
    }
    this.r.chat.byStatus[status] = (this.r.chat.byStatus[status] ?? 0) + 1;
  }

  private checkSource(
    s: { key: string; complete: boolean; version: string; chunks: { index: number; text: string }[] },
    started: number,
    ended: number,
  ): void {
    const doc = this.docs.find((d) => d.key === s.key);
    if (!doc) return;
    this.r.chat.sources++;
    const where = `${s.key} (${s.version}${s.complete ? ", complete" : ""})`;
    const versions = new Set(s.chunks.map((c) => this.versionOf(doc.i, c.text)));
    if (versions.size !== 1 || versions.has("mix") || versions.has(undefined)) {
      this.violation(`${where}: chunks of several versions, or untagged: ${[...versions].join(",")}`);
      return;
    }
    const v = [...versions][0] as number;
    const expected = this.chunksOf(doc.i, v);
    for (const c of s.chunks) {
      if (expected[c.index] !== c.text) {
        this.violation(`${where}: chunk ${c.index} is not v${v}'s chunk ${c.index}`);
        return;
      }
    }
    if (s.complete) {
      const indexes = s.chunks.map((c) => c.index).join(",");
      if (indexes !== expected.map((_, i) => i).join(",")) {
        this.violation(`${where}: marked complete with chunks ${indexes} of v${v}'s ${expected.length}`);
      }
    } else this.r.chat.partial++;
    // Seen by the poller before the request started, so applied before it: a newer version claimed
    // (processing: this text is at best the previous one) or ready, or a delete of this version.
    const newerClaimed = doc.seenClaimed.some((x) => x.v > v && x.at < started);
    const newerSeen = doc.seenReady.some((x) => x.v > v && x.at < started);
    const deletedSeen = doc.seenDeleted.some((x) => x.afterV >= v && x.at < started);
    if (s.version === "current") {
      this.r.chat.current++;
      if (newerClaimed || deletedSeen) {
        this.violation(
          `${where}: v${v} answered as current after ${newerClaimed ? "a newer version was claimed" : "its delete was applied"}`,
        );
      }
    } else if (s.version === "previous") {
      this.r.chat.previous++;
      if (!doc.puts.some((p) => p.v > v && p.at <= ended)) {
        this.violation(`${where}: v${v} answered as previous but no newer version was put`);
      }
      if (newerSeen || deletedSeen) {
        this.violation(
          `${where}: v${v} answered as previous after ${newerSeen ? "a newer version" : "its delete"} was seen applied`,
        );
      }
    } else this.violation(`${where}: unknown version label "${s.version}"`);
  }

  private async searchOnce(): Promise<void> {
    this.r.search.requests++;
    let status = "network";
    try {
      const res = await fetch(`${this.o.apiUrl}/search`, {
        method: "POST",
        headers: { authorization: `Bearer ${this.o.token}`, "content-type": "application/json" },
        body: JSON.stringify({
          query: `${WORDS[Math.floor(this.o.rand() * WORDS.length)]} roster notes`,
          prefix: READER_PREFIX,
          limit: 20,
        }),
        signal: AbortSignal.any([this.stopping.signal, AbortSignal.timeout(30_000)]),
      });
      status = String(res.status);
      const body = (await res.json().catch(() => ({}))) as {
        results?: { key: string; chunkIndex: number; text: string }[];
      };
      if (res.status >= 500 && this.r.serverErrors.length < 50) {
        this.r.serverErrors.push(`search answered ${res.status}`);
      }
      for (const hit of body.results ?? []) {
        const doc = this.docs.find((d) => d.key === hit.key);
        if (!doc) continue;
        this.r.search.hits++;
        const v = this.versionOf(doc.i, hit.text);
        if (typeof v !== "number") {
          this.violation(`search hit ${hit.key}#${hit.chunkIndex}: text of several versions, or untagged`);
        } else if (this.chunksOf(doc.i, v)[hit.chunkIndex] !== hit.text) {
          this.violation(`search hit ${hit.key}#${hit.chunkIndex}: not v${v}'s chunk ${hit.chunkIndex}`);
        }
      }
    } catch (err) {
      status = this.stopping.signal.aborted
        ? "stopped with the run"
        : err instanceof Error && err.name === "TimeoutError"
          ? "no answer in 30 s"
          : "network";
    }
    this.r.search.byStatus[status] = (this.r.search.byStatus[status] ?? 0) + 1;
  }
}
