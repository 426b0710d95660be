/**
 * Real document fixtures generated in the test process: PDF with pdfkit, DOCX with docx.
 * Each line/paragraph is written as its own paragraph so extraction tests can look for it verbatim.
 */
import { Document, Packer, Paragraph, TextRun } from "docx";
import PDFDocument from "pdfkit";

/** A PDF (A4, Helvetica) with one paragraph per line; long inputs flow onto further pages. */
export function makePdf(lines: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const doc = new PDFDocument({ size: "A4", margin: 50, info: { Title: "fixture" } });
    const chunks: Buffer[] = [];
    doc.on("data", (chunk: Buffer) => chunks.push(chunk));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
    doc.font("Helvetica").fontSize(12);
    for (const line of lines) doc.text(line, { paragraphGap: 6 });
    doc.end();
  });
}

/** A DOCX with one paragraph per entry. */
export function makeDocx(paragraphs: string[]): Promise<Buffer> {
  const doc = new Document({
    sections: [{ children: paragraphs.map((p) => new Paragraph({ children: [new TextRun(p)] })) }],
  });
  return Packer.toBuffer(doc);
}
