/**
 * Model-based test of the store's and ingestion's invariants (the ones that live in comments of
 * transitions.ts, text-read.ts and ingest/service.ts), on the real local servers: s3rver, dynalite,
 * the Moonshot emulator over HTTP, the real client, IngestService and the janitor's sweep.
 *
 * fast-check generates sequences of events: puts (small, multi-chunk or empty texts; events delivered
 * once or twice), deletes, deliveries in any order, crashed deliveries (the attempt dies before its
 * upload, after it, or after writing its chunks), concurrent duplicates, sweeps now and hours later
 * (which fail "stuck" versions a late delivery then revives), and reads. After every step:
 * - a ready record's text is exactly its version's text, whole (chunks 0..n-1 of one generation);
 * - a processing record that keeps text keeps a whole older version's text of the same key;
 * - a reader (readText) gets a whole version, labelled current/previous as the record says;
 * - a record's sequencer never goes back;
 * - every chunk item belongs to the live text, the running attempt, or the to-do list;
 * - every remote file of the run is held, queued for deletion, or carries a live or queued tag.
 * When the sequence ends, every pending event is delivered and the janitor sweeps: then each key is
 * its last S3 operation (ready with the last text, failed `empty` for an empty one, or deleted), no
 * chunk item but the live text's is left, nothing is queued, and no remote file but the records'.
 *
 * Used by test/model/store-model.test.ts (bounded for npm test) and `npm run soak` (longer).
 */
import type { SQSRecord } from "aws-lambda";
import fc from "fast-check";
import { normaliseSequencer } from "../../functions/core/documents/dynamo-store";
import { documentIdFor, hasTag } from "../../functions/core/ingest/events";
import type { IngestHooks } from "../../functions/core/ingest/service";
import { DEFAULT_POLICY } from "../../functions/core/janitor/policy";
import { runSweep } from "../../functions/core/janitor/sweep";
import { sqsMessageFor } from "../../local/aws/sqs";
import { INGEST_DEPLOYMENT, type IngestHarness, startIngestHarness } from "../ingest/harness";

const MAX_RECEIVES = 5;
/** One document per run: every event competes for it (more interleavings per step than two keys). */
const KEYS = 1;
const HOUR = 3_600_000;

interface Pending {
  message: SQSRecord;
  receiveCount: number;
  key: string;
}

interface Model {
  run: number;
  pending: Pending[];
  /** The last S3 operation per key: what the document must converge to. */
  last: Map<string, { op: "put"; text: string } | { op: "delete" }>;
  steps: number;
}

interface Real {
  h: IngestHarness;
  /** Text of every version put, by normalised sequencer. */
  texts: Map<string, { key: string; text: string }>;
  /** Highest sequencer seen per document (records never go back). */
  highest: Map<string, string>;
}

type Cmd = fc.AsyncCommand<Model, Real>;

const keyOf = (run: number, i: number) => `m${run}-k${i}.txt`;
const runMarker = (run: number) => `__m${run}-k`;

class Violation extends Error {
  override readonly name = "InvariantViolation";
}
function must(ok: boolean, what: string): void {
  if (!ok) throw new Violation(what);
}

/** A text unique to this put: small, several chunks, or empty. */
function textFor(size: "small" | "large" | "empty", n: number): string {
  if (size === "empty") return "";
  const paragraphs = size === "small" ? 3 : 500;
  return Array.from(
    { length: paragraphs },
    (_, i) => `Version ${n}, paragraph ${i}: the text of this version and no other, word by word.\n\n`,
  ).join("");
}

let puts = 0;

class PutCmd implements Cmd {
  constructor(
    readonly key: number,
    readonly size: "small" | "large" | "empty",
    readonly copies: 1 | 2,
  ) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const key = keyOf(m.run, this.key);
    const text = textFor(this.size, ++puts);
    const event = await r.h.put(key, text);
    r.texts.set(normaliseSequencer(event.s3.object.sequencer), { key, text });
    for (let c = 0; c < this.copies; c++)
      m.pending.push({ message: sqsMessageFor([event]), receiveCount: 1, key });
    m.last.set(key, { op: "put", text });
    await check(m, r, this.toString());
  }
  toString = () => `put(k${this.key}, ${this.size}, x${this.copies})`;
}

