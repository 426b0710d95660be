/**
 * Text extraction for `purpose=file-extract` uploads, standing in for the provider's parser.
 *
 * Choices (the provider documents formats, not parser behaviour):
 * - The file kind is decided by the extension, like the upload page's format list.
 * - PDF: unpdf (a serverless build of Mozilla's pdf.js), `extractText` with pages merged.
 * - DOCX: mammoth's `extractRawText` (paragraphs separated by blank lines).
 * - Text-like formats (txt, md, csv, json, yaml, logs, code...): the bytes as UTF-8. NUL bytes or invalid
 *   UTF-8 mean the file is not text: extraction fails (status `error`), it is not decoded lossily.
 * - HTML: tags, scripts, styles and comments stripped, common entities decoded.
 * - Formats the provider accepts but this emulator cannot parse (doc, xlsx, pptx, epub, images...): the
 *   upload succeeds with status `error` and a `status_details` saying so, and their content answers 500,
 *   so code paths for "uploaded but not extractable" get exercised.
 * - Anything else (exe, zip, no extension...): rejected at upload with 400 invalid_request_error.
 * Extraction never throws: every failure comes back as `{ ok: false, details }`.
 */
import { isUtf8 } from "node:buffer";
import { type FileHandle, open, readFile } from "node:fs/promises";
import { extname } from "node:path";

// unpdf 1.6 bundles a pdf.js that calls Promise.try (Node >= 22.10) without polyfilling it (it does
// polyfill its other new built-ins). On Node 20 the call throws inside pdf.js's message handler, which
// escapes as an uncaught exception and kills the process, so define the standard behaviour when absent.
const PromiseCtor = Promise as unknown as {
  try?: (fn: (...a: unknown[]) => unknown, ...args: unknown[]) => unknown;
};
if (typeof PromiseCtor.try !== "function") {
  Object.defineProperty(Promise, "try", {
    value: (fn: (...a: unknown[]) => unknown, ...args: unknown[]) =>
      new Promise((resolve) => resolve(fn(...args))),
    writable: true,
    configurable: true,
  });
}

export type FileKind = "pdf" | "docx" | "text" | "html" | "opaque" | "unsupported";

export interface FileClass {
  kind: FileKind;
  /** Lower-case extension with the dot, "" when none. */
  ext: string;
  /** MIME type reported as `file_type` by the content endpoint. */
  mime: string;
}

const TEXT_TYPES: Record<string, string> = {
  ".txt": "text/plain",
  ".text": "text/plain",
  ".md": "text/markdown",
  ".markdown": "text/markdown",
  ".csv": "text/csv",
  ".tsv": "text/tab-separated-values",
  ".json": "application/json",
  ".jsonl": "application/jsonl",
  ".log": "text/plain",
  ".yaml": "application/yaml",
  ".yml": "application/yaml",
  ".ini": "text/plain",
  ".conf": "text/plain",
  ".cfg": "text/plain",
  ".toml": "application/toml",
  ".xml": "application/xml",
  ".rst": "text/x-rst",
  ".tex": "text/x-tex",
  ".sql": "application/sql",
  ".sh": "application/x-sh",
  ".go": "text/x-go",
  ".h": "text/x-c",
  ".hpp": "text/x-c++",
  ".c": "text/x-c",
  ".cpp": "text/x-c++",
  ".cxx": "text/x-c++",
  ".cc": "text/x-c++",
  ".cs": "text/x-csharp",
  ".java": "text/x-java",
  ".kt": "text/x-kotlin",
  ".scala": "text/x-scala",
  ".swift": "text/x-swift",
  ".rs": "text/x-rust",
  ".rb": "text/x-ruby",
  ".pl": "text/x-perl",
  ".lua": "text/x-lua",
  ".r": "text/x-r",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".cjs": "text/javascript",
  ".jsx": "text/javascript",
  ".ts": "text/x-typescript",
  ".tsx": "text/x-typescript",
  ".css": "text/css",
  ".jsp": "text/plain",
  ".php": "application/x-php",
  ".py": "text/x-python",
  ".py3": "text/x-python",
  ".asp": "text/plain",
};

