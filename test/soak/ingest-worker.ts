/**
 * One ingest "execution environment" for the soak: a child process that imports the REAL ingest
 * Lambda handler (functions/ingest/handler.ts) after the environment is set, exactly like a cold
 * start, and runs the invocations the parent's queue sends it over IPC, one at a time. The parent
 * kills it with SIGKILL at a random moment to model a crashed or killed Lambda.
 *
 * The provider account of the soak is modelled before the handler loads: the parent sets PROVIDER and
 * PROVIDER_MAX_FILES (the emulator's file cap; ingestion's quota room maker plans against it, as it
 * plans against the provider's documented cap in AWS), and every provider request gets a short
 * timeout to its response headers (SOAK_CLIENT_TIMEOUT_MS, uploads SOAK_UPLOAD_TIMEOUT_MS) through a
 * fetch wrapper: the client's own 120 s / 300 s per-attempt timeouts would make each injected slow
 * response cost minutes. The abort surfaces in the client exactly like a timed-out attempt (a
 * transport error, retried by its retry loop).
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { createLambdaContext } from "../../local/runtime/lambda-context";

export interface InvokeMessage {
  type: "invoke";
  id: number;
  event: SQSEvent;
  remainingMs: number;
}

export type WorkerReply =
  | { type: "ready" }
  | { type: "result"; id: number; response: SQSBatchResponse | undefined }
  | { type: "error"; id: number; error: string };

const headerTimeout = Number(process.env.SOAK_CLIENT_TIMEOUT_MS) || 0;
const uploadTimeout = Number(process.env.SOAK_UPLOAD_TIMEOUT_MS) || headerTimeout;
if (headerTimeout > 0) {
  const realFetch = globalThis.fetch;
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const isUpload = (init?.method ?? "GET").toUpperCase() === "POST" && /\/files\/?$/.test(String(input));
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException("soak client timeout", "TimeoutError")),
      isUpload ? uploadTimeout : headerTimeout,
    );
    const signal = init?.signal ? AbortSignal.any([init.signal, controller.signal]) : controller.signal;
    try {
      // Only the wait for the response headers is bounded: a large body may take longer to read.
      return await realFetch(input, { ...init, signal });
    } finally {
      clearTimeout(timer);
    }
  }) as typeof fetch;
}

const { handler } = (await import("../../functions/ingest/handler")) as unknown as {
  handler: (event: SQSEvent, context: unknown) => Promise<SQSBatchResponse | undefined>;
};

const send = (m: WorkerReply) => process.send?.(m);

process.on("message", async (m: InvokeMessage) => {
  if (m?.type !== "invoke") return;
  const context = createLambdaContext({
    functionName: "kdp-soak-ingest",
    timeoutMs: m.remainingMs,
    region: process.env.AWS_REGION,
  });
  try {
    send({ type: "result", id: m.id, response: await handler(m.event, context) });
  } catch (err) {
    send({ type: "error", id: m.id, error: err instanceof Error ? err.message : String(err) });
  }
});
process.on("disconnect", () => process.exit(0));
send({ type: "ready" });
