/**
 * The prompt layout's invariants (functions/core/chat/prompt-layout.ts), model-based with fast-check:
 * over any conversation, a follow-up's prompt repeats the previous one's stable part byte for byte.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { layoutPrompt } from "../../functions/core/chat/prompt-layout";
import type { ChatMessage } from "../../functions/core/provider/types";

const text = fc.string({ minLength: 1, maxLength: 30 });
const system = text.map((content): ChatMessage => ({ role: "system", content }));
const user = text.map((content): ChatMessage => ({ role: "user", content }));
const assistant = text.map((content): ChatMessage => ({ role: "assistant", content }));
const document = text.map(
  (content): ChatMessage => ({ role: "system", content: `Document: ${content}\n\nbody` }),
);
/** Earlier turns: user/assistant pairs (a system message may appear among them, as callers send). */
const turns = fc
  .array(fc.oneof(fc.tuple(user, assistant), fc.tuple(system, assistant)), { maxLength: 5 })
  .map((pairs) => pairs.flat());

const conversation = fc.record({
  leading: fc.array(system, { maxLength: 3 }),
  turns,
  q1: user,
  a1: assistant,
  q2: user,
  docs1: fc.array(document, { minLength: 1, maxLength: 5 }),
  docs2: fc.array(document, { minLength: 1, maxLength: 5 }),
});

const isPrefix = (prefix: readonly ChatMessage[], of: readonly ChatMessage[]) =>
  prefix.length <= of.length && prefix.every((m, i) => JSON.stringify(m) === JSON.stringify(of[i]));

describe("prompt layout for the prefix cache", () => {
  it("all mode: the follow-up's prompt starts with the whole previous prompt (same documents)", () => {
    fc.assert(
      fc.property(conversation, ({ leading, turns, q1, a1, q2, docs1 }) => {
        const first = layoutPrompt({
          messages: [...leading, ...turns, q1],
          documentsAt: leading.length,
          documents: docs1,
          mode: "all",
        });
        const next = layoutPrompt({
          messages: [...leading, ...turns, q1, a1, q2],
          documentsAt: leading.length,
          documents: docs1,
          mode: "all",
        });
        expect(isPrefix(first, next)).toBe(true);
        expect(next.slice(0, leading.length + docs1.length)).toEqual([...leading, ...docs1]);
      }),
    );
  });

  it("ranked mode: the leading system messages and every earlier turn stay a shared prefix, the question last", () => {
    fc.assert(
      fc.property(conversation, ({ leading, turns, q1, a1, q2, docs1, docs2 }) => {
        const first = layoutPrompt({
          messages: [...leading, ...turns, q1],
          documentsAt: leading.length,
          documents: docs1,
          mode: "ranked",
        });
        const next = layoutPrompt({
          messages: [...leading, ...turns, q1, a1, q2],
          documentsAt: leading.length,
          documents: docs2,
          mode: "ranked",
        });
        expect(isPrefix([...leading, ...turns], first)).toBe(true);
        expect(isPrefix([...leading, ...turns, q1, a1], next)).toBe(true);
        expect(next.at(-1)).toEqual(q2);
        expect(next.slice(-1 - docs2.length, -1)).toEqual(docs2);
      }),
    );
  });

  it("in either mode only inserts the documents, contiguous, in order, never before documentsAt", () => {
    fc.assert(
      fc.property(
        conversation,
        fc.constantFrom("all" as const, "ranked" as const),
        ({ leading, turns, q1, docs1 }, mode) => {
          const messages = [...leading, ...turns, q1];
          const prompt = layoutPrompt({ messages, documentsAt: leading.length, documents: docs1, mode });
          const at = prompt.indexOf(docs1[0]!);
          expect(at).toBeGreaterThanOrEqual(leading.length);
          expect(prompt.slice(at, at + docs1.length)).toEqual(docs1);
          expect([...prompt.slice(0, at), ...prompt.slice(at + docs1.length)]).toEqual(messages);
        },
      ),
    );
  });
});
