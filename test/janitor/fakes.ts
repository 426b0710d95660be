/**
 * In-memory stand-ins for the janitor's ports: a remote file list with the provider's delete
 * semantics, and a record store with DynamoDocumentStore's release semantics.
 */
import type { DocumentFailure, DocumentRecord } from "../../functions/core/documents/model";
import type { JanitorStore } from "../../functions/core/janitor/ports";
import type { JanitorApi } from "../../functions/core/janitor/sweep";
import type { CallOptions, RemoteFile } from "../../functions/core/provider/types";

export const HOUR = 3_600_000;
export const NOW = Date.parse("2026-11-20T12:00:00Z");
/** The deployment the fakes' files belong to: `remote()` names files with its prefix by default. */
export const DEPLOYMENT = "testdeploy";

/** A remote file created `ageMs` before NOW, named as this deployment's unless `filename` is given. */
export function remote(
  id: string,
  ageMs: number,
  bytes = 1000,
  filename = `kdp-${DEPLOYMENT}-0000__${id}.txt`,
): RemoteFile {
  return {
    id,
    object: "file",
    bytes,
    created_at: Math.floor((NOW - ageMs) / 1000),
    filename,
    purpose: "file-extract",
    status: "ok",
  };
}

/** A document record with sensible defaults. */
export function record(documentId: string, fields: Partial<DocumentRecord> = {}): DocumentRecord {
  return {
    documentId,
    bucket: "b",
    key: `${documentId}.txt`,
    status: "ready",
    size: 1000,
    sequencer: "0001",
    createdAt: new Date(NOW - 48 * HOUR).toISOString(),
    updatedAt: new Date(NOW - 48 * HOUR).toISOString(),
    ...fields,
  };
}

export class FakeFiles implements JanitorApi {
  readonly files = new Map<string, RemoteFile>();
  readonly calls: { op: "list" | "delete"; id?: string }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Called before each delete; may throw to simulate provider errors. */
  onDelete?: (id: string, attempt: number) => void | Promise<void>;
  private attempts = new Map<string, number>();

  constructor(files: RemoteFile[] = []) {
    for (const f of files) this.files.set(f.id, f);
  }

  async listFiles(_opts?: CallOptions): Promise<RemoteFile[]> {
    this.calls.push({ op: "list" });
    return [...this.files.values()].map((f) => ({ ...f }));
  }

  async deleteFile(id: string, _opts?: CallOptions): Promise<boolean> {
    this.calls.push({ op: "delete", id });
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const attempt = (this.attempts.get(id) ?? 0) + 1;
      this.attempts.set(id, attempt);
      await new Promise((r) => setTimeout(r, 1));
      await this.onDelete?.(id, attempt);
      return this.files.delete(id);
    } finally {
      this.inFlight -= 1;
    }
  }

  deletes(): string[] {
    return this.calls.filter((c) => c.op === "delete").map((c) => c.id!);
  }
}

export class MemoryStore implements JanitorStore {
  readonly records = new Map<string, DocumentRecord>();
  /** Called before each release; may mutate the record to simulate a concurrent ingest. */
  onRelease?: (documentId: string, fileId: string) => void;
  /** Called before each stuck-document write; may mutate the record likewise. */
  onFailStuck?: (documentId: string) => void;

  constructor(records: DocumentRecord[] = []) {
    for (const r of records) this.records.set(r.documentId, structuredClone(r));
  }

  async listWithRemoteFiles(): Promise<DocumentRecord[]> {
    return [...this.records.values()]
      .filter((r) => r.remoteFileId || r.uploadTag || r.staleFileIds?.length || r.staleUploadTags?.length)
      .map((r) => structuredClone(r));
  }

  async releaseRemoteFile(documentId: string, fileId: string, at: string): Promise<boolean> {
    this.onRelease?.(documentId, fileId);
    const r = this.records.get(documentId);
    if (!r) return false;
    if (r.remoteFileId === fileId) {
      delete r.remoteFileId;
      r.remoteFileReleasedAt = at;
      r.staleFileIds = [...(r.staleFileIds ?? []), fileId];
      return true;
    }
    return false;
  }

  async forgetDeletedFile(documentId: string, fileId: string): Promise<void> {
    const r = this.records.get(documentId);
    if (!r?.staleFileIds) return;
    r.staleFileIds = r.staleFileIds.filter((f) => f !== fileId);
    if (r.staleFileIds.length === 0) delete r.staleFileIds;
  }

  /** DynamoDocumentStore.failStuckProcessing's semantics on public records (no lease here). */
  async failStuckProcessing(input: {
    documentId: string;
    sequencer: string;
    startedBefore: Date;
    failure: DocumentFailure;
    now: Date;
  }): Promise<DocumentRecord | undefined> {
    this.onFailStuck?.(input.documentId);
    const r = this.records.get(input.documentId);
    if (r?.status !== "processing" || r.sequencer !== input.sequencer) return undefined;
    if (Date.parse(r.uploadStartedAt ?? r.updatedAt) > input.startedBefore.getTime()) return undefined;
    r.status = "failed";
    r.error = input.failure;
    r.updatedAt = input.now.toISOString();
    if (r.remoteFileId) r.staleFileIds = [...(r.staleFileIds ?? []), r.remoteFileId];
    if (r.uploadTag) r.staleUploadTags = [...(r.staleUploadTags ?? []), r.uploadTag];
    for (const k of [
      "remoteFileId",
      "remoteFileBytes",
      "remoteFileCreatedAt",
      "uploadTag",
      "uploadStartedAt",
    ] as const)
      delete r[k];
    return structuredClone(r);
  }
}
