/**
 * `npm start`: the whole pipeline on this machine (see local/runtime/stack.ts), with a banner saying
 * where everything is, and a clean shutdown on Ctrl-C (a second Ctrl-C exits at once).
 */
import { PROVIDER_PROFILES } from "../functions/core/provider/profiles";
import { ConfigError, loadConfig } from "./runtime/config";
import { banner, consolePrinter } from "./runtime/print";
import { startStack } from "./runtime/stack";

// The SDK's "Node 22 will be required from 2027" notice is noise for a newcomer on the supported Node 20.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const out = consolePrinter();

async function main(): Promise<void> {
  const config = loadConfig();
  const provider = PROVIDER_PROFILES[config.provider].label;
  const stand = config.providerApiKey ? `the real ${provider} API` : `the ${provider} emulator`;
  out.info(`starting local S3, DynamoDB, ${stand} and the chat API...`);
  const stack = await startStack(config, out);
  process.stdout.write(
    `${banner(stack.info, { tokenSource: describeTokenSource(stack.tokenSource), dataDir: config.dataDir, cwd: process.cwd() })}\n`,
  );
  out.info(`ready: ${stack.info.apiUrl}`);

  let stoppingSince = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (stoppingSince) {
      // Ctrl-C reaches npm, tsx and this process at once, and npm/tsx relay it too: only a second
      // Ctrl-C a moment later means "stop waiting".
      if (Date.now() - stoppingSince < 1500) return;
      out.warn(`${signal} again: exiting without waiting`);
      process.exit(130);
    }
    stoppingSince = Date.now();
    out.info(`${signal}: stopping (finishing running ingestions, saving the queue)...`);
    stack.close().then(
      () => {
        out.info("stopped; data kept in DATA_DIR");
        process.exit(0);
      },
      (err) => {
        out.error(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

function describeTokenSource(source: string): string {
  if (source === "API_TOKEN") return "from API_TOKEN";
  if (source === "generated") return "generated and saved in DATA_DIR/api-token; set API_TOKEN to choose one";
  return "from DATA_DIR/api-token; set API_TOKEN to choose one";
}

main().catch((err) => {
  if (err instanceof ConfigError) out.error(err.message);
  else out.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
