import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readSse } from "../../cli/api";
import { resolveTarget } from "../../cli/target";
import { ConfigError, loadConfig, persistentSecret } from "../../local/runtime/config";
import { DropFolder, isIgnoredName } from "../../local/runtime/drop-folder";
import { withPortHint } from "../../local/runtime/ports";
import { banner, exampleDocument } from "../../local/runtime/print";
import { contentTypeFor, keyFor } from "../../local/runtime/upload";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "kdp-runtime-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("loadConfig", () => {
  it("uses the documented defaults", () => {
    const c = loadConfig({}, "/work/app");
    expect(c).toMatchObject({
      port: 3000,
      s3Port: 4569,
      bucket: "documents",
      dataDir: "/work/app/.data",
      dropDir: "/work/app/inbox",
      janitorIntervalSeconds: 300,
    });
    expect(c.provider).toBe("moonshot");
    expect(c.providerApiKey).toBeUndefined();
    expect(c.apiToken).toBeUndefined();
  });

  it("PROVIDER=glm reads GLM's key and base URL, not Moonshot's; a typo says what to use", () => {
    const glm = loadConfig({
      PROVIDER: "glm",
      MOONSHOT_API_KEY: "sk-moon",
      GLM_BASE_URL: "https://api.z.ai/api/paas/v4",
    });
    expect(glm).toMatchObject({ provider: "glm", providerBaseUrl: "https://api.z.ai/api/paas/v4" });
    expect(glm.providerApiKey).toBeUndefined();
    expect(loadConfig({ PROVIDER: "glm", GLM_API_KEY: " glm-key " }).providerApiKey).toBe("glm-key");
    expect(() => loadConfig({ PROVIDER: "zhipu" })).toThrow(
      "PROVIDER=zhipu is not valid: use one of moonshot, glm",
    );
    expect(() => loadConfig({ PROVIDER: "glm", GLM_BASE_URL: "api.z.ai" })).toThrow(
      /GLM_BASE_URL=api.z.ai is not valid/,
    );
  });

  it("reads overrides and turns the drop folder off", () => {
    const c = loadConfig(
      {
        PORT: "0",
        S3_PORT: "9000",
        BUCKET: "my-docs",
        DATA_DIR: "/tmp/d",
        DROP_DIR: "off",
        MOONSHOT_API_KEY: " sk-1 ",
      },
      "/x",
    );
    expect(c).toMatchObject({
      port: 0,
      s3Port: 9000,
      bucket: "my-docs",
      dataDir: "/tmp/d",
      providerApiKey: "sk-1",
    });
    expect(c.dropDir).toBeUndefined();
  });

  it.each([
    [{ PORT: "http" }, /PORT=http is not valid/],
    [{ S3_PORT: "70000" }, /S3_PORT=70000 is not valid/],
    [{ BUCKET: "My_Bucket" }, /BUCKET=My_Bucket is not a valid S3 bucket name/],
    [{ JANITOR_INTERVAL_SECONDS: "-1" }, /JANITOR_INTERVAL_SECONDS/],
  ])("rejects %j with a message naming the variable", (env, message) => {
    expect(() => loadConfig(env, "/x")).toThrow(ConfigError);
    expect(() => loadConfig(env, "/x")).toThrow(message);
  });
});

describe("persistentSecret", () => {
  it("generates once (mode 0600) and returns the same value afterwards", async () => {
    const path = join(dir, "api-token");
    const first = await persistentSecret(path, "kdp_");
    expect(first.source).toBe("generated");
    expect(first.value).toMatch(/^kdp_[A-Za-z0-9_-]{32}$/);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const again = await persistentSecret(path, "kdp_");
    expect(again).toEqual({ value: first.value, source: "file" });
  });
});

