/**
 * The streaming Lambda adapter with a stand-in for the runtime's `awslambda` global: REST API (v1)
 * proxy events in, HttpResponseStream metadata plus the streamed body out.
 */
import { PassThrough } from "node:stream";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { createChatApp } from "../../functions/chat/app";
import {
  requestFromEvent,
  type StreamingRuntime,
  streamingHandler,
} from "../../functions/chat/lambda-stream";
import { FakeMoonshot, MemoryStore, parseSse } from "./support";

function fakeRuntime() {
  const captured: { metadata?: Record<string, unknown>; body: string } = { body: "" };
  const runtime: StreamingRuntime = {
    streamifyResponse: (h) => h,
    HttpResponseStream: {
      from(stream, metadata) {
        captured.metadata = metadata;
        return stream;
      },
    },
  };
  return { runtime, captured };
}

function event(overrides: Partial<APIGatewayProxyEvent>): APIGatewayProxyEvent {
  return {
    httpMethod: "GET",
    path: "/health",
    resource: "/{proxy+}",
    headers: {},
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body: null,
    isBase64Encoded: false,
    requestContext: {
      domainName: "abc.execute-api.eu-west-1.amazonaws.com",
      authorizer: { principalId: "api-token", auth: "bearer" },
    } as unknown as APIGatewayProxyEvent["requestContext"],
    ...overrides,
  };
}

async function invoke(handler: unknown, ev: APIGatewayProxyEvent, captured: { body: string }) {
  const out = new PassThrough();
  out.on("data", (d: Buffer) => {
    captured.body += d.toString("utf8");
  });
  const done = new Promise((r) => out.on("finish", r));
  await (handler as (e: APIGatewayProxyEvent, s: NodeJS.WritableStream, c: Context) => Promise<void>)(
    ev,
    out,
    {} as Context,
  );
  await done;
}

function app() {
  const store = new MemoryStore();
  store.add({ documentId: "d1", key: "notes/one.txt" }, "The kettle is blue.\n\nThe teapot is green.\n\n");
  return createChatApp({
    store,
    provider: new FakeMoonshot(),
    objects: { deleteObject: async () => {} },
    defaultModel: "kimi-k2.6",
    logger: { info() {}, warn() {}, error() {} },
  });
}

describe("streaming Lambda adapter", () => {
  it("builds a Request from a REST proxy event", async () => {
    const req = requestFromEvent(
      event({
        httpMethod: "POST",
        path: "/documents",
        multiValueHeaders: { "Content-Type": ["application/json"], "X-Two": ["a", "b"] },
        multiValueQueryStringParameters: { prefix: ["a b/"], status: ["ready"] },
        body: Buffer.from('{"x":1}').toString("base64"),
        isBase64Encoded: true,
      }),
    );
    expect(req.method).toBe("POST");
    expect(req.url).toBe(
      "https://abc.execute-api.eu-west-1.amazonaws.com/documents?prefix=a+b%2F&status=ready",
    );
    expect(req.headers.get("x-two")).toBe("a, b");
    expect(await req.text()).toBe('{"x":1}');
  });

  it("writes status and headers as the prelude, then the body", async () => {
    const { runtime, captured } = fakeRuntime();
    await invoke(streamingHandler(app(), runtime), event({}), captured);
    expect(captured.metadata).toMatchObject({
      statusCode: 200,
      headers: { "content-type": "application/json" },
    });
    expect(JSON.parse(captured.body).status).toBe("ok");
  });

  it("refuses a request without authorizer context (a method deployed without the authorizer)", async () => {
    const { runtime, captured } = fakeRuntime();
    const ev = event({});
    (ev.requestContext as unknown as { authorizer: unknown }).authorizer = null;
    await invoke(streamingHandler(app(), runtime), ev, captured);
    expect(captured.metadata?.statusCode).toBe(401);
  });

  it("refuses an event path with dot segments or an encoded slash before routing", async () => {
    for (const path of ["/documents/../health", "/documents/%2e%2e/health", "/documents/d1%2F..%2Fx"]) {
      const { runtime, captured } = fakeRuntime();
      await invoke(streamingHandler(app(), runtime), event({ path }), captured);
      expect(captured.metadata?.statusCode, path).toBe(400);
      expect(JSON.parse(captured.body).error.message).toMatch(/path must not contain/);
    }
  });

  /** A streamed `POST /chat` about the seeded note. */
  const streamedChatEvent = () =>
    event({
      httpMethod: "POST",
      path: "/chat",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question: "What colour is the kettle?", stream: true }),
    });

  it("streams SSE from POST /chat through the prelude", async () => {
    const { runtime, captured } = fakeRuntime();
    await invoke(streamingHandler(app(), runtime), streamedChatEvent(), captured);
    expect(captured.metadata?.statusCode).toBe(200);
    expect((captured.metadata!.headers as Record<string, string>)["content-type"]).toContain(
      "text/event-stream",
    );
    const frames = parseSse(captured.body);
    expect(frames.at(-1)!.event).toBe("done");
    expect(JSON.parse(frames.at(-1)!.data).sources[0].key).toBe("notes/one.txt");
  });

  it("a thrown app error still answers JSON", async () => {
    const { runtime, captured } = fakeRuntime();
    const broken = {
      fetch: () => {
        throw new Error("boom");
      },
    };
    await invoke(
      streamingHandler(broken, runtime, () => {}),
      event({}),
      captured,
    );
    expect(captured.metadata?.statusCode).toBe(500);
    expect(JSON.parse(captured.body).error.type).toBe("internal_error");
  });

  it("runs afterResponse once per invocation, after the streamed body, even when the app throws", async () => {
    const { runtime, captured } = fakeRuntime();
    const calls: string[] = [];
    const handler = streamingHandler(
      app(),
      runtime,
      () => {},
      () => calls.push(`done after ${captured.body.length} chars`),
    );
    await invoke(handler, streamedChatEvent(), captured);
    expect(calls).toEqual([`done after ${captured.body.length} chars`]);
    expect(captured.body.length).toBeGreaterThan(0);

    const broken = fakeRuntime();
    const thrown = { fetch: () => Promise.reject(new Error("boom")) };
    let after = 0;
    await invoke(
      streamingHandler(
        thrown,
        broken.runtime,
        () => {},
        () => after++,
      ),
      event({}),
      broken.captured,
    );
    expect(after).toBe(1);
  });
});
