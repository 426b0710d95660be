/**
 * Runs a fetch-style app (Hono) as a Lambda behind an API Gateway REST API whose integration uses
 * response streaming (`ResponseTransferMode.STREAM`): the event is the ordinary REST (v1) proxy event;
 * the response is written with `awslambda.HttpResponseStream.from(stream, { statusCode, headers })`,
 * which emits the JSON prelude and the 8-null-byte delimiter API Gateway expects, then the body as the
 * app produces it (SSE frames reach the client as they are written).
 *
 * Written here rather than using hono's `streamHandle` because that one sends a `cookies` field meant
 * for function URLs, writes a plain-text "Internal Server Error" on failures and is deprecated in
 * favour of a separate package; this adapter is small and keeps every answer JSON.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import type { APIGatewayProxyEvent, Context } from "aws-lambda";

/** The parts of the Lambda runtime's `awslambda` global the adapter uses (injectable for tests). */
export interface StreamingRuntime {
  streamifyResponse(
    handler: (
      event: APIGatewayProxyEvent,
      responseStream: NodeJS.WritableStream,
      context: Context,
    ) => Promise<void>,
  ): unknown;
  HttpResponseStream: {
    from(stream: NodeJS.WritableStream, metadata: Record<string, unknown>): NodeJS.WritableStream;
  };
}

export interface FetchApp {
  fetch(
    request: Request,
    env: { event: APIGatewayProxyEvent; context: Context },
  ): Response | Promise<Response>;
}

/** A web Request from a REST API (v1) proxy event. */
export function requestFromEvent(event: APIGatewayProxyEvent): Request {
  const headers = new Headers();
  for (const [name, values] of Object.entries(event.multiValueHeaders ?? {})) {
    for (const v of values ?? []) headers.append(name, v);
  }
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined && !headers.has(name)) headers.set(name, value);
  }
  const query = new URLSearchParams();
  if (event.multiValueQueryStringParameters) {
    for (const [k, values] of Object.entries(event.multiValueQueryStringParameters)) {
      for (const v of values ?? []) query.append(k, v);
    }
  } else {
    for (const [k, v] of Object.entries(event.queryStringParameters ?? {}))
      if (v !== undefined) query.append(k, v);
  }
  const host = event.requestContext?.domainName ?? headers.get("host") ?? "localhost";
  const qs = query.toString();
  const url = `https://${host}${event.path}${qs ? `?${qs}` : ""}`;
  const method = event.httpMethod.toUpperCase();
  let body: string | Uint8Array<ArrayBuffer> | undefined;
  if (event.body != null && method !== "GET" && method !== "HEAD") {
    body = event.isBase64Encoded ? new Uint8Array(Buffer.from(event.body, "base64")) : event.body;
  }
  return new Request(url, { method, headers, body });
}

/** Response headers as the streaming prelude wants them (repeated headers joined, cookies separate). */
function metadataOf(res: Response): Record<string, unknown> {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== "set-cookie") headers[name] = value;
  });
  const metadata: Record<string, unknown> = { statusCode: res.status, headers };
  const cookies = res.headers.getSetCookie();
  if (cookies.length > 0) metadata.multiValueHeaders = { "set-cookie": cookies };
  return metadata;
}

const INTERNAL_ERROR = JSON.stringify({
  error: { type: "internal_error", message: "Internal error; the request was logged. Retry, or report it." },
});

/**
 * Wraps `app` as a streaming Lambda handler. `afterResponse` runs once the response is fully written
 * (or abandoned), e.g. to flush the invocation's metrics.
 */
export function streamingHandler(
  app: FetchApp,
  runtime: StreamingRuntime = (globalThis as unknown as { awslambda: StreamingRuntime }).awslambda,
  onError: (err: unknown) => void = (err) => console.error("chat handler failed", err),
  afterResponse: () => void = () => {},
): unknown {
  return runtime.streamifyResponse(async (event, responseStream, context) => {
    try {
      await respond(app, runtime, onError, event, responseStream, context);
    } finally {
      try {
        afterResponse();
      } catch (err) {
        onError(err);
      }
    }
  });
}

/** One invocation: run the app, then stream its response (status and headers first) to API Gateway. */
async function respond(
  app: FetchApp,
  runtime: StreamingRuntime,
  onError: (err: unknown) => void,
  event: APIGatewayProxyEvent,
  responseStream: NodeJS.WritableStream,
  context: Context,
): Promise<void> {
  let res: Response;
  try {
    res = await app.fetch(requestFromEvent(event), { event, context });
  } catch (err) {
    onError(err);
    res = new Response(INTERNAL_ERROR, { status: 500, headers: { "content-type": "application/json" } });
  }
  const out = runtime.HttpResponseStream.from(responseStream, metadataOf(res));
  if (!res.body) {
    // The prelude is only flushed with the first write.
    out.write("");
    out.end();
    return;
  }
  try {
    await pipeline(Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>), out);
  } catch (err) {
    // The client went away or the body failed mid-stream; the status line is already sent.
    onError(err);
    if (!(out as NodeJS.WritableStream & { writableEnded?: boolean }).writableEnded) out.end();
  }
}
