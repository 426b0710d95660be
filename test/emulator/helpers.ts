/**
 * Small HTTP helpers for the emulator tests. Every /v1 response read through {@link call} is checked
 * against the provider's OpenAPI document, so all tests double as contract tests.
 */
import type { RunningEmulator } from "../../local/emulator/server";
import { assertValidResponse } from "../support/openapi";

export const KEY = "test-key";

export interface Reply {
  status: number;
  headers: Headers;
  /** Parsed JSON when the response is JSON, else the text. */
  body: unknown;
  text: string;
}

export interface CallOptions {
  body?: unknown;
  form?: FormData;
  key?: string | null;
  /** Skip the OpenAPI check (for paths the document does not describe). */
  unchecked?: boolean;
}

/** Calls the emulator and validates the answer against the OpenAPI document (for /v1 paths). */
export async function call(
  emu: RunningEmulator,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  const key = opts.key === undefined ? KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: BodyInit | undefined;
  if (opts.form) body = opts.form;
  else if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  }
  const res = await fetch(`${emu.url}${path}`, { method, headers, body });
  const text = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  const parsed = contentType.includes("json") ? JSON.parse(text) : text;
  if (path.startsWith("/v1/") && !opts.unchecked && !contentType.includes("event-stream")) {
    assertValidResponse(method, path, res.status, parsed, contentType);
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Uploads bytes as a multipart form like the openai client does. */
export function upload(
  emu: RunningEmulator,
  filename: string,
  content: string | Uint8Array,
  purpose = "file-extract",
  key?: string | null,
): Promise<Reply> {
  const form = new FormData();
  // Copy into a fresh ArrayBuffer-backed view: Blob parts may not be SharedArrayBuffer views.
  form.append("file", new Blob([typeof content === "string" ? content : new Uint8Array(content)]), filename);
  form.append("purpose", purpose);
  return call(emu, "POST", "/v1/files", { form, key });
}

/** The `error` object of an error reply. */
export function errorOf(reply: Reply): { type: string; message: string } {
  return (reply.body as { error: { type: string; message: string } }).error;
}

/** The body of a successful upload. */
export interface FileBody {
  id: string;
  bytes: number;
  status: string;
  status_details?: string;
  filename: string;
  created_at: number;
}
