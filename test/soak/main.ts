/**
 * `npm run soak`: the full reliability soak (test/soak/soak.ts), bounded (it stops by itself within
 * SOAK_SECONDS, default 570), printing progress and then the summary; exit code 1 when an invariant
 * fails, 2 when the setup itself broke.
 *
 * Parameters (environment or flags; flags win): SOAK_DOCS / --docs, SOAK_SECONDS / --seconds,
 * SOAK_MAX_MB / --max-mb (largest ordinary document), SOAK_BIG_MB / --big-mb, SOAK_BIG_COUNT / --big,
 * SOAK_FAULT_RATE / --faults (0..1), SOAK_KILL_RATE / --kills (0..1), SOAK_OVERWRITE_RATE,
 * SOAK_DELETE_RATE, SOAK_CHAT_PER_MIN / --chat, SOAK_READER_DOCS / --reader-docs,
 * SOAK_READER_CHAT_PER_MIN / --reader-chat, SOAK_JANITOR_SECONDS / --janitor, SOAK_MAX_FILES /
 * --max-files, SOAK_WORKERS / --workers, SOAK_SEED / --seed, SOAK_PROVIDER / --provider (moonshot or
 * glm: the pipeline and the emulator play that provider); `--short` starts from the short profile
 * `npm test` runs; `--json FILE` also writes the full report as JSON.
 *
 * Before the soak, the API fuzz (test/openapi/fuzz.ts) sends SOAK_FUZZ_RUNS / --fuzz requests
 * (default 5,000; 0 skips it) generated from GET /openapi.json, bounded to 150 s: any 5xx or
 * undocumented answer fails the run. Then a longer model-based run of the store and ingestion
 * invariants (test/model/store-model.ts): SOAK_MODEL_RUNS / --model-runs (default 100, 0 with
 * --short) and SOAK_MODEL_SECONDS / --model-seconds (default 240).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { SoakOptions } from "./soak";

// The SDK's "Node 22 will be required from 2027" notice is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const { FULL_SOAK, formatReport, runSoak, SHORT_SOAK } = await import("./soak");

/** The API fuzz before the soak stops after this long, whatever its count. */
const FUZZ_SECONDS = 150;

type Numeric = Exclude<keyof Omit<SoakOptions, "log">, "provider">;

const PARAMS: [Numeric, string, string, number?][] = [
  ["documents", "SOAK_DOCS", "--docs"],
  ["seconds", "SOAK_SECONDS", "--seconds"],
  ["maxBytes", "SOAK_MAX_MB", "--max-mb", 1024 * 1024],
  ["bigBytes", "SOAK_BIG_MB", "--big-mb", 1024 * 1024],
  ["bigCount", "SOAK_BIG_COUNT", "--big"],
  ["faultRate", "SOAK_FAULT_RATE", "--faults"],
  ["killRate", "SOAK_KILL_RATE", "--kills"],
  ["overwriteRate", "SOAK_OVERWRITE_RATE", "--overwrites"],
  ["deleteRate", "SOAK_DELETE_RATE", "--deletes"],
  ["chatPerMinute", "SOAK_CHAT_PER_MIN", "--chat"],
  ["readerDocs", "SOAK_READER_DOCS", "--reader-docs"],
  ["readerChatPerMinute", "SOAK_READER_CHAT_PER_MIN", "--reader-chat"],
  ["janitorSeconds", "SOAK_JANITOR_SECONDS", "--janitor"],
  ["maxFiles", "SOAK_MAX_FILES", "--max-files"],
  ["workers", "SOAK_WORKERS", "--workers"],
  ["seed", "SOAK_SEED", "--seed"],
];

