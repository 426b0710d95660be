/**
 * `npm run bench`: every benchmark of the project, each repetition in a fresh Node process
 * (bench/report/worker.ts), then one report: bench/results.json (every raw result), bench/results.md
 * (figure, median, spread, target, pass/fail) and SVG charts (bench/ingest-concurrency.svg,
 * bench/figures.svg), drawn by bench/report/svg.ts.
 *
 * Every timing figure is a ratio measured side by side within one repetition (wall time against the
 * ideal for the same documents and latency, context assembly against a plain read of the same chunks,
 * function import against an SDK-only bundle in the same loop), so the machine's load shifts both sides.
 *
 * Flags: `--reps N` (repetitions of the repeated benchmarks, default 3; or BENCH_REPS), `--quick`
 * (small sizes, 1 repetition: a smoke run of the report pipeline, results not written unless
 * `--out DIR`), `--only a,b` (benchmark names, see BENCHMARK_NAMES), `--out DIR` (default bench/).
 * Exit code 1 when a figure misses its target or a benchmark crashed (the report is still written).
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Figure, figure, markdownTable, median } from "./report/figures";
import { barChart, lineChart } from "./report/svg";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WORKER = fileURLToPath(new URL("./report/worker.ts", import.meta.url));

export const BENCHMARK_NAMES = [
  "ingest-memory",
  "ingest-text-memory",
  "ingest-efficiency",
  "ingest-concurrency",
  "ingest-overhead",
  "chat-context",
  "search",
  "janitor",
  "cold-start",
  "upload-memory",
] as const;
type Name = (typeof BENCHMARK_NAMES)[number];

// biome-ignore lint/suspicious/noExplicitAny: raw JSON from the benchmark modules, typed where read
type Raw = any;

interface RunOptions {
  reps: number;
  quick: boolean;
  only?: Set<Name>;
  outDir: string;
  log: (line: string) => void;
}

/** Runs one benchmark once in a fresh process; resolves with its JSON result. */
export async function runOnce(benchmark: string, options: object, log: (l: string) => void): Promise<Raw> {
  const dir = await mkdtemp(join(tmpdir(), "kdp-bench-"));
  const out = join(dir, "result.json");
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", WORKER, benchmark, JSON.stringify(options), out],
        {
          cwd: ROOT,
          stdio: ["ignore", "ignore", "pipe"],
          env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
        },
      );
      let err = "";
      child.stderr.on("data", (d) => {
        err = (err + String(d)).slice(-4000);
      });
      child.on("error", reject);
      child.on("exit", (c) => {
        if (c !== 0) log(`  ${benchmark} exited with ${c}: ${err.trim().split("\n").slice(-5).join(" | ")}`);
        resolve(c ?? 1);
      });
    });
    if (code !== 0) throw new Error(`${benchmark} failed (exit ${code})`);
    return JSON.parse(await readFile(out, "utf8")) as { result: Raw; wallMs: number };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function repeat(name: string, reps: number, opts: object, o: RunOptions): Promise<Raw[]> {
  const results: Raw[] = [];
  for (let i = 0; i < reps; i++) {
    o.log(`${name} ${i + 1}/${reps} ${JSON.stringify(opts)}`);
    const r = await runOnce(name, opts, o.log);
    o.log(`  done in ${(r.wallMs / 1000).toFixed(1)} s`);
    results.push(r.result);
  }
  return results;
}

