/**
 * `npm start` as a user runs it (a child process on random ports, a temporary DATA_DIR and drop
 * folder, the emulator instead of the real provider), then the `kdp` CLI against that running stack,
 * then Ctrl-C (SIGINT to the process group) and a restart on the same DATA_DIR.
 * One stack serves all the CLI tests to keep this file fast. Runs once per provider (TEST_PROVIDER):
 * with glm it is `PROVIDER=glm npm start` and the README's quick start against the GLM emulator.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RuntimeInfo } from "../../local/runtime/config";
import { makeDocx, makePdf } from "../support/pdf-docx";
import { isGlm, TEST_PROFILE, TEST_PROVIDER } from "../support/provider";

const ROOT = resolve(import.meta.dirname, "../..");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Doc {
  documentId: string;
  key: string;
  status: string;
  error?: { code: string; message: string };
}

interface Stack {
  child: ChildProcess;
  output: () => string;
  info: RuntimeInfo;
}

let dir: string;
let dataDir: string;
let dropDir: string;
let stack: Stack | undefined;

function baseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    DROP_DIR: dropDir,
    PORT: "0",
    S3_PORT: "0",
    JANITOR_INTERVAL_SECONDS: "3",
    NO_COLOR: "1",
    PROVIDER: TEST_PROVIDER,
  };
  delete env.MOONSHOT_API_KEY;
  delete env.MOONSHOT_BASE_URL;
  delete env.GLM_API_KEY;
  delete env.GLM_BASE_URL;
  delete env.API_TOKEN;
  delete env.KDP_API_URL;
  delete env.KDP_API_TOKEN;
  return env;
}

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs: number,
  output?: () => string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(250);
  }
  throw new Error(
    `timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ""}\n${output?.() ?? ""}`,
  );
}

async function startNpm(): Promise<Stack> {
  // Like a terminal: its own process group, so SIGINT reaches npm, tsx and node as Ctrl-C does.
  // --ignore-scripts skips only `prestart` (the web console build, which `npm test` has already run;
  // rebuilding web/dist here would race with the browser test reading it). `start` itself runs as is.
  const child = spawn("npm", ["start", "--ignore-scripts"], {
    cwd: ROOT,
    env: baseEnv(),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  child.stderr!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  const output = () => out;
  await until(
    "npm start to print ready",
    async () => (/ready: http/.test(out) ? true : undefined),
    60_000,
    output,
  );
  const info = JSON.parse(await readFile(join(dataDir, "runtime.json"), "utf8")) as RuntimeInfo;
  return { child, output, info };
}

/** Ctrl-C: SIGINT to the whole group; the node process must report a clean stop and release its port. */
async function stopNpm(s: Stack): Promise<void> {
  process.kill(-s.child.pid!, "SIGINT");
  await until(
    "a clean shutdown",
    async () => (/stopped; data kept/.test(s.output()) ? true : undefined),
    30_000,
    s.output,
  );
  await until(
    "the API port to close",
    async () => {
      try {
        await fetch(`${s.info.apiUrl}/health`);
        return undefined;
      } catch {
        return true;
      }
    },
    10_000,
  );
}

