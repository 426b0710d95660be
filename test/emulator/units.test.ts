/**
 * Unit checks of the emulator's building blocks: streamed UTF-8 validation across read-buffer
 * boundaries, file classification, HTML stripping, sentence splitting and limit formatting.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { splitSentences } from "../../local/emulator/chat";
import { formatLimit } from "../../local/emulator/errors";
import { checkUtf8Text, classifyFile, htmlToText } from "../../local/emulator/extract";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "emulator-units-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MB = 1 << 20;

async function check(bytes: Buffer): Promise<string | undefined> {
  const path = join(dir, `f-${Math.random().toString(36).slice(2)}`);
  await writeFile(path, bytes);
  return checkUtf8Text(path);
}

describe("checkUtf8Text", () => {
  it("accepts multi-byte characters split across the 1 MB read boundary", async () => {
    for (const [prefix, ch] of [
      ["a", "é"],
      ["ab", "€"],
      ["a", "€"],
      ["abc", "😀"],
      ["a", "😀"],
    ] as const) {
      const unit = Buffer.byteLength(ch);
      const text = prefix + ch.repeat(Math.ceil(MB / unit) + 2);
      expect(await check(Buffer.from(text)), `${prefix}+${ch}`).toBeUndefined();
    }
  });

  it("rejects invalid bytes, truncated sequences and NUL bytes", async () => {
    expect(await check(Buffer.from([0x61, 0xff, 0x62]))).toMatch(/not valid UTF-8/);
    expect(await check(Buffer.from([0x61, 0xe2, 0x82]))).toMatch(/not valid UTF-8/);
    const bad = Buffer.alloc(MB + 10, 0x61);
    bad[MB - 1] = 0xe2; // a 3-byte lead with the wrong continuation after the boundary
    bad[MB] = 0x41;
    expect(await check(bad)).toMatch(/not valid UTF-8/);
    const nul = Buffer.alloc(MB + 10, 0x61);
    nul[MB + 5] = 0;
    expect(await check(nul)).toBe(`binary content (NUL byte at offset ${MB + 5}) in a text file`);
    expect(await check(Buffer.from("plain ascii\n"))).toBeUndefined();
    expect(await check(Buffer.alloc(0))).toBeUndefined();
  });
});

describe("classifyFile", () => {
  it("decides by extension, case-insensitively", () => {
    expect(classifyFile("Report.PDF")).toMatchObject({ kind: "pdf", mime: "application/pdf" });
    expect(classifyFile("a.docx").kind).toBe("docx");
    expect(classifyFile("x.ts").kind).toBe("text");
    expect(classifyFile("page.htm").kind).toBe("html");
    expect(classifyFile("photo.jpeg").kind).toBe("opaque");
    expect(classifyFile("tool.exe")).toMatchObject({ kind: "unsupported", ext: ".exe" });
    expect(classifyFile("Makefile")).toMatchObject({ kind: "unsupported", ext: "" });
  });
});

describe("htmlToText", () => {
  it("keeps visible text, one block per line, decoding entities", () => {
    expect(htmlToText("<ul><li>One &lt;1&gt;</li><li>Two&nbsp;&#8364;&#x41;</li></ul><br>Tail")).toBe(
      "One <1>\nTwo €A\nTail",
    );
  });
});

describe("splitSentences", () => {
  it("splits at sentence ends and line breaks", () => {
    expect(splitSentences("First one. Second one!\nThird? 第四句。第五句")).toEqual([
      "First one.",
      "Second one!",
      "Third?",
      "第四句。",
      "第五句",
    ]);
  });
});

describe("formatLimit", () => {
  it("uses the largest exact unit", () => {
    expect(formatLimit(100 * MB)).toBe("100MB");
    expect(formatLimit(10 * 1024 * MB)).toBe("10GB");
    expect(formatLimit(1024)).toBe("1KB");
    expect(formatLimit(1500)).toBe("1500B");
  });
});