/** Runs the selected benchmarks and returns raw results plus figures. */
export async function runBenchmarks(o: RunOptions): Promise<{
  raw: Partial<Record<Name, Raw>>;
  figures: Figure[];
  errors: Record<string, string>;
  charts: Record<string, string>;
}> {
  const want = (n: Name) => !o.only || o.only.has(n);
  const raw: Partial<Record<Name, Raw>> = {};
  const figures: Figure[] = [];
  const errors: Record<string, string> = {};
  const charts: Record<string, string> = {};
  const q = o.quick;
  const step = async (name: Name, fn: () => Promise<void>) => {
    if (!want(name)) return;
    try {
      await fn();
    } catch (err) {
      errors[name] = err instanceof Error ? err.message : String(err);
      o.log(`${name}: ${errors[name]}`);
    }
  };

  await step("ingest-memory", async () => {
    const bytes = q ? 16 * 1024 * 1024 : 100 * 1024 * 1024;
    const runs = await repeat("ingest-memory", o.reps, { bytes }, o);
    raw["ingest-memory"] = runs;
    figures.push(
      figure({
        id: "ingest.memory",
        figure: `Ingest: peak RSS growth, one ${Math.round(bytes / 1024 / 1024)} MiB object`,
        unit: "MB",
        samples: runs.map((r) => r.peakRssGrowthMB),
        comparator: "<=",
        target: 64,
        pass: runs.every((r) => r.status === "ready") ? undefined : false,
        note: "S3 stream → multipart upload → text → chunks; stand-ins in a child process",
      }),
    );
  });

  await step("ingest-text-memory", async () => {
    const bytes = q ? 16 * 1024 * 1024 : 100 * 1024 * 1024;
    const runs = await repeat("ingest-text-memory", o.reps, { bytes }, o);
    raw["ingest-text-memory"] = runs;
    figures.push(
      figure({
        id: "ingest.textMemory",
        figure: `Ingest: peak RSS growth, one ${Math.round(bytes / 1024 / 1024)} MiB text file (text as big)`,
        unit: "MB",
        samples: runs.map((r) => r.peakRssGrowthMB),
        comparator: "<=",
        // An eighth of the 1 GB function, whatever the text's size (25 MiB and 100 MiB grow alike;
        // holding the text whole grew 385 MB): the upload figure's 64 MB is not met by the text path's
        // garbage (decoded pieces, chunks, request bodies) on a loaded machine.
        target: 128,
        pass: runs.every((r) => r.status === "ready" && r.storedTextBytes === bytes) ? undefined : false,
        note: "extracted text streamed → ChunkStream → chunk writes as they come",
      }),
    );
  });

  await step("ingest-efficiency", async () => {
    const opts = q
      ? { documents: 40, concurrency: 8, latencyMs: 100 }
      : { documents: 200, concurrency: 8, latencyMs: 200 };
    const runs = await repeat("ingest-efficiency", o.reps, opts, o);
    raw["ingest-efficiency"] = runs;
    figures.push(
      figure({
        id: "ingest.efficiency",
        figure: `Ingest: wall time / ideal, ${opts.documents} docs, concurrency ${opts.concurrency}, ${opts.latencyMs} ms per provider call`,
        unit: "x",
        samples: runs.map((r) => r.ratio),
        comparator: "<=",
        target: 1.15,
        pass: runs.every((r) => r.ready === r.documents) ? undefined : false,
        note: "ideal = docs × provider calls per doc × latency / concurrency",
      }),
    );
  });

  await step("ingest-concurrency", async () => {
    const levels = q ? [1, 4] : [1, 2, 4, 8, 16];
    const points: Raw[] = [];
    for (const concurrency of levels) {
      const [r] = await repeat(
        "ingest-efficiency",
        1,
        { documents: q ? 12 : 48, concurrency, latencyMs: 100 },
        o,
      );
      points.push(r);
    }
    raw["ingest-concurrency"] = points;
    charts["ingest-concurrency.svg"] = lineChart({
      title: `Ingest wall time against concurrency (${points[0].documents} docs, 100 ms per provider call)`,
      xLabel: "documents processed at once (IngestService concurrency)",
      yLabel: "wall time (s)",
      logX: true,
      series: [
        {
          name: "measured",
          color: "#1f77b4",
          points: points.map((p) => ({ x: p.concurrency, y: p.wallSeconds })),
        },
        {
          name: "ideal (provider latency only)",
          color: "#888",
          dashed: true,
          points: points.map((p) => ({ x: p.concurrency, y: p.idealSeconds })),
        },
      ],
    });
    figures.push(
      figure({
        id: "ingest.concurrency.worst",
        figure: `Ingest: worst wall/ideal over concurrency ${levels.join(", ")} (${points[0].documents} docs, 100 ms)`,
        unit: "x",
        samples: [Math.max(...points.map((p) => p.ratio))],
        note: "informational; chart: bench/ingest-concurrency.svg",
      }),
    );
  });

  await step("ingest-overhead", async () => {
    const runs = await repeat("ingest-overhead", 1, { documents: q ? 30 : 100 }, o);
    raw["ingest-overhead"] = runs;
    figures.push(
      figure({
        id: "ingest.overhead",
        figure: "Ingest: own time per document outside provider calls (one at a time, zero latency)",
        unit: "ms",
        samples: runs.map((r) => r.ownMsPerDocument),
        note: "informational: our code + local DynamoDB",
      }),
    );
  });

  await step("chat-context", async () => {
    const opts = q ? { documents: 30, totalMB: 4, runs: 3, questions: 10, costQuestions: 3 } : { runs: 5 };
    const [r] = await repeat("chat-context", 1, opts, o);
    raw["chat-context"] = r;
    const ratios = r.readRunsMs.map((read: number, i: number) => r.toUpstreamRunsMs[i] / read);
    figures.push(
      figure({
        id: "chat.context.ratio",
        figure: `Chat: context assembly / plain read of the same chunks (${r.documents} docs, ${(r.textBytes / 1024 / 1024).toFixed(0)} MB text)`,
        unit: "x",
        samples: ratios,
        comparator: "<=",
        target: 1.5,
        note: `read ${median(r.readRunsMs).toFixed(0)} ms, to upstream ${median(r.toUpstreamRunsMs).toFixed(0)} ms (medians)`,
      }),
      figure({
        id: "chat.context.errors",
        figure: `Chat: context-length errors over ${r.questions} questions`,
        unit: "",
        samples: [r.contextLengthErrors],
        comparator: "==",
        target: 0,
        note: `other errors ${r.otherErrors}; answers quoting the planted fact ${r.answeredWithFact}/${r.questions}`,
      }),
    );
    if (r.rankedFill.length > 0)
      figures.push(
        figure({
          id: "chat.context.fill",
          figure: "Chat: prompt tokens (provider's count) / document budget, answers that needed ranking",
          unit: "x",
          samples: r.rankedFill,
          note: `informational: ${r.rankedFill.length} ranked answers, ${r.toppedUp} topped up after the provider's count`,
        }),
      );
  });

  await step("chat-context", async () => {
    const r = raw["chat-context"];
    if (!r?.cost) return;
    const perThousand = (xs: number[]) => xs.map((x) => x * 1000);
    const { atDefault, fillWindow } = r.cost;
    const n = atDefault.costUsd.length;
    figures.push(
      figure({
        id: "chat.cost.default",
        figure: `Chat: cost of an unscoped answer at the default context budget (${r.documents} docs, kimi-k2.6 prices)`,
        unit: "$ per 1,000 answers",
        samples: perThousand(atDefault.costUsd),
        note: `median prompt ${median(atDefault.promptTokens).toFixed(0)} tokens; answers quoting the fact ${atDefault.answeredWithFact}/${n}`,
      }),
      figure({
        id: "chat.cost.window",
        figure: "Chat: the same answers filling the model's window (before the budget)",
        unit: "$ per 1,000 answers",
        samples: perThousand(fillWindow.costUsd),
        note: `median prompt ${median(fillWindow.promptTokens).toFixed(0)} tokens; answers quoting the fact ${fillWindow.answeredWithFact}/${n}`,
      }),
      figure({
        id: "chat.cost.ratio",
        figure: "Chat: cost at the default budget / cost filling the window (same questions)",
        unit: "x",
        samples: atDefault.costUsd.map((c: number, i: number) => c / fillWindow.costUsd[i]),
        note: "informational",
      }),
    );
    const fits = r.conversation.fits;
    const fromSecond: number[] = fits.cachedShare.slice(1);
    figures.push(
      figure({
        id: "chat.cache.share",
        figure:
          "Chat: cached share of prompt tokens, questions 2-10 of a conversation whose scope fits the budget",
        unit: "",
        samples: fromSecond,
        comparator: ">=",
        target: 0.8,
        pass: fromSecond.every((x) => x >= 0.8) && fits.modes.every((m: string) => m === "all"),
        note: `every question >= 0.8 (lowest ${Math.min(...fromSecond).toFixed(3)}); prompt ${fits.promptTokens[0]}-${fits.promptTokens.at(-1)} tokens; emulator's prefix cache`,
      }),
      figure({
        id: "chat.cache.ranked",
        figure: "Chat: cached share, questions 2-10 of a conversation ranked per question (whole corpus)",
        unit: "",
        samples: r.conversation.ranked.cachedShare.slice(1),
        note: "informational: instructions and earlier turns stay cached, the ranked documents do not",
      }),
    );
  });

  await step("search", async () => {
    // The size is 10,000 documents / 500 MB; the default run uses 1,000 / 50 MB (see note).
    const opts = q
      ? { documents: 60, totalMB: 3, runs: 2, questions: 10 }
      : { documents: 1000, totalMB: 50, runs: 5 };
    const [r] = await repeat("search", 1, opts, o);
    raw.search = r;
    const size = `${r.documents} docs, ${(r.textBytes / 1024 / 1024).toFixed(0)} MB`;
    figures.push(
      figure({
        id: "search.warm.ratio",
        figure: `Search: request to provider call, unscoped (index) / scoped to one document, warm (${size})`,
        unit: "x",
        samples: r.warmUnscopedMs.map((u: number, i: number) => u / r.warmScopedMs[i]),
        comparator: "<=",
        target: 3,
        note: `unscoped ${median(r.warmUnscopedMs).toFixed(0)} ms, scoped ${median(r.warmScopedMs).toFixed(0)} ms (medians)`,
      }),
      figure({
        id: "search.agreement",
        figure: `Search: top-10 overlap with the in-memory BM25 ranking over every chunk (${size})`,
        unit: "",
        samples: [r.agreementTop10],
        comparator: ">=",
        target: 0.9,
        note: `${r.segments} term segments`,
      }),
      figure({
        id: "search.read",
        figure: "Search: chunk text read per unscoped question / text of the chunks sent",
        unit: "x",
        samples: [r.readOverSent],
        note: `${(r.chunkBytesReadPerQuestion / 1024).toFixed(0)} KB read (the corpus holds ${(r.textBytes / 1024 / 1024).toFixed(0)} MB)`,
      }),
      figure({
        id: "search.cold",
        figure:
          "Search: first question after a cold start (index loaded from storage), request to provider call",
        unit: "ms",
        samples: [r.coldFirstQuestionMs],
        note: `${(r.coldBytesRead / 1024).toFixed(0)} KB of index read`,
      }),
      figure({
        id: "search.memory",
        figure:
          "Search: chat side's heap after the warm questions (index cache + document table), chat function has 1,024 MB",
        unit: "MB",
        samples: [r.chatHeapMB],
        comparator: "<=",
        target: 512,
        note: `${r.chatCachedJsonMB} MB of segment JSON cached (cap 96 MB); whole bench process peak RSS ${r.peakRssMB} MB (seeding and the reference ranking included)`,
      }),
      figure({
        id: "search.upkeep",
        figure: "Search: indexer time per document (bulk) / seeding write time per document",
        unit: "x",
        samples: [r.upkeepRatio],
        note: `${r.indexMsPerDocument.toFixed(1)} ms vs ${r.seedMsPerDocument.toFixed(1)} ms per document, ${r.indexRuns} run(s)`,
      }),
    );
  });

  await step("janitor", async () => {
    const runs = await repeat("janitor", o.reps, { latencyMs: 50, concurrency: 4 }, o);
    raw.janitor = runs;
    figures.push(
      figure({
        id: "janitor.calls",
        figure: `Janitor: provider calls / floor (${runs[0].remoteFiles} files, ${runs[0].staleFiles} stale)`,
        unit: "x",
        samples: runs.map((r) => r.callRatio),
        comparator: "<=",
        target: 1,
        note: "floor = one list + one delete per stale file",
      }),
      figure({
        id: "janitor.wall",
        figure: "Janitor: sweep wall time / latency floor (50 ms per call, 4 in flight)",
        unit: "x",
        samples: runs.map((r) => r.wallRatio ?? Number.NaN),
        note: "informational",
      }),
    );
  });

  await step("cold-start", async () => {
    const [r] = await repeat("cold-start", 1, { runs: q ? 2 : 7 }, o);
    raw["cold-start"] = r;
    for (const f of r.functions) {
      const a: number[] = f.function.importRunsMs;
      const b: number[] = f.baseline.importRunsMs;
      const perRun = a.map((ms, i) => ms / (b[i] ?? Number.NaN)).filter(Number.isFinite);
      figures.push(
        figure({
          id: `cold-start.${f.name}`,
          figure: `Cold start: ${f.name} import / SDK-clients-only bundle`,
          unit: "x",
          samples: perRun.length ? perRun : [f.importRatio],
          comparator: "<=",
          target: r.targetRatio,
          note: `${(f.bundleBytes / 1024).toFixed(0)} KB bundle; median import ${f.function.importMs} ms vs ${f.baseline.importMs} ms; per-run pairs`,
        }),
      );
      if (f.mcp) {
        figures.push(
          figure({
            id: "cold-start.mcp-first-call",
            figure: "Cold start: first POST /mcp in a warm chat container (import of the MCP file)",
            unit: "ms",
            samples: f.mcp.firstCallImportRunsMs,
            note: `informational; ${(f.mcp.bundleBytes / 1024).toFixed(0)} KB file loaded on demand, not part of the chat bundle`,
          }),
          figure({
            id: "cold-start.mcp-own-function",
            figure: "Cold start: MCP as its own function (chat + SDK at import) / SDK-clients-only bundle",
            unit: "x",
            samples: [f.mcp.ownFunction.importRatio],
            note: `informational, the alternative not chosen; ${(f.mcp.ownFunction.bundleBytes / 1024).toFixed(0)} KB bundle; median import ${f.mcp.ownFunction.importMs} ms`,
          }),
        );
      }
    }
  });

  await step("upload-memory", async () => {
    const sizeBytes = q ? 16_000_000 : 100_000_000;
    const runs = await repeat("upload-memory", o.reps, { sizeBytes }, o);
    raw["upload-memory"] = runs;
    figures.push(
      figure({
        id: "upload.memory",
        figure: `Upload client: peak RSS growth streaming a ${sizeBytes / 1_000_000} MB file`,
        unit: "MB",
        samples: runs.map((r) => r.peakRssGrowthMB),
        comparator: "<=",
        target: 64,
        note: `live (after GC) ${median(runs.map((r) => r.liveRssGrowthMB)).toFixed(1)} MB; ${median(runs.map((r) => r.throughputMBps)).toFixed(0)} MB/s`,
      }),
    );
  });

  const judged = figures.filter((f) => f.pass !== undefined && f.unit === "x" && f.target);
  if (judged.length) {
    charts["figures.svg"] = barChart({
      title: "Timing ratios against their targets (median, whiskers: min–max)",
      xLabel: "measured / target (left of the dashed line: within target)",
      bars: judged.map((f) => ({
        label: f.id,
        value: f.median / f.target!,
        range: [f.min / f.target!, f.max / f.target!],
      })),
    });
  }
  return { raw, figures, errors, charts };
}

