/**
 * A small client for the chat API with the CLI's error messages: a stopped local stack, a wrong token
 * and an unknown document each get a sentence that says what to do.
 */
import type { Target } from "./target";

/** A failure the CLI prints as one line (no stack trace) before exiting with `exitCode`. */
export class CliError extends Error {
  override name = "CliError";
  constructor(
    message: string,
    readonly exitCode = 1,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** A document as the API returns it (GET /documents, GET /documents/{id}). */
export interface ApiDocument {
  documentId: string;
  key: string;
  bucket: string;
  status: "processing" | "ready" | "failed" | "deleted";
  size: number;
  contentType?: string;
  eTag?: string;
  chunkCount?: number;
  textBytes?: number;
  tokenEstimate?: number;
  error?: { code: string; message: string };
  remoteFile?: { id?: string; bytes?: number; createdAt?: string; releasedAt?: string };
  createdAt: string;
  updatedAt: string;
}

export interface ChatSource {
  documentId: string;
  key: string;
  complete?: boolean;
  chunks: { index: number; tokens?: number; text?: string }[];
}

export interface ChatAnswer {
  answer: string;
  model: string;
  usage?: {
    promptTokens?: number;
    completionTokens?: number;
    totalTokens?: number;
    /** Prompt tokens served from the provider's cache. */
    cachedTokens?: number;
    /** What the answer cost (USD), null when the model has no price. */
    costUsd?: number | null;
  };
  sources: ChatSource[];
  skipped?: { documentId: string; key: string; status: string; reason?: string }[];
}

export class ApiClient {
  constructor(readonly target: Target) {}

  /** Sends a request; non-2xx answers become CliErrors with the API's own message. */
  async request(
    method: string,
    path: string,
    body?: unknown,
    opts: { notFound?: string } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${this.target.apiUrl}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw this.connectionError(err);
    }
    if (response.ok) return response;
    throw await this.httpError(response, opts.notFound);
  }

  async json<T>(method: string, path: string, body?: unknown, opts: { notFound?: string } = {}): Promise<T> {
    const response = await this.request(method, path, body, opts);
    return (await response.json()) as T;
  }

  getDocument(id: string): Promise<ApiDocument> {
    return this.json<ApiDocument>("GET", `/documents/${encodeURIComponent(id)}`, undefined, {
      notFound: `no document with id ${id} (see \`kdp ls\` for ids)`,
    });
  }

  /** Every document matching the filters, following cursors (at most `max`). */
  async listDocuments(q: { prefix?: string; status?: string; max?: number } = {}): Promise<ApiDocument[]> {
    const out: ApiDocument[] = [];
    let cursor: string | undefined;
    const max = q.max ?? Number.POSITIVE_INFINITY;
    do {
      const params = new URLSearchParams();
      if (q.prefix) params.set("prefix", q.prefix);
      if (q.status) params.set("status", q.status);
      params.set("limit", String(Math.min(100, Math.max(1, max - out.length))));
      if (cursor) params.set("cursor", cursor);
      const page = await this.json<{ items: ApiDocument[]; cursor?: string | null }>(
        "GET",
        `/documents?${params}`,
      );
      out.push(...page.items);
      cursor = page.cursor ?? undefined;
    } while (cursor && out.length < max);
    return out;
  }

  private connectionError(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
    const code = cause?.code ?? "";
    if (this.target.local && (code === "ECONNREFUSED" || code === "ECONNRESET"))
      return new CliError(`no local stack at ${this.target.apiUrl} — run \`npm start\` first`);
    if (code === "ECONNREFUSED")
      return new CliError(`cannot reach ${this.target.apiUrl}: connection refused`);
    if (code === "ENOTFOUND") return new CliError(`cannot reach ${this.target.apiUrl}: host not found`);
    return new CliError(
      `cannot reach ${this.target.apiUrl}: ${cause?.message ?? (err as Error)?.message ?? String(err)}`,
    );
  }

  private async httpError(response: Response, notFound?: string): Promise<CliError> {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = (await response.json()) as { error?: { message?: string } | string; message?: string };
      const m = typeof body.error === "string" ? body.error : (body.error?.message ?? body.message);
      if (m) message = m;
    } catch {
      // not JSON: keep the status line
    }
    // 403 is this key's scope (another prefix, or key management without the API token): say so.
    if (response.status === 403) return new CliError(`the API refused (403): ${message}`, 1, 403);
    if (response.status === 401) {
      const hint = this.target.local
        ? this.target.token
          ? `the token from ${this.target.tokenSource} does not match the one \`npm start\` printed`
          : "no token found: start the stack with `npm start` (it writes DATA_DIR/runtime.json) or pass --token"
        : this.target.token
          ? `check --token / KDP_API_TOKEN (the stack's token is in its Secrets Manager secret)`
          : "pass --token or set KDP_API_TOKEN";
      return new CliError(
        `the API at ${this.target.apiUrl} rejected the token (${response.status}): ${hint}`,
        1,
        response.status,
      );
    }
    if (response.status === 404 && notFound) return new CliError(notFound, 1, 404);
    const retry = response.headers.get("retry-after");
    return new CliError(
      `the API answered ${response.status}: ${message}${retry ? ` (retry after ${retry}s)` : ""}`,
      1,
      response.status,
    );
  }
}

/** Server-Sent Events from a fetch body: yields `{ event, data }` per frame. */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = "";
  const reader = body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const frame = parseFrame(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (frame) yield frame;
        end = buffer.indexOf("\n\n");
      }
    }
    const last = parseFrame(buffer + decoder.decode());
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}

function parseFrame(text: string): { event: string; data: string } | undefined {
  let event = "message";
  const data: string[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event, data: data.join("\n") } : undefined;
}
