/**
 * Model-based test of the index's upkeep (fast-check commands against real dynalite and s3rver): any
 * interleaving of text writes, overwrites, failures, deletes, announced writes that never land, and
 * indexer runs that crash at any object write must leave, once the indexer has caught up, exactly
 * every searchable document's latest text searchable and nothing else (the invariant in indexer.ts
 * and todos.ts), and that the index knows exactly the failed ones as not searchable (`skipped`).
 */
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { SearchIndexer } from "../../functions/core/search/indexer";
import { IndexSearcher } from "../../functions/core/search/searcher";
import { type IndexObjects, S3IndexObjects } from "../../functions/core/search/storage";
import { type LocalStack, startLocalStack } from "../support/local-stack";

let stack: LocalStack;
let store: DynamoDocumentStore;
let run = 0;

beforeAll(async () => {
  stack = await startLocalStack({ prefix: "searchmodel" });
  store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
});
afterAll(async () => {
  await stack?.close();
});

/**
 * What the index should hold: document -> the marker word of its current text (searchable), null
 * (known but not searchable: its ingestion failed, named in `skipped`), or undefined (nothing).
 */
type Model = Map<string, string | null | undefined>;

interface Real {
  prefix: string;
  objects: IndexObjects;
  counter: { n: number };
}

const DOCS = ["a", "b", "c", "d"];
const docId = (r: Real, d: string) => `${r.prefix}-${d}`;

class Write implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly doc: string,
    readonly status: "ready" | "failed",
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const n = ++r.counter.n;
    const marker = `mark${r.prefix.replace(/\W/g, "")}x${n}`;
    await store.putDocumentText(
      {
        documentId: docId(r, this.doc),
        key: `${r.prefix}/${this.doc}.txt`,
        status: this.status,
        textGeneration: `g${n}`,
      },
      `Text number ${n} holds the word ${marker} among others.`,
    );
    m.set(this.doc, this.status === "ready" ? marker : null);
  }
  toString = () => `write(${this.doc}, ${this.status})`;
}

class Delete implements fc.AsyncCommand<Model, Real> {
  constructor(readonly doc: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await store.tombstone({
      documentId: docId(r, this.doc),
      bucket: "local",
      key: `${r.prefix}/${this.doc}.txt`,
      sequencer: `F${(++r.counter.n).toString(16).toUpperCase().padStart(31, "0")}`,
      now: new Date(),
    });
    m.set(this.doc, undefined);
  }
  toString = () => `delete(${this.doc})`;
}

/** A to-do whose write is refused (superseded): nothing changes. */
class AnnouncedOnly implements fc.AsyncCommand<Model, Real> {
  constructor(readonly doc: string) {}
  check = () => true;
  async run(_m: Model, r: Real) {
    await store.searchTodos.note(docId(r, this.doc));
  }
  toString = () => `announce(${this.doc})`;
}

/** An indexer run, crashing at its `crashAt`-th object write (0: no crash). */
class Index implements fc.AsyncCommand<Model, Real> {
  constructor(readonly crashAt: number) {}
  check = () => true;
  async run(_m: Model, r: Real) {
    let puts = 0;
    const objects: IndexObjects = {
      get: (k, e) => r.objects.get(k, e),
      delete: (k) => r.objects.delete(k),
      list: () => r.objects.list(),
      put: async (k, b, t) => {
        if (this.crashAt > 0 && ++puts === this.crashAt) throw new Error("crash");
        return r.objects.put(k, b, t);
      },
    };
    // staleTodoMs 0: nothing is in flight between commands, so an announced write that has not
    // landed never will.
    const indexer = new SearchIndexer({
      store,
      todos: store.searchTodos,
      objects,
      config: { segments: 3, todoSettleMs: 0, staleTodoMs: 0 },
    });
    await indexer.run().catch((err: Error) => {
      if (err.message !== "crash") throw err;
    });
  }
  toString = () => `index(crashAt ${this.crashAt})`;
}

async function expectCaughtUp(m: Model, r: Real): Promise<void> {
  const indexer = new SearchIndexer({
    store,
    todos: store.searchTodos,
    objects: r.objects,
    config: { segments: 3, todoSettleMs: 0, staleTodoMs: 0 },
  });
  for (let i = 0; i < 20; i++) if ((await indexer.run()).todos === 0) break;
  const searcher = new IndexSearcher({ objects: r.objects, refreshMs: 0 });
  const held = (await searcher.documents({ prefix: `${r.prefix}/` })).map((d) => d.documentId).sort();
  const want = DOCS.filter((d) => m.get(d))
    .map((d) => docId(r, d))
    .sort();
  expect(held).toEqual(want);
  for (const d of DOCS) {
    const marker = m.get(d);
    if (!marker) continue;
    const hits = await searcher.search({ query: marker, limit: 5 });
    expect(hits.map((h) => h.documentId)).toEqual([docId(r, d)]);
  }
  // Failed documents are known to the index (for `skipped`), and only those.
  const failed = DOCS.filter((d) => m.get(d) === null)
    .map((d) => docId(r, d))
    .sort();
  const unsearchable = await searcher.unsearchable({ prefix: `${r.prefix}/` });
  expect(unsearchable.map((d) => d.documentId).sort()).toEqual(failed);
  expect(unsearchable.every((d) => d.status === "failed")).toBe(true);
  // Every marker ever written but no longer current matches nothing.
  const hits = await searcher.search({ query: `Text number holds word`, prefix: `${r.prefix}/`, limit: 50 });
  expect(new Set(hits.map((h) => h.documentId))).toEqual(new Set(want));
}

describe("search index upkeep, model-based", () => {
  it("converges on exactly the searchable documents' latest text", async () => {
    const doc = fc.constantFrom(...DOCS);
    const commands = [
      doc.map((d) => new Write(d, "ready")),
      doc.map((d) => new Write(d, "failed")),
      doc.map((d) => new Delete(d)),
      doc.map((d) => new AnnouncedOnly(d)),
      fc.integer({ min: 0, max: 5 }).map((k) => new Index(k)),
    ];
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 25 }), async (cmds) => {
        const prefix = `m${++run}`;
        const bucket = `search-model-${run}`;
        await stack.s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
        const real: Real = {
          prefix,
          objects: new S3IndexObjects({ client: stack.s3Client, bucket }),
          counter: { n: 0 },
        };
        const model: Model = new Map();
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await expectCaughtUp(model, real);
      }),
      { numRuns: 12 },
    );
  });
});
