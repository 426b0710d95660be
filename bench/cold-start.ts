/**
 * Cold-start benchmark: for each Lambda function, the bundle exactly as the construct builds it
 * (lib/function.ts HOUSE_BUNDLING through esbuild's API: ESM, minified, linked source map, AWS SDK
 * bundled), its size, and the time a fresh Node process takes to import it, side by side with a minimal
 * handler that only creates the same AWS SDK clients (bundled the same way). The ratio (function /
 * baseline, medians of several runs) is the cost of our own code at cold start; target <= 1.5x.
 *
 * Each import runs in a new `node` process with the environment the construct gives the function
 * (synthesized from the real stack; references replaced by plausible fake values), including
 * NODE_OPTIONS=--enable-source-maps, so config checks and module-scope client creation run as in Lambda.
 * Nothing touches the network: the SDK clients are created, not called.
 *
 * The chat function also carries the MCP server in a file of its own (lib/chat-api.ts), imported on the
 * first `POST /mcp`; for it this measures (a) that import in a process that has already loaded the chat
 * bundle, the extra latency of the first MCP request in a warm container, and (b) the alternative that
 * was not chosen, MCP in a function of its own: the chat bundle with the SDK imported eagerly.
 *
 * `npx tsx bench/cold-start.ts [--runs 7] [--only ingest,chat] [--no-source-maps]` prints JSON. `main()` is exported for
 * the benchmark runner; `measureColdStarts()` for programmatic use.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { build, type Metafile } from "esbuild";
import { MCP_SERVER_BUNDLE } from "../functions/chat/mcp/bundle";
import { MCP_SERVER_ENTRY } from "../lib/chat-api";
import { entryOf, type FunctionName, HOUSE_BUNDLING, PROJECT_ROOT } from "../lib/function";
import { PipelineStack } from "../lib/pipeline-stack";

const FUNCTIONS: FunctionName[] = ["ingest", "chat", "authorizer", "janitor"];
/** Target from issue 7: a function imports at most 1.5x slower than its SDK-clients-only baseline. */
export const TARGET_RATIO = 1.5;

export interface ColdStartOptions {
  /** Fresh-process imports per bundle (the median is reported). @default 7 */
  runs?: number;
  /** Functions to measure. @default all four */
  functions?: FunctionName[];
  /**
   * Keep NODE_OPTIONS=--enable-source-maps as deployed; false measures without it (for comparison).
   * @default true
   */
  sourceMaps?: boolean;
}

interface Timing {
  /** Median time of `await import(bundle)` inside the fresh process, ms. */
  importMs: number;
  /** Median wall time of the whole process (spawn, Node startup, import, exit), ms. */
  processMs: number;
  importRunsMs: number[];
}

export interface FunctionColdStart {
  name: FunctionName;
  bundleBytes: number;
  sourceMapBytes: number;
  /** SDK clients the function's bundle creates (found in esbuild's metafile). */
  sdkClients: string[];
  function: Timing;
  baseline: Timing & { bundleBytes: number };
  /** function.importMs / baseline.importMs. */
  importRatio: number;
  /** function.processMs / baseline.processMs. */
  processRatio: number;
  withinTarget: boolean;
  /** Chat only: the MCP server file and the own-function alternative. */
  mcp?: McpColdStart;
}

export interface McpColdStart {
  bundleBytes: number;
  /** Median time to import the MCP file once the chat bundle is loaded (the first POST /mcp), ms. */
  firstCallImportMs: number;
  firstCallImportRunsMs: number[];
  /** The alternative: one bundle with the chat handler and the MCP SDK imported at cold start. */
  ownFunction: { bundleBytes: number; importMs: number; importRunsMs: number[]; importRatio: number };
}

export interface ColdStartReport {
  node: string;
  runs: number;
  sourceMaps: boolean;
  targetRatio: number;
  functions: FunctionColdStart[];
  allWithinTarget: boolean;
}

