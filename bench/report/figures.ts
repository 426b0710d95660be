/**
 * Turns raw benchmark results into report figures (median, spread, target, pass/fail) and renders the
 * Markdown table. Pure functions: bench/run.ts feeds them, test/soak/report.test.ts checks them.
 */

/** One line of the report. */
export interface Figure {
  id: string;
  figure: string;
  unit: string;
  /** Every repetition's value (side-by-side ratios are computed within a repetition). */
  samples: number[];
  median: number;
  min: number;
  max: number;
  /** "<=" or ">=" against `target`; undefined when the figure is informational. */
  comparator?: "<=" | ">=" | "==";
  target?: number;
  pass?: boolean;
  note?: string;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (n: number, digits = 3) => Number(n.toFixed(digits));

/** Builds a figure from its samples; pass/fail judged on the median. */
export function figure(f: Omit<Figure, "median" | "min" | "max" | "pass"> & { pass?: boolean }): Figure {
  const med = median(f.samples);
  let pass = f.pass;
  if (pass === undefined && f.target !== undefined && f.comparator) {
    pass =
      f.comparator === "<="
        ? med <= f.target
        : f.comparator === ">="
          ? med >= f.target
          : f.samples.every((v) => v === f.target);
  }
  return {
    ...f,
    samples: f.samples.map((v) => round(v)),
    median: round(med),
    min: round(Math.min(...f.samples)),
    max: round(Math.max(...f.samples)),
    ...(pass === undefined ? {} : { pass }),
  };
}

function num(n: number, unit: string): string {
  const s = Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
  return unit === "x" ? `${s}x` : unit ? `${s} ${unit}` : s;
}

/** "min–max (±p%)" of the repetitions, or "1 run". */
export function spread(f: Figure): string {
  if (f.samples.length < 2) return "1 run";
  const half = (f.max - f.min) / 2;
  const pct = f.median !== 0 ? ` (±${((half / Math.abs(f.median)) * 100).toFixed(0)}%)` : "";
  return `${num(f.min, f.unit)}–${num(f.max, f.unit)}${pct}, n=${f.samples.length}`;
}

/** The report table: figure, measured median, spread, target, pass/fail. */
export function markdownTable(figures: Figure[]): string {
  const rows = [
    "| figure | measured (median) | spread (min–max, n) | target | result |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const f of figures) {
    const target = f.target === undefined ? "—" : `${f.comparator ?? ""} ${num(f.target, f.unit)}`.trim();
    const result = f.pass === undefined ? "info" : f.pass ? "pass" : "**FAIL**";
    rows.push(
      `| ${f.figure}${f.note ? ` <br><sub>${f.note}</sub>` : ""} | ${num(f.median, f.unit)} | ${spread(f)} | ${target} | ${result} |`,
    );
  }
  return rows.join("\n");
}
