/**
 * The one tokenizer of the project's keyword search, shared by the chat's in-memory ranking
 * (chat/context.ts) and the search index (core/search): lower-cased words of letters and digits, CJK
 * runs split into characters (they carry no spaces), a small English stop-word list and a trailing
 * plural "s" folded. Index and query go through the same functions, so they always agree.
 */

const STOP_WORDS = new Set(
  (
    "a an and are as at be been but by can could did do does doesn for from had has have how i if in into is it its " +
    "me my no not of on or our please say says should so tell than that the their them then there these they this " +
    "those to us was we were what when where which who whom why will with would you your about any all also give " +
    "show explain describe document documents file files text according"
  ).split(" "),
);

/** Lower-case, drop stop words, fold a trailing plural "s" (but not "ss"). Shared by index and query. */
export function normalizeTerm(term: string): string | null {
  const t = term.toLowerCase();
  if (t.length === 0 || STOP_WORDS.has(t)) return null;
  if (t.length > 3 && t.endsWith("s") && !t.endsWith("ss")) return t.slice(0, -1);
  return t;
}

const NON_WORD = /[^\p{L}\p{N}]+/u;
export const CJK_CHAR = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/**
 * Lower-cased words of letters and digits; CJK runs split into characters (they carry no spaces).
 * The common no-CJK case is one native lower-case and split, which matters at 40 MB of text.
 */
export function tokenize(text: string): string[] {
  const words = text.toLowerCase().split(NON_WORD);
  if (words[0] === "") words.shift();
  if (words.length > 0 && words[words.length - 1] === "") words.pop();
  if (!CJK_CHAR.test(text)) return words;
  const out: string[] = [];
  for (const word of words) {
    if (!CJK_CHAR.test(word)) {
      out.push(word);
      continue;
    }
    let run = "";
    for (const ch of word) {
      if (CJK_CHAR.test(ch)) {
        if (run) out.push(run);
        run = "";
        out.push(ch);
      } else run += ch;
    }
    if (run) out.push(run);
  }
  return out;
}

/** The distinct normalised terms of a query. */
export function queryTerms(query: string): string[] {
  const terms = new Set<string>();
  for (const t of tokenize(query)) {
    const n = normalizeTerm(t);
    if (n) terms.add(n);
  }
  return [...terms];
}
