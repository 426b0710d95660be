/**
 * Quotas with small configured limits (messages scaled to the configured caps), concurrent uploads
 * against the file-count cap, and fault injection: 429 with Retry-After, quota exhaustion, 500,
 * dropped connections, slow responses, per-operation latency and seeded repeatability.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { errors } from "../../local/emulator/errors";
import { DEFAULT_LIMITS, type RunningEmulator, startEmulator } from "../../local/emulator/server";
import { call, errorOf, type FileBody, KEY, upload } from "./helpers";

let emu: RunningEmulator;
beforeAll(async () => {
  emu = await startEmulator({ limits: { maxFiles: 3, maxFileBytes: 1024, maxTotalBytes: 2500 } });
});
afterAll(async () => {
  await emu?.close();
});
beforeEach(async () => {
  await emu.reset();
});

const bytes = (n: number) => "x".repeat(n);

describe("quotas", () => {
  it("per-file size cap, enforced while streaming, message scaled to the cap", async () => {
    expect((await upload(emu, "exact.txt", bytes(1024))).status).toBe(200);
    const over = await upload(emu, "over.txt", bytes(1025));
    expect(over.status).toBe(400);
    expect(errorOf(over)).toEqual({
      type: "invalid_request_error",
      message: "File size is too large, max file size is 1KB, please confirm and upload again",
    });
    // A body far over the cap is drained, refused, and leaves nothing behind.
    const huge = await upload(emu, "huge.txt", bytes(3 * 1024 * 1024));
    expect(errorOf(huge).message).toMatch(/^File size is too large/);
    expect(emu.files().map((f) => f.filename)).toEqual(["exact.txt"]);
  });

  it("default caps are the provider's, and messages speak in its units", async () => {
    const real = await startEmulator();
    try {
      const r = await call(real, "GET", "/_emulator/state", { key: null });
      expect((r.body as { limits: unknown }).limits).toEqual({
        maxFiles: 1000,
        maxFileBytes: 100 * 1024 * 1024,
        maxImageBytes: 100 * 1024 * 1024,
        maxTotalBytes: 10 * 1024 * 1024 * 1024,
      });
    } finally {
      await real.close();
    }
    expect(errors.fileTooLarge(DEFAULT_LIMITS.maxFileBytes).message).toBe(
      "File size is too large, max file size is 100MB, please confirm and upload again",
    );
    expect(errors.fileCount(DEFAULT_LIMITS.maxFiles).message).toBe(
      "The number of files you have uploaded exceeded the max file count 1000, please delete some files and upload again",
    );
    expect(errors.totalTooLarge(DEFAULT_LIMITS.maxTotalBytes).message).toMatch(/max total size 10GB,/);
  });

  it("total-size quota", async () => {
    expect((await upload(emu, "a.txt", bytes(1000))).status).toBe(200);
    expect((await upload(emu, "b.txt", bytes(1000))).status).toBe(200);
    const r = await upload(emu, "c.txt", bytes(600));
    expect(r.status).toBe(400);
    expect(errorOf(r).message).toBe(
      "The total size of the files you have uploaded exceeded the max total size 2500B, please delete some files and upload again",
    );
    expect((await upload(emu, "d.txt", bytes(500))).status).toBe(200);
  });

  it("file-count quota, freed by deleting", async () => {
    const ids: string[] = [];
    for (const n of ["1.txt", "2.txt", "3.txt"]) ids.push(((await upload(emu, n, "a")).body as FileBody).id);
    const r = await upload(emu, "4.txt", "a");
    expect(r.status).toBe(400);
    expect(errorOf(r).message).toBe(
      "The number of files you have uploaded exceeded the max file count 3, please delete some files and upload again",
    );
    await call(emu, "DELETE", `/v1/files/${ids[0]}`);
    expect((await upload(emu, "4.txt", "a")).status).toBe(200);
  });

  it("concurrent uploads cannot overshoot the file-count cap", async () => {
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => upload(emu, `${i}.txt`, "hello")));
    expect(replies.filter((r) => r.status === 200)).toHaveLength(3);
    expect(replies.filter((r) => r.status === 400)).toHaveLength(5);
    expect(emu.files()).toHaveLength(3);
  });

  it("concurrent uploads cannot overshoot the total-size quota", async () => {
    const replies = await Promise.all(
      Array.from({ length: 3 }, (_, i) => upload(emu, `${i}.txt`, bytes(1000))),
    );
    expect(replies.filter((r) => r.status === 200)).toHaveLength(2);
    expect(emu.files().reduce((n, f) => n + f.bytes, 0)).toBe(2000);
  });

  it("limits change at run time (API and HTTP)", async () => {
    emu.setLimits({ maxFiles: 1 });
    await upload(emu, "a.txt", "a");
    expect(errorOf(await upload(emu, "b.txt", "b")).message).toMatch(/max file count 1,/);
    const put = await fetch(`${emu.url}/_emulator/limits`, {
      method: "PUT",
      body: JSON.stringify({ maxFiles: 2 }),
    });
    expect(put.status).toBe(200);
    expect((await upload(emu, "b.txt", "b")).status).toBe(200);
    const bad = await fetch(`${emu.url}/_emulator/limits`, {
      method: "PUT",
      body: JSON.stringify({ maxFiles: -1 }),
    });
    expect(bad.status).toBe(400);
    expect(() => emu.setLimits({ maxFileBytes: 1.5 })).toThrow(/integer/);
  });
});

describe("faults", () => {
  it("429 with Retry-After and retry-after-ms, both flavours", async () => {
    emu.setFaults({ rate429: 1, retryAfterSeconds: 2 });
    const types = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const r = await call(emu, "GET", "/v1/files");
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe("2");
      expect(r.headers.get("retry-after-ms")).toBe("2000");
      types.add(errorOf(r).type);
    }
    expect([...types].sort()).toEqual(["engine_overloaded_error", "rate_limit_reached_error"]);
  });

  it("quota exhaustion: 429 exceeded_current_quota_error without Retry-After", async () => {
    emu.setFaults({ rateQuota: 1 });
    const r = await call(emu, "GET", "/v1/models");
    expect(r.status).toBe(429);
    expect(errorOf(r).type).toBe("exceeded_current_quota_error");
    expect(r.headers.get("retry-after")).toBeNull();
  });

  it("a spent balance makes chat answer the quota error", async () => {
    emu.setBalance(0);
    const r = await call(emu, "POST", "/v1/chat/completions", {
      body: { model: "moonshot-v1-8k", messages: [{ role: "user", content: "hi" }] },
    });
    expect(r.status).toBe(429);
    expect(errorOf(r).type).toBe("exceeded_current_quota_error");
    expect((await call(emu, "GET", "/v1/users/me/balance")).body).toMatchObject({
      data: { available_balance: 0 },
    });
  });

  it("500 server_error", async () => {
    emu.setFaults({ rate500: 1 });
    const r = await call(emu, "GET", "/v1/files/abc");
    expect(r.status).toBe(500);
    expect(errorOf(r).type).toBe("server_error");
  });

  it("dropped connections, logged with status 0", async () => {
    emu.setFaults({ rateDrop: 1 });
    await expect(
      fetch(`${emu.url}/v1/files`, { headers: { authorization: `Bearer ${KEY}` } }),
    ).rejects.toThrow();
    const form = new FormData();
    form.append("file", new Blob(["abc"]), "a.txt");
    form.append("purpose", "file-extract");
    await expect(
      fetch(`${emu.url}/v1/files`, {
        method: "POST",
        body: form,
        headers: { authorization: `Bearer ${KEY}` },
      }),
    ).rejects.toThrow();
    await vi.waitFor(() => expect(emu.requests()).toHaveLength(2));
    expect(emu.requests().map((e) => [e.operation, e.status])).toEqual([
      ["list", 0],
      ["upload", 0],
    ]);
    expect(emu.files()).toHaveLength(0);
  });

  it("slow responses trip a client timeout", async () => {
    emu.setFaults({ rateSlow: 1, slowMs: 1200 });
    const started = Date.now();
    await expect(
      fetch(`${emu.url}/v1/models`, {
        headers: { authorization: `Bearer ${KEY}` },
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow(/aborted|timeout/i);
    expect(Date.now() - started).toBeLessThan(1000);
    const r = await call(emu, "GET", "/v1/models");
    expect(r.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
  });

  it("latency per operation, and faults restricted to some operations", async () => {
    emu.setFaults({ latencyMs: { list: 400 }, rate429: 1, operations: ["upload"] });
    let t = Date.now();
    expect((await call(emu, "GET", "/v1/files")).status).toBe(200);
    expect(Date.now() - t).toBeGreaterThanOrEqual(395);
    t = Date.now();
    expect((await call(emu, "GET", "/v1/models")).status).toBe(200);
    expect(Date.now() - t).toBeLessThan(395);
    expect((await upload(emu, "a.txt", "a")).status).toBe(429);
    emu.setFaults({ operations: undefined, latencyMs: 0 });
    expect((await call(emu, "GET", "/v1/files")).status).toBe(429);
  });

  it("the same seed gives the same fault sequence", async () => {
    const run = async () => {
      emu.setFaults({ rate429: 0.3, rate500: 0.2, seed: 42 });
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await call(emu, "GET", "/v1/models")).status);
      return statuses;
    };
    const first = await run();
    expect(await run()).toEqual(first);
    expect(new Set(first)).toEqual(new Set([200, 429, 500]));
    emu.setFaults({ seed: 7 });
    const other: number[] = [];
    for (let i = 0; i < 30; i++) other.push((await call(emu, "GET", "/v1/models")).status);
    expect(other).not.toEqual(first);
  });

  it("faults over HTTP; invalid settings are refused", async () => {
    const put = await fetch(`${emu.url}/_emulator/faults`, {
      method: "PUT",
      body: JSON.stringify({ rate500: 1, operations: ["retrieve"] }),
    });
    expect(put.status).toBe(200);
    expect((await call(emu, "GET", "/v1/files/x")).status).toBe(500);
    expect((await call(emu, "GET", "/v1/files")).status).toBe(200);
    for (const bad of [{ rate429: 2 }, { operations: ["fly"] }, { latencyMs: "slow" }, { nope: 1 }]) {
      const r = await fetch(`${emu.url}/_emulator/faults`, { method: "PUT", body: JSON.stringify(bad) });
      expect(r.status).toBe(400);
    }
    expect(() => emu.setFaults({ rateDrop: -0.1 })).toThrow(/\[0, 1\]/);
  });

  it("auth is checked before faults", async () => {
    emu.setFaults({ rate429: 1 });
    expect((await call(emu, "GET", "/v1/files", { key: null })).status).toBe(401);
  });
});
