/**
 * Real local servers for janitor integration tests and the benchmark: the provider emulator (in the
 * test provider's profile, TEST_PROVIDER), dynalite with the documents table, that provider's HTTP
 * client and the DynamoDB store. Documents are driven through the
 * store's real transitions (claim -> upload -> record -> ready), as ingestion does.
 */
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDocumentStore, normaliseSequencer } from "../../functions/core/documents/dynamo-store";
import type { ProviderClient } from "../../functions/core/provider/client";
import type { RemoteFile } from "../../functions/core/provider/types";
import { ensureDocumentsTable, startLocalDynamo } from "../../local/aws/dynamo";
import { type EmulatorOptions, type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { TEST_PROVIDER, testClient } from "../support/provider";

export interface Harness {
  /** This harness's deployment id: its uploads are named `kdp-<deploymentId>-...`. */
  deploymentId: string;
  emulator: RunningEmulator;
  api: ProviderClient;
  store: DynamoDocumentStore;
  tableName: string;
  /** Claims a new version of `key` (processing, upload intent recorded). */
  claim(key: string, seq: number): Promise<Doc>;
  /** Uploads the claimed version's bytes (named `<tag>__<key>`) and records the file on the document. */
  upload(doc: Doc, opts?: { ageHours?: number; bytes?: number; record?: boolean }): Promise<RemoteFile>;
  /** Marks the version ready (text stored). */
  ready(doc: Doc): Promise<void>;
  /** claim + upload + ready. */
  readyDoc(key: string, seq: number, opts?: { ageHours?: number; bytes?: number }): Promise<Doc>;
  /** Uploads a file of this deployment (named with its prefix) that no record knows, `ageHours` old. */
  orphan(name: string, ageHours: number): Promise<RemoteFile>;
  /**
   * Runs `fn` with the emulator clock `ageHours` behind, so files uploaded inside are that old. The
   * clock is global: run parallel uploads of one age inside one call (the per-upload `ageHours`
   * options above are for sequential use).
   */
  withAge<T>(ageHours: number, fn: () => Promise<T>): Promise<T>;
  /** Uploads `bytes` bytes named `filename`, at the emulator's current clock. */
  uploadNamed(filename: string, bytes?: number): Promise<RemoteFile>;
  close(): Promise<void>;
}

export interface Doc {
  documentId: string;
  key: string;
  sequencer: string;
  tag: string;
  owner: string;
  fileId?: string;
}

const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

export async function startHarness(opts: EmulatorOptions = {}): Promise<Harness> {
  const [emulator, dynamo] = await Promise.all([
    startEmulator({ profile: TEST_PROVIDER, ...opts }),
    startLocalDynamo(),
  ]);
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: "us-east-1",
    credentials: CREDENTIALS,
  });
  const tableName = `janitor-${randomUUID().slice(0, 8)}`;
  const deploymentId = `h${randomUUID().replace(/-/g, "").slice(0, 11)}`;
  const ourTag = () => `kdp-${deploymentId}-${randomUUID().replace(/-/g, "").slice(0, 20)}`;
  await ensureDocumentsTable(client, tableName);
  const store = new DynamoDocumentStore({
    client: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }),
    tableName,
  });
  const api = testClient({
    baseURL: emulator.baseURL,
    apiKey: async () => "test-key",
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
  });

  const claim = async (key: string, seq: number): Promise<Doc> => {
    const documentId = `doc-${key.replace(/[^a-z0-9]/gi, "-")}`;
    const sequencer = normaliseSequencer(seq.toString(16));
    const doc = { documentId, key, sequencer, tag: ourTag(), owner: randomUUID() };
    const result = await store.claimVersion({
      documentId,
      bucket: "bucket",
      key,
      sequencer,
      size: 100,
      uploadTag: doc.tag,
      owner: doc.owner,
      messageId: doc.owner,
      attempts: 1,
      leaseUntil: Date.now() + 600_000,
      now: new Date(),
    });
    if (result.outcome !== "claimed") throw new Error(`claim of ${key} #${seq}: ${result.outcome}`);
    return doc;
  };

  const withAge = async <T>(ageHours: number, fn: () => Promise<T>): Promise<T> => {
    if (!ageHours) return fn();
    emulator.setClockOffset(-Math.round(ageHours * 3600));
    try {
      return await fn();
    } finally {
      emulator.setClockOffset(0);
    }
  };
  const uploadRaw = (filename: string, bytes = 100): Promise<RemoteFile> => {
    const body = Buffer.alloc(bytes, "a");
    return api.uploadFile({ filename, size: bytes, open: () => Readable.from([body]) });
  };
  const uploadNamed = (filename: string, ageHours: number, bytes: number) =>
    withAge(ageHours, () => uploadRaw(filename, bytes));

  const upload: Harness["upload"] = async (doc, o = {}) => {
    const file = await uploadNamed(`${doc.tag}__${doc.key}`, o.ageHours ?? 0, o.bytes ?? 100);
    if (o.record ?? true) {
      const ok = await store.recordUpload(
        doc.documentId,
        doc.sequencer,
        doc.owner,
        { id: file.id, bytes: file.bytes, createdAt: new Date(file.created_at * 1000).toISOString() },
        new Date(),
      );
      if (!ok) throw new Error(`recordUpload of ${doc.key} refused`);
      doc.fileId = file.id;
    }
    return file;
  };

  const ready: Harness["ready"] = async (doc) => {
    const ok = await store.finaliseReady({
      documentId: doc.documentId,
      sequencer: doc.sequencer,
      owner: doc.owner,
      generation: `g-${doc.sequencer.slice(-6)}`,
      chunkCount: 0,
      textBytes: 100,
      tokenEstimate: 25,
      now: new Date(),
    });
    if (!ok) throw new Error(`finaliseReady of ${doc.key} refused`);
  };

  return {
    deploymentId,
    emulator,
    api,
    store,
    tableName,
    claim,
    upload,
    ready,
    async readyDoc(key, seq, o = {}) {
      const doc = await claim(key, seq);
      await upload(doc, o);
      await ready(doc);
      return doc;
    },
    orphan: (name, ageHours) => uploadNamed(`${ourTag()}__${name}`, ageHours, 100),
    withAge,
    uploadNamed: uploadRaw,
    async close() {
      client.destroy();
      await Promise.all([emulator.close(), dynamo.close()]);
    },
  };
}
