/**
 * Contract of the emulator's GLM profile: every response, success and each error, validates against
 * local/emulator/glm-contract.json (our OpenAPI document of Zhipu's docs); the GLM adapter's requests
 * (bodies, multipart fields, list query strings) validate against it too; and the validator itself
 * rejects off-contract bodies, so the checks can fail.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GlmClient } from "../../functions/core/glm/adapter";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { glmContract } from "../support/openapi";
import { makePdf } from "../support/pdf-docx";
import { KEY, type Reply } from "./helpers";

const API = "/api/paas/v4";
let emu: RunningEmulator;

beforeAll(async () => {
  emu = await startEmulator({ profile: "glm", apiKey: KEY });
});
afterAll(async () => {
  await emu?.close();
});
beforeEach(async () => {
  await emu.reset();
});

interface Options {
  body?: unknown;
  form?: FormData;
  key?: string | null;
}

/** Calls the GLM emulator and validates the answer against the GLM contract. */
async function glm(method: string, path: string, opts: Options = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  const key = opts.key === undefined ? KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let body: BodyInit | undefined;
  if (opts.form) body = opts.form;
  else if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  }
  const res = await fetch(`${emu.url}${path}`, { method, headers, body });
  const text = await res.text();
  const contentType = res.headers.get("content-type") ?? "";
  const parsed = contentType.includes("json") ? JSON.parse(text) : text;
  if (!contentType.includes("event-stream")) {
    glmContract.assertValidResponse(method, path, res.status, parsed, contentType);
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

function uploadGlm(
  filename: string,
  content: string | Uint8Array,
  purpose = "file-extract",
  key?: string | null,
) {
  const form = new FormData();
  form.append("file", new Blob([typeof content === "string" ? content : new Uint8Array(content)]), filename);
  form.append("purpose", purpose);
  return glm("POST", `${API}/files`, { form, key });
}

const errorOf = (r: Reply) => (r.body as { error: { code: string; message: string } }).error;
interface GlmFile {
  id: string;
  filename: string;
  bytes: number;
}

describe("GLM profile: contract of every path", () => {
  it("lives under /api/paas/v4, and Moonshot-only paths do not exist", async () => {
    expect(emu.baseURL).toBe(`${emu.url}${API}`);
    for (const [method, path] of [
      ["GET", "/v1/files"],
      ["GET", `${API}/models`],
      ["GET", `${API}/users/me/balance`],
      ["POST", `${API}/tokenizers/estimate-token-count`],
    ] as const) {
      const r = await fetch(`${emu.url}${path}`, { method, headers: { authorization: `Bearer ${KEY}` } });
      expect(r.status, path).toBe(404);
      const body = await r.json();
      expect(glmContract.validateSchema("ErrorResponse", body).valid).toBe(true);
    }
  });

  it("file lifecycle: upload without status, retrieve, content envelope, delete, then 404s", async () => {
    const up = await uploadGlm("notes.md", "# Notes\nThe launch is on Tuesday.");
    expect(up.status).toBe(200);
    const file = up.body as GlmFile;
    expect(file).not.toHaveProperty("status");
    expect(file).toMatchObject({ object: "file", filename: "notes.md", purpose: "file-extract", bytes: 33 });

    expect((await glm("GET", `${API}/files/${file.id}`)).body).toEqual(file);
    const content = await glm("GET", `${API}/files/${file.id}/content`);
    expect(content.body).toEqual({
      content: "# Notes\nThe launch is on Tuesday.",
      file_type: "text/markdown",
      filename: "notes.md",
      title: "",
      type: "file",
    });
    expect((await glm("DELETE", `${API}/files/${file.id}`)).body).toEqual({
      id: file.id,
      object: "file",
      deleted: true,
    });
    for (const [method, path] of [
      ["GET", `${API}/files/${file.id}`],
      ["DELETE", `${API}/files/${file.id}`],
      ["GET", `${API}/files/${file.id}/content`],
    ] as const) {
      const r = await glm(method, path);
      expect(r.status).toBe(404);
      expect(errorOf(r).code).toMatch(/^\d+$/);
    }
  });

  it("a PDF is extracted; a corrupt one uploads but its content is a 400 'Failed to extract'", async () => {
    const pdf = await makePdf(["Quarterly revenue grew by twelve percent."]);
    const good = (await uploadGlm("report.pdf", pdf)).body as GlmFile;
    const text = await glm("GET", `${API}/files/${good.id}/content`);
    expect((text.body as { content: string }).content).toContain("Quarterly revenue grew");

    const bad = await uploadGlm("broken.pdf", "%PDF-1.7\ngarbage");
    expect(bad.status).toBe(200);
    const content = await glm("GET", `${API}/files/${(bad.body as GlmFile).id}/content`);
    expect(content.status).toBe(400);
    expect(errorOf(content).code).toBe("1214");
    expect(errorOf(content).message).toMatch(/^Failed to extract file content: /);
  });

  it("lists page by page: purpose required, limit 1-100, after, has_more", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(((await uploadGlm(`f${i}.txt`, `text ${i}`)).body as GlmFile).id);
    expect((await uploadGlm("batch.jsonl", '{"a":1}', "batch")).status).toBe(200);

    const page1 = await glm("GET", `${API}/files?purpose=file-extract&limit=2`);
    const body1 = page1.body as { data: GlmFile[]; has_more: boolean };
    expect(body1.data.map((f) => f.filename)).toEqual(["f0.txt", "f1.txt"]);
    expect(body1.has_more).toBe(true);
    const page2 = await glm("GET", `${API}/files?purpose=file-extract&limit=2&after=${body1.data[1]!.id}`);
    expect((page2.body as { data: GlmFile[] }).data.map((f) => f.filename)).toEqual(["f2.txt", "f3.txt"]);
    // A cursor whose file was deleted since still places the next page.
    await glm("DELETE", `${API}/files/${ids[3]}`);
    const page3 = await glm(
      "GET",
      `${API}/files?purpose=file-extract&limit=2&after=${ids[3]}&order=created_at`,
    );
    expect(page3.body).toMatchObject({ data: [{ filename: "f4.txt" }], has_more: false });
    const all = await glm("GET", `${API}/files?purpose=file-extract`);
    expect((all.body as { data: unknown[] }).data).toHaveLength(4);
    const batch = await glm("GET", `${API}/files?purpose=batch`);
    expect((batch.body as { data: GlmFile[] }).data.map((f) => f.filename)).toEqual(["batch.jsonl"]);

    for (const query of [
      "",
      "?purpose=file-extract&limit=0",
      "?purpose=file-extract&limit=101",
      "?purpose=nope",
      "?purpose=file-extract&after=unknown",
      "?purpose=file-extract&order=bytes",
    ]) {
      const r = await glm("GET", `${API}/files${query}`);
      expect(r.status, query).toBe(400);
      expect(errorOf(r).code, query).toMatch(/^121[34]$/);
    }
  });

  it("quotas: 100 files, 50 MB per file, 5 MB per image, each refused with code 1214", async () => {
    const state = await (await fetch(`${emu.url}/_emulator/state`)).json();
    expect(state.limits).toEqual({
      maxFiles: 100,
      maxFileBytes: 50 * 1024 * 1024,
      maxImageBytes: 5 * 1024 * 1024,
      maxTotalBytes: 100 * 50 * 1024 * 1024,
    });
    emu.setLimits({ maxFiles: 2, maxFileBytes: 2048, maxImageBytes: 1024 });
    expect((await uploadGlm("a.txt", "a")).status).toBe(200);
    expect((await uploadGlm("b.txt", "b")).status).toBe(200);
    const third = await uploadGlm("c.txt", "c");
    expect(third.status).toBe(400);
    expect(errorOf(third)).toEqual({
      code: "1214",
      message: "The number of files exceeds the limit of 2, please delete some files and upload again",
    });
    emu.setLimits({ maxFiles: 10 });
    expect(errorOf(await uploadGlm("big.txt", "x".repeat(2049))).message).toMatch(/exceeds the limit of 2KB/);
    expect(errorOf(await uploadGlm("photo.png", "x".repeat(1025))).message).toMatch(
      /exceeds the limit of 1KB/,
    );
    expect(errorOf(await uploadGlm("empty.txt", "")).message).toMatch(/empty/);
  });

  it("refuses formats file-extract does not take, a bad purpose and a missing file", async () => {
    for (const name of ["page.html", "data.json", "tool.exe", "noextension"]) {
      const r = await uploadGlm(name, "<p>x</p>");
      expect(r.status, name).toBe(400);
      expect(errorOf(r).code).toBe("1214");
      expect(errorOf(r).message).toMatch(/not supported for purpose file-extract/);
    }
    expect((await uploadGlm("a.txt", "x", "fine-tune")).status).toBe(400);
    const form = new FormData();
    form.append("purpose", "file-extract");
    expect((await glm("POST", `${API}/files`, { form })).status).toBe(400);
  });

  it("401 with codes 1001 (no key) and 1000 (wrong key) on every path", async () => {
    for (const [method, path] of [
      ["GET", `${API}/files?purpose=file-extract`],
      ["GET", `${API}/files/abc`],
      ["DELETE", `${API}/files/abc`],
      ["GET", `${API}/files/abc/content`],
      ["POST", `${API}/chat/completions`],
      ["POST", `${API}/tokenizer`],
    ] as const) {
      expect(errorOf(await glm(method, path, { key: null })).code).toBe("1001");
      expect(errorOf(await glm(method, path, { key: "nope" })).code).toBe("1000");
    }
  });

  const req = {
    model: "glm-4.6",
    messages: [
      { role: "system", content: "Document: a.txt\nThe sky is blue." },
      { role: "user", content: "What colour is the sky?" },
    ],
  };

  it("chat: OpenAI shape with request_id and reasoning; 1211 unknown model; 1261 too long; 1214 bad values", async () => {
    expect(glmContract.validateRequest("POST", `${API}/chat/completions`, req).valid).toBe(true);
    const chat = await glm("POST", `${API}/chat/completions`, { body: req });
    expect(chat.status).toBe(200);
    const body = chat.body as {
      request_id: string;
      choices: { message: { content: string; reasoning_content?: string } }[];
    };
    expect(body.request_id).toBeTruthy();
    expect(body.choices[0]!.message.content).toContain("The sky is blue.");
    expect(body.choices[0]!.message.reasoning_content).toBeTruthy();
    const plain = await glm("POST", `${API}/chat/completions`, {
      body: { ...req, thinking: { type: "disabled" } },
    });
    expect((plain.body as typeof body).choices[0]!.message).not.toHaveProperty("reasoning_content");

    const unknown = await glm("POST", `${API}/chat/completions`, { body: { ...req, model: "gpt-4" } });
    expect(unknown.status).toBe(400);
    expect(errorOf(unknown).code).toBe("1211");
    const long = await glm("POST", `${API}/chat/completions`, {
      body: { ...req, model: "glm-4.5-air", max_tokens: 127_990 },
    });
    expect(errorOf(long).code).toBe("1261");
    for (const bad of [
      "{not json",
      { model: "glm-4.6" },
      { ...req, temperature: 3 },
      { ...req, max_tokens: 1.5 },
    ]) {
      const r = await glm("POST", `${API}/chat/completions`, { body: bad });
      expect(r.status).toBe(400);
      expect(errorOf(r).code).toBe("1214");
    }
  });

  it("streamed chat: every frame a ChatCompletionChunk, usage on the last one only at the top level", async () => {
    const res = await fetch(`${emu.baseURL}/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ ...req, stream: true }),
    });
    const frames = (await res.text())
      .split("\n\n")
      .filter((f) => f.startsWith("data: "))
      .map((f) => f.slice(6));
    expect(frames.at(-1)).toBe("[DONE]");
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
    for (const c of chunks) {
      const v = glmContract.validateSchema("ChatCompletionChunk", c);
      expect(v.valid, v.errors).toBe(true);
    }
    const last = chunks.at(-1);
    expect(last.usage.prompt_tokens).toBeGreaterThan(0);
    expect(last.choices[0]).not.toHaveProperty("usage");
    expect(last.choices[0].finish_reason).toBe("stop");
    expect(chunks.slice(0, -1).some((c) => "usage" in c)).toBe(false);
  });

  it("tokenizer: counts like chat for the models it documents, 1214 for others", async () => {
    const chat = await glm("POST", `${API}/chat/completions`, {
      body: { ...req, thinking: { type: "disabled" } },
    });
    const count = await glm("POST", `${API}/tokenizer`, { body: req });
    expect(count.status).toBe(200);
    expect((count.body as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBe(
      (chat.body as { usage: { prompt_tokens: number } }).usage.prompt_tokens,
    );
    const refused = await glm("POST", `${API}/tokenizer`, { body: { ...req, model: "glm-4.5-air" } });
    expect(refused.status).toBe(400);
    expect(errorOf(refused)).toMatchObject({ code: "1214" });
  });

  it("faults speak GLM: 1302/1303 without Retry-After, 1113 arrears, 500", async () => {
    emu.setFaults({ rate429: 1, seed: 3 });
    const codes = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const r = await glm("GET", `${API}/files?purpose=file-extract`);
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBeNull();
      codes.add(errorOf(r).code);
    }
    expect([...codes].sort()).toEqual(["1302", "1303"]);
    emu.setFaults({ rate429: 0, rateQuota: 1 });
    expect(errorOf(await glm("POST", `${API}/chat/completions`, { body: req })).code).toBe("1113");
    emu.setFaults({ rateQuota: 0, rate500: 1 });
    expect(errorOf(await glm("GET", `${API}/files/x`))).toEqual({ code: "500", message: "Internal Error" });
  });
});

describe("the GLM adapter's requests follow the contract", () => {
  it("upload fields, list queries, chat and tokenizer bodies", async () => {
    const sent: { method: string; url: string; body?: unknown; form?: Record<string, string> }[] = [];
    const recording: typeof fetch = async (input, init) => {
      const url = String(input);
      const method = init?.method ?? "GET";
      const entry: (typeof sent)[number] = { method, url: url.slice(emu.url.length) };
      if (typeof init?.body === "string") entry.body = JSON.parse(init.body);
      sent.push(entry);
      return fetch(input, init);
    };
    const client = new GlmClient({ baseURL: emu.baseURL, apiKey: async () => KEY, fetch: recording });
    const { Readable } = await import("node:stream");
    const file = await client.uploadFile({
      filename: "a.txt",
      size: 5,
      open: () => Readable.from([Buffer.from("hello")]),
    });
    expect(file.status).toBeUndefined();
    expect(await client.listFiles()).toHaveLength(1);
    await client.getFileContent(file.id);
    await client.estimateTokenCount({ model: "glm-4.6", messages: [{ role: "user", content: "hi" }] });
    await client.chat({ model: "glm-4.6", messages: [{ role: "user", content: "hi" }], max_tokens: 100 });
    for await (const _ of client.chatStream({
      model: "glm-4.6",
      messages: [{ role: "user", content: "hi" }],
    })) {
      // drain
    }
    await client.deleteFile(file.id);

    for (const r of sent) {
      if (r.method === "GET" && r.url.startsWith(`${API}/files?`)) {
        const v = glmContract.validateQuery("GET", r.url);
        expect(v.valid, `${r.url}: ${v.errors}`).toBe(true);
      } else if (r.body !== undefined) {
        const v = glmContract.validateRequest(r.method, r.url, r.body);
        expect(v.valid, `${r.method} ${r.url}: ${v.errors}`).toBe(true);
      }
    }
    expect(sent.map((r) => `${r.method} ${r.url.split("?")[0]}`)).toEqual([
      `POST ${API}/files`,
      `GET ${API}/files`,
      `GET ${API}/files/${file.id}/content`,
      `POST ${API}/tokenizer`,
      `POST ${API}/chat/completions`,
      `POST ${API}/chat/completions`,
      `DELETE ${API}/files/${file.id}`,
    ]);
    expect(
      glmContract.validateRequest("POST", `${API}/files`, { file: "x", purpose: "file-extract" }).valid,
    ).toBe(true);
  });
});

describe("the GLM validator rejects off-contract bodies", () => {
  it("a status on a file, a Moonshot-style error, a list without has_more, a bad query", () => {
    const file = {
      id: "f",
      object: "file",
      bytes: 1,
      created_at: 1,
      filename: "a.pdf",
      purpose: "file-extract",
    };
    expect(glmContract.validateResponse("POST", `${API}/files`, 200, file).valid).toBe(true);
    expect(glmContract.validateResponse("POST", `${API}/files`, 200, { ...file, status: "ok" }).valid).toBe(
      false,
    );
    expect(
      glmContract.validateResponse("GET", `${API}/files/x`, 404, {
        error: { type: "resource_not_found_error", message: "nope" },
      }).valid,
    ).toBe(false);
    expect(
      glmContract.validateResponse("GET", `${API}/files/x`, 404, { error: { code: "x1", message: "m" } })
        .valid,
    ).toBe(false);
    expect(
      glmContract.validateResponse("GET", `${API}/files`, 200, { object: "list", data: [file] }).valid,
    ).toBe(false);
    expect(glmContract.validateQuery("GET", `${API}/files?limit=100`).valid).toBe(false);
    expect(glmContract.validateQuery("GET", `${API}/files?purpose=file-extract&limit=500`).valid).toBe(false);
    expect(glmContract.validateQuery("GET", `${API}/files?purpose=file-extract&page=2`).valid).toBe(false);
    expect(
      glmContract.validateRequest("POST", `${API}/chat/completions`, { model: "glm-4.6", messages: [] })
        .valid,
    ).toBe(false);
    expect(() => glmContract.validateResponse("GET", `${API}/models`, 200, {})).toThrow(/not in the OpenAPI/);
  });
});
