/**
 * Server-Sent Events over `fetch` (EventSource cannot send an Authorization header or a POST body).
 * Follows the WHATWG parsing rules: lines end in CRLF, LF or CR; `data:` lines join with "\n"; a
 * blank line dispatches; lines starting with ":" are comments (keep-alives).
 */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Yields each event of an SSE body as it arrives. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let event = "";
  let data: string[] = [];
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        // A lone CR at the end may be the first half of CRLF: wait for more input.
        if (!match || (match[0] === "\r" && match.index === buffer.length - 1)) break;
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (data.length > 0) yield { event: event || "message", data: data.join("\n"), id };
          event = "";
          data = [];
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") event = value;
        else if (field === "id") id = value;
      }
    }
    if (data.length > 0) yield { event: event || "message", data: data.join("\n"), id };
  } finally {
    // Stops the download when the consumer leaves early (a "Stop" button, a final event before EOF).
    await reader.cancel().catch(() => undefined);
  }
}
