import { DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import type { S3EventRecord } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSequencer, encodeS3EventKey } from "../../local/aws/s3";
import { type LocalStack, startLocalStack } from "../support/local-stack";

describe("local AWS stand-ins", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ prefix: "local-aws" });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("creates the documents table with the byKey and holdsFiles indexes", async () => {
    const { Table } = await stack.dynamoClient.send(new DescribeTableCommand({ TableName: stack.tableName }));
    expect(Table?.TableStatus).toBe("ACTIVE");
    expect(Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual([
      "byKeySharded",
      "holdsFilesSharded",
    ]);
  });

  it("answers a GET or HEAD whose If-Match is an older ETag with 412, like S3", async () => {
    const key = "if-match/doc.txt";
    const first = await stack.s3Client.send(
      new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: "one" }),
    );
    const got = await stack.s3Client.send(
      new GetObjectCommand({ Bucket: stack.bucket, Key: key, IfMatch: first.ETag }),
    );
    expect(await got.Body!.transformToString()).toBe("one");
    await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: "two, longer" }));
    await expect(
      stack.s3Client.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key, IfMatch: first.ETag })),
    ).rejects.toMatchObject({ name: "PreconditionFailed", $metadata: { httpStatusCode: 412 } });
    await expect(
      stack.s3Client.send(new HeadObjectCommand({ Bucket: stack.bucket, Key: key, IfMatch: first.ETag })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } });
  });

  it("serves every GET a whole version while PUTs of the same key race it, like S3", async () => {
    const key = "atomic/manifest.json";
    const versions = Array.from({ length: 6 }, (_, v) =>
      JSON.stringify({ v, pad: "x".repeat(200_000 + v * 50_000) }),
    );
    await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: versions[0] }));
    const reads: string[] = [];
    const reader = (async () => {
      for (let i = 0; i < 40; i++) {
        const got = await stack.s3Client.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key }));
        reads.push(await got.Body!.transformToString());
      }
    })();
    for (const body of versions.slice(1)) {
      await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: body }));
    }
    await reader;
    for (const body of reads) expect(versions).toContain(body);
  });

  it("emits AWS-shaped records with encoded keys and increasing sequencers", async () => {
    const seen: S3EventRecord[] = [];
    const off = stack.onS3Event((r) => seen.push(r));
    const key = "deep/pre fix/a+b, ünï 文件.txt";
    await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: "hello" }));
    await stack.s3Client.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: "hello again" }));
    await stack.s3Client.send(new DeleteObjectCommand({ Bucket: stack.bucket, Key: key }));
    off();
    expect(seen.map((r) => r.eventName)).toEqual([
      "ObjectCreated:Put",
      "ObjectCreated:Put",
      "ObjectRemoved:Delete",
    ]);
    const encoded = seen[0]!.s3.object.key;
    expect(encoded).toBe("deep/pre+fix/a%2Bb%2C+%C3%BCn%C3%AF+%E6%96%87%E4%BB%B6.txt");
    expect(decodeURIComponent(encoded.replace(/\+/g, " "))).toBe(key);
    expect(seen[0]!.s3.object.size).toBe(5);
    expect(seen[1]!.s3.object.eTag).toMatch(/^[0-9a-f]{32}$/);
    expect(seen[2]!.s3.object.size).toBeUndefined();
    const seqs = seen.map((r) => r.s3.object.sequencer);
    for (const s of seqs) expect(s).toMatch(/^[0-9A-F]{18}$/);
    expect([...seqs].sort()).toEqual(seqs);
    expect(new Set(seqs).size).toBe(3);
    await expect(
      stack.s3Client.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key })),
    ).rejects.toThrow();
  });

  it("sequencers strictly increase even within one millisecond", () => {
    const next = createSequencer();
    const values = Array.from({ length: 1000 }, next);
    for (let i = 1; i < values.length; i++) expect(values[i]! > values[i - 1]!).toBe(true);
  });

  it("encodes keys like S3 notifications", () => {
    expect(encodeS3EventKey("a b+c")).toBe("a+b%2Bc");
    expect(encodeS3EventKey("x/(1)!.pdf")).toBe("x/%281%29%21.pdf");
  });
});
