/**
 * Which stack the CLI talks to. Local by default: the API URL, token and S3 endpoint come from
 * DATA_DIR/runtime.json, which `npm start` writes (DATA_DIR defaults to ./.data). A deployed stack:
 * `--api <url> --token <t>` or KDP_API_URL / KDP_API_TOKEN, and `--bucket <name>` for uploads.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { RuntimeInfo } from "../local/runtime/config";

export interface Target {
  apiUrl: string;
  token?: string;
  /** True when talking to `npm start` on this machine. */
  local: boolean;
  dataDir: string;
  /** Present when `npm start` is (or was, if it crashed) running on this DATA_DIR. */
  runtime?: RuntimeInfo;
  /** Where the token came from, for error messages. */
  tokenSource: string;
}

export interface TargetFlags {
  api?: string;
  token?: string;
}

type Env = Record<string, string | undefined>;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Resolves the API target from flags, then the environment, then the local runtime file. */
export function resolveTarget(flags: TargetFlags, env: Env = process.env, cwd = process.cwd()): Target {
  const dataDir = resolve(cwd, env.DATA_DIR?.trim() || ".data");
  let runtime: RuntimeInfo | undefined;
  const raw = readText(join(dataDir, "runtime.json"));
  if (raw) {
    try {
      runtime = JSON.parse(raw) as RuntimeInfo;
    } catch {
      runtime = undefined;
    }
  }
  const remoteUrl = flags.api?.trim() || env.KDP_API_URL?.trim();
  if (remoteUrl) {
    const token = flags.token?.trim() || env.KDP_API_TOKEN?.trim();
    return {
      apiUrl: remoteUrl.replace(/\/+$/, ""),
      token,
      local: false,
      dataDir,
      tokenSource: flags.token ? "--token" : "KDP_API_TOKEN",
    };
  }
  const apiUrl = runtime?.apiUrl ?? `http://127.0.0.1:${env.PORT?.trim() || "3000"}`;
  if (flags.token?.trim())
    return { apiUrl, token: flags.token.trim(), local: true, dataDir, runtime, tokenSource: "--token" };
  if (env.KDP_API_TOKEN?.trim())
    return {
      apiUrl,
      token: env.KDP_API_TOKEN.trim(),
      local: true,
      dataDir,
      runtime,
      tokenSource: "KDP_API_TOKEN",
    };
  if (runtime?.token)
    return {
      apiUrl,
      token: runtime.token,
      local: true,
      dataDir,
      runtime,
      tokenSource: join(dataDir, "runtime.json"),
    };
  const fileToken = readText(join(dataDir, "api-token"));
  if (fileToken)
    return {
      apiUrl,
      token: fileToken,
      local: true,
      dataDir,
      runtime,
      tokenSource: join(dataDir, "api-token"),
    };
  return {
    apiUrl,
    token: env.API_TOKEN?.trim() || undefined,
    local: true,
    dataDir,
    runtime,
    tokenSource: "API_TOKEN",
  };
}
