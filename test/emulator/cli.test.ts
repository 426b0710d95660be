/**
 * The CLI (`npm run emulator -- ...` = `tsx local/emulator/main.ts ...`): prints exactly
 * `listening on http://127.0.0.1:N`, applies its flags and EMULATOR_API_KEY, rejects bad flags, and
 * exits 0 on SIGTERM/SIGINT.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const children: ChildProcess[] = [];

function launch(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", "local/emulator/main.ts", ...args], {
    cwd: ROOT,
    env: { ...process.env, EMULATOR_API_KEY: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on("data", check);
    exited.then((code) => reject(new Error(`exited with ${code}: ${stderr}`)));
  });
  // Mark the rejection as handled: a test may await another child first, and an early exit must not
  // surface as an unhandled rejection (awaiting `ready` still sees it).
  ready.catch(() => undefined);
  return { child, ready, exited, output: () => ({ stdout, stderr }) };
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

describe("emulator CLI", () => {
  it("starts with flags, serves, and exits cleanly on SIGTERM", async () => {
    const p = launch(["--port", "0", "--max-files", "1", "--content-format", "text", "--rate-500", "0"], {
      EMULATOR_API_KEY: "cli-key",
    });
    const url = await p.ready;
    expect(p.output().stdout).toBe(`listening on ${url}\n`);
    const auth = { authorization: "Bearer cli-key" };
    expect((await fetch(`${url}/v1/models`, { headers: { authorization: "Bearer other" } })).status).toBe(
      401,
    );

    const form = new FormData();
    form.append("file", new Blob(["plain text body"]), "a.txt");
    form.append("purpose", "file-extract");
    const up = await fetch(`${url}/v1/files`, { method: "POST", headers: auth, body: form });
    const { id } = (await up.json()) as { id: string };
    const content = await fetch(`${url}/v1/files/${id}/content`, { headers: auth });
    expect(content.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await content.text()).toBe("plain text body");
    const second = await fetch(`${url}/v1/files`, { method: "POST", headers: auth, body: form });
    expect(((await second.json()) as { error: { message: string } }).error.message).toMatch(
      /max file count 1,/,
    );

    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });

  it("applies fault flags and exits on SIGINT", async () => {
    const p = launch(["--port", "0", "--rate-429", "1", "--retry-after", "3", "--fault-ops", "list"]);
    const url = await p.ready;
    const headers = { authorization: "Bearer anything" };
    const r = await fetch(`${url}/v1/files`, { headers });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("3");
    expect((await fetch(`${url}/v1/models`, { headers })).status).toBe(200);
    p.child.kill("SIGINT");
    expect(await p.exited).toBe(0);
  });

  it("--profile glm serves GLM's paths, limits and error codes", async () => {
    const p = launch(["--port", "0", "--profile", "glm", "--max-files", "1"]);
    const url = await p.ready;
    const headers = { authorization: "Bearer anything" };
    expect((await fetch(`${url}/v1/files`, { headers })).status).toBe(404);
    const form = new FormData();
    form.append("file", new Blob(["plain text body"]), "a.txt");
    form.append("purpose", "file-extract");
    const up = await fetch(`${url}/api/paas/v4/files`, { method: "POST", headers, body: form });
    expect(await up.json()).not.toHaveProperty("status");
    const second = await fetch(`${url}/api/paas/v4/files`, { method: "POST", headers, body: form });
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe("1214");
    const list = await fetch(`${url}/api/paas/v4/files?purpose=file-extract&limit=100`, { headers });
    expect(await list.json()).toMatchObject({ object: "list", has_more: false });
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });

  it("refuses bad flags with a message and exit code 1", async () => {
    const p = launch(["--rate-429", "lots"]);
    const q = launch(["--content-format", "xml"]);
    const r = launch(["--profile", "openai"]);
    await expect(p.ready).rejects.toThrow(/--rate-429 expects a number/);
    expect(await p.exited).toBe(1);
    await expect(q.ready).rejects.toThrow(/--content-format must be json or text/);
    await expect(r.ready).rejects.toThrow(/--profile must be one of moonshot, glm/);
  });
});