describe("withPortHint", () => {
  it("names the variable to change when the port is taken", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(
        withPortHint("The chat API", "PORT", port, () => {
          const s = createServer();
          return new Promise((resolve, reject) => {
            s.once("error", reject);
            s.listen(port, "127.0.0.1", () => resolve(s));
          });
        }),
      ).rejects.toThrow(
        new RegExp(`127\\.0\\.0\\.1:${port}: the port is already in use\\. Set PORT to another port`),
      );
    } finally {
      blocker.close();
    }
  });
});

describe("DropFolder", () => {
  async function watch(inbox: string, ledgerPath: string) {
    const uploads: { key: string; size: number; content: string }[] = [];
    const folder = new DropFolder({
      dir: inbox,
      ledgerPath,
      // Wide against the test's own 60 ms writes, so a loaded machine cannot make a pause look stable.
      stableMs: 1_000,
      rescanMs: 100,
      upload: async ({ path, key, size }) => {
        uploads.push({ key, size, content: await readFile(path, "utf8") });
        return { eTag: "e" };
      },
    });
    await folder.start();
    return { folder, uploads };
  }

  it("uploads a file only once it stops changing, under its relative key, and remembers it across restarts", async () => {
    const inbox = join(dir, "inbox");
    const ledger = join(dir, "ledger.json");
    await mkdir(join(inbox, "deep", "er"), { recursive: true });
    await writeFile(join(inbox, "deep", "er", "a b.txt"), "part");
    await writeFile(join(inbox, ".hidden"), "x");
    await writeFile(join(inbox, "download.crdownload"), "x");
    const { folder, uploads } = await watch(inbox, ledger);
    // Keep growing the file for a while: no upload of a half-written file.
    for (let i = 0; i < 4; i++) {
      await sleep(60);
      await writeFile(join(inbox, "deep", "er", "a b.txt"), `part${"-more".repeat(i + 1)}`);
    }
    await expect.poll(() => uploads.length, { timeout: 15_000 }).toBe(1);
    expect(uploads).toEqual([{ key: "deep/er/a b.txt", size: 24, content: "part-more-more-more-more" }]);
    await folder.close();

    // Restart: nothing new is uploaded (checked after a full stable period and some rescans); a changed
    // file is uploaded again.
    const second = await watch(inbox, ledger);
    await sleep(1_500);
    expect(second.uploads).toEqual([]);
    await writeFile(join(inbox, "deep", "er", "a b.txt"), "changed");
    const later = new Date(Date.now() + 5000);
    await utimes(join(inbox, "deep", "er", "a b.txt"), later, later);
    await expect.poll(() => second.uploads.length, { timeout: 15_000 }).toBe(1);
    expect(second.uploads.map((u) => u.content)).toEqual(["changed"]);
    await second.folder.close();
  });

  it("retries a failed upload on a later scan", async () => {
    const inbox = join(dir, "inbox");
    await mkdir(inbox);
    await writeFile(join(inbox, "x.pdf"), "%PDF");
    let attempts = 0;
    const events: string[] = [];
    const folder = new DropFolder({
      dir: inbox,
      ledgerPath: join(dir, "l.json"),
      stableMs: 50,
      rescanMs: 100,
      upload: async () => {
        attempts++;
        if (attempts === 1) throw new Error("S3 down");
        return {};
      },
      onEvent: (e) => events.push(e.type),
    });
    await folder.start();
    await expect.poll(() => events.length, { timeout: 15_000 }).toBe(2);
    await folder.close();
    expect(attempts).toBe(2);
    expect(events).toEqual(["failed", "uploaded"]);
  });

  it("skips dotfiles and partial downloads", () => {
    for (const name of [".DS_Store", ".git", "a.part", "b.crdownload", "c.tmp", "~$doc.docx", "d.txt~"])
      expect(isIgnoredName(name), name).toBe(true);
    for (const name of ["report.pdf", "notes.md", "a.b.c.docx"])
      expect(isIgnoredName(name), name).toBe(false);
  });
});

