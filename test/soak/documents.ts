/**
 * Generated soak documents: a seeded mix of txt/md/csv/json/html/pdf/docx of varied sizes, a few big
 * ones, tricky keys (spaces, `+`, non-ASCII) and a sprinkle of bad inputs, each with the outcome the
 * pipeline must reach. Every good version carries a unique marker word, so the checks can tell which
 * version's text a ready document holds.
 */

import { prng } from "../../local/emulator/prng";
import { makeDocx, makePdf } from "../support/pdf-docx";

export type Kind = "txt" | "md" | "csv" | "json" | "html" | "pdf" | "docx";
export type BadKind =
  | "zero-byte"
  | "unsupported-extension"
  | "no-extension"
  | "corrupt-pdf"
  | "binary-as-txt";

/** What the pipeline must end with for one object version. */
export type Expectation =
  | { status: "ready"; marker: string }
  | { status: "failed"; codes: string[]; because: string };

export interface GeneratedDocument {
  key: string;
  kind: Kind | BadKind;
  body: Buffer;
  expect: Expectation;
}

const WORDS =
  "ledger invoice harbour quarterly turbine meridian contract vessel audit pipeline forecast lattice " +
  "customs reactor tariff almanac cargo estuary warrant spindle charter margin beacon quarry"
    .split(" ")
    .filter(Boolean);

/** A marker word unique to one object version (letters and digits only: survives every extractor). */
export const markerFor = (n: number, version: number) => `soakmark${n}x${version}`;

function sentence(rand: () => number): string {
  const n = 6 + Math.floor(rand() * 10);
  const words = Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]!);
  return `${words.join(" ")}.`;
}

/** About `bytes` of prose with the marker in the first line. */
function prose(rand: () => number, bytes: number, marker: string): string {
  const parts = [`Document ${marker} begins here.`];
  let size = parts[0]!.length;
  // A handful of distinct sentences repeated keeps generation cheap for multi-MB files.
  const pool = Array.from({ length: 64 }, () => sentence(rand));
  let i = 0;
  while (size < bytes) {
    const s = pool[i++ % pool.length]!;
    parts.push(i % 12 === 0 ? `${s}\n\n` : s);
    size += s.length + 1;
  }
  return parts.join(" ");
}

/** Size in bytes: mostly small, some medium, a few up to `maxBytes`. */
function pickSize(rand: () => number, maxBytes: number): number {
  const r = rand();
  const lo = r < 0.6 ? 200 : r < 0.9 ? 20_000 : 500_000;
  const hi = r < 0.6 ? 20_000 : r < 0.9 ? 500_000 : maxBytes;
  return Math.floor(lo + rand() * Math.max(0, Math.min(hi, maxBytes) - lo));
}

const TRICKY_NAMES = ["Q3 report (final)", "résumé été", "a+b=c", "notes  two spaces", "数据 表", "x%20y"];

export interface GenerateOptions {
  /** Largest ordinary document. */
  maxBytes: number;
  /** Size of the "big" documents. */
  bigBytes: number;
  seed: number;
  /** Good kinds to draw from. @default every Kind */
  kinds?: readonly Kind[];
}

/** The plan of one soak: n documents with kinds chosen by index (deterministic for a seed). */
const ALL_KINDS: readonly Kind[] = ["txt", "md", "csv", "json", "html", "pdf", "docx"];

export class DocumentFactory {
  private readonly rand: () => number;
  constructor(private readonly opts: GenerateOptions) {
    this.rand = prng(opts.seed);
  }

  /** Kind of document `n` of `total` (bad inputs ~2.5%, big ones: `big` of them). */
  kindOf(n: number, total: number, big: number): Kind | BadKind | "big" {
    const bad: BadKind[] = [
      "zero-byte",
      "unsupported-extension",
      "no-extension",
      "corrupt-pdf",
      "binary-as-txt",
    ];
    if (n % 40 === 7) return bad[Math.floor(n / 40) % bad.length]!;
    if (big > 0 && n % Math.max(1, Math.floor(total / big)) === 3) return "big";
    const kinds = this.opts.kinds ?? ALL_KINDS;
    return kinds[Math.floor(this.rand() * kinds.length)]!;
  }

