/**
 * A tiny SVG chart writer for the benchmark report (no chart library): line charts of numeric series
 * and horizontal bar charts with a target line. Output is plain, self-contained SVG text.
 */

export interface Series {
  name: string;
  points: { x: number; y: number }[];
  /** CSS colour. */
  color: string;
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Use a log2 x axis (for concurrency 1, 2, 4, 8...). @default false */
  logX?: boolean;
  width?: number;
  height?: number;
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (n: number) =>
  Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);

/** "Nice" tick values covering [0, max]. */
export function ticks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A line chart with markers, axes, grid and a legend. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 380;
  const m = { left: 64, right: 20, top: 40, bottom: 56 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = o.series.flatMap((s) => s.points);
  const tx = (x: number) => (o.logX ? Math.log2(x) : x);
  const xs = all.map((p) => tx(p.x));
  const xmin = Math.min(...xs);
  const xmax = Math.max(...xs);
  const yt = ticks(Math.max(...all.map((p) => p.y)));
  const ymax = yt[yt.length - 1]!;
  const X = (x: number) => m.left + (xmax === xmin ? pw / 2 : ((tx(x) - xmin) / (xmax - xmin)) * pw);
  const Y = (y: number) => m.top + ph - (y / ymax) * ph;
  const parts = svgHeader(W, H, o.title);
  for (const v of yt) {
    parts.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  const xTicks = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  for (const v of xTicks) {
    parts.push(`<text x="${X(v)}" y="${m.top + ph + 18}" text-anchor="middle">${fmt(v)}</text>`);
  }
  parts.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#333"/>`,
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#333"/>`,
    `<text x="${m.left + pw / 2}" y="${H - 14}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  o.series.forEach((s, i) => {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    const d = pts.map((p, j) => `${j ? "L" : "M"}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(" ");
    parts.push(
      `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      ...pts.map(
        (p) => `<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${s.color}"/>`,
      ),
      `<rect x="${W - m.right - 170}" y="${m.top + 6 + i * 18}" width="14" height="4" fill="${s.color}"/>`,
      `<text x="${W - m.right - 150}" y="${m.top + 12 + i * 18}">${esc(s.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

export interface Bar {
  label: string;
  /** The measured value as a fraction of its target (1 = exactly on target). */
  value: number;
  /** Optional whisker: [min, max] of the repetitions, same unit as value. */
  range?: [number, number];
}

/** Horizontal bars of measured / target, with the target (1.0) drawn as a line. */
export function barChart(o: { title: string; xLabel: string; bars: Bar[]; width?: number }): string {
  const W = o.width ?? 720;
  const rowH = 26;
  const m = { left: 250, right: 30, top: 40, bottom: 46 };
  const H = m.top + m.bottom + rowH * o.bars.length;
  const pw = W - m.left - m.right;
  const xt = ticks(Math.max(1.2, ...o.bars.map((b) => Math.max(b.value, b.range?.[1] ?? 0))));
  const xmax = xt[xt.length - 1]!;
  const X = (v: number) => m.left + (Math.max(0, v) / xmax) * pw;
  const parts = svgHeader(W, H, o.title);
  for (const v of xt) {
    parts.push(
      `<line x1="${X(v)}" x2="${X(v)}" y1="${m.top}" y2="${H - m.bottom}" stroke="#eee"/>`,
      `<text x="${X(v)}" y="${H - m.bottom + 16}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  o.bars.forEach((b, i) => {
    const y = m.top + i * rowH + 4;
    const color = b.value <= 1 ? "#2e8b57" : "#c0392b";
    parts.push(
      `<text x="${m.left - 8}" y="${y + 13}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${m.left}" y="${y}" width="${(X(b.value) - m.left).toFixed(1)}" height="${rowH - 10}" fill="${color}"/>`,
    );
    if (b.range) {
      const cy = y + (rowH - 10) / 2;
      parts.push(
        `<line x1="${X(b.range[0]).toFixed(1)}" x2="${X(b.range[1]).toFixed(1)}" y1="${cy}" y2="${cy}" stroke="#222"/>`,
        `<line x1="${X(b.range[0]).toFixed(1)}" x2="${X(b.range[0]).toFixed(1)}" y1="${cy - 4}" y2="${cy + 4}" stroke="#222"/>`,
        `<line x1="${X(b.range[1]).toFixed(1)}" x2="${X(b.range[1]).toFixed(1)}" y1="${cy - 4}" y2="${cy + 4}" stroke="#222"/>`,
      );
    }
  });
  parts.push(
    `<line x1="${X(1)}" x2="${X(1)}" y1="${m.top - 4}" y2="${H - m.bottom}" stroke="#000" stroke-dasharray="5 3"/>`,
    `<text x="${X(1) + 4}" y="${m.top - 6}">target</text>`,
    `<text x="${m.left + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    "</svg>",
  );
  return `${parts.join("\n")}\n`;
}

/** The opening of a chart: the svg element, a white background and the title. */
function svgHeader(width: number, height: number, title: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  ];
}
