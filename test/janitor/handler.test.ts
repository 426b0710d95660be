/**
 * The janitor Lambda entry point, configured only through the environment (as in AWS and local mode),
 * with the runtime's DynamoDB client pointed at dynalite and the Moonshot client at the emulator.
 */
import type { Context } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { DynamoDocumentStore } from "../../functions/core/documents/dynamo-store";
import { dryRunFromEvent, loadJanitorConfig } from "../../functions/core/janitor/config";
import { createLambdaContext } from "../../local/runtime/lambda-context";
import { type LocalStack, startLocalStack } from "../support/local-stack";
import { providerEnv, TEST_PROFILE } from "../support/provider";
import { type Harness, startHarness } from "./harness";

describe("loadJanitorConfig", () => {
  it("applies the defaults", () => {
    const c = loadJanitorConfig({ TABLE_NAME: "t", DEPLOYMENT_ID: "dep1" });
    expect(c).toMatchObject({
      tableName: "t",
      dryRun: false,
      policy: { retentionHours: 24, highWaterMark: 0.9 },
    });
    expect(c.policy.limits.maxFiles).toBe(1000);
  });

  it("reads RETENTION_HOURS, HIGH_WATER_MARK and DRY_RUN", () => {
    const c = loadJanitorConfig({
      TABLE_NAME: "t",
      DEPLOYMENT_ID: "dep1",
      RETENTION_HOURS: "6",
      HIGH_WATER_MARK: "0.75",
      DRY_RUN: "TRUE",
    });
    expect(c).toMatchObject({ dryRun: true, policy: { retentionHours: 6, highWaterMark: 0.75 } });
  });

  it.each([
    [{}, /TABLE_NAME/],
    [{ TABLE_NAME: "t" }, /DEPLOYMENT_ID: DEPLOYMENT_ID is required/],
    [{ TABLE_NAME: "t", DEPLOYMENT_ID: "Has-Dashes" }, /DEPLOYMENT_ID must be 4-24 lower-case/],
    [{ TABLE_NAME: "t", RETENTION_HOURS: "a day" }, /RETENTION_HOURS/],
    [{ TABLE_NAME: "t", DEPLOYMENT_ID: "dep1", HIGH_WATER_MARK: "1.2" }, /highWaterMark/],
    [{ TABLE_NAME: "t", DRY_RUN: "maybe" }, /DRY_RUN/],
  ])("rejects %o with a clear error", (env, re) => {
    expect(() => loadJanitorConfig(env)).toThrow(re);
  });
});

describe("dryRunFromEvent", () => {
  it("reads the event's flag, top level or under detail, else the default", () => {
    expect(dryRunFromEvent({ dryRun: true }, false)).toBe(true);
    expect(dryRunFromEvent({ "detail-type": "Scheduled Event", detail: { dryRun: "true" } }, false)).toBe(
      true,
    );
    expect(
      dryRunFromEvent({ "detail-type": "Scheduled Event", source: "aws.events", detail: {} }, true),
    ).toBe(true);
    expect(dryRunFromEvent({ dryRun: false }, true)).toBe(false);
    expect(dryRunFromEvent(undefined, false)).toBe(false);
  });
});

describe("handler", () => {
  let stack: LocalStack;
  let h: Harness;
  let handler: (event: unknown, context: Context) => Promise<Record<string, unknown>>;
  let store: DynamoDocumentStore;

  beforeAll(async () => {
    [stack, h] = await Promise.all([startLocalStack({ prefix: "janitor" }), startHarness()]);
    Object.assign(process.env, {
      TABLE_NAME: stack.tableName,
      DEPLOYMENT_ID: h.deploymentId,
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: stack.dynamoEndpoint,
      ...providerEnv(h.emulator.baseURL, "test"),
      RETENTION_HOURS: "24",
      POWERTOOLS_SERVICE_NAME: "janitor",
      POWERTOOLS_METRICS_NAMESPACE: "test",
    });
    store = new DynamoDocumentStore({ client: stack.documentClient, tableName: stack.tableName });
    ({ handler } = (await import("../../functions/janitor/handler")) as unknown as {
      handler: typeof handler;
    });
  });
  afterAll(async () => {
    await Promise.all([stack?.close(), h?.close()]);
  });

  it("dry-runs on request, then sweeps and reports the summary as a log line and metrics", async () => {
    const old = await h.orphan("forgotten.txt", 3);
    // Another application's file on the same key: counted and reported, never deleted.
    const theirs = await h.withAge(30, () => h.uploadNamed("their-notes.txt"));
    await h.withAge(30, () => h.uploadNamed("kdp-t1__kept-record.txt"));
    const held = (await h.api.listFiles()).find((f) => f.filename.startsWith("kdp-t1"))!;
    await store.putDocumentText(
      {
        documentId: "d1",
        key: "kept-record.txt",
        remoteFileId: held.id,
        remoteFileCreatedAt: new Date(held.created_at * 1000).toISOString(),
      },
      "stored text",
    );
    const context = () => createLambdaContext({ functionName: "janitor", timeoutMs: 60_000 });
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    let dry: Record<string, unknown>;
    let real: Record<string, unknown>;
    try {
      dry = await handler({ "detail-type": "Scheduled Event", detail: { dryRun: true } }, context());
      expect((await h.api.listFiles()).length).toBe(3);
      real = await handler({ "detail-type": "Scheduled Event", detail: {} }, context());
    } finally {
      spy.mockRestore();
    }
    expect(dry).toMatchObject({ dryRun: true, deleted: 0, deletedByReason: { orphan: 1, retention: 1 } });
    expect(real).toMatchObject({
      dryRun: false,
      deleted: 2,
      filesBefore: 3,
      filesAfter: 1,
      foreignFiles: 1,
      foreignBytes: theirs.bytes,
      deletedByReason: { orphan: 1, retention: 1 },
    });
    expect((await h.api.listFiles()).map((f) => f.id)).toEqual([theirs.id]);
    expect(old.id).not.toBe(theirs.id);
    expect((await store.get("d1"))?.remoteFileId).toBeUndefined();

    const lines = out
      .join("")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const logs = lines.filter((l) => l.message === "janitor sweep");
    expect(logs).toHaveLength(2);
    expect(logs[1]).toMatchObject({
      summary: { filesAfter: 1, foreignFiles: 1, deletedByReason: { retention: 1 } },
    });
    const emf = lines.filter((l) => l._aws !== undefined);
    const names = emf.flatMap((l) =>
      (l._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] }).CloudWatchMetrics.flatMap((m) =>
        m.Metrics.map((x) => x.Name),
      ),
    );
    expect(names).toEqual(
      expect.arrayContaining([
        "RemoteFiles",
        "RemoteBytes",
        "ForeignRemoteFiles",
        "ForeignRemoteBytes",
        "JanitorErrors",
        "JanitorDeletions",
      ]),
    );
    expect(emf.some((l) => l.ForeignRemoteFiles === 1)).toBe(true);
    expect(emf.some((l) => l.Reason === "retention" && l.JanitorDeletions === 1)).toBe(true);
  });

  it("fails the invocation loudly when the provider rejects the key", async () => {
    await h.orphan("another.txt", 3);
    const keyVar = TEST_PROFILE.env.apiKey;
    const previous = process.env[keyVar];
    process.env[keyVar] = "";
    const spy = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    try {
      await expect(
        handler({}, createLambdaContext({ functionName: "janitor", timeoutMs: 60_000 })),
      ).rejects.toThrow(/not configured|api key/i);
    } finally {
      spy.mockRestore();
      process.env[keyVar] = previous;
    }
  });
});
