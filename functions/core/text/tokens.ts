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