async function api<T>(
  s: Stack,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${s.info.apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${s.info.token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as T };
}

async function listDocs(s: Stack): Promise<Doc[]> {
  const { status, body } = await api<{ items: Doc[] }>(s, "GET", "/documents?limit=100");
  expect(status).toBe(200);
  return body.items;
}

function kdp(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [join(ROOT, "cli/kdp.mjs"), ...args], {
      cwd: ROOT,
      env: { ...baseEnv(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

const PDF_FACT = "The lighthouse keeper on Skerry Island is named Ottoline Marsh.";
const DOCX_FACT = "The bakery on Quill Street sells cardamom buns every Thursday morning.";
const TXT_FACT = "The observatory telescope was ground by hand from a single block of Pyrex glass.";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kdp-npm-start-"));
  dataDir = join(dir, "data");
  dropDir = join(dir, "inbox");
  stack = await startNpm();
}, 90_000);

afterAll(async () => {
  if (stack && stack.child.exitCode === null && !/stopped; data kept/.test(stack.output())) {
    try {
      process.kill(-stack.child.pid!, "SIGINT");
      await sleep(3000);
      process.kill(-stack.child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
}, 30_000);

describe("npm start", { timeout: 120_000 }, () => {
  let pdfId: string;
  let docxId: string;

  it("prints the API URL, the token, the S3 endpoint and a ready-to-paste example", () => {
    const out = stack!.output();
    expect(out).toContain(`Chat API      ${stack!.info.apiUrl}`);
    expect(out).toContain(`MCP server    ${stack!.info.apiUrl}/mcp`);
    expect(out).toContain(stack!.info.token);
    expect(out).toContain(`S3 endpoint   ${stack!.info.s3Endpoint}`);
    expect(out).toContain("npx kdp put");
    expect(out).toContain(`--endpoint-url ${stack!.info.s3Endpoint}`);
    expect(out).toContain(
      `curl -s ${stack!.info.apiUrl}/chat -H 'Authorization: Bearer ${stack!.info.token}'`,
    );
    expect(stack!.info.emulator).toBe(true);
    expect(stack!.info.provider).toBe(TEST_PROVIDER);
    expect(out).toContain(`${TEST_PROFILE.label}`);
    expect(stack!.info.providerBaseUrl).toMatch(isGlm ? /\/api\/paas\/v4$/ : /\/v1$/);
  });

  it("ingests a PDF and a DOCX dropped into the drop folder", async () => {
    await mkdir(join(dropDir, "reports"), { recursive: true });
    await writeFile(join(dropDir, "lighthouse.pdf"), await makePdf(["Island notes", PDF_FACT]));
    await writeFile(join(dropDir, "reports", "bakery.docx"), await makeDocx(["Town guide", DOCX_FACT]));
    const docs = await until(
      "both documents to be ready",
      async () => {
        const items = await listDocs(stack!);
        const failed = items.find((d) => d.status === "failed");
        if (failed) throw new Error(`${failed.key} failed: ${JSON.stringify(failed.error)}`);
        const ready = items.filter((d) => d.status === "ready");
        return ready.length === 2 ? ready : undefined;
      },
      90_000,
      stack!.output,
    );
    const byKey = new Map(docs.map((d) => [d.key, d]));
    expect([...byKey.keys()].sort()).toEqual(["lighthouse.pdf", "reports/bakery.docx"]);
    pdfId = byKey.get("lighthouse.pdf")!.documentId;
    docxId = byKey.get("reports/bakery.docx")!.documentId;
    expect(stack!.output()).toMatch(/drop: uploaded lighthouse\.pdf/);
  });

  it("answers a question from the right document, with sources", async () => {
    const { status, body } = await api<{ answer: string; sources: { documentId: string; key: string }[] }>(
      stack!,
      "POST",
      "/chat",
      { question: "Who is the lighthouse keeper on Skerry Island?" },
    );
    expect(status).toBe(200);
    expect(body.answer).toContain("Ottoline Marsh");
    expect(body.sources.map((s) => s.documentId)).toContain(pdfId);

    // Scoped to the other document, the answer must not know the fact.
    const scoped = await api<{ answer: string; sources: { documentId: string }[] }>(stack!, "POST", "/chat", {
      question: "Who is the lighthouse keeper on Skerry Island?",
      documentIds: [docxId],
    });
    expect(scoped.status).toBe(200);
    expect(scoped.body.answer).not.toContain("Ottoline Marsh");
    expect(scoped.body.sources.map((s) => s.documentId)).toEqual([docxId]);
  });

  it("requires the token on the API and on the local admin routes", async () => {
    for (const path of ["/documents", "/_local/queue"]) {
      const res = await fetch(`${stack!.info.apiUrl}${path}`, { headers: { authorization: "Bearer wrong" } });
      expect(res.status, path).toBe(401);
    }
    const queue = await api<{ stats: { deadLetters: number; waiting: number } }>(
      stack!,
      "GET",
      "/_local/queue",
    );
    expect(queue.status).toBe(200);
    expect(queue.body.stats).toMatchObject({ deadLetters: 0 });
  });
});

describe("MCP server of npm start, through the SDK's own client", { timeout: 120_000 }, () => {
  const mcpClient = async (token: string) => {
    const client = new Client({ name: "npm-start-test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${stack!.info.apiUrl}/mcp`), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    return client;
  };
  type Result = { isError?: boolean; structuredContent?: Record<string, unknown>; content: unknown };
  const ok = (result: unknown) => {
    const r = result as Result;
    expect(r.isError, JSON.stringify(r.content)).toBeFalsy();
    return r.structuredContent as Record<string, unknown> & Record<string, never>;
  };

  it("lists the tools and calls each one", async () => {
    const client = await mcpClient(stack!.info.token);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        "ask",
        "get_document",
        "list_documents",
        "search_documents",
      ]);

      const listed = ok(await client.callTool({ name: "list_documents", arguments: { status: "ready" } }));
      const keys = (listed.documents as { key: string }[]).map((d) => d.key);
      expect(keys).toEqual(expect.arrayContaining(["lighthouse.pdf", "reports/bakery.docx"]));
      const pdf = (listed.documents as { key: string; documentId: string }[]).find(
        (d) => d.key === "lighthouse.pdf",
      )!;

      // The local indexer runs every second: poll until it has the PDF's text.
      const hits = await until(
        "the search index to hold the PDF",
        async () => {
          const r = ok(
            await client.callTool({
              name: "search_documents",
              arguments: { query: "lighthouse keeper Skerry" },
            }),
          );
          const results = r.results as {
            documentId: string;
            key: string;
            chunkIndex: number;
            text: string;
          }[];
          return results.some((h) => h.documentId === pdf.documentId) ? results : undefined;
        },
        30_000,
        stack!.output,
      );
      expect(hits[0]).toMatchObject({ documentId: pdf.documentId, key: "lighthouse.pdf", chunkIndex: 0 });
      expect(hits[0]!.text).toContain("Ottoline Marsh");

      const doc = ok(
        await client.callTool({ name: "get_document", arguments: { documentId: pdf.documentId } }),
      );
      expect(doc.document).toMatchObject({ key: "lighthouse.pdf", status: "ready" });
      expect((doc.chunks as { text: string }[])[0]!.text).toContain(PDF_FACT);

      const answer = ok(
        await client.callTool({
          name: "ask",
          arguments: {
            question: "Who is the lighthouse keeper on Skerry Island?",
            documentIds: [pdf.documentId],
          },
        }),
      );
      expect(answer.answer).toContain("Ottoline Marsh");
      expect((answer.sources as { documentId: string }[]).map((s) => s.documentId)).toEqual([pdf.documentId]);
    } finally {
      await client.close();
    }
  });

  it("refuses a client without the token with 401", async () => {
    const err = await mcpClient("wrong-token").catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 401 });
    const res = await fetch(`${stack!.info.apiUrl}/mcp`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
    });
    expect(res.status).toBe(401);
  });

  it("answers an unknown tool and bad arguments as MCP errors, never a 5xx", async () => {
    const client = await mcpClient(stack!.info.token);
    try {
      const unknown = await client.callTool({ name: "drop_tables", arguments: {} }).catch((e: unknown) => e);
      expect(unknown).toBeInstanceOf(McpError);
      expect((unknown as McpError).code).toBe(ErrorCode.InvalidParams);
      const bad = await client.callTool({
        name: "get_document",
        arguments: { documentId: "x", maxChunks: 0 },
      });
      expect(bad.isError).toBe(true);
      expect((bad.content as { text: string }[])[0]!.text).toContain("maxChunks: must be from 1 to 20");
      const missing = await client.callTool({
        name: "get_document",
        arguments: { documentId: "no-such-doc" },
      });
      expect(missing.isError).toBe(true);
      expect((missing.content as { text: string }[])[0]!.text).toContain("Unknown document id: no-such-doc");
    } finally {
      await client.close();
    }
    // What the SDK client does not show: every one of those was an HTTP 200, and GET is a 405.
    const raw = await fetch(`${stack!.info.apiUrl}/mcp`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${stack!.info.token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 3,
        method: "tools/call",
        params: { name: "nope", arguments: {} },
      }),
    });
    expect(raw.status).toBe(200);
    expect(await raw.json()).toMatchObject({ id: 3, error: { code: -32602 } });
    const get = await fetch(`${stack!.info.apiUrl}/mcp`, {
      headers: { authorization: `Bearer ${stack!.info.token}`, accept: "text/event-stream" },
    });
    expect(get.status).toBe(405);
  });
});

