/**
 * Contract: every emulator response, success and each error, validates against the provider's OpenAPI
 * document (Ajv, JSON Schema 2020-12). `call` asserts it; these tests walk every path and status and
 * also check the validator itself rejects off-contract bodies (so the checks can fail).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { validateRequest, validateResponse } from "../support/openapi";
import { call, errorOf, type FileBody, upload } from "./helpers";

let emu: RunningEmulator;
let textEmu: RunningEmulator;

beforeAll(async () => {
  emu = await startEmulator({ apiKey: "test-key" });
  textEmu = await startEmulator({ contentFormat: "text" });
});
afterAll(async () => {
  await emu?.close();
  await textEmu?.close();
});

describe("contract of every path", () => {
  it("models and balance", async () => {
    const models = await call(emu, "GET", "/v1/models");
    expect(models.status).toBe(200);
    const ids = (models.body as { data: { id: string; context_length: number }[] }).data;
    expect(ids).toContainEqual(expect.objectContaining({ id: "moonshot-v1-8k", context_length: 8192 }));
    expect(ids).toContainEqual(expect.objectContaining({ id: "kimi-k2.6", context_length: 262144 }));
    const balance = await call(emu, "GET", "/v1/users/me/balance");
    expect(balance.status).toBe(200);
    expect((balance.body as { status: boolean }).status).toBe(true);
  });

  it("file lifecycle: upload, list, retrieve, content (json), delete, then 404s", async () => {
    const up = await upload(emu, "notes.md", "# Notes\nThe launch is on Tuesday.");
    expect(up.status).toBe(200);
    const file = up.body as FileBody;
    expect(file.status).toBe("ok");

    const list = await call(emu, "GET", "/v1/files");
    expect(list.status).toBe(200);
    expect(list.body).not.toHaveProperty("has_more");
    expect((list.body as { data: FileBody[] }).data.map((f) => f.id)).toContain(file.id);

    expect((await call(emu, "GET", `/v1/files/${file.id}`)).status).toBe(200);

    const content = await call(emu, "GET", `/v1/files/${file.id}/content`);
    expect(content.status).toBe(200);
    expect(content.headers.get("content-type")).toMatch(/application\/json/);
    expect(content.body).toEqual({
      content: "# Notes\nThe launch is on Tuesday.",
      file_type: "text/markdown",
      filename: "notes.md",
      title: "",
      type: "file",
    });
    // The envelope's text is what the document's text/plain schema describes.
    expect(validateResponse("GET", `/v1/files/${file.id}/content`, 200, "x").valid).toBe(true);

    const del = await call(emu, "DELETE", `/v1/files/${file.id}`);
    expect(del.body).toEqual({ id: file.id, object: "file", deleted: true });

    for (const [method, path] of [
      ["GET", `/v1/files/${file.id}`],
      ["DELETE", `/v1/files/${file.id}`],
      ["GET", `/v1/files/${file.id}/content`],
    ] as const) {
      const r = await call(emu, method, path);
      expect(r.status).toBe(404);
      expect(errorOf(r).type).toBe("resource_not_found_error");
    }
  });

  it("keeps UTF-8 filenames intact", async () => {
    const up = await upload(emu, "季度报告 é.txt", "内容");
    expect((up.body as FileBody).filename).toBe("季度报告 é.txt");
    const content = await call(emu, "GET", `/v1/files/${(up.body as FileBody).id}/content`);
    expect(content.body).toMatchObject({ content: "内容", filename: "季度报告 é.txt" });
  });

  it("content as text/plain when configured", async () => {
    const up = await upload(textEmu, "a.csv", "name,amount\nalice,3\n");
    const id = (up.body as FileBody).id;
    const content = await call(textEmu, "GET", `/v1/files/${id}/content`);
    expect(content.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(content.body).toBe("name,amount\nalice,3\n");
  });

  it("401 on every operation without or with a wrong bearer", async () => {
    const paths: [string, string][] = [
      ["GET", "/v1/models"],
      ["GET", "/v1/users/me/balance"],
      ["GET", "/v1/files"],
      ["GET", "/v1/files/abc"],
      ["DELETE", "/v1/files/abc"],
      ["GET", "/v1/files/abc/content"],
      ["POST", "/v1/chat/completions"],
      ["POST", "/v1/tokenizers/estimate-token-count"],
    ];
    for (const [method, path] of paths) {
      const missing = await call(emu, method, path, { key: null });
      expect(missing.status).toBe(401);
      expect(errorOf(missing).type).toBe("invalid_authentication_error");
      const wrong = await call(emu, method, path, { key: "nope" });
      expect(wrong.status).toBe(401);
      expect(errorOf(wrong).type).toBe("incorrect_api_key_error");
    }
    const up = await upload(emu, "a.txt", "x", "file-extract", "nope");
    expect(up.status).toBe(401);
  });

  it("400s on upload: empty, unsupported type, bad purpose, missing file", async () => {
    expect(errorOf(await upload(emu, "empty.txt", "")).message).toBe(
      "File size is zero, please confirm and upload again",
    );
    const exe = await upload(emu, "tool.exe", "MZ");
    expect(exe.status).toBe(400);
    expect(errorOf(exe)).toEqual({
      type: "invalid_request_error",
      message: "unsupported file type: .exe, please confirm and upload again",
    });
    expect((await upload(emu, "a.txt", "x", "fine-tune")).status).toBe(400);
    const form = new FormData();
    form.append("purpose", "file-extract");
    const missing = await call(emu, "POST", "/v1/files", { form });
    expect(missing.status).toBe(400);
    expect(errorOf(missing).message).toMatch(/missing the file/);
    const notMultipart = await call(emu, "POST", "/v1/files", { body: { purpose: "file-extract" } });
    expect(notMultipart.status).toBe(400);
    const garbled = await fetch(`${emu.url}/v1/files`, {
      method: "POST",
      headers: { authorization: "Bearer test-key", "content-type": "multipart/form-data; boundary=XYZ" },
      body: `--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nunterminated`,
    });
    expect(garbled.status).toBe(400);
    const garbledBody = await garbled.json();
    expect(validateResponse("POST", "/v1/files", 400, garbledBody).valid).toBe(true);
    expect(garbledBody.error.message).toMatch(/malformed multipart/);
  });

  it("chat and estimate: success, 400 and 404 bodies", async () => {
    const req = {
      model: "moonshot-v1-8k",
      messages: [
        { role: "system", content: "Document: a.txt\nThe sky is blue." },
        { role: "user", content: "What colour is the sky?" },
      ],
    };
    expect(validateRequest("POST", "/v1/chat/completions", req).valid).toBe(true);
    const chat = await call(emu, "POST", "/v1/chat/completions", { body: req });
    expect(chat.status).toBe(200);
    const est = await call(emu, "POST", "/v1/tokenizers/estimate-token-count", { body: req });
    expect(est.status).toBe(200);
    expect((est.body as { data: { total_tokens: number } }).data.total_tokens).toBe(
      (chat.body as { usage: { prompt_tokens: number } }).usage.prompt_tokens,
    );

    const unknown = await call(emu, "POST", "/v1/chat/completions", { body: { ...req, model: "gpt-4" } });
    expect(unknown.status).toBe(404);
    expect(errorOf(unknown)).toEqual({
      type: "resource_not_found_error",
      message: "Not found the model gpt-4 or Permission denied",
    });
    for (const bad of [
      "{not json",
      { model: "moonshot-v1-8k" },
      { model: "moonshot-v1-8k", messages: [] },
      { model: "moonshot-v1-8k", messages: [{ role: "user", content: "" }] },
      { ...req, temperature: 3 },
      { ...req, max_tokens: 1.5 },
    ]) {
      const r = await call(emu, "POST", "/v1/chat/completions", { body: bad });
      expect(r.status).toBe(400);
      expect(errorOf(r).type).toBe("invalid_request_error");
    }
    const badEst = await call(emu, "POST", "/v1/tokenizers/estimate-token-count", {
      body: { model: "kimi-k2.6" },
    });
    expect(badEst.status).toBe(400);
  });

  it("unknown /v1 paths answer the provider's 404 body", async () => {
    const r = await call(emu, "GET", "/v1/nothing-here", { unchecked: true });
    expect(r.status).toBe(404);
    expect(validateResponse("GET", "/v1/files/x", 404, r.body).valid).toBe(true);
  });
});

describe("the validator rejects off-contract bodies", () => {
  it("catches missing required fields and wrong types", () => {
    expect(validateResponse("GET", "/v1/files", 200, { object: "list" }).valid).toBe(false);
    expect(validateResponse("GET", "/v1/files/x", 200, { id: "x", object: "file" }).valid).toBe(false);
    expect(validateResponse("POST", "/v1/chat/completions", 400, { error: {} }).valid).toBe(false);
    expect(validateResponse("POST", "/v1/tokenizers/estimate-token-count", 200, { data: {} }).valid).toBe(
      false,
    );
    expect(
      validateRequest("POST", "/v1/chat/completions", { model: "kimi-k2.6", messages: "hi" }).valid,
    ).toBe(false);
    expect(validateRequest("POST", "/v1/files", { file: "x", purpose: "nope" }).valid).toBe(false);
    expect(() => validateResponse("GET", "/v1/unknown", 200, {})).toThrow(/not in the OpenAPI document/);
    const undocumented = validateResponse("POST", "/v1/chat/completions", 429, {
      error: { type: "rate_limit_reached_error", message: "slow down" },
    });
    expect(undocumented).toMatchObject({ valid: true, documented: false });
  });
});