class DeleteCmd implements Cmd {
  constructor(readonly key: number) {}
  // S3 notifies a delete only of an object that exists.
  check = (m: Readonly<Model>) => m.last.get(keyOf(m.run, this.key))?.op === "put";
  async run(m: Model, r: Real): Promise<void> {
    const key = keyOf(m.run, this.key);
    const event = await r.h.remove(key);
    m.pending.push({ message: sqsMessageFor([event]), receiveCount: 1, key });
    m.last.set(key, { op: "delete" });
    await check(m, r, this.toString());
  }
  toString = () => `delete(k${this.key})`;
}

type DeliverMode = "ok" | "beforeUpload" | "afterUpload" | "beforeReady" | "twoAtOnce";

class DeliverCmd implements Cmd {
  constructor(
    readonly pick: number,
    readonly mode: DeliverMode,
  ) {}
  check = (m: Readonly<Model>) => m.pending.length > 0;
  async run(m: Model, r: Real): Promise<void> {
    const i = this.pick % m.pending.length;
    const p = m.pending[i]!;
    // A crash only while receives are left, so every event is delivered in the end (no dead letters).
    const crash = this.mode !== "ok" && this.mode !== "twoAtOnce" && p.receiveCount < MAX_RECEIVES - 1;
    const hooks: IngestHooks = {};
    if (crash) {
      hooks[this.mode as "beforeUpload" | "afterUpload" | "beforeReady"] = () => {
        throw new Error(`crash ${this.mode}`);
      };
    }
    const service = r.h.service({ hooks, config: { maxReceiveCount: MAX_RECEIVES } });
    const deliver = (message: SQSRecord) =>
      service.processMessage(
        {
          ...message,
          attributes: { ...message.attributes, ApproximateReceiveCount: String(p.receiveCount) },
        },
        { deadline: Date.now() + 60_000, leaseUntil: Date.now() + 120_000 },
      );
    if (this.mode === "twoAtOnce") {
      // The same event twice at once (a duplicate S3 notification): one claims, the other acks.
      await Promise.all([
        deliver(p.message),
        deliver({ ...p.message, messageId: `${p.message.messageId}-dup` }),
      ]);
      m.pending.splice(i, 1);
    } else {
      try {
        await deliver(p.message);
        m.pending.splice(i, 1);
      } catch (err) {
        must(crash, `delivery of ${p.key} failed without a crash: ${(err as Error).message}`);
        p.receiveCount++;
      }
    }
    await check(m, r, this.toString());
  }
  toString = () => `deliver(#${this.pick}, ${this.mode})`;
}

class SweepCmd implements Cmd {
  constructor(readonly later: boolean) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const now = this.later ? () => Date.now() + 4 * HOUR : undefined;
    const result = await runSweep(
      { api: r.h.client, store: r.h.store, ...(now ? { now } : {}) },
      { policy: { ...DEFAULT_POLICY, deploymentId: INGEST_DEPLOYMENT }, stuckProcessingMinutes: 150 },
    );
    must(result.failures.length === 0, `sweep failures: ${JSON.stringify(result.failures)}`);
    await check(m, r, this.toString());
  }
  toString = () => `sweep(${this.later ? "4 h later" : "now"})`;
}

class ReadCmd implements Cmd {
  constructor(readonly key: number) {}
  check = () => true;
  async run(m: Model, r: Real): Promise<void> {
    const key = keyOf(m.run, this.key);
    const record = await r.h.store.get(documentIdFor(r.h.stack.bucket, key));
    if (record) {
      const read = await r.h.store.readText(record);
      if (read.ok) {
        const text = read.chunks.map((c) => c.text).join("");
        const version = [...r.texts.entries()].find(([, v]) => v.key === key && v.text === text);
        must(version !== undefined, `read ${key}: a text that is no version of it (holes or a mix)`);
        const [sequencer] = version!;
        if (read.version === "current")
          must(sequencer === read.record.sequencer, `read ${key}: current text is not the record's version`);
        else must(sequencer < read.record.sequencer, `read ${key}: previous text is not an older version`);
      }
    }
    await check(m, r, this.toString());
  }
  toString = () => `read(k${this.key})`;
}

