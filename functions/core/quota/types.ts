/**
 * The port between ingestion and the janitor's quota policy: before an upload that would cross the
 * provider's file-count or byte quota, ingestion asks for room, and the janitor's shared policy frees
 * it by deleting remote files whose text is already stored.
 */
import type { CallOptions } from "../provider/types";

export interface RoomRequest {
  /** Files about to be uploaded (usually 1). */
  files: number;
  /** Bytes about to be uploaded. */
  bytes: number;
}

export interface RoomResult {
  /** True when the upload now fits under the provider's limits. */
  enough: boolean;
  freedFiles: number;
  freedBytes: number;
}

export interface RoomMaker {
  /** Deletes stale remote files (oldest first, only those whose text is stored) until `need` fits. */
  makeRoom(need: RoomRequest, opts?: CallOptions): Promise<RoomResult>;
}
