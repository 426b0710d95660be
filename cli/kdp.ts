/**
 * `kdp`: the command-line client for kimi-doc-pipeline (see HELP). Targets the local `npm start`
 * stack by default; `--api/--token` (or KDP_API_URL/KDP_API_TOKEN) and `--bucket` for a deployed one.
 */
import { parseArgs } from "node:util";
import { ApiClient, CliError } from "./api";
import { ask, ls, queue, rm, search, show } from "./commands";
import { resolveTarget } from "./target";

const HELP = `kdp — drop documents into kimi-doc-pipeline and ask questions about them

Usage:
  kdp put <files or folders...> [--prefix p] [--no-wait] [--timeout s] [--bucket b [--region r]]
  kdp ls [--prefix p] [--status processing|ready|failed|deleted] [--limit n] [--json]
  kdp show <id> [--json]
  kdp rm <id...>
  kdp ask "question" [--prefix p] [--doc id]... [--model m] [--max-tokens n]
            [--max-context-tokens n] [--json] [--reasoning]
  kdp search "words" [--prefix p] [--doc id]... [--limit n] [--json]   best-matching chunks
  kdp queue [redrive|purge]        local stack only: ingest queue and dead-letter list
  kdp keys create --prefix p [--name n] [--expires-in-days d] [--json]
                                   a key that sees only documents under p (printed once)
  kdp keys ls [--json]             scoped API keys (never the keys themselves)
  kdp keys revoke <id>             the key stops working (in AWS within the authorizer's 5-minute cache)
  Keys are managed with the stack's API token.

Target (default: the local stack started by \`npm start\`, found through DATA_DIR/runtime.json,
DATA_DIR defaulting to ./.data):
  --api <url>      a deployed stack's API URL      (env KDP_API_URL)
  --token <t>      its API token                   (env KDP_API_TOKEN)
  --bucket <name>  upload to this deployed bucket with your AWS credentials (kdp put)

Examples:
  npx kdp put report.pdf notes/          # upload, then wait until each document is ready
  npx kdp ask "What were the Q3 revenues?" --prefix notes/
  npx kdp search "Q3 revenue" --limit 5
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(HELP);
    return command ? 0 : 2;
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      api: { type: "string" },
      token: { type: "string" },
      bucket: { type: "string" },
      region: { type: "string" },
      prefix: { type: "string" },
      status: { type: "string" },
      limit: { type: "string" },
      doc: { type: "string", multiple: true },
      model: { type: "string" },
      "max-tokens": { type: "string" },
      "max-context-tokens": { type: "string" },
      wait: { type: "boolean" },
      "no-wait": { type: "boolean" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      reasoning: { type: "boolean" },
      name: { type: "string" },
      "expires-in-days": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const api = new ApiClient(resolveTarget({ api: values.api, token: values.token }));
  switch (command) {
    case "put": {
      // Loaded on demand: the S3 client is the heaviest import and only `put` needs it.
      const { put } = await import("./put");
      return put(api, {
        paths: positionals,
        prefix: values.prefix,
        bucket: values.bucket,
        region: values.region,
        wait: !values["no-wait"],
        timeoutSeconds: positiveInt(values.timeout, "--timeout") ?? 600,
      });
    }
    case "ls":
    case "list":
      return ls(api, {
        prefix: values.prefix,
        status: values.status,
        limit: positiveInt(values.limit, "--limit"),
        json: values.json,
      });
    case "show":
      return show(api, positionals[0], { json: values.json });
    case "rm":
    case "delete":
      return rm(api, positionals);
    case "ask":
      return ask(api, {
        question: positionals.join(" "),
        prefix: values.prefix,
        documentIds: values.doc,
        model: values.model,
        maxTokens: positiveInt(values["max-tokens"], "--max-tokens"),
        maxContextTokens: positiveInt(values["max-context-tokens"], "--max-context-tokens"),
        json: values.json,
        reasoning: values.reasoning,
      });
    case "search":
      return search(api, {
        query: positionals.join(" "),
        prefix: values.prefix,
        documentIds: values.doc,
        limit: positiveInt(values.limit, "--limit"),
        json: values.json,
      });
    case "queue":
      return queue(api, positionals[0]);
    case "keys": {
      const { keys } = await import("./keys");
      return keys(api, positionals[0], positionals.slice(1), {
        prefix: values.prefix,
        name: values.name,
        expiresInDays: positiveInt(values["expires-in-days"], "--expires-in-days"),
        json: values.json,
      });
    }
    default:
      throw new CliError(`unknown command "${command}" — run \`kdp --help\``, 2);
  }
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError(`${flag} must be a positive whole number, got "${value}"`, 2);
  return n;
}

// The SDK's "Node 22 will be required from 2027" notice is noise for a CLI run on the supported Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliError) {
      process.stderr.write(`kdp: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if ((err as { code?: string })?.code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`kdp: ${(err as Error).message}\nRun \`kdp --help\` for usage.\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(
        `kdp: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 1;
    }
  },
);
