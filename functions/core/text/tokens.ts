/**
 * A local, deterministic token estimate: no tokenizer download, no provider call. It is tuned to
 * slightly over-estimate a BPE tokenizer like Kimi's, so budgets computed from it stay on the safe
 * side: about 1 token per 3.5 ASCII characters, 1 per CJK character (Han, kana, Hangul, full-width
 * forms), 1 per 2 other BMP characters (Cyrillic, Greek, accented Latin...), 2 per astral character
 * (emoji and rare scripts, several byte-level tokens each).
 */

/** CJK ranges counted as one token per character. */
function isCjk(code: number): boolean {
  return (
    (code >= 0x2e80 && code <= 0x9fff) || // radicals, punctuation, kana, CJK unified ideographs
    (code >= 0xa960 && code <= 0xa97f) || // Hangul Jamo extended-A
    (code >= 0xac00 && code <= 0xd7ff) || // Hangul syllables, Jamo extended-B
    (code >= 0xf900 && code <= 0xfaff) || // CJK compatibility ideographs
    (code >= 0xfe30 && code <= 0xfe4f) || // CJK compatibility forms
    (code >= 0xff00 && code <= 0xffef) // half-width and full-width forms
  );
}

/** Estimated tokens of `text` (0 for the empty string, at least 1 otherwise). */
export function estimateTokens(text: string): number {
  if (text.length === 0) return 0;
  let ascii = 0;
  let weighted = 0; // in half tokens, to stay in integers
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) {
      ascii++;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      weighted += 4; // a surrogate pair: 2 tokens; skip the low half
      i++;
    } else if (isCjk(code)) {
      weighted += 2;
    } else {
      weighted += 1;
    }
  }
  return Math.max(1, Math.ceil(ascii / 3.5 + weighted / 2));
}

/**
 * Pieces of text priced separately by {@link conservativeTokenEstimate}: CJK characters, ASCII words,
 * digit runs, other letters, newlines, other whitespace, combining marks, anything else (punctuation,
 * symbols, emoji).
 */
const PIECE =
  /(\p{Script=Han}|\p{Script=Hiragana}|\p{Script=Katakana}|\p{Script=Hangul})|([A-Za-z]+)|(\p{Nd}+)|(\p{L}+)|(\n)|([ \t\r\f\v\u00a0]+)|(\p{M}+)|([^\s])/gu;

/**
 * An estimate meant to stay ABOVE a real BPE count, for a provider that cannot count tokens for us
 * (the budget then has nothing to correct it): every piece is priced at or above what tokenizers
 * charge for it. Words cost one token per 3.5 letters rounded up (so every short word is a whole
 * token), digits one per 3, other letters one per 2, each CJK character, newline, punctuation mark or
 * symbol one (JSON and markup are where tokenizers spend the most: GLM's counts 1.4-2.5x a
 * character-based estimate there), an emoji or other astral character 2, runs of spaces one per 4.
 */
export function conservativeTokenEstimate(text: string): number {
  let tokens = 0;
  for (const m of text.matchAll(PIECE)) {
    if (m[1] !== undefined) tokens += 1;
    else if (m[2] !== undefined) tokens += Math.ceil(m[2].length / 3.5);
    else if (m[3] !== undefined) tokens += Math.ceil(m[3].length / 3);
    else if (m[4] !== undefined) tokens += Math.ceil(m[4].length / 2);
    else if (m[5] !== undefined) tokens += 1;
    else if (m[6] !== undefined) tokens += m[6].length > 1 ? Math.ceil(m[6].length / 4) : 0;
    else if (m[7] !== undefined) tokens += 0;
    else tokens += m[8]!.length > 1 ? 2 : 1;
  }
  return tokens;
}