/** The invariants after a step (see the module comment). */
async function check(m: Model, r: Real, step: string): Promise<void> {
  m.steps++;
  const { h } = r;
  const files = h.emulator.files().filter((f) => f.filename.includes(runMarker(m.run)));
  const held = new Set<string>();
  const tags = new Set<string>();
  for (let k = 0; k < KEYS; k++) {
    const key = keyOf(m.run, k);
    const id = documentIdFor(h.stack.bucket, key);
    const state = await h.store.getState(id);
    const where = `after ${step}: ${key}`;
    if (!state) continue;
    const before = r.highest.get(id);
    must(!before || state.sequencer >= before, `${where}: sequencer went back`);
    r.highest.set(id, state.sequencer);

    if (state.remoteFileId) held.add(state.remoteFileId);
    for (const f of state.staleFileIds ?? []) held.add(f);
    if (state.uploadTag) tags.add(state.uploadTag);
    for (const t of state.staleUploadTags ?? []) tags.add(t);

    const generations = await h.store.chunkGenerations(id);
    const allowed = new Set([
      state.textGeneration,
      state.pendingGeneration,
      ...(state.staleGenerations ?? []),
    ]);
    for (const g of generations.keys()) must(allowed.has(g), `${where}: stray chunks of generation ${g}`);

    if (state.textGeneration) {
      must(
        state.status === "ready" || state.status === "processing",
        `${where}: text kept by a ${state.status} record`,
      );
      const read = await h.store.readText(state);
      must(read.ok && read.record.textGeneration === state.textGeneration, `${where}: its text is not whole`);
      const text = read.ok ? read.chunks.map((c) => c.text).join("") : "";
      if (state.status === "ready") {
        must(
          r.texts.get(state.sequencer)?.text === text,
          `${where}: ready with a text that is not its version's`,
        );
      } else {
        const older = [...r.texts.entries()].some(
          ([q, v]) => v.key === key && v.text === text && q < state.sequencer,
        );
        must(older, `${where}: processing, keeping a text that is no older version's`);
      }
    } else must(state.status !== "ready", `${where}: ready without text`);
  }
  for (const f of files) {
    const tagged = [...tags].some((t) => hasTag(f.filename, t));
    must(held.has(f.id) || tagged, `after ${step}: remote file ${f.filename} is referenced by nothing`);
  }
}

/** Delivers everything pending, sweeps, and checks each key converged (see the module comment). */
async function settle(m: Model, r: Real): Promise<void> {
  const { h } = r;
  const service = h.service({ config: { maxReceiveCount: MAX_RECEIVES } });
  for (let round = 0; m.pending.length > 0 && round < 100; round++) {
    const p = m.pending.shift()!;
    await service.processMessage(
      {
        ...p.message,
        attributes: { ...p.message.attributes, ApproximateReceiveCount: String(p.receiveCount) },
      },
      { deadline: Date.now() + 60_000, leaseUntil: Date.now() + 120_000 },
    );
  }
  must(m.pending.length === 0, "events still pending after settling");
  const sweep = await runSweep(
    { api: h.client, store: h.store },
    { policy: { ...DEFAULT_POLICY, deploymentId: INGEST_DEPLOYMENT }, stuckProcessingMinutes: 150 },
  );
  must(sweep.failures.length === 0, `final sweep failures: ${JSON.stringify(sweep.failures)}`);
  await check(m, r, "settling");
  const live = new Set<string>();
  for (const [key, last] of m.last) {
    const id = documentIdFor(h.stack.bucket, key);
    const state = await h.store.getState(id);
    const where = `settled ${key}`;
    if (last.op === "delete")
      must(state?.status === "deleted", `${where}: deleted in S3 but ${state?.status}`);
    else if (last.text === "")
      must(
        state?.status === "failed" && state.error?.code === "empty",
        `${where}: empty text but ${state?.status}`,
      );
    else {
      must(
        state?.status === "ready",
        `${where}: expected ready, got ${state?.status} ${JSON.stringify(state?.error ?? "")}`,
      );
      const text = state ? await h.store.getText(state) : undefined;
      must(text === last.text, `${where}: ready with another version's text`);
    }
    const generations = [...(await h.store.chunkGenerations(id)).keys()];
    must(
      generations.every((g) => g === state?.textGeneration),
      `${where}: stray chunk generations ${generations.join(",")} (live ${state?.textGeneration})`,
    );
    must((state?.staleGenerations ?? []).length === 0, `${where}: chunk generations still queued`);
    must((state?.staleFileIds ?? []).length === 0, `${where}: remote files still queued`);
    must((state?.staleUploadTags ?? []).length === 0, `${where}: upload tags still queued`);
    if (state?.remoteFileId) live.add(state.remoteFileId);
  }
  const left = h.emulator.files().filter((f) => f.filename.includes(runMarker(m.run)) && !live.has(f.id));
  must(left.length === 0, `settled: remote files left behind: ${left.map((f) => f.filename).join(", ")}`);
}

