/**
 * Which remote files belong to this deployment. A Moonshot API key (one account, one file quota) may
 * be shared with other applications, a staging copy or a second stack; the janitor and the quota room
 * maker must only ever delete this deployment's own files. Files of others count toward the quota
 * figures and are reported, never deleted.
 *
 * A listed file is this deployment's when any of these holds:
 * 1. a record of our table references it (`remoteFileId`, or queued in `staleFileIds`): whatever
 *    its name, we uploaded it (another application cannot put its file ids into our table);
 * 2. its name carries an upload tag our table knows: a record's `uploadTag` or `staleUploadTags`,
 *    or the tag of a ready record's version, in today's form or in the form from before deployment
 *    ids (`kdp-<hash of documentId + sequencer>`). The hash covers our bucket, key and S3 sequencer, so
 *    only an upload of our own object version can carry it;
 * 3. its name starts with this deployment's prefix, `kdp-<deploymentId>-`: every upload since
 *    deployment ids existed (an orphan of a crashed attempt included).
 *
 * Migration: files uploaded before deployment ids (`kdp-<hash>__name`) are ours under rules 1-2 while
 * our table remembers them, which is the case for every file ingestion recorded or announced. A
 * legacy-named file no record knows any more (an orphan from before the upgrade) cannot be told
 * apart from another stack's file, so it is treated as foreign: reported, never deleted. Deleting by
 * guess is exactly the defect this module exists to prevent; an operator who knows the key is not
 * shared deletes such files by hand (README, "Sharing a provider key").
 */
import { UPLOAD_TAG_PREFIX } from "../ingest/events";

/** A deployment id: 4-24 lower-case letters and digits (no `-`, so `kdp-<id>-` is unambiguous). */
export const DEPLOYMENT_ID_PATTERN = /^[a-z0-9]{4,24}$/;

/** The id, or a RangeError saying what a deployment id looks like. */
export function checkDeploymentId(id: unknown, what = "deploymentId"): string {
  if (typeof id !== "string" || !DEPLOYMENT_ID_PATTERN.test(id)) {
    throw new RangeError(
      `${what} must be 4-24 lower-case letters and digits (it names this deployment's remote files), got ${JSON.stringify(id)}`,
    );
  }
  return id;
}

/** The filename prefix of every file this deployment uploads. */
export function deploymentFilePrefix(deploymentId: string): string {
  return `${UPLOAD_TAG_PREFIX}${deploymentId}-`;
}

/** True when `filename` carries this deployment's prefix (rule 3). */
export function hasDeploymentPrefix(filename: string, deploymentId: string): boolean {
  return filename.startsWith(deploymentFilePrefix(deploymentId));
}
