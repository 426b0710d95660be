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

/** Splits `text` into retrieval-sized chunks (an empty text yields no chunks). */
export function chunkText(text: string, options: ChunkingOptions = {}): Chunk[] {
  const targetTokens = options.targetTokens ?? CHUNKING_DEFAULTS.targetTokens;
  const maxTokens = options.maxTokens ?? CHUNKING_DEFAULTS.maxTokens;
  const maxBytes = options.maxBytes ?? CHUNKING_DEFAULTS.maxBytes;
  if (text.length === 0) return [];

  // Paragraph-level pieces first, so packing prefers paragraph ends; oversized paragraphs are split
  // by sentences (then words, then characters) inside `pieces`.
  const all = pieces(text, 0, maxTokens, maxBytes);

  const chunks: Chunk[] = [];
  let current = "";
  let currentTokens = 0;
  let currentBytes = 0;
  const flush = () => {
    if (current.length === 0) return;
    chunks.push({ text: current, tokens: estimateTokens(current), bytes: currentBytes });
    current = "";
    currentTokens = 0;
    currentBytes = 0;
  };
  for (const piece of all) {
    const tokens = estimateTokens(piece);
    const bytes = byteLength(piece);
    if (current.length > 0 && (currentTokens + tokens > maxTokens || currentBytes + bytes > maxBytes)) {
      flush();
    }
    current += piece;
    // The sum of piece estimates bounds the joined text's estimate from above (ceil per piece).
    currentTokens += tokens;
    currentBytes += bytes;
    if (currentTokens >= targetTokens) flush();
  }
  flush();
  return chunks;
}