/** esbuild options equivalent to the NodejsFunction command line for HOUSE_BUNDLING. */
function esbuildOptions(outfile: string) {
  return {
    bundle: true,
    platform: "node" as const,
    target: HOUSE_BUNDLING.target,
    format: "esm" as const,
    outfile,
    minify: HOUSE_BUNDLING.minify,
    sourcemap: HOUSE_BUNDLING.sourceMap,
    sourcesContent: HOUSE_BUNDLING.sourcesContent,
    mainFields: HOUSE_BUNDLING.mainFields,
    banner: { js: HOUSE_BUNDLING.banner },
    external: HOUSE_BUNDLING.externalModules,
    metafile: true,
    logLevel: "error" as const,
    absWorkingDir: PROJECT_ROOT,
  };
}

/**
 * SDK client packages imported by code outside the SDK itself (our code, Powertools), i.e. the clients
 * the function creates; the credential chain's own clients (SSO, STS) are left out, as in the baseline.
 */
function sdkClientsOf(metafile: Metafile): string[] {
  const clients = new Set<string>();
  for (const [file, input] of Object.entries(metafile.inputs)) {
    if (/node_modules\/@(aws-sdk|smithy)\//.test(file)) continue;
    for (const imp of input.imports) {
      const m = /node_modules\/(@aws-sdk\/(client-[a-z0-9-]+|lib-dynamodb))\//.exec(imp.path);
      if (m) clients.add(m[1]);
    }
  }
  return [...clients].sort();
}

/** Source of the baseline handler: create the same clients at module scope, do nothing else. */
async function baselineSource(packages: string[]): Promise<string> {
  const lines: string[] = [];
  const made: string[] = [];
  for (const [i, pkg] of packages.entries()) {
    if (pkg === "@aws-sdk/lib-dynamodb") continue;
    const mod = (await import(pkg)) as Record<string, unknown>;
    const name = Object.keys(mod).find((k) => /^[A-Z][A-Za-z0-9]*Client$/.test(k) && k !== "Client");
    if (!name) throw new Error(`no client class exported by ${pkg}`);
    lines.push(`import { ${name} as C${i} } from "${pkg}";`);
    made.push(`new C${i}({})`);
  }
  if (packages.includes("@aws-sdk/lib-dynamodb")) {
    lines.push('import { DynamoDBClient as DDB } from "@aws-sdk/client-dynamodb";');
    lines.push('import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";');
    made.push("DynamoDBDocumentClient.from(new DDB({}))");
  }
  lines.push(`const clients = [${made.join(", ")}];`);
  lines.push("export const handler = async () => clients.length;");
  return lines.join("\n");
}

/** The environment the construct gives each function, with references replaced by fake values. */
function functionEnvironments(): Record<FunctionName, Record<string, string>> {
  const app = new App({ builtinCloudFormationValidation: false, context: { "aws:cdk:bundling-stacks": [] } });
  const stack = new PipelineStack(app, "Bench", { env: { account: "123456789012", region: "us-east-1" } });
  const resources = Template.fromStack(stack).toJSON().Resources;
  const p = stack.pipeline;
  const fns: Record<FunctionName, { node: { defaultChild?: unknown } }> = {
    ingest: p.ingestion.function,
    chat: p.chatApi.function,
    authorizer: p.chatApi.authorizerFunction,
    janitor: p.janitor.function,
    indexer: p.searchIndex.function,
  };
  const fake: Record<string, string> = {
    TABLE_NAME: "kdp-bench-documents",
    DEPLOYMENT_ID: "benchdeploy",
    BUCKET_NAME: "kdp-bench-bucket",
    SEARCH_INDEX_BUCKET: "kdp-bench-search-index",
    MOONSHOT_API_KEY_SECRET: "arn:aws:secretsmanager:us-east-1:123456789012:secret:kdp-moonshot-AbCdEf",
    API_TOKEN_SECRET: "arn:aws:secretsmanager:us-east-1:123456789012:secret:kdp-api-token-AbCdEf",
  };
  const out = {} as Record<FunctionName, Record<string, string>>;
  for (const [name, fn] of Object.entries(fns) as [FunctionName, { node: { defaultChild?: unknown } }][]) {
    const id = stack.resolve((fn.node.defaultChild as { logicalId: string }).logicalId) as string;
    const vars = resources[id].Properties.Environment.Variables as Record<string, unknown>;
    out[name] = Object.fromEntries(
      Object.entries(vars).map(([k, v]) => [
        k,
        typeof v === "string" ? v : (fake[k] ?? `bench-${k.toLowerCase()}`),
      ]),
    );
  }
  return out;
}

/** What a Lambda sandbox provides before the handler module loads (no credentials are used). */
const LAMBDA_ENV = {
  AWS_REGION: "us-east-1",
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "AKIDBENCHMARK",
  AWS_SECRET_ACCESS_KEY: "bench-secret",
  AWS_SESSION_TOKEN: "bench-session",
  AWS_LAMBDA_FUNCTION_NAME: "bench",
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "1024",
  AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
  AWS_LAMBDA_LOG_FORMAT: "JSON",
  AWS_XRAY_CONTEXT_MISSING: "IGNORE_ERROR",
  POWERTOOLS_DEV: "false",
};

// The Lambda Node.js runtime defines the \`awslambda\` global (response streaming) before loading the
// handler; the chat handler wraps itself with it at import time.
const IMPORT_SCRIPT = `
globalThis.awslambda = {
  streamifyResponse: (fn) => fn,
  HttpResponseStream: { from: (stream) => stream },
};
const started = performance.now();
const mod = await import(process.argv[1]);
const ms = performance.now() - started;
if (typeof mod.handler !== "function") { console.error("no handler export"); process.exit(2); }
process.stdout.write(JSON.stringify({ ms }));
`;

/** Imports argv[1] (not timed), then times the import of argv[2]: a module loaded on demand. */
const IMPORT_AFTER_SCRIPT = `
globalThis.awslambda = {
  streamifyResponse: (fn) => fn,
  HttpResponseStream: { from: (stream) => stream },
};
await import(process.argv[1]);
const started = performance.now();
const mod = await import(process.argv[2]);
const ms = performance.now() - started;
if (typeof mod.handleMcpRequest !== "function") { console.error("no handleMcpRequest export"); process.exit(2); }
process.stdout.write(JSON.stringify({ ms }));
`;

function importOnce(
  file: string,
  env: Record<string, string>,
  after?: string,
): Promise<{ importMs: number; processMs: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const args = after
      ? [
          "--input-type=module",
          "-e",
          IMPORT_AFTER_SCRIPT,
          pathToFileURL(file).href,
          pathToFileURL(after).href,
        ]
      : ["--input-type=module", "-e", IMPORT_SCRIPT, pathToFileURL(file).href];
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? "", ...LAMBDA_ENV, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    child.stderr.on("data", (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("close", (code) => {
      clearTimeout(timer);
      const processMs = performance.now() - started;
      if (code !== 0)
        return reject(new Error(`import of ${file} failed (exit ${code}): ${err.slice(0, 500)}`));
      resolve({ importMs: (JSON.parse(out) as { ms: number }).ms, processMs });
    });
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Interleaves function and baseline runs so machine noise hits both alike. */
async function timePair(fnFile: string, baseFile: string, env: Record<string, string>, runs: number) {
  await importOnce(fnFile, env); // warm the OS file cache for both; not counted
  await importOnce(baseFile, env);
  const f: { importMs: number; processMs: number }[] = [];
  const b: { importMs: number; processMs: number }[] = [];
  for (let i = 0; i < runs; i++) {
    f.push(await importOnce(fnFile, env));
    b.push(await importOnce(baseFile, env));
  }
  const timing = (xs: typeof f): Timing => ({
    importMs: round(median(xs.map((x) => x.importMs))),
    processMs: round(median(xs.map((x) => x.processMs))),
    importRunsMs: xs.map((x) => round(x.importMs)),
  });
  return { fn: timing(f), base: timing(b) };
}

/** The MCP file next to the chat bundle, its first import, and MCP as a function of its own. */
async function measureMcp(
  dir: string,
  chatFile: string,
  baseFile: string,
  env: Record<string, string>,
  runs: number,
): Promise<McpColdStart> {
  const mcpFile = path.join(path.dirname(chatFile), MCP_SERVER_BUNDLE);
  await build({ ...esbuildOptions(mcpFile), entryPoints: [path.join(PROJECT_ROOT, MCP_SERVER_ENTRY)] });
  const ownFile = path.join(dir, "mcp-own-function", "index.mjs");
  const chatEntry = JSON.stringify(entryOf("chat"));
  const mcpEntry = JSON.stringify(path.join(PROJECT_ROOT, MCP_SERVER_ENTRY));
  await build({
    ...esbuildOptions(ownFile),
    stdin: {
      contents: `export { handler } from ${chatEntry};\nimport { handleMcpRequest } from ${mcpEntry};\nexport const mcp = handleMcpRequest;\n`,
      resolveDir: PROJECT_ROOT,
      sourcefile: "mcp-own-function.ts",
      loader: "ts",
    },
  });
  const first: number[] = [];
  await importOnce(chatFile, env, mcpFile); // warm the file cache; not counted
  for (let i = 0; i < runs; i++) first.push((await importOnce(chatFile, env, mcpFile)).importMs);
  const { fn: own, base } = await timePair(ownFile, baseFile, env, runs);
  return {
    bundleBytes: statSync(mcpFile).size,
    firstCallImportMs: round(median(first)),
    firstCallImportRunsMs: first.map((x) => round(x)),
    ownFunction: {
      bundleBytes: statSync(ownFile).size,
      importMs: own.importMs,
      importRunsMs: own.importRunsMs,
      importRatio: round(own.importMs / base.importMs, 2),
    },
  };
}

/** Builds and measures every function; see the module comment. */
export async function measureColdStarts(options: ColdStartOptions = {}): Promise<ColdStartReport> {
  const runs = options.runs ?? 7;
  const names = options.functions ?? FUNCTIONS;
  const sourceMaps = options.sourceMaps ?? true;
  const envs = functionEnvironments();
  if (!sourceMaps) for (const env of Object.values(envs)) delete env.NODE_OPTIONS;
  const dir = mkdtempSync(path.join(tmpdir(), "kdp-cold-start-"));
  try {
    const results: FunctionColdStart[] = [];
    for (const name of names) {
      const fnFile = path.join(dir, name, "index.mjs");
      const built = await build({ ...esbuildOptions(fnFile), entryPoints: [entryOf(name)] });
      if (!built.metafile) throw new Error("esbuild returned no metafile");
      const sdkClients = sdkClientsOf(built.metafile);
      const baseFile = path.join(dir, `${name}-baseline`, "index.mjs");
      await build({
        ...esbuildOptions(baseFile),
        stdin: {
          contents: await baselineSource(sdkClients),
          resolveDir: PROJECT_ROOT,
          sourcefile: `${name}-baseline.ts`,
          loader: "ts",
        },
      });
      const { fn, base } = await timePair(fnFile, baseFile, envs[name], runs);
      const importRatio = round(fn.importMs / base.importMs, 2);
      const mcp = name === "chat" ? await measureMcp(dir, fnFile, baseFile, envs[name], runs) : undefined;
      results.push({
        name,
        bundleBytes: statSync(fnFile).size,
        sourceMapBytes: statSync(`${fnFile}.map`).size,
        sdkClients,
        function: fn,
        baseline: { ...base, bundleBytes: statSync(baseFile).size },
        importRatio,
        processRatio: round(fn.processMs / base.processMs, 2),
        withinTarget: importRatio <= TARGET_RATIO,
        ...(mcp ? { mcp } : {}),
      });
    }
    return {
      node: process.version,
      runs,
      sourceMaps,
      targetRatio: TARGET_RATIO,
      functions: results,
      allWithinTarget: results.every((r) => r.withinTarget),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CLI: prints the report as JSON. */
export async function main(argv: string[] = process.argv.slice(2)): Promise<ColdStartReport> {
  const arg = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const runs = arg("--runs") ? Number(arg("--runs")) : undefined;
  if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1 && runs <= 50)) {
    throw new Error(`--runs must be an integer from 1 to 50, got ${arg("--runs")}`);
  }
  const only = arg("--only")
    ?.split(",")
    .map((s) => s.trim()) as FunctionName[] | undefined;
  for (const name of only ?? []) {
    if (!FUNCTIONS.includes(name))
      throw new Error(`--only: unknown function "${name}" (${FUNCTIONS.join(", ")})`);
  }
  const report = await measureColdStarts({
    runs,
    functions: only,
    sourceMaps: !argv.includes("--no-source-maps"),
  });
  console.log(JSON.stringify(report, null, 2));
  return report;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
