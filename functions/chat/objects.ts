/** The S3 side of DELETE /documents/{id}: an `ObjectDeleter` over an S3 client. */
import { DeleteObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import type { ObjectDeleter } from "./context";

/** Deletes objects with `client` (on a versioned bucket this adds a delete marker, which ingestion sees). */
export function s3ObjectDeleter(client: S3Client): ObjectDeleter {
  return {
    async deleteObject(bucket, key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}
