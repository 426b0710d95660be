/** S3ObjectSource against a mocked S3 client: the version pinning s3rver cannot show (it ignores If-Match). */
import { Readable } from "node:stream";
import { GetObjectCommand, HeadObjectCommand, S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { ObjectGoneError, S3ObjectSource } from "../../functions/core/ingest/objects";

const s3 = mockClient(S3Client);
const source = new S3ObjectSource(new S3Client({ region: "us-east-1" }));

const s3Error = (name: string, status: number) =>
  new S3ServiceException({ name, $fault: "client", $metadata: { httpStatusCode: status }, message: name });

beforeEach(() => s3.reset());

describe("S3ObjectSource", () => {
  it("pins reads with If-Match on the event's ETag when there is no version id", async () => {
    s3.on(GetObjectCommand).resolves({ Body: Readable.from(["x"]) as never, ContentType: "text/plain" });
    const opened = await source.open("b", "k.txt", { eTag: "abc" });
    expect(opened.contentType).toBe("text/plain");
    expect(s3.commandCalls(GetObjectCommand)[0]!.args[0].input).toEqual({
      Bucket: "b",
      Key: "k.txt",
      VersionId: undefined,
      IfMatch: '"abc"',
    });
  });

  it("pins reads with the version id when the bucket is versioned", async () => {
    s3.on(HeadObjectCommand).resolves({ ContentLength: 5, ETag: '"e"', VersionId: "v1" });
    expect(await source.head("b", "k.txt", { versionId: "v1", eTag: "e" })).toEqual({
      size: 5,
      contentType: undefined,
      eTag: "e",
      versionId: "v1",
    });
    expect(s3.commandCalls(HeadObjectCommand)[0]!.args[0].input).toMatchObject({
      VersionId: "v1",
      IfMatch: undefined,
    });
  });

  it.each([
    ["PreconditionFailed", 412],
    ["NoSuchKey", 404],
    ["NotFound", 404],
  ])("turns %s into ObjectGoneError (a newer event follows)", async (name, status) => {
    s3.on(GetObjectCommand).rejects(s3Error(name, status));
    await expect(source.open("b", "k.txt", { eTag: "abc" })).rejects.toBeInstanceOf(ObjectGoneError);
  });

  it("lets other S3 errors through (retried via SQS)", async () => {
    s3.on(GetObjectCommand).rejects(s3Error("SlowDown", 503));
    await expect(source.open("b", "k.txt", {})).rejects.toMatchObject({ name: "SlowDown" });
  });
});
