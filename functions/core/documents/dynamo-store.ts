/**
 * DynamoDB adapter of the document store: the read side (`DocumentReader`, used by the chat API and
 * the janitor) and the ingest path's state transitions, applied as conditional writes.
 *
 * Concurrency model. Every change to a document record is read -> decide -> conditional write on a
 * revision counter (`rev`), retried a few times when another writer got there first. So concurrent
 * deliveries of the same S3 event, an older event racing a newer one, and the janitor releasing a
 * file never lose each other's updates. The decisions (who may do what) are pure functions in
 * transitions.ts; chunk items are read and written by chunk-items.ts. The only unconditional writes
 * are chunk items of a generation no record points at yet, and removal of entries from the `stale*`
 * sets (set DELETE is atomic and commutative).
 *
 * Items: the record (pk `DOC#<id>`, sk `DOC`, GSI `byKey` attributes while not deleted, GSI
 * `holdsFiles` attribute while it holds remote files) and its text chunks (sk
 * `CHUNK#<generation>#<index>`), see table.ts. Tombstones (status `deleted`) leave `byKey`, keep the
 * last sequencer so older events cannot resurrect the document, and expire through TTL.
 */
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { batchGetChunks, type ChunkKey } from "../search/chunks";
import { SearchTodoList } from "../search/todos";
import { chunkText } from "../text/chunking";
import { ChunkItems, type ChunkWriter } from "./chunk-items";
import { IndexReads } from "./index-reads";
import {
  decodeListCursor,
  EVALUATED_PER_SHARD,
  encodeListCursor,
  mergeShardPages,
  type ShardPage,
  sortKeyCondition,
} from "./listing";
import {
  type DocumentPage,
  type DocumentReader,
  type DocumentRecord,
  type ListDocumentsQuery,
  type TextChunk,
  type TextRead,
  TextUnavailableError,
} from "./model";
import {
  DOCUMENT_SK,
  documentIdOfPk,
  documentPk,
  documentsPartition,
  documentsPartitions,
  filesPartition,
  filesPartitions,
  HOLDING_ATTRIBUTES,
  TABLE_KEYS,
} from "./table";
import { readChosenChunks, readWholeText } from "./text-read";
import {
  type ClaimInput,
  type ClaimResult,
  type Decision,
  decideClaim,
  decideFailed,
  decideRelease,
  decideStuck,
  decideTombstone,
  type FailedInput,
  type Mutation,
  type ReadyInput,
  readyMutation,
  SEQUENCER_WIDTH,
  type StaleWork,
  type StoredDocument,
  type StuckProcessingInput,
  staleWork,
  type TombstoneInput,
  toPublicRecord,
} from "./transitions";

export { InvalidCursorError } from "./listing";
export type {
  ClaimInput,
  ClaimResult,
  FailedInput,
  ReadyInput,
  StaleWork,
  StoredDocument,
  StuckProcessingInput,
  TombstoneInput,
} from "./transitions";
export { normaliseSequencer, SEQUENCER_WIDTH, TOMBSTONE_TTL_SECONDS, toPublicRecord } from "./transitions";

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;
const MAX_TRANSITION_ATTEMPTS = 8;

/** Whether a write gives the record a remote file, upload intent or stale file to delete. */
function gainsHolding(m: Mutation): boolean {
  return HOLDING_ATTRIBUTES.some((attr) => {
    const set = m.set?.[attr];
    const added = m.add?.[attr];
    return (set !== undefined && set !== null) || (added instanceof Set && added.size > 0);
  });
}

const holdsAny = (item: Record<string, unknown>): boolean =>
  HOLDING_ATTRIBUTES.some((attr) => item[attr] !== undefined);

const INTERNAL_ATTRIBUTES = new Set<string>([
  TABLE_KEYS.partitionKey,
  TABLE_KEYS.sortKey,
  TABLE_KEYS.byKeyIndex.partitionKey,
  TABLE_KEYS.byKeyIndex.sortKey,
  TABLE_KEYS.holdsFilesIndex.partitionKey,
  TABLE_KEYS.ttlAttribute,
]);

function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string })?.name === "ConditionalCheckFailedException";
}

function fromItem(item: Record<string, unknown>): StoredDocument {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) {
    if (INTERNAL_ATTRIBUTES.has(name)) continue;
    out[name] = value instanceof Set ? [...value].sort() : value;
  }
  out.rev ??= 0;
  return out as unknown as StoredDocument;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface DynamoDocumentStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
}

