/**
 * What `npm start` prints: the start-up banner (URLs, token, a ready-to-paste example) and one short
 * line per pipeline event. Colours only on a TTY (and never with NO_COLOR).
 */

import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { PROVIDER_PROFILES } from "../../functions/core/provider/profiles";
import type { RuntimeInfo } from "./config";

export interface Printer {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

const useColor = (stream: NodeJS.WriteStream) => Boolean(stream.isTTY) && !process.env.NO_COLOR;
const paint = (code: number, text: string, on: boolean) => (on ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = (text: string) => paint(1, text, useColor(process.stdout));
export const dim = (text: string) => paint(2, text, useColor(process.stdout));
export const green = (text: string) => paint(32, text, useColor(process.stdout));
export const yellow = (text: string) => paint(33, text, useColor(process.stdout));
export const red = (text: string) => paint(31, text, useColor(process.stdout));

/** Timestamped lines on stdout (info) and stderr (warnings and errors). */
export function consolePrinter(): Printer {
  const stamp = () => dim(new Date().toISOString().slice(11, 19));
  return {
    info: (line) => process.stdout.write(`${stamp()} ${line}\n`),
    warn: (line) => process.stderr.write(`${stamp()} ${yellow("warn")} ${line}\n`),
    error: (line) => process.stderr.write(`${stamp()} ${red("error")} ${line}\n`),
  };
}

/** Quotes a value for a POSIX shell when needed. */
export function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The document the printed example uploads: the chat API's own reference when run from the
 * repository (a real document a newcomer has at hand), else the README, else a placeholder.
 */
export function exampleDocument(cwd: string): { path: string; question: string } {
  if (existsSync(join(cwd, "functions/chat/API.md")))
    return { path: "functions/chat/API.md", question: "How do I delete a document?" };
  if (existsSync(join(cwd, "README.md")))
    return { path: "README.md", question: "What does this project do?" };
  return { path: "path/to/file.pdf", question: "What is this document about?" };
}

/** The start-up banner: where everything is and what to paste next. */
export function banner(
  info: RuntimeInfo,
  extra: { tokenSource: string; dataDir: string; cwd: string },
): string {
  const example = exampleDocument(extra.cwd);
  const rel = (p: string) => {
    const r = relative(extra.cwd, p);
    return r === "" ? "." : r.startsWith("..") ? p : `./${r}`;
  };
  const question = JSON.stringify({ question: example.question });
  const lines = [
    "",
    bold("kimi-doc-pipeline is running locally"),
    "",
    `  Chat API      ${info.apiUrl}`,
    ...(info.consoleUrl
      ? [`  Web console   ${info.consoleUrl}  ${dim("(sign in with the token below)")}`]
      : []),
    `  MCP server    ${info.apiUrl}/mcp  ${dim("(Streamable HTTP; header Authorization: Bearer <token>; see the README)")}`,
    `  API token     ${info.token}  ${dim(`(${extra.tokenSource})`)}`,
    `  S3 endpoint   ${info.s3Endpoint}   bucket: ${info.bucket}`,
    providerLine(info),
    `  Data          ${rel(extra.dataDir)}  ${dim("(S3 objects, DynamoDB, emulator state, token; kept across restarts)")}`,
    info.dropDir
      ? `  Drop folder   ${rel(info.dropDir)}  ${dim("(files put here are uploaded to the bucket and left in place)")}`
      : "  Drop folder   off",
    "",
    bold("Try it (in another terminal):"),
    "",
    `  ${dim("# upload a document (any PDF, DOCX, TXT, MD...) and wait until it is ready")}`,
    `  npx kdp put ${example.path}`,
    info.dropDir
      ? `  ${dim(`# ...or copy it into ${rel(info.dropDir)}, or use any S3 client:`)}`
      : `  ${dim("# ...or use any S3 client:")}`,
    `  AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER aws s3 cp ${example.path} s3://${info.bucket}/ --endpoint-url ${info.s3Endpoint}`,
    "",
    `  ${dim("# ask a question")}`,
    `  npx kdp ask "${example.question}"`,
    `  curl -s ${info.apiUrl}/chat -H ${shellQuote(`Authorization: Bearer ${info.token}`)} -H 'Content-Type: application/json' -d ${shellQuote(question)}`,
    "",
    `  ${dim("# list documents")}`,
    "  npx kdp ls",
    "",
    dim("Ctrl-C stops everything; `npm start` again picks up where it stopped."),
    "",
  ];
  return lines.join("\n");
}

/** Which provider answers, and how to switch to the real one or the other provider. */
function providerLine(info: RuntimeInfo): string {
  const profile = PROVIDER_PROFILES[info.provider];
  const label = "Provider".padEnd(14);
  if (!info.emulator) return `  ${label}${profile.label} at ${info.providerBaseUrl}`;
  const other = info.provider === "glm" ? "PROVIDER=moonshot" : "PROVIDER=glm";
  return `  ${label}${profile.label} emulator at ${info.providerBaseUrl} ${dim(`(set ${profile.env.apiKey} to use the real API; ${other} for the other provider)`)}`;
}