describe("upload helpers", () => {
  it("derives keys and content types", () => {
    expect(keyFor("/in", "/in/a/b c.pdf")).toBe("a/b c.pdf");
    expect(keyFor("/in", "/in/x.docx", "p/")).toBe("p/x.docx");
    expect(contentTypeFor("X.PDF")).toBe("application/pdf");
    expect(contentTypeFor("a.docx")).toMatch(/wordprocessingml/);
    expect(contentTypeFor("a.unknown")).toBe("application/octet-stream");
  });
});

describe("CLI target", () => {
  it("prefers flags, then KDP_API_*, then DATA_DIR/runtime.json, then the token file", async () => {
    const dataDir = join(dir, "data");
    await mkdir(dataDir);
    expect(resolveTarget({}, { DATA_DIR: dataDir })).toMatchObject({
      apiUrl: "http://127.0.0.1:3000",
      local: true,
      token: undefined,
    });
    await writeFile(join(dataDir, "api-token"), "from-file\n");
    expect(resolveTarget({}, { DATA_DIR: dataDir, PORT: "4000" })).toMatchObject({
      apiUrl: "http://127.0.0.1:4000",
      token: "from-file",
    });
    await writeFile(
      join(dataDir, "runtime.json"),
      JSON.stringify({ apiUrl: "http://127.0.0.1:5555", token: "rt" }),
    );
    expect(resolveTarget({}, { DATA_DIR: dataDir })).toMatchObject({
      apiUrl: "http://127.0.0.1:5555",
      token: "rt",
    });
    expect(
      resolveTarget({}, { DATA_DIR: dataDir, KDP_API_URL: "https://x.example/prod/", KDP_API_TOKEN: "t" }),
    ).toMatchObject({ apiUrl: "https://x.example/prod", token: "t", local: false });
    expect(
      resolveTarget({ api: "https://y.example", token: "f" }, { DATA_DIR: dataDir, KDP_API_TOKEN: "t" }),
    ).toMatchObject({
      apiUrl: "https://y.example",
      token: "f",
      local: false,
    });
  });
});

describe("readSse", () => {
  it("parses frames split across chunks, multi-line data, comments and CRLF", async () => {
    const parts = [
      'event: start\ndata: {"a"',
      ":1}\n\n: keep-alive\n\nevent: delta\r\ndata: line1\r\ndata: line2\r\n\r\n",
      "data: last",
    ];
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const p of parts) controller.enqueue(new TextEncoder().encode(p));
        controller.close();
      },
    });
    const frames = [];
    for await (const f of readSse(body)) frames.push(f);
    expect(frames).toEqual([
      { event: "start", data: '{"a":1}' },
      { event: "delta", data: "line1\nline2" },
      { event: "message", data: "last" },
    ]);
  });
});

describe("banner", () => {
  it("gives copy-pasteable commands with the real URL, token, endpoint and bucket", () => {
    const text = banner(
      {
        pid: 1,
        startedAt: "",
        apiUrl: "http://127.0.0.1:3000",
        token: "kdp_abc",
        s3Endpoint: "http://127.0.0.1:4569",
        bucket: "documents",
        region: "us-east-1",
        dropDir: "/w/inbox",
        provider: "moonshot",
        providerBaseUrl: "http://127.0.0.1:1234/v1",
        emulator: true,
      },
      { tokenSource: "generated", dataDir: "/w/.data", cwd: "/w" },
    );
    // Outside the repository there is no sample document to point at.
    expect(text).toContain("npx kdp put path/to/file.pdf");
    expect(text).toContain("aws s3 cp path/to/file.pdf s3://documents/ --endpoint-url http://127.0.0.1:4569");
    expect(text).toContain(
      `curl -s http://127.0.0.1:3000/chat -H 'Authorization: Bearer kdp_abc' -H 'Content-Type: application/json' -d '{"question":"What is this document about?"}'`,
    );
    expect(exampleDocument(process.cwd())).toEqual({
      path: "functions/chat/API.md",
      question: "How do I delete a document?",
    });
    expect(text).toContain("./inbox");
    expect(text).toContain("./.data");
  });
});
