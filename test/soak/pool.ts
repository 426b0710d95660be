/**
 * A pool of ingest "execution environments" (test/soak/ingest-worker.ts child processes), one
 * invocation at a time each, like Lambda. `invoke` is the LocalQueue's handler. In a fraction of the
 * invocations (killRate) the worker is SIGKILLed at a random moment: the invocation fails like a
 * crashed Lambda (the queue redelivers its messages) and a fresh worker (a cold start) replaces it.
 */
import { type ChildProcess, fork } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import type { InvokeMessage, WorkerReply } from "./ingest-worker";

const WORKER = fileURLToPath(new URL("./ingest-worker.ts", import.meta.url));

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  busy: boolean;
  current?: {
    id: number;
    resolve: (r: SQSBatchResponse | undefined) => void;
    reject: (e: Error) => void;
  };
}

export interface PoolStats {
  invocations: number;
  /** Invocations killed before they answered. */
  kills: number;
  /** Kills scheduled but the invocation answered first (not counted as kills). */
  killsTooLate: number;
  coldStarts: number;
  unexpectedExits: number;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly waiters: ((w: Worker) => void)[] = [];
  private readonly durations: number[] = [];
  private readonly logFd: number;
  private nextId = 1;
  private closed = false;
  readonly stats: PoolStats = {
    invocations: 0,
    kills: 0,
    killsTooLate: 0,
    coldStarts: 0,
    unexpectedExits: 0,
  };

  constructor(
    private readonly opts: {
      size: number;
      killRate: number;
      rand: () => number;
      /** Workers' stdout/stderr (the handler's JSON logs) go here. */
      logFile: string;
      env: NodeJS.ProcessEnv;
    },
  ) {
    this.logFd = openSync(opts.logFile, "a");
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.opts.size; i++) this.spawn();
    await Promise.all(this.workers.map((w) => w.ready));
  }

  private spawn(): Worker {
    const child = fork(WORKER, [], {
      execArgv: ["--import", "tsx"],
      env: this.opts.env,
      stdio: ["ignore", this.logFd, this.logFd, "ipc"],
    });
    this.stats.coldStarts++;
    let markReady!: () => void;
    const w: Worker = { child, busy: true, ready: new Promise((r) => (markReady = r)) };
    child.on("message", (m: WorkerReply) => {
      if (m.type === "ready") {
        markReady();
        this.release(w);
      } else if (w.current && m.id === w.current.id) {
        const cur = w.current;
        w.current = undefined;
        if (m.type === "result") cur.resolve(m.response);
        else cur.reject(new Error(m.error));
        this.release(w);
      }
    });
    child.on("exit", (code, signal) => {
      const idx = this.workers.indexOf(w);
      if (idx >= 0) this.workers.splice(idx, 1);
      if (w.current) {
        // Not a kill of ours (those detach the invocation first): count it, fail the invocation.
        // Workers stopped by close() while busy are the soak stopping, not a crash.
        if (!this.closed) this.stats.unexpectedExits++;
        w.current.reject(new Error(`worker exited (${signal ?? code})`));
        w.current = undefined;
      }
      if (!this.closed && this.workers.length < this.opts.size) this.spawn();
    });
    this.workers.push(w);
    return w;
  }

  private release(w: Worker): void {
    w.busy = false;
    const waiter = this.waiters.shift();
    if (waiter) {
      w.busy = true;
      waiter(w);
    }
  }

  private acquire(): Promise<Worker> {
    const idle = this.workers.find((w) => !w.busy);
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The LocalQueue handler: runs the real ingest handler in a worker. */
  async invoke(event: SQSEvent, remainingMs: number): Promise<SQSBatchResponse | undefined> {
    const w = await this.acquire();
    const id = this.nextId++;
    this.stats.invocations++;
    const started = Date.now();
    const result = new Promise<SQSBatchResponse | undefined>((resolve, reject) => {
      w.current = { id, resolve, reject };
    });
    let killTimer: NodeJS.Timeout | undefined;
    if (this.opts.rand() < this.opts.killRate) {
      // A random point inside a typical invocation: before, during or after provider calls.
      const typical = median(this.durations) || 400;
      killTimer = setTimeout(
        () => {
          if (w.current?.id !== id) {
            this.stats.killsTooLate++;
            return;
          }
          const cur = w.current;
          w.current = undefined;
          this.stats.kills++;
          w.child.kill("SIGKILL");
          cur.reject(
            new Error("Runtime.ExitError: the execution environment was killed (soak crash injection)"),
          );
        },
        Math.floor(this.opts.rand() * typical),
      );
    }
    const message: InvokeMessage = { type: "invoke", id, event, remainingMs };
    w.child.send(message);
    try {
      const r = await result;
      this.durations.push(Date.now() - started);
      if (this.durations.length > 200) this.durations.shift();
      return r;
    } finally {
      clearTimeout(killTimer);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const exits = this.workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
          w.child.once("exit", () => resolve());
          w.child.kill("SIGTERM");
          setTimeout(() => w.child.kill("SIGKILL"), 3000).unref();
        }),
    );
    await Promise.all(exits);
    closeSync(this.logFd);
  }
}

function median(values: number[]): number {
  if (!values.length) return 0;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