/** Weighted: deliveries (half of them crashing) most, then puts and deletes; sweeps and reads less. */
const commandArbs = [
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.nat(KEYS - 1), fc.constantFrom("small", "small", "large", "empty"), fc.constantFrom(1, 2))
        .map(([k, s, c]) => new PutCmd(k, s as "small" | "large" | "empty", c as 1 | 2)),
    },
    { weight: 2, arbitrary: fc.nat(KEYS - 1).map((k) => new DeleteCmd(k)) },
    {
      weight: 6,
      arbitrary: fc
        .tuple(
          fc.nat(),
          fc.constantFrom<DeliverMode>(
            "ok",
            "ok",
            "ok",
            "beforeUpload",
            "afterUpload",
            "beforeReady",
            "twoAtOnce",
          ),
        )
        .map(([p, mode]) => new DeliverCmd(p, mode)),
    },
    { weight: 1, arbitrary: fc.boolean().map((later) => new SweepCmd(later)) },
    { weight: 1, arbitrary: fc.nat(KEYS - 1).map((k) => new ReadCmd(k)) },
  ) as fc.Arbitrary<Cmd>,
];

/**
 * Sequences every run starts with (fast-check `examples`), then random ones: the interleavings the
 * issue names, so a bounded run always covers them.
 */
const SCENARIOS: Cmd[][] = [
  // An attempt dies after writing its chunks; the object is deleted: its chunks must go.
  [new PutCmd(0, "large", 1), new DeliverCmd(0, "beforeReady"), new DeleteCmd(0), new DeliverCmd(1, "ok")],
  // ... or overwritten: the newer version supersedes it and its chunks go.
  [
    new PutCmd(0, "large", 1),
    new DeliverCmd(0, "beforeReady"),
    new PutCmd(0, "small", 1),
    new DeliverCmd(1, "ok"),
  ],
  // The stuck sweep fails a version whose redelivery is only late: the late delivery revives it.
  [new PutCmd(0, "small", 1), new DeliverCmd(0, "afterUpload"), new SweepCmd(true), new DeliverCmd(0, "ok")],
  // Readers during a re-ingest see the previous text, whole.
  [
    new PutCmd(0, "large", 1),
    new DeliverCmd(0, "ok"),
    new PutCmd(0, "large", 1),
    new DeliverCmd(0, "beforeUpload"),
    new ReadCmd(0),
    new DeliverCmd(0, "beforeReady"),
    new ReadCmd(0),
    new DeliverCmd(0, "ok"),
    new ReadCmd(0),
  ],
  // Duplicated events, one pair at once.
  [new PutCmd(0, "small", 2), new DeliverCmd(0, "twoAtOnce"), new DeliverCmd(0, "ok")],
];

export interface ModelRunOptions {
  runs: number;
  maxCommands: number;
  seed?: number;
  /** Stop starting new runs after this long (the runs done must all pass). */
  timeLimitMs: number;
  log?: (line: string) => void;
}

export interface ModelRunReport {
  runs: number;
  steps: number;
  seconds: number;
  seed?: number;
}

/** Runs the model; throws (with fast-check's counterexample) when an invariant breaks. */
export async function runStoreModel(opts: ModelRunOptions): Promise<ModelRunReport> {
  const started = Date.now();
  const h = await startIngestHarness();
  let run = 0;
  let steps = 0;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.commands(commandArbs, { maxCommands: opts.maxCommands, size: "max" }),
        async (cmds) => {
          const m: Model = { run: ++run, pending: [], last: new Map(), steps: 0 };
          const r: Real = { h, texts: new Map(), highest: new Map() };
          await fc.asyncModelRun(() => ({ model: m, real: r }), cmds);
          await settle(m, r);
          steps += m.steps;
          if (run % 5 === 0) opts.log?.(`model: ${run} runs, ${steps} steps checked`);
        },
      ),
      {
        numRuns: opts.runs,
        examples: SCENARIOS.map((cmds): [Iterable<Cmd>] => [cmds]),
        seed: opts.seed,
        plugins: [fc.interruptAfterTimeLimit(opts.timeLimitMs)],
        endOnFailure: true,
      },
    );
  } finally {
    await h.close();
  }
  return { runs: run, steps, seconds: Math.round((Date.now() - started) / 1000), seed: opts.seed };
}
