import { describe, expect, it } from "vitest";
import {
  decodeS3Key,
  documentIdFor,
  extensionOf,
  MalformedMessageError,
  parseMessage,
  remoteFilename,
  uploadTagFor,
  validateObject,
} from "../../functions/core/ingest/events";
import { failureForProviderError } from "../../functions/core/ingest/service";
import {
  ExtractionFailedError,
  FileCountQuotaError,
  InvalidRequestError,
  NetworkError,
  NotConfiguredError,
  QuotaExhaustedError,
  RateLimitError,
  ServerError,
} from "../../functions/core/provider/errors";
import { PROVIDER_PROFILES } from "../../functions/core/provider/profiles";
import { encodeS3EventKey } from "../../local/aws/s3";
import { s3TestEventMessage, sqsMessageFor } from "../../local/aws/sqs";

const record = (key: string, eventName = "ObjectCreated:Put") =>
  ({
    eventName,
    eventTime: "2026-01-01T00:00:00.000Z",
    s3: { bucket: { name: "b" }, object: { key, size: 3, eTag: "abc", sequencer: "0A" } },
  }) as never;

describe("S3 event keys", () => {
  it.each([
    ["my+file.txt", "my file.txt"],
    ["a%2Bb.txt", "a+b.txt"],
    ["%E6%96%87%E4%BB%B6.pdf", "文件.pdf"],
    ["x%2C+y%2C+z.md", "x, y, z.md"],
    ["deep/er/and/deeper/still/doc.txt", "deep/er/and/deeper/still/doc.txt"],
    ["pct%25literal.txt", "pct%literal.txt"],
  ])("decodes %s", (raw, decoded) => {
    expect(decodeS3Key(raw)).toBe(decoded);
  });

  it("round-trips the local S3 server's encoding for any key", () => {
    for (const key of ["a b+c", "ü/文 件,(1)!~*.txt", "100% sure.txt", "a/b/c d/e+f"]) {
      expect(decodeS3Key(encodeS3EventKey(key))).toBe(key);
    }
  });

  it("rejects broken percent-encoding as a malformed message", () => {
    expect(() => decodeS3Key("bad%E6.txt")).toThrow(MalformedMessageError);
  });
});

describe("parseMessage", () => {
  it("reads created and removed records and skips the s3:TestEvent", () => {
    const msg = sqsMessageFor([record("a+b.txt"), record("c.txt", "ObjectRemoved:Delete")]);
    const changes = parseMessage(msg);
    expect(changes.map((c) => [c.kind, c.key])).toEqual([
      ["created", "a b.txt"],
      ["removed", "c.txt"],
    ]);
    expect(parseMessage(s3TestEventMessage("b"))).toEqual([]);
  });

  it("skips event types that do not change the object", () => {
    expect(parseMessage(sqsMessageFor([record("a.txt", "ObjectRestore:Completed")]))).toEqual([]);
  });

  it("throws on bodies that are not S3 notifications", () => {
    expect(() => parseMessage({ messageId: "m", body: "nope" })).toThrow(MalformedMessageError);
    expect(() => parseMessage({ messageId: "m", body: "{}" })).toThrow(/no S3 Records/);
  });
});

describe("ids and names", () => {
  it("document ids are stable, URL-safe and distinct per bucket + key", () => {
    const id = documentIdFor("bucket", "a/b.txt");
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(documentIdFor("bucket", "a/b.txt")).toBe(id);
    expect(documentIdFor("other", "a/b.txt")).not.toBe(id);
    expect(documentIdFor("bucket", "a/b.txT")).not.toBe(id);
  });

  it("upload tags are per version and remote names keep the extension", () => {
    expect(uploadTagFor("d", "01", "dep1")).toBe(uploadTagFor("d", "01", "dep1"));
    expect(uploadTagFor("d", "01", "dep1")).not.toBe(uploadTagFor("d", "02", "dep1"));
    // Named for the deployment, so a shared account's listing shows whose file it is.
    expect(uploadTagFor("d", "01", "dep1")).toMatch(/^kdp-dep1-[0-9a-f]{20}$/);
    expect(uploadTagFor("d", "01", "dep1")).not.toBe(uploadTagFor("d", "01", "dep2"));
    const name = remoteFilename("kdp-x", `dir/${"n".repeat(300)}.pdf`);
    expect(name.startsWith("kdp-x__")).toBe(true);
    expect(name.endsWith(".pdf")).toBe(true);
    expect(name.length).toBeLessThan(200);
    expect(remoteFilename("t", "a/b\nc.txt")).toBe("t__b_c.txt");
    expect(extensionOf("x/y.tar.GZ")).toBe(".gz");
    expect(extensionOf("x/.hidden")).toBe("");
  });
});