describe("kdp CLI against the running stack", { timeout: 120_000 }, () => {
  let txtId: string;

  it("put --wait uploads with a per-file result and waits until ready", async () => {
    const file = join(dir, "observatory notes.txt");
    await writeFile(file, `Observatory\n\n${TXT_FACT}\n`);
    const r = await kdp(["put", file, "--prefix", "cli"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /uploaded\s+cli\/observatory notes\.txt \(\d+ B\) -> s3:\/\/documents\/cli\/observatory notes\.txt/,
    );
    const ready = /ready\s+cli\/observatory notes\.txt\s+id=(\S+)/.exec(r.stdout);
    expect(ready, r.stdout).not.toBeNull();
    txtId = ready![1]!;
  });

  it("put uploads a folder under its name, reports a missing file and still uploads the rest", async () => {
    const folder = join(dir, "batch");
    await mkdir(join(folder, "sub"), { recursive: true });
    await writeFile(join(folder, "one.md"), "# One\n\nA note about nothing in particular.\n");
    await writeFile(join(folder, "sub", "two.txt"), "Another note.\n");
    await writeFile(join(folder, ".DS_Store"), "junk");
    const r = await kdp(["put", join(dir, "missing.pdf"), folder, "--no-wait"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`not found  ${join(dir, "missing.pdf")}: no such file or folder`);
    expect(r.stdout).toMatch(/uploaded\s+batch\/one\.md/);
    expect(r.stdout).toMatch(/uploaded\s+batch\/sub\/two\.txt/);
    expect(r.stdout).not.toContain("DS_Store");
  });

  it("ls lists documents with status, filtered by prefix and status", async () => {
    const [all, cli, bad] = await Promise.all([
      kdp(["ls"]),
      kdp(["ls", "--prefix", "cli/", "--status", "ready", "--json"]),
      kdp(["ls", "--status", "done"]),
    ]);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/STATUS\s+SIZE\s+UPDATED\s+ID\s+KEY/);
    expect(all.stdout).toContain("lighthouse.pdf");
    expect(all.stdout).toContain("reports/bakery.docx");
    expect(cli.code).toBe(0);
    const docs = JSON.parse(cli.stdout) as Doc[];
    expect(docs.map((d) => d.key)).toEqual(["cli/observatory notes.txt"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--status must be one of");
  });

  it("show prints one document", async () => {
    const r = await kdp(["show", txtId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^id\\s+${txtId}$`, "m"));
    expect(r.stdout).toContain("s3://documents/cli/observatory notes.txt");
    expect(r.stdout).toMatch(/status\s+ready/);
  });

  it("search finds the document's text once the local indexer has caught up (npm start serves POST /search)", async () => {
    let r = await kdp(["search", "observatory telescope Pyrex"]);
    for (let i = 0; i < 60 && !r.stdout.includes("observatory notes.txt"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      r = await kdp(["search", "observatory telescope Pyrex"]);
    }
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^1\. cli\/observatory notes\.txt\s+chunk 0\s+score/m);
    const none = await kdp(["search", "the of and"]);
    expect(none.stdout).toContain("No matching text");
  });

  it("ask streams the answer, then the sources", async () => {
    const r = await kdp(["ask", "What was the observatory telescope ground from?", "--doc", txtId]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Pyrex");
    expect(r.stdout).toMatch(/Sources:\n\s+1\. cli\/observatory notes\.txt\s+\(id=/);
    // What the answer cost, from the published price of the default model (GLM's has none by default).
    if (isGlm)
      expect(r.stdout).toMatch(
        /glm-4\.6, \d+ prompt( \(\d+ cached\))? \+ \d+ completion tokens, cost unknown \(no price for glm-4\.6\)/,
      );
    else expect(r.stdout).toMatch(/kimi-k2\.6, \d+ prompt( \(\d+ cached\))? \+ \d+ completion tokens, \$\d/);
  });

  it("says so for an unknown document, a wrong token, and an unknown command", async () => {
    const [unknown, token, askUnknown, usage] = await Promise.all([
      kdp(["show", "no-such-document"]),
      kdp(["ls", "--token", "wrong"]),
      kdp(["ask", "anything?", "--doc", "no-such-document"]),
      kdp(["frobnicate"]),
    ]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("kdp: no document with id no-such-document");
    expect(token.code).toBe(1);
    expect(token.stderr).toContain(`the API at ${stack!.info.apiUrl} rejected the token (401)`);
    expect(askUnknown.code).toBe(1);
    expect(askUnknown.stderr).toMatch(/kdp: .*(no-such-document|does not exist)/i);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown command "frobnicate"');
  });

  it("keys: create prints the key once (JSON last line), the key sees only its prefix, revoke stops it at once", async () => {
    const created = await kdp(["keys", "create", "--prefix", "reports", "--name", "bakery team", "--json"]);
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    const last = created.stdout.trim().split("\n").pop()!;
    const made = JSON.parse(last) as { id: string; key: string; prefix: string; name: string };
    expect(made).toMatchObject({ prefix: "reports/", name: "bakery team" });
    expect(made.key).toMatch(/^kdpk_[a-z0-9]{12}\./);
    const asTenant = await kdp(["ls", "--json", "--token", made.key]);
    expect(asTenant.code).toBe(0);
    expect((JSON.parse(asTenant.stdout) as Doc[]).map((d) => d.key)).toEqual(["reports/bakery.docx"]);
    const manage = await kdp(["keys", "ls", "--token", made.key]);
    expect(manage.code).toBe(1);
    expect(manage.stderr).toContain("403");
    const listed = await kdp(["keys", "ls"]);
    expect(listed.stdout).toMatch(new RegExp(`${made.id}\\s+reports/\\s+.*active\\s+bakery team`));
    expect(listed.stdout).not.toContain(made.key);
    const revoked = await kdp(["keys", "revoke", made.id]);
    expect(revoked.code).toBe(0);
    expect((await kdp(["ls", "--token", made.key])).stderr).toContain("rejected the token (401)");
    expect((await kdp(["keys", "ls"])).stdout).toMatch(new RegExp(`${made.id}.*revoked`));
  });

  it("rm deletes a document; ingestion then marks it deleted", async () => {
    const r = await kdp(["rm", txtId]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("deleted    cli/observatory notes.txt");
    await until(
      "the document to be gone",
      async () => {
        const res = await fetch(`${stack!.info.apiUrl}/documents/${txtId}`, {
          headers: { authorization: `Bearer ${stack!.info.token}` },
        });
        if (res.status === 404) return true;
        const doc = (await res.json()) as Doc;
        return doc.status === "deleted" ? true : undefined;
      },
      30_000,
      stack!.output,
    );
  });
});

describe("Ctrl-C and a second npm start", { timeout: 120_000 }, () => {
  it("stops cleanly, and the CLI then says no stack is running", async () => {
    const port = new URL(stack!.info.apiUrl).port;
    await stopNpm(stack!);
    expect(existsSync(join(dataDir, "runtime.json"))).toBe(false);
    const r = await kdp(["ls"], { PORT: port });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`kdp: no local stack at http://127.0.0.1:${port} — run \`npm start\` first`);
  });

  it("finds its documents again after a restart on the same DATA_DIR", async () => {
    const firstToken = stack!.info.token;
    stack = await startNpm();
    expect(stack.info.token).toBe(firstToken); // the generated token persists in DATA_DIR
    const docs = await listDocs(stack);
    const ready = docs.filter((d) => d.status === "ready").map((d) => d.key);
    expect(ready).toEqual(expect.arrayContaining(["lighthouse.pdf", "reports/bakery.docx"]));
    expect(docs.find((d) => d.key === "cli/observatory notes.txt")?.status ?? "deleted").toBe("deleted");
    // The drop folder's ledger means nothing was uploaded again.
    await sleep(1500);
    expect(stack.output()).not.toMatch(/drop: uploaded/);
    const { body } = await api<{ answer: string }>(stack, "POST", "/chat", {
      question: "What does the bakery on Quill Street sell?",
    });
    expect(body.answer).toContain("cardamom buns");
    await stopNpm(stack);
  });
});
