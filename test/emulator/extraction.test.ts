/**
 * Extraction on real documents generated here (PDF with pdfkit, DOCX with docx), text-like formats,
 * and the provider-like failures: corrupt PDF/DOCX and binary bytes in a .txt give status `error` and a
 * 500 "Failed to extract file: ..." on content; an unsupported extension is refused with a 400.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { makeDocx, makePdf } from "../support/pdf-docx";
import { call, errorOf, type FileBody, upload } from "./helpers";

let emu: RunningEmulator;
beforeAll(async () => {
  emu = await startEmulator();
});
afterAll(async () => {
  await emu?.close();
});

async function contentOf(id: string): Promise<string> {
  const r = await call(emu, "GET", `/v1/files/${id}/content`);
  expect(r.status).toBe(200);
  return (r.body as { content: string }).content;
}

async function uploaded(filename: string, bytes: string | Uint8Array): Promise<FileBody> {
  const r = await upload(emu, filename, bytes);
  expect(r.status).toBe(200);
  return r.body as FileBody;
}

describe("real documents", () => {
  it("extracts the sentences of a generated PDF", async () => {
    const lines = [
      "The quarterly revenue grew by twelve percent.",
      "Operating costs fell in the second half.",
      "The board approved a new dividend policy.",
    ];
    const pdf = await makePdf(lines);
    const file = await uploaded("report.pdf", pdf);
    expect(file).toMatchObject({ status: "ok", bytes: pdf.length, filename: "report.pdf" });
    const text = await contentOf(file.id);
    for (const line of lines) expect(text).toContain(line);
    const envelope = (await call(emu, "GET", `/v1/files/${file.id}/content`)).body;
    expect(envelope).toMatchObject({ file_type: "application/pdf", filename: "report.pdf", type: "file" });
  });

  it("extracts every page of a multi-page PDF", async () => {
    const lines = Array.from({ length: 120 }, (_, i) => `Line number ${i} of the long report.`);
    const text = await contentOf((await uploaded("long.pdf", await makePdf(lines))).id);
    expect(text).toContain("Line number 0 of the long report.");
    expect(text).toContain("Line number 119 of the long report.");
  });

  it("extracts the paragraphs of a generated DOCX", async () => {
    const paragraphs = [
      "Invoices are payable within thirty days.",
      "Late payments incur a fee of two percent.",
    ];
    const file = await uploaded("terms.docx", await makeDocx(paragraphs));
    expect(file.status).toBe("ok");
    const text = await contentOf(file.id);
    for (const p of paragraphs) expect(text).toContain(p);
  });

  it("serves text formats verbatim, including non-ASCII text", async () => {
    const samples: [string, string][] = [
      ["data.json", '{"city":"Zürich","temp":21}'],
      ["notes.yaml", "owner: 张伟\nrole: admin\n"],
      ["main.go", 'package main\nfunc main() { println("hi") }\n'],
      ["app.log", "2024-01-01 INFO started\n"],
    ];
    for (const [name, body] of samples) expect(await contentOf((await uploaded(name, body)).id)).toBe(body);
  });

  it("strips tags, scripts and entities from HTML", async () => {
    const html =
      "<html><head><title>Guide</title><style>p{color:red}</style><script>var secret = 1;</script></head>" +
      "<body><h1>Setup</h1><p>Install the agent &amp; restart.</p><!-- hidden --></body></html>";
    const text = await contentOf((await uploaded("guide.html", html)).id);
    expect(text).toBe("Guide\nSetup\nInstall the agent & restart.");
  });
});

describe("provider-like failures", () => {
  async function expectExtractionFailure(filename: string, bytes: Uint8Array | string, details: RegExp) {
    const file = await uploaded(filename, bytes);
    expect(file.status).toBe("error");
    expect(file.status_details).toMatch(details);
    const retrieved = await call(emu, "GET", `/v1/files/${file.id}`);
    expect((retrieved.body as FileBody).status).toBe("error");
    const content = await call(emu, "GET", `/v1/files/${file.id}/content`);
    expect(content.status).toBe(500);
    expect(errorOf(content).type).toBe("server_error");
    expect(errorOf(content).message).toMatch(/^Failed to extract file: /);
    expect(errorOf(content).message).toMatch(details);
  }

  it("corrupt PDF (truncated) and a non-PDF named .pdf", async () => {
    const pdf = await makePdf(["Some text that will be cut off."]);
    await expectExtractionFailure("cut.pdf", pdf.subarray(0, Math.floor(pdf.length / 3)), /invalid PDF/);
    await expectExtractionFailure("fake.pdf", "this is not a pdf", /invalid PDF/);
  });

  it("corrupt DOCX", async () => {
    const docx = await makeDocx(["Hello"]);
    await expectExtractionFailure("broken.docx", docx.subarray(0, 100), /invalid DOCX/);
  });

  it("binary bytes or invalid UTF-8 in a text extension", async () => {
    await expectExtractionFailure("data.txt", new Uint8Array([0x68, 0x69, 0x00, 0x01, 0x02]), /NUL byte/);
    await expectExtractionFailure(
      "latin1.csv",
      new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]),
      /not valid UTF-8/,
    );
  });

  it("formats the provider accepts but the emulator cannot parse", async () => {
    await expectExtractionFailure(
      "sheet.xlsx",
      new Uint8Array([0x50, 0x4b, 3, 4]),
      /cannot extract text from \.xlsx/,
    );
  });

  it("unsupported extensions are refused with 400 and stored nowhere", async () => {
    const before = emu.files().length;
    for (const name of ["setup.exe", "archive.zip", "README"]) {
      const r = await upload(emu, name, "bytes");
      expect(r.status).toBe(400);
      expect(errorOf(r).type).toBe("invalid_request_error");
      expect(errorOf(r).message).toMatch(/^unsupported file type/);
    }
    expect(emu.files().length).toBe(before);
  });

  it("keeps serving after bad input", async () => {
    expect((await call(emu, "GET", "/v1/models")).status).toBe(200);
  });
});