/** Options from the environment and flags on top of the full (or `--short`) profile. */
export function soakOptions(argv: string[], env: NodeJS.ProcessEnv): Omit<SoakOptions, "log"> {
  const o = { ...(argv.includes("--short") ? SHORT_SOAK : FULL_SOAK) };
  for (const [field, envName, flag, scale] of PARAMS) {
    const i = argv.indexOf(flag);
    const raw = i >= 0 ? argv[i + 1] : env[envName];
    if (raw === undefined || raw === "") continue;
    const value = Number(raw);
    const isRate = field.endsWith("Rate");
    if (!Number.isFinite(value) || value < 0 || (isRate && value > 1)) {
      throw new Error(
        `${flag} / ${envName}: expected ${isRate ? "a fraction 0..1" : "a non-negative number"}, got "${raw}"`,
      );
    }
    (o as unknown as Record<string, number>)[field] = scale ? Math.round(value * scale) : value;
  }
  const p = argv.indexOf("--provider");
  const provider = p >= 0 ? argv[p + 1] : env.SOAK_PROVIDER;
  if (provider !== undefined && provider !== "") {
    if (provider !== "moonshot" && provider !== "glm")
      throw new Error(`--provider / SOAK_PROVIDER: expected moonshot or glm, got "${provider}"`);
    o.provider = provider;
  }
  if (o.seconds > 600) throw new Error("--seconds: the soak is bounded to 600 s");
  if (o.documents < 1) throw new Error("--docs: at least one document");
  return o;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let options: Omit<SoakOptions, "log">;
  try {
    options = soakOptions(argv, process.env);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
  const t0 = Date.now();
  const log = (line: string) =>
    console.log(`[soak +${String(Math.round((Date.now() - t0) / 1000)).padStart(3)}s] ${line}`);

  // First the longer model-based run of the store and ingestion invariants (npm test runs a short one).
  const flag = (name: string, envName: string, fallback: number) => {
    const i = argv.indexOf(name);
    const raw = i >= 0 ? argv[i + 1] : process.env[envName];
    const value = raw === undefined || raw === "" ? fallback : Number(raw);
    if (!Number.isInteger(value) || value < 0) {
      console.error(`${name} / ${envName}: expected a whole number, got "${raw}"`);
      process.exit(2);
    }
    return value;
  };
  const modelRuns = flag("--model-runs", "SOAK_MODEL_RUNS", argv.includes("--short") ? 0 : 100);
  const modelSeconds = Math.min(flag("--model-seconds", "SOAK_MODEL_SECONDS", 240), 600);
  let modelOk = true;
  let modelLine = "";
  if (modelRuns > 0) {
    // In a child process: the model's servers and modules must not touch this process's settings
    // (the soak lowers the provider's file cap before the janitor's policy is first loaded).
    log(`model-based run: up to ${modelRuns} sequences of up to 30 events, ${modelSeconds} s at most`);
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        fileURLToPath(new URL("../model/main.ts", import.meta.url)),
        String(modelRuns),
        String(modelSeconds),
        String(options.seed),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let result: {
      ok: boolean;
      runs?: number;
      steps?: number;
      seconds?: number;
      seed?: number;
      error?: string;
    } = {
      ok: false,
      error: "no result from the model-based run",
    };
    for await (const line of createInterface({ input: child.stdout! })) {
      if (line.startsWith("RESULT ")) result = JSON.parse(line.slice(7));
      else log(line);
    }
    await once(child, "close");
    modelOk = result.ok;
    modelLine = result.ok
      ? `  PASS model-based: store and ingestion invariants after every step (${result.runs} sequences, ${result.steps} steps, ${result.seconds} s, seed ${result.seed})`
      : `  FAIL model-based: store and ingestion invariants (${result.error})`;
    log(modelLine.trim());
  }

  log(`starting: ${JSON.stringify(options)}`);
  // The soak bounds itself; this is the last line of defence for "stops by itself".
  setTimeout(
    () => {
      console.error(
        `SOAK FAILED: hard time limit (${options.seconds + FUZZ_SECONDS + 30} s) reached before the report`,
      );
      process.exit(1);
    },
    (options.seconds + FUZZ_SECONDS + 30) * 1000,
  ).unref();
  const fuzzFlag = argv.indexOf("--fuzz");
  const fuzzRuns = Number((fuzzFlag >= 0 ? argv[fuzzFlag + 1] : process.env.SOAK_FUZZ_RUNS) ?? 5000);
  if (!Number.isSafeInteger(fuzzRuns) || fuzzRuns < 0) {
    console.error(`--fuzz / SOAK_FUZZ_RUNS: expected a whole number >= 0, got "${fuzzRuns}"`);
    process.exit(2);
  }
  let fuzzOk = true;
  if (fuzzRuns > 0) {
    const { runApiFuzz } = await import("../openapi/fuzz");
    const fuzz = await runApiFuzz({ runs: fuzzRuns, seed: options.seed, maxSeconds: FUZZ_SECONDS, log });
    for (const f of fuzz.failures) console.log(`  FUZZ FAILURE: ${f}`);
    fuzzOk = fuzz.ok;
  }
  const report = await runSoak({ ...options, log });
  console.log(formatReport(report));
  if (modelLine) console.log(`model:\n${modelLine}`);
  if (!fuzzOk) console.log("API fuzz: FAILED (see FUZZ FAILURE lines above)");
  const j = argv.indexOf("--json");
  if (j >= 0 && argv[j + 1]) await writeFile(argv[j + 1]!, `${JSON.stringify(report, null, 2)}\n`);
  process.exit(report.ok && modelOk && fuzzOk ? 0 : 1);
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(2);
});