function parseArgs(argv: string[]): RunOptions {
  const arg = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  const reps = Number(arg("--reps") ?? process.env.BENCH_REPS ?? (quick ? 1 : 3));
  if (!Number.isInteger(reps) || reps < 1 || reps > 20) throw new Error(`--reps must be 1-20, got ${reps}`);
  const only = arg("--only")
    ?.split(",")
    .map((s) => s.trim());
  for (const n of only ?? []) {
    if (!(BENCHMARK_NAMES as readonly string[]).includes(n))
      throw new Error(`--only: unknown benchmark "${n}" (${BENCHMARK_NAMES.join(", ")})`);
  }
  return {
    reps,
    quick,
    only: only ? new Set(only as Name[]) : undefined,
    outDir: arg("--out") ?? (quick ? "" : join(ROOT, "bench")),
    log: (line) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`),
  };
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const load = loadavg();
  const { raw, figures, errors, charts } = await runBenchmarks(o);
  const minutes = (Date.now() - started) / 60_000;
  const machine = {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "?",
    memoryGB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    loadAverageAtStart: load.map((l) => Number(l.toFixed(2))),
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
  };
  const failed = figures.filter((f) => f.pass === false);
  const md = [
    "# Benchmark results",
    "",
    `Generated by \`npm run bench\` on ${new Date().toISOString()} in ${minutes.toFixed(1)} min ` +
      `(Node ${machine.node}, ${machine.cpus} CPUs, load average ${machine.loadAverageAtStart.join(" / ")} at start, ` +
      `${machine.loadAverageAtEnd.join(" / ")} at end). Each repetition runs in a fresh Node process; timing ` +
      "figures are ratios measured side by side within a repetition. On a shared, loaded machine wall " +
      "times are noisy: read the spread column.",
    "",
    markdownTable(figures),
    "",
    ...(Object.keys(errors).length
      ? [
          "## Benchmarks that did not finish",
          "",
          ...Object.entries(errors).map(([k, v]) => `- ${k}: ${v}`),
          "",
        ]
      : []),
    "## Charts",
    "",
    ...Object.keys(charts).map((file) => `![${file}](${file})`),
    "",
    "Raw results of every repetition: [results.json](results.json). Benchmarks: bench/ingest.ts, " +
      "bench/chat-context.ts, bench/janitor.ts, bench/cold-start.ts, bench/upload-memory.ts (each also runs alone " +
      "with `npx tsx bench/<name>.ts`).",
    "",
  ].join("\n");
  if (o.outDir) {
    await mkdir(o.outDir, { recursive: true });
    await writeFile(
      join(o.outDir, "results.json"),
      `${JSON.stringify({ generatedAt: new Date().toISOString(), minutes: Number(minutes.toFixed(1)), machine, reps: o.reps, figures, errors, raw }, null, 2)}\n`,
    );
    await writeFile(join(o.outDir, "results.md"), md);
    for (const [file, svg] of Object.entries(charts)) await writeFile(join(o.outDir, file), svg);
    o.log(`wrote ${join(o.outDir, "results.md")}, results.json and ${Object.keys(charts).join(", ")}`);
  }
  process.stdout.write(`${markdownTable(figures)}\n`);
  if (failed.length || Object.keys(errors).length) {
    process.stderr.write(
      `${failed.length} figure(s) missed their target; ${Object.keys(errors).length} benchmark(s) failed\n`,
    );
    process.exitCode = 1;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
