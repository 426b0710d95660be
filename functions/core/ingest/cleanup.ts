/**
 * Draining what a record has queued for deletion (`staleGenerations`, `staleFileIds`,
 * `staleUploadTags`): the leftovers of superseded, failed and deleted versions. Each entry leaves the
 * record only once its deletion succeeded, so a crash or a failed call leaves a to-do list rather than
 * garbage; the next event for the document, or the janitor, finishes the job.
 */
import type { DynamoDocumentStore, StoredDocument } from "../documents/dynamo-store";
import type { ProviderApi } from "../provider/types";
import type { LoggerPort } from "../runtime/telemetry";
import { hasTag } from "./events";
import { errorText } from "./failures";

export interface StaleWorkCleanerDeps {
  store: Pick<DynamoDocumentStore, "getState" | "staleWork" | "deleteGeneration" | "removeFromSets">;
  api: Pick<ProviderApi, "listFiles">;
  /** Deletes one remote file (ingestion's timed, logged delete). */
  deleteRemote(fileId: string, documentId: string): Promise<void>;
  log: LoggerPort;
}

export class StaleWorkCleaner {
  constructor(private readonly deps: StaleWorkCleanerDeps) {}

  /** Whether the record owes any cleanup. */
  hasWork(doc: StoredDocument | undefined): boolean {
    const w = this.deps.store.staleWork(doc);
    return w.generations.length + w.fileIds.length + w.uploadTags.length > 0;
  }

  /** Deletes chunks and remote files the record has queued for deletion. Never throws. */
  async drain(documentId: string, known: StoredDocument | undefined): Promise<void> {
    const { store, api, log } = this.deps;
    try {
      const state = known ?? (await store.getState(documentId));
      const work = store.staleWork(state);
      if (!work.generations.length && !work.fileIds.length && !work.uploadTags.length) return;
      const done = { generations: [] as string[], fileIds: [] as string[], uploadTags: [] as string[] };
      for (const generation of work.generations) {
        await store.deleteGeneration(documentId, generation);
        done.generations.push(generation);
      }
      for (const fileId of work.fileIds) {
        if (
          await this.deps.deleteRemote(fileId, documentId).then(
            () => true,
            () => false,
          )
        )
          done.fileIds.push(fileId);
      }
      if (work.uploadTags.length) {
        const files = await api.listFiles();
        for (const tag of work.uploadTags) {
          const mine = files.filter((f) => hasTag(f.filename, tag) && f.id !== state?.remoteFileId);
          let ok = true;
          for (const f of mine) await this.deps.deleteRemote(f.id, documentId).catch(() => (ok = false));
          if (ok) done.uploadTags.push(tag);
        }
      }
      await store.removeFromSets(documentId, done);
    } catch (err) {
      // Left queued on the record; the next event for it, or the janitor, finishes the job.
      log.warn("cleanup incomplete", { documentId, error: errorText(err) });
    }
  }
}
