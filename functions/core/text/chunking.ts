/**
 * Splits extracted text into chunks that suit retrieval and storage: each chunk ends at a paragraph
 * boundary where possible, else at a sentence end, else at whitespace, else anywhere (never inside a
 * surrogate pair); chunks aim at ~2,000 estimated tokens, never exceed `maxTokens`, and never exceed
 * `maxBytes` of UTF-8 (well below DynamoDB's 400 KB item limit). No character is added, dropped or
 * normalised: `chunks.join("") === text` always holds.
 */
import { estimateTokens } from "./tokens";

export interface ChunkingOptions {
  /** A chunk is closed at the next boundary once it reaches this size. Default 2,000. */
  targetTokens?: number;
  /** Hard token ceiling per chunk. Default 3,000. */
  maxTokens?: number;
  /** Hard UTF-8 byte ceiling per chunk. Default 100 KiB. */
  maxBytes?: number;
}

export const CHUNKING_DEFAULTS = {
  targetTokens: 2_000,
  maxTokens: 3_000,
  maxBytes: 100 * 1024,
} as const;

export interface Chunk {
  text: string;
  tokens: number;
  bytes: number;
}

// Boundary patterns, coarsest first. Each match marks where a piece may end (after the match).
const PARAGRAPH = /\n[ \t]*\n\s*/g;
const SENTENCE = /[.!?]["')\]]*\s+|[。！？；][」』）"]*\s*|\n/g;
const WHITESPACE = /\s+/g;
const LEVELS = [PARAGRAPH, SENTENCE, WHITESPACE];

const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");

function fits(piece: string, maxTokens: number, maxBytes: number): boolean {
  // Cheap upper bound first: UTF-8 is at most 3 bytes per UTF-16 unit.
  if (piece.length * 3 <= maxBytes && piece.length <= maxTokens) return true;
  return estimateTokens(piece) <= maxTokens && byteLength(piece) <= maxBytes;
}

/** Splits `text` at every match of `pattern`, keeping separators with the preceding piece. */
function splitAfter(text: string, pattern: RegExp): string[] {
  const pieces: string[] = [];
  let start = 0;
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    const end = m.index + m[0].length;
    if (m[0].length === 0) {
      pattern.lastIndex++;
      continue;
    }
    if (end > start) pieces.push(text.slice(start, end));
    start = end;
  }
  if (start < text.length) pieces.push(text.slice(start));
  return pieces;
}

/** Cuts a boundary-less piece into slices that fit, without splitting a surrogate pair. */
function hardSplit(piece: string, maxTokens: number, maxBytes: number): string[] {
  const out: string[] = [];
  let rest = piece;
  while (rest.length > 0) {
    if (fits(rest, maxTokens, maxBytes)) {
      out.push(rest);
      break;
    }
    // Binary search the longest prefix that fits.
    let lo = 1;
    // No prefix longer than this can fit (every UTF-16 unit costs at least 1/3.5 token and 1 byte).
    let hi = Math.min(rest.length, Math.ceil(maxTokens * 3.5) + 1, maxBytes);
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (fits(rest.slice(0, mid), maxTokens, maxBytes)) lo = mid;
      else hi = mid - 1;
    }
    let cut = lo;
    const last = rest.charCodeAt(cut - 1);
    if (last >= 0xd800 && last <= 0xdbff && cut < rest.length) cut = cut > 1 ? cut - 1 : cut + 1;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  return out;
}

/** Pieces no larger than the limits, each ending at the coarsest boundary available. */
function pieces(text: string, level: number, maxTokens: number, maxBytes: number): string[] {
  if (fits(text, maxTokens, maxBytes)) return [text];
  if (level >= LEVELS.length) return hardSplit(text, maxTokens, maxBytes);
  const out: string[] = [];
  for (const part of splitAfter(text, LEVELS[level]!)) {
    if (fits(part, maxTokens, maxBytes)) out.push(part);
    // A loop, not push(...spread): a long text can yield hundreds of thousands of pieces, more
    // arguments than the call stack holds.
    else for (const piece of pieces(part, level + 1, maxTokens, maxBytes)) out.push(piece);
  }
  return out;
}

/** Greedy packing of pieces into chunks: a chunk closes once it reaches the target, or before a piece would overflow it. */
class Packer {
  private current = "";
  private currentTokens = 0;
  private currentBytes = 0;

  constructor(
    private readonly targetTokens: number,
    private readonly maxTokens: number,
    private readonly maxBytes: number,
  ) {}

  add(piece: string, out: Chunk[]): void {
    const tokens = estimateTokens(piece);
    const bytes = byteLength(piece);
    if (
      this.current.length > 0 &&
      (this.currentTokens + tokens > this.maxTokens || this.currentBytes + bytes > this.maxBytes)
    ) {
      this.flush(out);
    }
    this.current += piece;
    // The sum of piece estimates bounds the joined text's estimate from above (ceil per piece).
    this.currentTokens += tokens;
    this.currentBytes += bytes;
    if (this.currentTokens >= this.targetTokens) this.flush(out);
  }

