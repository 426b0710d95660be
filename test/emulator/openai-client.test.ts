/**
 * The official `openai` client pointed at the emulator: upload (streamed from disk), content, list,
 * retrieve, delete, chat (plain and streaming), and its typed errors for the provider's bodies.
 */
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { makeDocx } from "../support/pdf-docx";

let emu: RunningEmulator;
let dir: string;
beforeAll(async () => {
  emu = await startEmulator({ apiKey: "sk-test", limits: { maxFileBytes: 1024 * 1024 } });
  dir = await mkdtemp(join(tmpdir(), "emulator-openai-"));
});
afterAll(async () => {
  await emu?.close();
  await rm(dir, { recursive: true, force: true });
});

it("uploads, reads content, lists, deletes and chats through the openai client", async () => {
  const client = new OpenAI({ apiKey: "sk-test", baseURL: emu.baseURL, maxRetries: 0 });
  // The SDK's FilePurpose type lacks Moonshot's "file-extract".
  const purpose = "file-extract" as unknown as OpenAI.FilePurpose;

  const path = join(dir, "policy.docx");
  await writeFile(
    path,
    await makeDocx(["Refunds are issued within fourteen days.", "Shipping is free above fifty euros."]),
  );
  const file = await client.files.create({ file: createReadStream(path), purpose });
  expect(file).toMatchObject({ object: "file", filename: "policy.docx", status: "ok" });

  const response = await client.files.content(file.id);
  const envelope = (await response.json()) as { content: string; filename: string };
  expect(envelope.filename).toBe("policy.docx");
  expect(envelope.content).toContain("Refunds are issued within fourteen days.");

  const page = await client.files.list();
  expect(page.data.map((f) => f.id)).toEqual([file.id]);
  const all: string[] = [];
  for await (const f of client.files.list()) all.push(f.id); // no has_more: must stop after one page
  expect(all).toEqual([file.id]);
  expect((await client.files.retrieve(file.id)).bytes).toBe(file.bytes);

  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
    { role: "system", content: `Document: policy.docx\n${envelope.content}` },
    { role: "user", content: "How fast are refunds issued?" },
  ];
  const completion = await client.chat.completions.create({ model: "moonshot-v1-8k", messages });
  expect(completion.choices[0]?.message.content).toBe(
    'According to policy.docx: "Refunds are issued within fourteen days."',
  );
  expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);

  const stream = await client.chat.completions.create({ model: "moonshot-v1-8k", messages, stream: true });
  let text = "";
  let usage: OpenAI.CompletionUsage | undefined | null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  expect(text).toBe(completion.choices[0]?.message.content);
  expect(usage).toEqual(completion.usage);

  const deleted = await client.files.delete(file.id);
  expect(deleted).toEqual({ id: file.id, object: "file", deleted: true });
  expect((await client.files.list()).data).toEqual([]);

  // Provider errors surface as the SDK's typed errors with the provider's body.
  const notFound = await client.files.retrieve(file.id).catch((e: unknown) => e);
  expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
  expect((notFound as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({
    type: "resource_not_found_error",
  });
  const big = join(dir, "big.txt");
  await writeFile(big, "y".repeat(1024 * 1024 + 1));
  const tooLarge = await client.files
    .create({ file: createReadStream(big), purpose })
    .catch((e: unknown) => e);
  expect(tooLarge).toBeInstanceOf(OpenAI.BadRequestError);
  expect((tooLarge as Error).message).toContain("File size is too large, max file size is 1MB");
  const badKey = new OpenAI({ apiKey: "wrong", baseURL: emu.baseURL, maxRetries: 0 });
  await expect(badKey.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
});
