/**
 * A tiny HTTP server whose every answer the test scripts: exact status/header/body sequences (429 then
 * 200 with retry-after-ms), dropped sockets, slow or split responses. It lets retry and error-mapping
 * tests assert behaviour the emulator only produces at random.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  /** Body bytes received (counted, even when not kept). */
  bytes: number;
  /** The body, when it is at most `keepBodyBytes`. */
  body?: Buffer;
  /** Set when the client closed the connection before the response finished. */
  clientClosed: boolean;
}

/** Handles request number `n` (0-based) after its body has been read. */
export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  n: number,
  recorded: RecordedRequest,
) => void | Promise<void>;

export interface Scripted {
  baseURL: string;
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startScripted(
  handler: Handler,
  opts: { keepBodyBytes?: number } = {},
): Promise<Scripted> {
  const keep = opts.keepBodyBytes ?? 1024 * 1024;
  const requests: RecordedRequest[] = [];
  const server = createServer(async (req, res) => {
    const rec: RecordedRequest = {
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      bytes: 0,
      clientClosed: false,
    };
    const n = requests.length;
    requests.push(rec);
    res.on("close", () => {
      if (!res.writableFinished) rec.clientClosed = true;
    });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) {
        rec.bytes += (chunk as Buffer).length;
        if (rec.bytes <= keep) chunks.push(chunk as Buffer);
      }
    } catch {
      // client went away mid-body
    }
    if (rec.bytes <= keep) rec.body = Buffer.concat(chunks);
    try {
      await handler(req, res, n, rec);
    } catch (err) {
      if (!res.headersSent) res.writeHead(599).end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Writes a JSON answer. */
export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** The provider's error body. */
export function providerError(
  res: ServerResponse,
  status: number,
  type: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  json(res, status, { error: { type, message } }, headers);
}

/** Kills the connection without an answer (what a crashing proxy or a reset looks like). */
export function drop(res: ServerResponse): void {
  res.socket?.destroy();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function fileObject(id: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    object: "file",
    bytes: 3,
    created_at: 1_700_000_000,
    filename: "a.txt",
    purpose: "file-extract",
    status: "ok",
    ...over,
  };
}