  flush(out: Chunk[]): void {
    if (this.current.length === 0) return;
    out.push({ text: this.current, tokens: estimateTokens(this.current), bytes: this.currentBytes });
    this.current = "";
    this.currentTokens = 0;
    this.currentBytes = 0;
  }
}

function limitsOf(options: ChunkingOptions) {
  return {
    targetTokens: options.targetTokens ?? CHUNKING_DEFAULTS.targetTokens,
    maxTokens: options.maxTokens ?? CHUNKING_DEFAULTS.maxTokens,
    maxBytes: options.maxBytes ?? CHUNKING_DEFAULTS.maxBytes,
  };
}

/** Splits `text` into retrieval-sized chunks (an empty text yields no chunks). */
export function chunkText(text: string, options: ChunkingOptions = {}): Chunk[] {
  const { targetTokens, maxTokens, maxBytes } = limitsOf(options);
  if (text.length === 0) return [];
  // Paragraph-level pieces first, so packing prefers paragraph ends; oversized paragraphs are split
  // by sentences (then words, then characters) inside `pieces`.
  const packer = new Packer(targetTokens, maxTokens, maxBytes);
  const chunks: Chunk[] = [];
  for (const piece of pieces(text, 0, maxTokens, maxBytes)) packer.add(piece, chunks);
  packer.flush(chunks);
  return chunks;
}

/** Characters buffered before a streamed text is cut at a paragraph boundary and chunked. */
const STREAM_WINDOW = 256 * 1024;

/**
 * chunkText for a text that arrives in pieces, holding only a window of it: `push` returns the chunks
 * completed so far, `end` the rest. The text is cut at paragraph boundaries (a boundary followed by
 * more text, so its whitespace cannot grow), where chunkText's own first split falls, so the chunks
 * are the ones chunkText makes of the whole text. A paragraph longer than twice the window is cut at
 * its last sentence end, else whitespace, else anywhere but inside a surrogate pair: the chunks then
 * may differ from chunkText's, still within the limits and joining to exactly the text.
 */
export class ChunkStream {
  private readonly limits: ReturnType<typeof limitsOf>;
  private readonly packer: Packer;
  private pending = "";
  /** Whether a cut was made: the whole text then does not fit in one piece (see chunkText). */
  private cut = false;

  constructor(
    options: ChunkingOptions = {},
    /** Characters buffered before cutting (tests make it small). */
    private readonly window = STREAM_WINDOW,
  ) {
    this.limits = limitsOf(options);
    this.packer = new Packer(this.limits.targetTokens, this.limits.maxTokens, this.limits.maxBytes);
  }

  push(text: string): Chunk[] {
    this.pending += text;
    const out: Chunk[] = [];
    while (this.pending.length >= this.window) {
      let at = lastBoundary(this.pending, PARAGRAPH);
      if (at === undefined) {
        if (this.pending.length < 2 * this.window) break;
        at = lastBoundary(this.pending, SENTENCE) ?? lastBoundary(this.pending, WHITESPACE) ?? this.hardCut();
      }
      this.packPrefix(this.pending.slice(0, at), out);
      this.pending = this.pending.slice(at);
    }
    return out;
  }

  end(): Chunk[] {
    const out: Chunk[] = [];
    if (this.pending.length > 0) {
      if (this.cut) this.packPrefix(this.pending, out);
      else
        for (const piece of pieces(this.pending, 0, this.limits.maxTokens, this.limits.maxBytes))
          this.packer.add(piece, out);
    }
    this.pending = "";
    this.packer.flush(out);
    return out;
  }

  /** Packs a cut-off prefix as chunkText packs a text too big for one piece: paragraph by paragraph. */
  private packPrefix(prefix: string, out: Chunk[]): void {
    this.cut = true;
    const { maxTokens, maxBytes } = this.limits;
    for (const part of splitAfter(prefix, PARAGRAPH)) {
      if (fits(part, maxTokens, maxBytes)) this.packer.add(part, out);
      else for (const piece of pieces(part, 1, maxTokens, maxBytes)) this.packer.add(piece, out);
    }
  }

  /** A cut near the end that does not split a surrogate pair. */
  private hardCut(): number {
    let at = this.pending.length - 1;
    const c = this.pending.charCodeAt(at - 1);
    if (c >= 0xd800 && c <= 0xdbff) at--;
    return at;
  }
}

/** End of the last match of `pattern` that ends before the end of `text` (its extent is final). */
function lastBoundary(text: string, pattern: RegExp): number | undefined {
  let last: number | undefined;
  pattern.lastIndex = 0;
  for (let m = pattern.exec(text); m !== null; m = pattern.exec(text)) {
    if (m[0].length === 0) {
      pattern.lastIndex++;
      continue;
    }
    const end = m.index + m[0].length;
    if (end < text.length) last = end;
  }
  return last;
}
