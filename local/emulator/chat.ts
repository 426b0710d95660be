/**
 * The emulator's "model": deterministic, offline, and honest about its context.
 *
 * Documents arrive as `system` messages (the provider's documented pattern). Our chat API puts a first
 * line `Document: <key>` on each; unlabelled system messages are accepted too and named by position
 * (but when labelled ones are present, unlabelled ones are taken as instructions and not quoted).
 * The answer quotes, verbatim, the sentence of the system messages that best matches the user's last
 * question (BM25 via minisearch, stop words ignored), naming where it came from. Nothing else from the
 * context is echoed, so a test can tell a right context from a wrong one: text of a document that was
 * not sent can never appear in the answer.
 */
import MiniSearch from "minisearch";
import { messageText } from "./tokens";

export interface ChatSource {
  /** The document key from a `Document: <key>` line, or "system message N". */
  label: string;
  sentence: string;
}

export interface ChatAnswer {
  content: string;
  /** The quoted source, when one matched. */
  source?: ChatSource;
  /** A short, deterministic trace of how the answer was found (streamed as reasoning by thinking models). */
  reasoning: string;
}

interface IncomingMessage {
  role?: unknown;
  content?: unknown;
}

interface Sentence {
  id: number;
  text: string;
  label: string;
}

const LABEL = /^\s*Document:\s*(.+?)\s*$/i;

/** Answers the last user question from the system messages of a chat request. */
export function answer(messages: readonly IncomingMessage[]): ChatAnswer {
  const question = lastUserText(messages);
  const sentences = contextSentences(messages);
  const sources = new Set(sentences.map((s) => s.label)).size;

  if (sentences.length === 0) {
    return {
      content: "No documents were provided in the system messages, so I cannot answer from them.",
      reasoning: "The request carries no system message text to search.",
    };
  }
  const terms = [
    ...new Set(
      tokenize(question)
        .map(processTerm)
        .filter((t): t is string => t !== null),
    ),
  ];
  if (terms.length === 0) {
    return {
      content: "I could not find anything relevant to the question in the provided documents.",
      reasoning: `The question has no searchable terms; ${sentences.length} sentences from ${sources} sources were available.`,
    };
  }

  const index = new MiniSearch<Sentence>({ fields: ["text"], idField: "id", tokenize, processTerm });
  index.addAll(sentences);
  const hits = index
    .search(terms.join(" "), { combineWith: "OR", prefix: false, fuzzy: false })
    .sort((a, b) => b.score - a.score || (a.id as number) - (b.id as number));
  const best = hits[0] ? sentences[hits[0].id as number] : undefined;
  const reasoning = `Searched ${sentences.length} sentences from ${sources} sources for: ${terms.join(", ")}.`;
  if (!best) {
    return {
      content: "I could not find anything relevant to the question in the provided documents.",
      reasoning,
    };
  }
  return {
    content: `According to ${best.label}: "${best.text}"`,
    source: { label: best.label, sentence: best.text },
    reasoning,
  };
}

function lastUserText(messages: readonly IncomingMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === "user") return messageText(messages[i]?.content);
  }
  return "";
}

/**
 * The quotable sentences. When some system messages carry a `Document:` label, the unlabelled ones are
 * instructions (e.g. "Answer using the documents..."), not sources, and are never quoted.
 */
function contextSentences(messages: readonly IncomingMessage[]): Sentence[] {
  const sources: { label: string; text: string; labelled: boolean }[] = [];
  let position = 0;
  for (const message of messages) {
    if (message.role !== "system") continue;
    position += 1;
    const text = messageText(message.content);
    const newline = text.indexOf("\n");
    const m = LABEL.exec(newline >= 0 ? text.slice(0, newline) : text);
    if (m?.[1])
      sources.push({ label: m[1], text: newline >= 0 ? text.slice(newline + 1) : "", labelled: true });
    else sources.push({ label: `system message ${position}`, text, labelled: false });
  }
  const anyLabelled = sources.some((s) => s.labelled);
  const out: Sentence[] = [];
  for (const source of sources) {
    if (anyLabelled && !source.labelled) continue;
    for (const sentence of splitSentences(source.text))
      out.push({ id: out.length, text: sentence, label: source.label });
  }
  return out;
}

/** Splits text into sentences: at line breaks, and after . ! ? (then space) or 。！？. */
export function splitSentences(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    for (const part of line.split(/(?<=[.!?])\s+|(?<=[。！？])/u)) {
      const s = part.trim();
      if (s.length > 0) out.push(s);
    }
  }
  return out;
}

const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;

/** Words of letters/digits; CJK text is split into single characters (it has no spaces). */
function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const word = m[0];
    if (CJK.test(word)) {
      let run = "";
      for (const ch of word) {
        if (CJK.test(ch)) {
          if (run) out.push(run);
          run = "";
          out.push(ch);
        } else run += ch;
      }
      if (run) out.push(run);
    } else out.push(word);
  }
  return out;
}

const STOP_WORDS = new Set(
  (
    "a an and are as at be been but by can could did do does doesn for from had has have how i if in into is it its " +
    "me my no not of on or our please say says should so tell than that the their them then there these they this " +
    "those to us was we were what when where which who whom why will with would you your about any all also give " +
    "show explain describe document documents file files text according"
  ).split(" "),
);

/** Lower-cases, drops stop words and folds a plural "s" so "policies"/"policy" stay apart but "rates"/"rate" meet. */
function processTerm(term: string): string | null {
  const t = term.toLowerCase();
  if (STOP_WORDS.has(t)) return null;
  if (t.length > 3 && t.endsWith("s") && !t.endsWith("ss")) return t.slice(0, -1);
  return t;
}
