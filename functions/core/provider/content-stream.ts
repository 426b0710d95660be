/**
 * Decodes a file-content response (`GET /v1/files/{id}/content`) as it arrives, so a 100 MB text is
 * never held whole: plain text passes straight through; the JSON envelope `{"content": "...", ...}`
 * has its `content` string unescaped piece by piece (the other fields are small and skipped).
 *
 * Which one it is follows the same rules as extractContent (client.ts): `text/plain` is the text; a
 * declared JSON body starting with `{` is the envelope; an undeclared body starting with `{` is
 * ambiguous (an extracted JSON document, or an envelope without a content type) and is buffered and
 * decided by extractContent at the end, the rare case. A declared envelope without a `content` string
 * is the text itself, as extractContent has it.
 */

/** Raw bytes of a declared envelope kept until its `content` value starts (then dropped). */
const MAX_HEAD_CHARS = 1024 * 1024;

type Mode = "undecided" | "plain" | "envelope" | "buffered";
type State =
  | "objectStart"
  | "keyOrEnd"
  | "key"
  | "colon"
  | "valueStart"
  | "content"
  | "skipString"
  | "skipScalar"
  | "skipNested"
  | "afterValue"
  | "done";

/** The envelope ended early or is not JSON. */
export class ContentStreamError extends Error {
  override readonly name = "ContentStreamError";
}

export class ContentDecoder {
  private mode: Mode = "undecided";
  private held = "";
  private state: State = "objectStart";
  private key = "";
  private escape: string | undefined;
  private nested = { depth: 0, inString: false, escaped: false };
  private sawContent = false;
  private head: string | undefined = "";

  constructor(private readonly contentType: string | null) {}

  /** Decoded text available after `piece` (possibly ""). */
  push(piece: string): string {
    if (this.mode === "undecided") {
      this.held += piece;
      const first = this.held.search(/\S/);
      if (first < 0) return "";
      const ct = (this.contentType ?? "").toLowerCase();
      const brace = this.held[first] === "{";
      this.mode =
        ct.includes("text/plain") || !brace ? "plain" : ct.includes("json") ? "envelope" : "buffered";
      piece = this.held;
      this.held = "";
    }
    if (this.mode === "plain") return piece;
    if (this.mode === "buffered") {
      this.held += piece;
      return "";
    }
    if (this.head !== undefined) {
      this.head += piece;
      if (this.head.length > MAX_HEAD_CHARS) this.head = undefined;
    }
    return this.parse(piece);
  }

  /** The rest of the text; throws ContentStreamError when an envelope is cut short. */
  end(): string {
    if (this.mode === "undecided") return this.held;
    if (this.mode === "plain") return "";
    if (this.mode === "buffered") return extractContent(this.held, this.contentType);
    if (this.state !== "done")
      throw new ContentStreamError("the content response ended inside its JSON envelope");
    if (this.sawContent) return "";
    if (this.head === undefined)
      throw new ContentStreamError("a JSON content response without a content field");
    return this.head;
  }

