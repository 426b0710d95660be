/**
 * The console's browser-side logic that needs no browser: the SSE parser (frames split anywhere,
 * CRLF, comments), the mapping from API errors to messages a user can act on, and the upload checks.
 */
import { describe, expect, it } from "vitest";
import { errorFromResponse, parseRetryAfter } from "../../web/src/api";
import { formatBytes } from "../../web/src/format";
import { readSse } from "../../web/src/sse";
import { checkFile, extensionOf, normalisePrefix } from "../../web/src/upload";

function streamOf(parts: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const p of parts) controller.enqueue(typeof p === "string" ? encoder.encode(p) : p);
      controller.close();
    },
  });
}

async function collect(parts: (string | Uint8Array)[]) {
  const out = [];
  for await (const e of readSse(streamOf(parts))) out.push(e);
  return out;
}

describe("readSse", () => {
  it("parses named events whatever the chunk boundaries", async () => {
    const text =
      'event: start\ndata: {"type":"start"}\n\n: keep-alive\n\nevent: delta\ndata: {"content":"Hel"}\n\n' +
      'event: delta\r\ndata: {"content":"lo é"}\r\n\r\nevent: done\ndata: {"a":1}\ndata: {"b":2}\n\n';
    const whole = await collect([text]);
    expect(whole.map((e) => e.event)).toEqual(["start", "delta", "delta", "done"]);
    expect(whole[3].data).toBe('{"a":1}\n{"b":2}');
    // Every byte split point, including inside CRLF and inside the two bytes of "é".
    const bytes = new TextEncoder().encode(text);
    for (let i = 1; i < bytes.length; i++) {
      expect(await collect([bytes.slice(0, i), bytes.slice(i)])).toEqual(whole);
    }
  });

  it("defaults the event name to message", async () => {
    expect(await collect(["data: [DONE]\n\n"])).toEqual([
      { event: "message", data: "[DONE]", id: undefined },
    ]);
  });
});

describe("errorFromResponse", () => {
  const body = (type: string, message: string) => ({ error: { type, message } });

  it("turns statuses into actionable kinds and messages", () => {
    expect(errorFromResponse(401, new Headers(), body("authentication_error", "x")).kind).toBe("auth");
    const limited = errorFromResponse(
      429,
      new Headers({ "retry-after": "7" }),
      body("rate_limit_error", "The model provider is rate limiting requests; retry after 7 s."),
    );
    expect(limited.kind).toBe("rate_limited");
    expect(limited.retryAfterSeconds).toBe(7);
    expect(limited.message).toMatch(/Try again in 7 s/);
    const quota = errorFromResponse(429, new Headers(), {
      error: { type: "insufficient_quota", message: "out of credit", code: "provider_quota_exhausted" },
    });
    expect(quota.kind).toBe("quota");
    const notConfigured = errorFromResponse(
      503,
      new Headers(),
      body("provider_not_configured", "provider API key not configured: set MOONSHOT_API_KEY"),
    );
    expect(notConfigured.kind).toBe("not_configured");
    expect(notConfigured.message).toContain("MOONSHOT_API_KEY");
    const tooLarge = errorFromResponse(413, new Headers(), body("request_too_large", "The file is too big."));
    expect(tooLarge).toMatchObject({ kind: "invalid", message: "The file is too big." });
    expect(errorFromResponse(502, new Headers(), {}).kind).toBe("unavailable");
  });

  it("reads Retry-After as seconds or a date", () => {
    expect(parseRetryAfter("3")).toBe(3);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString())).toBeGreaterThanOrEqual(9);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe("upload checks", () => {
  const policy = { maxBytes: 2048, extensions: ["pdf", "docx"] };

  it("accepts supported files and explains refusals", () => {
    expect(checkFile({ name: "a.PDF", size: 10 }, policy)).toBeUndefined();
    expect(checkFile({ name: "a.exe", size: 10 }, policy)).toMatch(/\.exe files are not supported/);
    expect(checkFile({ name: "Makefile", size: 10 }, policy)).toMatch(/without an extension/);
    expect(checkFile({ name: "a.pdf", size: 0 }, policy)).toMatch(/empty/);
    expect(checkFile({ name: "a.pdf", size: 4096 }, policy)).toBe("The file is 4.0 KB; the limit is 2.0 KB.");
  });

  it("normalises folders and extensions", () => {
    expect(normalisePrefix(" /reports//2025/ ")).toBe("reports/2025/");
    expect(normalisePrefix("../x/./y")).toBe("x/y/");
    expect(normalisePrefix("")).toBe("");
    expect(extensionOf(".bashrc")).toBe("");
    expect(extensionOf("a.tar.GZ")).toBe("gz");
    expect(formatBytes(100 * 1024 * 1024)).toBe("100 MB");
  });
});