/** The document store on one DynamoDB table (layout in table.ts). */
export class DynamoDocumentStore implements DocumentReader {
  private readonly client: DynamoDBDocumentClient;
  readonly tableName: string;
  private readonly chunks: ChunkItems;
  private readonly indexes: IndexReads;
  /**
   * The search index's to-do list: noted before every write that changes a document's text (ready,
   * failed, deleted), with that write's timestamp, so a crash after it leaves work for the indexer.
   */
  readonly searchTodos: SearchTodoList;

  constructor(opts: DynamoDocumentStoreOptions) {
    this.client = opts.client;
    this.tableName = opts.tableName;
    this.chunks = new ChunkItems(opts.client, opts.tableName);
    this.indexes = new IndexReads(opts.client, opts.tableName);
    this.searchTodos = new SearchTodoList(opts.client, opts.tableName);
  }

  // ---------------------------------------------------------------- read side

  /** The document, or undefined when unknown or deleted (tombstones are internal; see getState). */
  async get(documentId: string): Promise<DocumentRecord | undefined> {
    const state = await this.getState(documentId);
    return state && state.status !== "deleted" ? toPublicRecord(state) : undefined;
  }

  /** The full stored state, tombstones included (strongly consistent). */
  async getState(documentId: string): Promise<StoredDocument | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: { [TABLE_KEYS.partitionKey]: documentPk(documentId), [TABLE_KEYS.sortKey]: DOCUMENT_SK },
        ConsistentRead: true,
      }),
    );
    return Item ? fromItem(Item) : undefined;
  }

  /**
   * Documents in key order, optionally under a key prefix and with one status (`deleted`: the
   * tombstones of the last 15 days; without a status they never appear). `limit` defaults to 100 (max
   * 1,000). Pass the returned cursor to get the next page. With a status filter a page evaluates a
   * bounded number of index items (listing.ts), so it may come back with fewer items than `limit`,
   * even none, and a cursor: keep going until the cursor is absent.
   */
  async list(query: ListDocumentsQuery = {}): Promise<DocumentPage> {
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? DEFAULT_PAGE)), MAX_PAGE);
    const after = decodeListCursor(query.cursor, TABLE_KEYS.byKeyIndex.sortKey);
    const deleted = query.status === "deleted";
    const filter = query.status && !deleted ? query.status : undefined;
    const range = sortKeyCondition("#sk", query.prefix, after);
    const pages = await Promise.all(
      documentsPartitions(deleted).map(async (partition): Promise<ShardPage> => {
        const page = await this.indexes.query("byKey", {
          partition,
          sortKeyCondition: range.expression,
          values: { ...range.values, ...(filter ? { ":status": filter } : {}) },
          filter: filter ? "#status = :status" : undefined,
          names: filter ? { "#status": "status" } : undefined,
          limit: filter ? EVALUATED_PER_SHARD : limit,
        });
        return {
          items: (page.Items ?? []).map((item) => ({
            documentId: documentIdOfPk(item[TABLE_KEYS.partitionKey] as string),
            key: item[TABLE_KEYS.byKeyIndex.sortKey] as string,
          })),
          last: page.LastEvaluatedKey?.[TABLE_KEYS.byKeyIndex.sortKey] as string | undefined,
        };
      }),
    );
    const merged = mergeShardPages(pages, { limit, after, prefix: query.prefix });
    // The records themselves, as they are now: one whose status moved on since the index saw it is
    // left out of a filtered page (it shows under its new status).
    const records = await this.indexes.getRecords(merged.items.map((i) => i.documentId));
    const items: DocumentRecord[] = [];
    for (const { documentId } of merged.items) {
      const item = records.get(documentId);
      if (!item) continue;
      const record = toPublicRecord(fromItem(item));
      if (deleted ? record.status !== "deleted" : record.status === "deleted") continue;
      if (filter && record.status !== filter) continue;
      items.push(record);
    }
    return { items, cursor: encodeListCursor(merged.next) };
  }

  /** The record's text, whole and checked (see DocumentReader.readText and text-read.ts). */
  async readText(record: DocumentRecord): Promise<TextRead> {
    return readWholeText(
      {
        queryGeneration: (documentId, generation) => this.chunks.query(documentId, generation, false),
        getRecord: async (documentId) => {
          const state = await this.getState(documentId);
          return state ? toPublicRecord(state) : undefined;
        },
      },
      record,
    );
  }

  /** The record's chunks, in order; throws TextUnavailableError when there is no whole text. */
  async getChunks(record: DocumentRecord): Promise<TextChunk[]> {
    const read = await this.readText(record);
    if (!read.ok) throw new TextUnavailableError(read);
    return read.chunks;
  }

  /** Chosen chunks by key (BatchGetItem; see search/chunks.ts). */
  getChunksAt(keys: readonly ChunkKey[]): Promise<(TextChunk | undefined)[]> {
    return batchGetChunks(this.client, this.tableName, keys);
  }

  /** Chosen chunks and, per document, the version they are or why it has none (readChosenChunks). */
  readChunksAt(keys: readonly ChunkKey[]) {
    return readChosenChunks(
      {
        getChunksAt: (k) => this.getChunksAt(k),
        getRecords: async (ids) => {
          const items = await this.indexes.getRecords(ids);
          return new Map([...items].map(([id, item]) => [id, toPublicRecord(fromItem(item))]));
        },
      },
      keys,
    );
  }

  /** The whole text (chunks joined), or undefined when the document has none. */
  async getText(record: DocumentRecord): Promise<string | undefined> {
    const read = await this.readText(record);
    return read.ok ? read.chunks.map((c) => c.text).join("") : undefined;
  }

  /** How many chunk items each generation of the document holds (for checks: no stray chunks). */
  async chunkGenerations(documentId: string): Promise<Map<string, number>> {
    return this.chunks.countByGeneration(documentId);
  }

  /**
   * For the janitor: every record that holds a remote file (`remoteFileId`), a pending upload intent
   * (`uploadTag` while processing) or remote files of superseded versions still to delete
   * (`staleFileIds` / `staleUploadTags`). Tombstones are included when they hold stale files.
   *
   * Reads the sparse `holdsFiles` index (its keys), so the cost follows the files held, not the
   * documents and chunks stored, then the records themselves, strongly consistent. The index lags
   * writes by a moment: a record that just gained a file may be missing (the janitor's grace periods
   * cover this, and its writes are conditional). Records found holding nothing any more leave the
   * index here (a conditional write, so a concurrent write that gives the record a file again keeps
   * it in).
   */
  async listWithRemoteFiles(): Promise<DocumentRecord[]> {
    const keys = await this.indexes.queryAll("holdsFiles", filesPartitions());
    const ids = keys.map((k) => documentIdOfPk(k[TABLE_KEYS.partitionKey] as string));
    const records = await this.indexes.getRecords(ids);
    const out: DocumentRecord[] = [];
    const emptied: string[] = [];
    for (const id of new Set(ids)) {
      const item = records.get(id);
      if (item && holdsAny(item)) out.push(toPublicRecord(fromItem(item)));
      else if (item) emptied.push(id);
    }
    await this.leaveFilesIndex(emptied);
    return out;
  }

  /** Removes records that hold no remote file from the `holdsFiles` index (best effort). */
  private async leaveFilesIndex(documentIds: string[]): Promise<void> {
    const names: Record<string, string> = { "#gsi": TABLE_KEYS.holdsFilesIndex.partitionKey };
    const holds = HOLDING_ATTRIBUTES.map((attr, i) => {
      names[`#h${i}`] = attr;
      return `attribute_not_exists(#h${i})`;
    });
    let next = 0;
    const worker = async () => {
      while (next < documentIds.length) {
        const documentId = documentIds[next++]!;
        try {
          await this.client.send(
            new UpdateCommand({
              TableName: this.tableName,
              Key: this.recordKey(documentId),
              UpdateExpression: "REMOVE #gsi",
              ConditionExpression: holds.join(" AND "),
              ExpressionAttributeNames: names,
            }),
          );
        } catch (err) {
          // It holds a file again: it stays. Anything else: the next listing tries again.
          if (!isConditionFailure(err)) return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, documentIds.length) }, worker));
  }

  /**
   * For the janitor: takes the document's remote file off it before deleting the file. Only while the
   * record still holds `fileId` as its `remoteFileId`: the file moves to `staleFileIds` (the to-delete
   * list) and `remoteFileReleasedAt` is set, so no reader sees a file about to go, and a deletion that
   * never happens (a crash, a failed call, a sweep out of time) stays on the record for the next sweep
   * rather than leaving an unreferenced file. False when the record moved on (the caller must leave
   * the file alone); one of several racing janitors wins. After the deletion, forgetDeletedFile clears
   * the entry.
   */
  async releaseRemoteFile(documentId: string, fileId: string, at: string): Promise<boolean> {
    return this.transition(documentId, (cur) => decideRelease(cur, fileId, at));
  }

  /**
   * For the janitor: deletes the chunk generations the record has queued (`staleGenerations`, as read
   * now: never its live text or a running attempt's), then takes them off the record. Returns how many
   * generations were deleted. Ingestion drains the same list after each event; this covers documents
   * no event comes for again (one the stuck sweep failed, a crash after queuing).
   */
  async deleteStaleGenerations(documentId: string): Promise<number> {
    const { generations } = staleWork(await this.getState(documentId));
    for (const generation of generations) await this.chunks.deleteGeneration(documentId, generation);
    await this.removeFromSets(documentId, { generations, fileIds: [], uploadTags: [] });
    return generations.length;
  }

  /** For the janitor: queued upload tags no file carries any more; forget them. */
  async forgetUploadTags(documentId: string, tags: string[]): Promise<void> {
    await this.removeFromSets(documentId, { fileIds: [], generations: [], uploadTags: tags });
  }

  /** For the janitor: a queued file (`staleFileIds`) is gone from the provider; forget it. */
  async forgetDeletedFile(documentId: string, fileId: string): Promise<void> {
    await this.removeFromSets(documentId, { fileIds: [fileId], generations: [], uploadTags: [] });
  }

  // ---------------------------------------------------------------- ingest transitions

  /** Claims an object version for processing (rules: decideClaim in transitions.ts). */
  async claimVersion(input: ClaimInput): Promise<ClaimResult> {
    return this.transition(input.documentId, (cur) => decideClaim(cur, input), {
      assumeAbsent: input.assumeAbsent,
    });
  }

  /**
   * Records the uploaded remote file; false when this attempt no longer owns the version. One
   * conditional write (no read): only the owner changes these fields, and bumping `rev` makes any
   * concurrent transition that read the record before re-read it.
   */
  async recordUpload(
    documentId: string,
    sequencer: string,
    owner: string,
    file: { id: string; bytes: number; createdAt: string; contentType?: string },
    now: Date,
  ): Promise<boolean> {
    const set: Record<string, unknown> = {
      remoteFileId: file.id,
      remoteFileBytes: file.bytes,
      remoteFileCreatedAt: file.createdAt,
      updatedAt: now.toISOString(),
    };
    if (file.contentType) set.contentType = file.contentType;
    return this.ownerWrite(documentId, sequencer, owner, {
      set,
      remove: ["remoteFileReleasedAt"],
    });
  }

  /**
   * Notes that this attempt starts an upload (`at`) or that the provider refused its upload, so none
   * is in flight (`at` undefined). A takeover waits for a crashed attempt's upload only while one may
   * be in flight. False when this attempt no longer owns the version.
   */
  async noteUploading(
    documentId: string,
    sequencer: string,
    owner: string,
    at: Date | undefined,
  ): Promise<boolean> {
    return this.ownerWrite(
      documentId,
      sequencer,
      owner,
      at ? { set: { uploadingSince: at.toISOString() } } : { remove: ["uploadingSince"] },
    );
  }

  /**
   * Flips the record to the new text generation (whose chunks are already written) and marks it
   * ready; `previousGeneration` (the one the record showed when claimed: only the owner changes it)
   * is queued for deletion. False when this attempt no longer owns the version (then the caller
   * deletes its own chunks and remote file).
   */
  async finaliseReady(input: ReadyInput): Promise<boolean> {
    await this.searchTodos.note(input.documentId, input.now);
    return this.ownerWrite(input.documentId, input.sequencer, input.owner, readyMutation(input));
  }

  /**
   * Marks the version failed with a reason. Its text (an older version's) and remote file are
   * queued for deletion: the object in S3 is now the failed version. False when not the owner.
   */
  async finaliseFailed(input: FailedInput): Promise<boolean> {
    await this.searchTodos.note(input.documentId, input.now);
    return this.transition(input.documentId, (cur) => decideFailed(cur, input));
  }

  /**
   * For the janitor: marks a version failed whose ingestion never finished (the ingest Lambda timed
   * out on the queue's last delivery, so the S3 event went to the dead-letter queue and no attempt is
   * left to finish the record). Conditional, like every transition: only while the record is still
   * `processing` the same `sequencer`, started at or before `startedBefore`, with no live claim (lease
   * expired), and at the revision read. The record then looks exactly as if ingestion had failed it:
   * its remote file and pending upload tag are queued for deletion, its older text generation too.
   * Returns the updated record, or undefined when the record moved on (nothing is written).
   */
  async failStuckProcessing(input: StuckProcessingInput): Promise<DocumentRecord | undefined> {
    await this.searchTodos.note(input.documentId, input.now);
    const failed = await this.transition(input.documentId, (cur) => decideStuck(cur, input));
    return failed ? this.get(input.documentId) : undefined;
  }

  /**
   * Applies an ObjectRemoved event: unless a newer version is recorded, the record becomes a
   * tombstone (status `deleted`, out of the list index, TTL 15 days) holding the delete's sequencer;
   * its text, remote file and any in-flight upload are queued for deletion. Returns false for a stale
   * delete.
   */
  async tombstone(input: TombstoneInput): Promise<boolean> {
    await this.searchTodos.note(input.documentId, input.now);
    return this.transition(input.documentId, (cur) => decideTombstone(cur, input));
  }

  /** Cleanup still owed by a record (chunks of old generations, remote files of old versions). */
  staleWork(doc: StoredDocument | undefined): StaleWork {
    return staleWork(doc);
  }

  /** Removes finished cleanup entries from the record's stale sets. */
  async removeFromSets(documentId: string, done: StaleWork): Promise<void> {
    const parts: string[] = [];
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const lists: [string, string[]][] = [
      ["staleGenerations", done.generations],
      ["staleFileIds", done.fileIds],
      ["staleUploadTags", done.uploadTags],
    ];
    for (const [i, [name, list]] of lists.entries()) {
      if (list.length === 0) continue;
      names[`#s${i}`] = name;
      values[`:s${i}`] = new Set(list);
      parts.push(`#s${i} :s${i}`);
    }
    if (parts.length === 0) return;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.recordKey(documentId),
          UpdateExpression: `DELETE ${parts.join(", ")}`,
          ConditionExpression: "attribute_exists(#pk)",
          ExpressionAttributeNames: { ...names, "#pk": TABLE_KEYS.partitionKey },
          ExpressionAttributeValues: values,
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** Writes a generation's chunks (25 per batch, unprocessed items retried with backoff). */
  async writeChunks(documentId: string, generation: string, chunks: { text: string; tokens: number }[]) {
    await this.chunks.write(documentId, generation, chunks);
  }

  /** Writes a generation's chunks as they come (see ChunkItems.writer). */
  chunkWriter(documentId: string, generation: string): ChunkWriter {
    return this.chunks.writer(documentId, generation);
  }

  /** Deletes a generation's chunk items (all, or those from index `fromIndex` on). */
  async deleteGeneration(documentId: string, generation: string, fromIndex = 0): Promise<number> {
    return this.chunks.deleteGeneration(documentId, generation, fromIndex);
  }

  /**
   * Seeds a ready document with `text` without the provider, for tests and benchmarks of the chat
   * API and the janitor: chunks the text exactly like ingestion, writes the chunks, then the record
   * (status `ready`). Fields of `record` override the defaults (pass `remoteFileId` to simulate a
   * file still held by the provider).
   */
  async putDocumentText(
    record: Partial<DocumentRecord> & Pick<DocumentRecord, "documentId" | "key">,
    text: string,
  ): Promise<DocumentRecord> {
    const now = new Date().toISOString();
    const generation = record.textGeneration ?? `seed${Date.now().toString(36)}`;
    const chunks = chunkText(text);
    await this.writeChunks(record.documentId, generation, chunks);
    const doc: DocumentRecord = {
      bucket: "local",
      status: "ready",
      size: Buffer.byteLength(text, "utf8"),
      sequencer: "0".repeat(SEQUENCER_WIDTH),
      createdAt: now,
      updatedAt: now,
      ...record,
      textGeneration: generation,
      chunkCount: chunks.length,
      textBytes: Buffer.byteLength(text, "utf8"),
      tokenEstimate: chunks.reduce((sum, c) => sum + c.tokens, 0),
    };
    const item: Record<string, unknown> = { ...doc, ...this.recordKey(doc.documentId), rev: 1 };
    if (doc.status !== "deleted") {
      item[TABLE_KEYS.byKeyIndex.partitionKey] = documentsPartition(doc.documentId);
      item[TABLE_KEYS.byKeyIndex.sortKey] = doc.key;
    }
    for (const name of ["staleFileIds", "staleUploadTags"] as const) {
      const list = doc[name];
      if (list?.length) item[name] = new Set(list);
      else delete item[name];
    }
    if (holdsAny(item)) item[TABLE_KEYS.holdsFilesIndex.partitionKey] = filesPartition(doc.documentId);
    await this.searchTodos.note(doc.documentId, new Date(doc.updatedAt));
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: item }));
    return doc;
  }

  // ---------------------------------------------------------------- internals

  private recordKey(documentId: string) {
    return { [TABLE_KEYS.partitionKey]: documentPk(documentId), [TABLE_KEYS.sortKey]: DOCUMENT_SK };
  }

  /** Read -> decide -> write conditioned on the revision read; retried when another writer won. */
  private async transition<T>(
    documentId: string,
    decide: (cur: StoredDocument | undefined) => Decision<T>,
    opts: { assumeAbsent?: boolean } = {},
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      // assumeAbsent: the first try writes as if no record existed (conditioned on that), saving the
      // read for the common case of a new document; when one exists it fails and we read normally.
      const cur = attempt === 0 && opts.assumeAbsent ? undefined : await this.getState(documentId);
      const decision = decide(cur);
      if (!decision.write) return decision.result;
      try {
        await this.applyMutation(documentId, cur, decision.write);
        return decision.result;
      } catch (err) {
        if (!isConditionFailure(err) || attempt + 1 >= MAX_TRANSITION_ATTEMPTS) throw err;
        if (attempt > 0 || !opts.assumeAbsent) await sleep(Math.random() * 10 * (attempt + 1));
      }
    }
  }

  /** A single write conditioned on this attempt still owning the version (no read first). */
  private async ownerWrite(
    documentId: string,
    sequencer: string,
    owner: string,
    m: Mutation,
  ): Promise<boolean> {
    try {
      await this.applyMutation(documentId, undefined, m, {
        expression: "#owner = :owner AND #seq = :seq AND #status = :processing",
        names: { "#owner": "claimOwner", "#seq": "sequencer", "#status": "status" },
        values: { ":owner": owner, ":seq": sequencer, ":processing": "processing" },
      });
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  private async applyMutation(
    documentId: string,
    cur: StoredDocument | undefined,
    m: Mutation,
    customCondition?: { expression: string; names: Record<string, string>; values: Record<string, unknown> },
  ) {
    const names: Record<string, string> = { "#rev": "rev" };
    const values: Record<string, unknown> = { ":one": 1 };
    const name = (attr: string) => {
      const placeholder = `#a${Object.keys(names).length}`;
      names[placeholder] = attr;
      return placeholder;
    };
    const sets: string[] = [];
    const set = gainsHolding(m)
      ? { ...m.set, [TABLE_KEYS.holdsFilesIndex.partitionKey]: filesPartition(documentId) }
      : (m.set ?? {});
    for (const [attr, value] of Object.entries(set)) {
      const v = `:v${Object.keys(values).length}`;
      values[v] = value;
      sets.push(`${name(attr)} = ${v}`);
    }
    const adds: string[] = ["#rev :one"];
    for (const [attr, value] of Object.entries(m.add ?? {})) {
      if (value instanceof Set && value.size === 0) continue;
      const v = `:v${Object.keys(values).length}`;
      values[v] = value;
      adds.push(`${name(attr)} ${v}`);
    }
    const removes = (m.remove ?? []).filter((a) => !(a in set)).map(name);
    let expression = "";
    if (sets.length) expression += `SET ${sets.join(", ")} `;
    if (removes.length) expression += `REMOVE ${removes.join(", ")} `;
    expression += `ADD ${adds.join(", ")}`;
    let condition = "attribute_not_exists(#pk)";
    if (customCondition) {
      condition = customCondition.expression;
      Object.assign(names, customCondition.names);
      Object.assign(values, customCondition.values);
    } else if (!cur) names["#pk"] = TABLE_KEYS.partitionKey;
    else {
      values[":rev"] = cur.rev;
      condition = cur.rev === 0 ? "attribute_not_exists(#rev) OR #rev = :rev" : "#rev = :rev";
    }
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.recordKey(documentId),
        UpdateExpression: expression,
        ConditionExpression: condition,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  }
}
