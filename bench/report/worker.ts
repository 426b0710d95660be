/**
 * Runs ONE benchmark in a fresh process for bench/run.ts, so memory figures are not polluted by an
 * earlier benchmark's heap and every repetition starts cold:
 * `node --import tsx bench/report/worker.ts <benchmark> <options-json> <result-file>`.
 * The result is written as JSON to <result-file> (stdout stays free for the benchmarks' own output).
 */
import { writeFile } from "node:fs/promises";

/** The benchmarks bench/run.ts can ask for, and how each is called. */
export const BENCHMARKS = {
  "ingest-memory": async (o: Record<string, unknown>) =>
    (await import("../ingest")).benchMemory(o as { bytes?: number }),
  "ingest-text-memory": async (o: Record<string, unknown>) =>
    (await import("../ingest")).benchTextMemory(o as { bytes?: number }),
  "ingest-efficiency": async (o: Record<string, unknown>) =>
    (await import("../ingest")).benchEfficiency(
      o as { documents?: number; concurrency?: number; latencyMs?: number },
    ),
  "ingest-overhead": async (o: Record<string, unknown>) =>
    (await import("../ingest")).benchOverhead(o as { documents?: number }),
  "chat-context": async (o: Record<string, unknown>) => (await import("../chat-context")).main(o),
  janitor: async (o: Record<string, unknown>) => (await import("../janitor")).main(o),
  search: async (o: Record<string, unknown>) => (await import("../search")).main(o),
  "cold-start": async (o: Record<string, unknown>) => (await import("../cold-start")).measureColdStarts(o),
  "upload-memory": async (o: Record<string, unknown>) =>
    (await import("../upload-memory")).main(o as { sizeBytes?: number }),
} as const;

export type BenchmarkName = keyof typeof BENCHMARKS;

const [name, optionsJson, out] = process.argv.slice(2);
if (!name || !out || !(name in BENCHMARKS)) {
  console.error(`usage: worker.ts <${Object.keys(BENCHMARKS).join("|")}> <options-json> <result-file>`);
  process.exit(2);
}
const started = performance.now();
const result = await BENCHMARKS[name as BenchmarkName](JSON.parse(optionsJson || "{}"));
await writeFile(out, JSON.stringify({ result, wallMs: Math.round(performance.now() - started) }));
// Benchmarks close their servers; an SDK keep-alive socket must not hold the process open.
process.exit(0);
