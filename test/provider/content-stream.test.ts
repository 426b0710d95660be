/**
 * The file-content decoder, property-tested: whatever the text and wherever the response is cut into
 * pieces (inside escapes, between the halves of a surrogate pair), the pieces decode to exactly the
 * text, as extractContent reads the whole body.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ContentDecoder,
  ContentStreamError,
  extractContent,
} from "../../functions/core/provider/content-stream";

/** `body` cut at `cuts` (positions, any order). */
function cut(body: string, cuts: number[]): string[] {
  const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const c of at) {
    out.push(body.slice(from, c));
    from = c;
  }
  out.push(body.slice(from));
  return out;
}

function decode(contentType: string | null, pieces: string[]): string {
  const d = new ContentDecoder(contentType);
  let text = "";
  for (const p of pieces) text += d.push(p);
  return text + d.end();
}

const text = fc.string({ unit: "binary", maxLength: 300 });
const cuts = fc.array(fc.nat(), { maxLength: 12 });

describe("ContentDecoder", () => {
  it("decodes the JSON envelope cut anywhere, whatever the field order", () => {
    fc.assert(
      fc.property(text, cuts, fc.boolean(), (content, at, contentFirst) => {
        const others = {
          file_type: "text/plain",
          filename: 'a "b".txt',
          title: "",
          meta: { x: [1, "}"] },
          n: 3,
        };
        const envelope = contentFirst
          ? { content, ...others, type: "file" }
          : { ...others, content, type: "file" };
        const body = JSON.stringify(envelope);
        expect(decode("application/json; charset=utf-8", cut(body, at))).toBe(content);
        // The same answer as reading the whole body.
        expect(extractContent(body, "application/json")).toBe(content);
      }),
      { numRuns: 300 },
    );
  });

  it("passes plain text through, and decides an undeclared body like extractContent", () => {
    fc.assert(
      fc.property(
        text,
        cuts,
        fc.constantFrom("text/plain; charset=utf-8", null, "application/octet-stream"),
        (t, at, ct) => {
          expect(decode(ct, cut(t, at))).toBe(extractContent(t, ct));
        },
      ),
      { numRuns: 300 },
    );
    const doc = JSON.stringify({ content: "a JSON document", other: 1 });
    expect(decode(null, cut(doc, [5, 9]))).toBe(doc);
    expect(decode("text/plain", [doc])).toBe(doc);
  });

  it("a declared envelope without content is the text; one cut short is an error", () => {
    const body = JSON.stringify({ data: [1, 2] });
    expect(decode("application/json", cut(body, [3]))).toBe(body);
    const truncated = JSON.stringify({ content: "half" }).slice(0, 14);
    expect(() => decode("application/json", [truncated])).toThrow(ContentStreamError);
  });
});