const HTML_TYPES: Record<string, string> = { ".html": "text/html", ".htm": "text/html" };

/** Accepted by the provider (its format list), but not parsed by the emulator. */
const OPAQUE_TYPES: Record<string, string> = {
  ".doc": "application/msword",
  ".dot": "application/msword",
  ".xls": "application/vnd.ms-excel",
  ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  ".ppt": "application/vnd.ms-powerpoint",
  ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  ".epub": "application/epub+zip",
  ".mobi": "application/x-mobipocket-ebook",
  ".jpeg": "image/jpeg",
  ".jpg": "image/jpeg",
  ".jfif": "image/jpeg",
  ".pjp": "image/jpeg",
  ".pjpeg": "image/jpeg",
  ".png": "image/png",
  ".apng": "image/apng",
  ".bmp": "image/bmp",
  ".dib": "image/bmp",
  ".gif": "image/gif",
  ".svg": "image/svg+xml",
  ".svgz": "image/svg+xml",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".xbm": "image/x-xbitmap",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
  ".avif": "image/avif",
  ".mp4": "video/mp4",
  ".mov": "video/quicktime",
  ".webm": "video/webm",
};

/** Classifies an uploaded file by its name. */
export function classifyFile(filename: string): FileClass {
  const ext = extname(filename).toLowerCase();
  if (ext === ".pdf") return { kind: "pdf", ext, mime: "application/pdf" };
  if (ext === ".docx") {
    return {
      kind: "docx",
      ext,
      mime: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    };
  }
  if (ext in TEXT_TYPES) return { kind: "text", ext, mime: TEXT_TYPES[ext]! };
  if (ext in HTML_TYPES) return { kind: "html", ext, mime: HTML_TYPES[ext]! };
  if (ext in OPAQUE_TYPES) return { kind: "opaque", ext, mime: OPAQUE_TYPES[ext]! };
  return { kind: "unsupported", ext, mime: "application/octet-stream" };
}

export type Extraction =
  | { ok: true /** Extracted text; `undefined` means "the stored bytes are the text". */; text?: string }
  | { ok: false; details: string };

/** Extracts the text of the file at `path`, never throwing. */
export async function extractFile(path: string, cls: FileClass): Promise<Extraction> {
  try {
    switch (cls.kind) {
      case "pdf":
        return await extractPdf(path);
      case "docx":
        return await extractDocx(path);
      case "text": {
        const problem = await checkUtf8Text(path);
        return problem ? { ok: false, details: problem } : { ok: true };
      }
      case "html": {
        const problem = await checkUtf8Text(path);
        if (problem) return { ok: false, details: problem };
        return { ok: true, text: htmlToText(await readFile(path, "utf8")) };
      }
      case "opaque":
        return {
          ok: false,
          details: `the emulator cannot extract text from ${cls.ext} files (only PDF, DOCX, HTML and text formats)`,
        };
      default:
        return { ok: false, details: `unsupported file type ${cls.ext || "(no extension)"}` };
    }
  } catch (err) {
    return { ok: false, details: describe(err) };
  }
}

async function extractPdf(path: string): Promise<Extraction> {
  const bytes = new Uint8Array(await readFile(path));
  if (!startsWith(bytes, "%PDF-")) return { ok: false, details: "invalid PDF file: missing %PDF header" };
  // Loaded on first use: pdf.js is large and most emulator runs never see a PDF.
  const { extractText, getDocumentProxy } = await import("unpdf");
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>> | undefined;
  try {
    pdf = await getDocumentProxy(bytes, { verbosity: 0 });
    const { text } = await extractText(pdf, { mergePages: true });
    return { ok: true, text: text.trim() };
  } catch (err) {
    return { ok: false, details: `invalid PDF file: ${describe(err)}` };
  } finally {
    await pdf?.destroy().catch(() => undefined);
  }
}