  private parse(s: string): string {
    let out = "";
    let i = 0;
    while (i < s.length) {
      switch (this.state) {
        case "content": {
          if (this.escape !== undefined) {
            const done = this.readEscape(s, i);
            i = done.next;
            out += done.text;
            continue;
          }
          // Copy the run up to the next quote or backslash in one go.
          let j = i;
          while (j < s.length && s.charCodeAt(j) !== 0x22 && s.charCodeAt(j) !== 0x5c) j++;
          out += s.slice(i, j);
          i = j;
          if (i >= s.length) break;
          if (s[i] === '"') {
            this.state = "afterValue";
            this.head = undefined;
          } else this.escape = "";
          i++;
          break;
        }
        case "objectStart":
          if (s[i] === "{") this.state = "keyOrEnd";
          else if (!/\s/.test(s[i]!))
            throw new ContentStreamError("the content envelope is not a JSON object");
          i++;
          break;
        case "keyOrEnd":
          if (s[i] === '"') {
            this.state = "key";
            this.key = "";
          } else if (s[i] === "}") this.state = "done";
          else if (!/\s/.test(s[i]!)) throw new ContentStreamError("malformed content envelope");
          i++;
          break;
        case "key": {
          if (this.escape !== undefined) {
            const done = this.readEscape(s, i);
            i = done.next;
            this.key += done.text;
            continue;
          }
          const c = s[i]!;
          if (c === '"') this.state = "colon";
          else if (c === "\\") this.escape = "";
          else this.key += c;
          i++;
          break;
        }
        case "colon":
          if (s[i] === ":") this.state = "valueStart";
          else if (!/\s/.test(s[i]!)) throw new ContentStreamError("malformed content envelope");
          i++;
          break;
        case "valueStart": {
          const c = s[i]!;
          if (/\s/.test(c)) {
            i++;
            break;
          }
          if (c === '"' && this.key === "content" && !this.sawContent) {
            this.state = "content";
            this.sawContent = true;
          } else if (c === '"') this.state = "skipString";
          else if (c === "{" || c === "[") {
            this.state = "skipNested";
            this.nested = { depth: 1, inString: false, escaped: false };
          } else {
            this.state = "skipScalar";
            continue;
          }
          i++;
          break;
        }
        case "skipString": {
          const c = s[i]!;
          if (this.nested.escaped) this.nested.escaped = false;
          else if (c === "\\") this.nested.escaped = true;
          else if (c === '"') this.state = "afterValue";
          i++;
          break;
        }
        case "skipScalar":
          if (s[i] === "," || s[i] === "}" || /\s/.test(s[i]!)) {
            this.state = "afterValue";
            continue;
          }
          i++;
          break;
        case "skipNested": {
          const c = s[i]!;
          const n = this.nested;
          if (n.inString) {
            if (n.escaped) n.escaped = false;
            else if (c === "\\") n.escaped = true;
            else if (c === '"') n.inString = false;
          } else if (c === '"') n.inString = true;
          else if (c === "{" || c === "[") n.depth++;
          else if (c === "}" || c === "]") {
            n.depth--;
            if (n.depth === 0) this.state = "afterValue";
          }
          i++;
          break;
        }
        case "afterValue":
          if (s[i] === ",") this.state = "keyOrEnd";
          else if (s[i] === "}") this.state = "done";
          else if (!/\s/.test(s[i]!)) throw new ContentStreamError("malformed content envelope");
          i++;
          break;
        case "done":
          if (!/\s/.test(s[i]!)) throw new ContentStreamError("data after the content envelope");
          i++;
          break;
      }
    }
    return out;
  }

  /** Continues a backslash escape from s[i]; `text` is what it decodes to once complete. */
  private readEscape(s: string, i: number): { next: number; text: string } {
    let esc = this.escape!;
    while (i < s.length) {
      esc += s[i++];
      if (esc[0] !== "u") break;
      if (esc.length === 5) break;
    }
    const complete = esc[0] === "u" ? esc.length === 5 : esc.length === 1;
    if (!complete) {
      this.escape = esc;
      return { next: i, text: "" };
    }
    this.escape = undefined;
    const simple: Record<string, string> = {
      '"': '"',
      "\\": "\\",
      "/": "/",
      b: "\b",
      f: "\f",
      n: "\n",
      r: "\r",
      t: "\t",
    };
    if (esc[0] === "u") {
      if (!/^u[0-9a-fA-F]{4}$/.test(esc)) throw new ContentStreamError("malformed \\u escape in the content");
      return { next: i, text: String.fromCharCode(Number.parseInt(esc.slice(1), 16)) };
    }
    const text = simple[esc];
    if (text === undefined) throw new ContentStreamError(`malformed escape \\${esc} in the content`);
    return { next: i, text };
  }
}

type Json = Record<string, unknown>;

/**
 * The text of a content response. A JSON envelope is recognised by its content type, or (when the
 * server says nothing useful) by an object with a string `content` plus envelope fields, so an
 * extracted JSON document served as plain text is not mistaken for the envelope.
 */
export function extractContent(text: string, contentType: string | null): string {
  const ct = (contentType ?? "").toLowerCase();
  const looksJson = text.trimStart().startsWith("{");
  if (!looksJson) return text;
  if (ct.includes("text/plain")) return text;
  try {
    const value = JSON.parse(text) as unknown;
    if (value && typeof value === "object" && typeof (value as Json).content === "string") {
      const env = value as Json;
      const declaredJson = ct.includes("json");
      const envelopeFields = "file_type" in env || "filename" in env || env.type === "file";
      if (declaredJson || envelopeFields) return env.content as string;
    }
  } catch {
    // Not JSON after all: it is the text.
  }
  return text;
}
