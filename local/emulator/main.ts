/**
 * CLI: `npm run emulator -- --port 8787 [options]` starts the Moonshot emulator and prints
 * `listening on http://127.0.0.1:N` once it accepts connections. SIGINT/SIGTERM close it cleanly.
 */
import { parseArgs } from "node:util";
import { type FaultConfig, OPERATIONS, type Operation, startEmulator } from "./server";

const HELP = `Moonshot API emulator

Usage: npm run emulator -- [options]

  --port N                 port to listen on (default 8787; 0 = random)
  --host H                 interface (default 127.0.0.1)
  --api-key KEY            required bearer (default: env EMULATOR_API_KEY; unset = any non-empty key)
  --data-dir DIR           persist files here and reload them on start (default: memory only)
  --content-format F       json (default, like the real service) or text
  --max-files N            file-count quota (default 1000)
  --max-file-bytes N       per-file size cap in bytes (default 104857600)
  --max-total-bytes N      total size quota in bytes (default 10737418240)
  --latency-ms MS|OP=MS,.. fixed latency for all /v1 operations, or per operation (e.g. upload=200,chat=50)
  --rate-429 F             fraction of /v1 requests answered 429 with Retry-After (0..1)
  --rate-quota F           fraction answered 429 exceeded_current_quota_error (0..1)
  --rate-500 F             fraction answered 500 server_error (0..1)
  --rate-drop F            fraction whose connection is dropped (0..1)
  --rate-slow F            fraction delayed by --slow-ms (0..1)
  --slow-ms MS             delay of slow responses (default 30000)
  --stream-delay-ms MS     delay between SSE frames of streamed chats (default 0)
  --rate-stream-cut F      fraction of streamed chats cut after the first content chunk (0..1)
  --retry-after S          Retry-After seconds on injected 429s (default 1)
  --fault-ops OP,..        restrict rate faults to these operations (${OPERATIONS.join(", ")})
  --seed N                 PRNG seed for faults (default 1)
  --help                   this text
`;

function num(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n))
    throw new Error(`--${name} expects a number, got "${value}"`);
  return n;
}

function ops(value: string): Operation[] {
  const list = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const op of list) {
    if (!OPERATIONS.includes(op as Operation)) throw new Error(`unknown operation "${op}"`);
  }
  return list as Operation[];
}

function latency(value: string | undefined): FaultConfig["latencyMs"] | undefined {
  if (value === undefined) return undefined;
  if (!value.includes("=")) return num("latency-ms", value);
  const out: Partial<Record<Operation, number>> = {};
  for (const pair of value.split(",")) {
    const [op, ms] = pair.split("=");
    const [name] = ops(op ?? "");
    out[name!] = num("latency-ms", ms)!;
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      host: { type: "string" },
      "api-key": { type: "string" },
      "data-dir": { type: "string" },
      "content-format": { type: "string" },
      "max-files": { type: "string" },
      "max-file-bytes": { type: "string" },
      "max-total-bytes": { type: "string" },
      "latency-ms": { type: "string" },
      "rate-429": { type: "string" },
      "rate-quota": { type: "string" },
      "rate-500": { type: "string" },
      "rate-drop": { type: "string" },
      "rate-slow": { type: "string" },
      "slow-ms": { type: "string" },
      "stream-delay-ms": { type: "string" },
      "rate-stream-cut": { type: "string" },
      "retry-after": { type: "string" },
      "fault-ops": { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const format = values["content-format"];
  if (format !== undefined && format !== "json" && format !== "text") {
    throw new Error(`--content-format must be json or text, got "${format}"`);
  }
  const apiKey = values["api-key"] ?? process.env.EMULATOR_API_KEY;
  const faults: Partial<FaultConfig> = {
    latencyMs: latency(values["latency-ms"]),
    rate429: num("rate-429", values["rate-429"]),
    rateQuota: num("rate-quota", values["rate-quota"]),
    rate500: num("rate-500", values["rate-500"]),
    rateDrop: num("rate-drop", values["rate-drop"]),
    rateSlow: num("rate-slow", values["rate-slow"]),
    slowMs: num("slow-ms", values["slow-ms"]),
    streamDelayMs: num("stream-delay-ms", values["stream-delay-ms"]),
    rateStreamCut: num("rate-stream-cut", values["rate-stream-cut"]),
    retryAfterSeconds: num("retry-after", values["retry-after"]),
    operations: values["fault-ops"] === undefined ? undefined : ops(values["fault-ops"]),
    seed: num("seed", values.seed),
  };
  const emulator = await startEmulator({
    port: num("port", values.port) ?? 8787,
    host: values.host ?? "127.0.0.1",
    apiKey: apiKey === "" ? undefined : apiKey,
    dataDir: values["data-dir"],
    contentFormat: format,
    limits: {
      maxFiles: num("max-files", values["max-files"]),
      maxFileBytes: num("max-file-bytes", values["max-file-bytes"]),
      maxTotalBytes: num("max-total-bytes", values["max-total-bytes"]),
    },
    faults,
  });
  process.stdout.write(`listening on ${emulator.url}\n`);

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    emulator.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`error while closing after ${signal}: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));
}

main().catch((err) => {
  process.stderr.write(`emulator: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