  /** Builds version `version` of document `n` (a later version overwrites the same key). */
  async make(
    n: number,
    kind: Kind | BadKind | "big",
    version = 1,
    keyOverride?: string,
  ): Promise<GeneratedDocument> {
    const rand = this.rand;
    const marker = markerFor(n, version);
    const tricky = n % 97 === 11 ? ` ${TRICKY_NAMES[n % TRICKY_NAMES.length]}` : "";
    const key = (ext: string) => keyOverride ?? `soak/${kind}/${String(n).padStart(5, "0")}${tricky}${ext}`;
    const ready = (k: string, body: Buffer, kd: Kind): GeneratedDocument => ({
      key: k,
      kind: kd,
      body,
      expect: { status: "ready", marker },
    });
    switch (kind) {
      case "big":
        return ready(key(".txt"), Buffer.from(prose(rand, this.opts.bigBytes, marker)), "txt");
      case "txt":
        return ready(key(".txt"), Buffer.from(prose(rand, pickSize(rand, this.opts.maxBytes), marker)), kind);
      case "md": {
        const body = `# Notes ${marker}\n\n${prose(rand, pickSize(rand, this.opts.maxBytes), "intro")}\n\n## Details\n\n- ${sentence(rand)}\n`;
        return ready(key(".md"), Buffer.from(body), kind);
      }
      case "csv": {
        const rows = Math.max(2, Math.floor(pickSize(rand, this.opts.maxBytes) / 60));
        const lines = ["id,item,amount,note", `0,${marker},0,marker`];
        for (let i = 1; i < rows; i++)
          lines.push(`${i},${WORDS[i % WORDS.length]},${(i * 7.31).toFixed(2)},${sentence(rand)}`);
        return ready(key(".csv"), Buffer.from(`${lines.join("\n")}\n`), kind);
      }
      case "json": {
        const items = Math.max(1, Math.floor(pickSize(rand, this.opts.maxBytes) / 120));
        const value = {
          title: marker,
          items: Array.from({ length: items }, (_, i) => ({ i, text: sentence(rand) })),
        };
        return ready(key(".json"), Buffer.from(JSON.stringify(value)), kind);
      }
      case "html": {
        const text = prose(rand, pickSize(rand, this.opts.maxBytes), marker);
        const body = `<!doctype html><html><head><title>t</title><style>p{color:red}</style></head><body><h1>Report</h1><p>${text
          .split("\n\n")
          .join("</p><p>")}</p><script>var x = 1;</script></body></html>`;
        return ready(key(".html"), Buffer.from(body), kind);
      }
      case "pdf": {
        const lines = [`Document ${marker} begins here.`];
        const count = 5 + Math.floor(rand() * (this.opts.maxBytes > 1_000_000 ? 120 : 40));
        for (let i = 0; i < count; i++) lines.push(sentence(rand));
        return ready(key(".pdf"), await makePdf(lines), kind);
      }
      case "docx": {
        const paras = [`Document ${marker} begins here.`];
        const count = 5 + Math.floor(rand() * (this.opts.maxBytes > 1_000_000 ? 300 : 60));
        for (let i = 0; i < count; i++) paras.push(sentence(rand));
        return ready(key(".docx"), await makeDocx(paras), kind);
      }
      case "zero-byte":
        return {
          key: key(n % 2 ? ".pdf" : ".txt"),
          kind,
          body: Buffer.alloc(0),
          expect: { status: "failed", codes: ["empty"], because: "zero-byte object" },
        };
      case "unsupported-extension":
        return {
          key: key(n % 2 ? ".exe" : ".zip"),
          kind,
          body: Buffer.from(prose(rand, 2000, marker)),
          expect: { status: "failed", codes: ["unsupported_type"], because: "unsupported extension" },
        };
      case "no-extension":
        return {
          key: key(""),
          kind,
          body: Buffer.from(prose(rand, 2000, marker)),
          expect: { status: "failed", codes: ["unsupported_type"], because: "key without an extension" },
        };
      case "corrupt-pdf": {
        const junk = Buffer.alloc(4000 + Math.floor(rand() * 20_000));
        for (let i = 0; i < junk.length; i++) junk[i] = Math.floor(rand() * 256);
        return {
          key: key(".pdf"),
          kind,
          body: Buffer.concat([Buffer.from("%PDF-1.7\n1 0 obj\n<< /Type /Catalog"), junk]),
          expect: {
            status: "failed",
            codes: ["extraction_failed", "provider_rejected"],
            because: "corrupt PDF",
          },
        };
      }
      case "binary-as-txt": {
        const bin = Buffer.alloc(3000);
        for (let i = 0; i < bin.length; i++) bin[i] = i % 7 === 0 ? 0 : Math.floor(rand() * 256);
        return {
          key: key(".txt"),
          kind,
          body: bin,
          expect: {
            status: "failed",
            codes: ["extraction_failed", "provider_rejected"],
            because: "binary content named .txt",
          },
        };
      }
    }
  }
}