describe("validateObject", () => {
  it("rejects empty, too large and unsupported files before any provider call", () => {
    const rules = { ...PROVIDER_PROFILES.moonshot.files, maxFileBytes: 100 };
    expect(validateObject("a.txt", 0, rules)?.code).toBe("empty");
    expect(validateObject("a.txt", 101, rules)?.code).toBe("too_large");
    expect(validateObject("a.txt", 101, rules)?.message).toMatch(/101 bytes.*100 bytes/);
    expect(validateObject("a.exe", 10, rules)?.code).toBe("unsupported_type");
    expect(validateObject("README", 10, rules)?.message).toMatch(/without an extension/);
    expect(validateObject("a.PDF", 10, rules)).toBeUndefined();
    expect(validateObject("a.txt", 100, rules)).toBeUndefined();
  });

  it("follows the provider: GLM takes fewer types and caps images at 5 MB", () => {
    const glm = PROVIDER_PROFILES.glm.files;
    const moonshot = PROVIDER_PROFILES.moonshot.files;
    expect(validateObject("page.html", 10, moonshot)).toBeUndefined();
    expect(validateObject("page.html", 10, glm)).toEqual({
      code: "unsupported_type",
      message:
        '".html" files are not supported; supported types are .pdf, .docx, .doc, .xls, .xlsx, .ppt, .pptx, .png, .jpg, .jpeg, .csv, .txt, .md',
    });
    expect(validateObject("scan.PNG", 6 * 1024 * 1024, glm)).toEqual({
      code: "too_large",
      message: "the image is 6 MB; the provider accepts images up to 5 MB",
    });
    expect(validateObject("scan.png", 6 * 1024 * 1024, moonshot)).toBeUndefined();
    expect(validateObject("big.pdf", 51 * 1024 * 1024, glm)?.message).toBe(
      "the file is 51 MB; the provider accepts files up to 50 MB",
    );
    expect(validateObject("notes.md", 10, glm)).toBeUndefined();
  });
});

describe("failureForProviderError", () => {
  it("maps terminal provider errors to reasons and leaves transient ones to retries", () => {
    expect(failureForProviderError(new NotConfiguredError("not_configured", "x"))).toEqual({
      code: "provider_not_configured",
      message: "provider API key not configured",
    });
    expect(
      failureForProviderError(
        new ExtractionFailedError("extraction_failed", "files.content: Failed to extract file: bad"),
      )?.message,
    ).toBe("the provider could not extract text: Failed to extract file: bad");
    expect(failureForProviderError(new FileCountQuotaError("file_count_quota", "x"))?.code).toBe("quota");
    expect(
      failureForProviderError(new InvalidRequestError("invalid_request", "exceeded the max total size 10 GB"))
        ?.code,
    ).toBe("quota");
    expect(failureForProviderError(new QuotaExhaustedError("quota_exhausted", "x"))?.code).toBe("quota");
    expect(failureForProviderError(new InvalidRequestError("invalid_request", "unsupported"))?.code).toBe(
      "provider_rejected",
    );
    expect(
      failureForProviderError(new RateLimitError("rate_limited", "x", { retryable: true })),
    ).toBeUndefined();
    expect(failureForProviderError(new ServerError("server_error", "x"))).toBeUndefined();
    expect(failureForProviderError(new NetworkError("network", "x"))).toBeUndefined();
  });
});
