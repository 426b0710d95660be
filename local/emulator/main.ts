/**
 * CLI: `npm run emulator -- --port 8787 [--profile glm] [options]` starts the provider emulator and
 * prints `listening on http://127.0.0.1:N` once it accepts connections (the API root is that plus
 * `/v1`, or `/api/paas/v4` for glm). SIGINT/SIGTERM close it cleanly.
 */
import { parseArgs } from "node:util";
import { PROFILE_NAMES } from "./profiles";
import { type FaultConfig, OPERATIONS, type Operation, startEmulator } from "./server";

const HELP = `Provider API emulator (Moonshot or Zhipu GLM)

Usage: npm run emulator -- [options]

  --profile P              moonshot (default; API root <url>/v1) or glm (API root <url>/api/paas/v4)
  --port N                 port to listen on (default 8787; 0 = random)
  --host H                 interface (default 127.0.0.1)
  --api-key KEY            required bearer (default: env EMULATOR_API_KEY; unset = any non-empty key)
  --data-dir DIR           persist files here and reload them on start (default: memory only)
  --content-format F       json (default, like the real service) or text
  --max-files N            file-count quota (default: moonshot 1000, glm 100)
  --max-file-bytes N       per-file size cap in bytes (default: moonshot 104857600, glm 52428800)
  --max-image-bytes N      per-image size cap in bytes (default: moonshot none, glm 5242880)
  --max-total-bytes N      total size quota in bytes (default: moonshot 10737418240, glm 5242880000)
  --latency-ms MS|OP=MS,.. fixed latency for all /v1 operations, or per operation (e.g. upload=200,chat=50)
  --rate-429 F             fraction of API requests answered 429 (moonshot: with Retry-After; glm: 1302/1303)
  --rate-quota F           fraction answered 429 out of credit (moonshot exceeded_current_quota_error, glm 1113)
  --rate-500 F             fraction answered 500 (0..1)
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
      profile: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      "api-key": { type: "string" },
      "data-dir": { type: "string" },
      "content-format": { type: "string" },
      "max-files": { type: "string" },
      "max-file-bytes": { type: "string" },
      "max-image-bytes": { type: "string" },
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
  const profile = values.profile ?? "moonshot";
  if (!(PROFILE_NAMES as readonly string[]).includes(profile)) {
    throw new Error(`--profile must be one of ${PROFILE_NAMES.join(", ")}, got "${profile}"`);
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
    profile: profile as (typeof PROFILE_NAMES)[number],
    port: num("port", values.port) ?? 8787,
    host: values.host ?? "127.0.0.1",
    apiKey: apiKey === "" ? undefined : apiKey,
    dataDir: values["data-dir"],
    contentFormat: format,
    limits: {
      maxFiles: num("max-files", values["max-files"]),
      maxFileBytes: num("max-file-bytes", values["max-file-bytes"]),
      maxImageBytes: num("max-image-bytes", values["max-image-bytes"]),
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
