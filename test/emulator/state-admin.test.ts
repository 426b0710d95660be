/**
 * State: persistence across a restart with `dataDir`, the `/_emulator/` inspection/control API
 * (state, request log, clock, reset), and the emulator clock dating files so janitor tests can age them.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { request } from "node:http";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { makePdf } from "../support/pdf-docx";
import { call, type FileBody, upload } from "./helpers";

describe("persistence with dataDir", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "emulator-state-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reloads files, their content and failures after a restart", async () => {
    const first = await startEmulator({ dataDir: dir });
    const pdf = await makePdf(["The warehouse opens at six in the morning."]);
    const ok = (await upload(first, "hours.pdf", pdf)).body as FileBody;
    const txt = (await upload(first, "notes.txt", "Remember the milk.")).body as FileBody;
    const bad = (await upload(first, "bad.txt", new Uint8Array([0, 1, 2]))).body as FileBody;
    const gone = (await upload(first, "gone.txt", "temporary")).body as FileBody;
    await call(first, "DELETE", `/v1/files/${gone.id}`);
    await first.close();

    const second = await startEmulator({ dataDir: dir });
    try {
      const list = (await call(second, "GET", "/v1/files")).body as { data: FileBody[] };
      expect(list.data.map((f) => f.id).sort()).toEqual([ok.id, txt.id, bad.id].sort());
      expect(list.data.find((f) => f.id === ok.id)).toEqual(ok);
      const pdfText = (await call(second, "GET", `/v1/files/${ok.id}/content`)).body as { content: string };
      expect(pdfText.content).toContain("The warehouse opens at six in the morning.");
      const note = (await call(second, "GET", `/v1/files/${txt.id}/content`)).body as { content: string };
      expect(note.content).toBe("Remember the milk.");
      expect((await call(second, "GET", `/v1/files/${bad.id}/content`)).status).toBe(500);
      expect(second.files().reduce((n, f) => n + f.bytes, 0)).toBe(pdf.length + 18 + 3);
      await call(second, "DELETE", `/v1/files/${txt.id}`);
    } finally {
      await second.close();
    }
    const third = await startEmulator({ dataDir: dir });
    try {
      expect(
        third
          .files()
          .map((f) => f.id)
          .sort(),
      ).toEqual([ok.id, bad.id].sort());
      // Bytes of deleted files are removed from disk too.
      expect((await readdir(join(dir, "blobs"))).sort()).toEqual([ok.id, bad.id].sort());
    } finally {
      await third.close();
    }
  });

  it("survives a client that disconnects mid-upload, keeping nothing", async () => {
    const emu = await startEmulator({ dataDir: dir });
    try {
      const before = emu.files().length;
      const boundary = "----emulatortest";
      await new Promise<void>((resolve) => {
        const req = request(`${emu.url}/v1/files`, {
          method: "POST",
          headers: {
            authorization: "Bearer k",
            "content-type": `multipart/form-data; boundary=${boundary}`,
            "content-length": String(10 * 1024 * 1024),
          },
        });
        req.on("error", () => resolve());
        req.write(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n`);
        req.write("x".repeat(256 * 1024), () => setTimeout(() => req.destroy(), 100));
        req.on("close", () => resolve());
      });
      await vi.waitFor(async () => expect(await readdir(join(dir, "tmp"))).toEqual([]));
      expect(emu.files().length).toBe(before);
      expect((await upload(emu, "after.txt", "still serving")).status).toBe(200);
    } finally {
      await emu.close();
    }
  });

  it("fails to start on a taken port or bad options, cleanly", async () => {
    const emu = await startEmulator();
    try {
      await expect(startEmulator({ port: emu.port })).rejects.toThrow(/EADDRINUSE/);
      await expect(startEmulator({ faults: { rate429: 5 } })).rejects.toThrow(/rate429/);
      await expect(startEmulator({ limits: { maxFiles: -1 } })).rejects.toThrow(/maxFiles/);
    } finally {
      await emu.close();
    }
  });

  it("memory mode leaves nothing behind", async () => {
    // A private TMPDIR so other processes' emulators do not disturb the count.
    const privateTmp = await mkdtemp(join(tmpdir(), "emulator-tmpdir-"));
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = privateTmp;
    try {
      const emu = await startEmulator();
      await upload(emu, "a.txt", "hello");
      expect(await readdir(privateTmp)).toHaveLength(1);
      await emu.close();
      expect(await readdir(privateTmp)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
      await rm(privateTmp, { recursive: true, force: true });
    }
  });
});

describe("/_emulator admin API", () => {
  let emu: RunningEmulator;
  beforeAll(async () => {
    emu = await startEmulator({ apiKey: "test-key", limits: { maxFiles: 10 } });
  });
  afterAll(async () => {
    await emu?.close();
  });

  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${emu.url}/_emulator${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it("state shows files, total bytes, limits and faults without a bearer", async () => {
    await emu.reset();
    await upload(emu, "a.txt", "12345");
    await upload(emu, "b.md", "123");
    const state = await admin("GET", "/state");
    expect(state.status).toBe(200);
    expect(state.body).toMatchObject({
      count: 2,
      totalBytes: 8,
      limits: { maxFiles: 10 },
      faults: { rate429: 0 },
    });
    expect((state.body.files as FileBody[]).map((f) => f.filename).sort()).toEqual(["a.txt", "b.md"]);
  });

  it("request log: read and clear", async () => {
    await emu.reset();
    await call(emu, "GET", "/v1/models");
    await call(emu, "GET", "/v1/files/missing");
    const log = await admin("GET", "/requests");
    const entries = (log.body.requests as { operation: string; status: number; path: string }[]).filter(
      (e) => e.operation !== "admin",
    );
    expect(entries.map((e) => [e.operation, e.status, e.path])).toEqual([
      ["models", 200, "/v1/models"],
      ["retrieve", 404, "/v1/files/missing"],
    ]);
    expect((await admin("DELETE", "/requests")).status).toBe(200);
    expect(emu.requests().filter((e) => e.operation !== "admin")).toEqual([]);
  });

  it("the clock dates files, so they can be aged", async () => {
    await emu.reset();
    const now = Math.floor(Date.now() / 1000);
    const put = await admin("PUT", "/clock", { offsetSeconds: -7 * 86400 });
    expect(put.body.offsetSeconds).toBe(-7 * 86400);
    const old = (await upload(emu, "old.txt", "old")).body as FileBody;
    emu.setClockOffset(0);
    const fresh = (await upload(emu, "new.txt", "new")).body as FileBody;
    expect(Math.abs(old.created_at - (now - 7 * 86400))).toBeLessThanOrEqual(2);
    expect(Math.abs(fresh.created_at - now)).toBeLessThanOrEqual(2);
    expect((await admin("PUT", "/clock", { offsetSeconds: "soon" })).status).toBe(400);
  });

  it("reset deletes files and restores start-up settings", async () => {
    await upload(emu, "x.txt", "x");
    emu.setFaults({ rate500: 1 });
    emu.setLimits({ maxFiles: 1 });
    const r = await admin("POST", "/reset");
    expect(r.status).toBe(200);
    expect(emu.files()).toEqual([]);
    const state = await admin("GET", "/state");
    expect(state.body).toMatchObject({ count: 0, limits: { maxFiles: 10 }, faults: { rate500: 0 } });
    expect((await call(emu, "GET", "/v1/files")).status).toBe(200);
  });

  it("unknown admin routes are 404", async () => {
    expect((await admin("GET", "/nope")).status).toBe(404);
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === "IPv4" && !i.internal)?.address;
  it.skipIf(!external)("refuses the admin API to non-loopback clients", async () => {
    const open = await startEmulator({ host: "0.0.0.0" });
    try {
      const res = await fetch(`http://${external}:${open.port}/_emulator/state`);
      expect(res.status).toBe(403);
      const api = await fetch(`http://${external}:${open.port}/v1/models`, {
        headers: { authorization: "Bearer k" },
      });
      expect(api.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});