async function extractDocx(path: string): Promise<Extraction> {
  const bytes = await readFile(path);
  if (!startsWith(bytes, "PK")) return { ok: false, details: "invalid DOCX file: not a zip archive" };
  const mammoth = (await import("mammoth")).default;
  try {
    const result = await mammoth.extractRawText({ buffer: bytes });
    return { ok: true, text: result.value.trim() };
  } catch (err) {
    return { ok: false, details: `invalid DOCX file: ${describe(err)}` };
  }
}

/**
 * Checks that a file is UTF-8 text without NUL bytes; returns why it is not, or undefined when it is.
 * Reads the file into one reused buffer and validates each chunk in place with `buffer.isUtf8` (no
 * decoded strings, no per-chunk allocations), carrying a multi-byte character split across chunks, so
 * checking a 100 MB log costs about 1 MB of memory.
 */
export async function checkUtf8Text(path: string): Promise<string | undefined> {
  const file = await open(path, "r");
  try {
    return await checkOpenFile(file);
  } finally {
    await file.close();
  }
}

async function checkOpenFile(file: FileHandle): Promise<string | undefined> {
  const buffer = Buffer.allocUnsafe(1 << 20);
  let offset = 0;
  let carry: Buffer = Buffer.alloc(0);
  const invalid = "the file is not valid UTF-8 text";
  for (;;) {
    const { bytesRead } = await file.read(buffer, 0, buffer.length, offset);
    if (bytesRead === 0) break;
    let chunk = buffer.subarray(0, bytesRead);
    const nul = chunk.indexOf(0);
    if (nul >= 0) return `binary content (NUL byte at offset ${offset + nul}) in a text file`;
    offset += bytesRead;
    if (carry.length > 0) {
      const need = sequenceLength(carry[0]!) - carry.length;
      if (chunk.length < need) {
        carry = Buffer.concat([carry, chunk]);
        continue;
      }
      if (!isUtf8(Buffer.concat([carry, chunk.subarray(0, need)]))) return invalid;
      chunk = chunk.subarray(need);
      carry = Buffer.alloc(0);
    }
    const split = incompleteTail(chunk);
    if (split < chunk.length) carry = Buffer.from(chunk.subarray(split));
    if (!isUtf8(chunk.subarray(0, split))) return invalid;
  }
  return carry.length > 0 ? invalid : undefined;
}

/** Bytes in the UTF-8 sequence this lead byte starts (0 for a byte that cannot start one). */
function sequenceLength(b: number): number {
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return 2;
  if (b >= 0xe0 && b <= 0xef) return 3;
  if (b >= 0xf0 && b <= 0xf4) return 4;
  return 0;
}

/** Index where an incomplete multi-byte sequence at the end of `chunk` starts (chunk.length if none). */
function incompleteTail(chunk: Buffer): number {
  for (let k = 1; k <= Math.min(3, chunk.length); k++) {
    const b = chunk[chunk.length - k]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    return sequenceLength(b) > k ? chunk.length - k : chunk.length;
  }
  return chunk.length;
}

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
};

/** Plain text of an HTML document: visible text only, one block element per line. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<(script|style|noscript|template)\b[\s\S]*?<\/\1\s*>/gi, "")
    .replace(/<(br|hr)\b[^>]*>/gi, "\n")
    .replace(
      /<\/?(p|div|section|article|header|footer|li|ul|ol|tr|table|h[1-6]|title|pre|blockquote)\b[^>]*>/gi,
      "\n",
    )
    .replace(/<[^>]*>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name: string) => {
      if (name[0] === "#") {
        const code =
          name[1] === "x" || name[1] === "X" ? Number.parseInt(name.slice(2), 16) : Number(name.slice(1));
        return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return ENTITIES[name.toLowerCase()] ?? whole;
    })
    .split("\n")
    .map((line) => line.replace(/[ \t\r\f\v]+/g, " ").trim())
    .filter((line) => line.length > 0)
    .join("\n");
}

function startsWith(bytes: Uint8Array, prefix: string): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n")[0] || err.name;
  return String(err);
}
