/**
 * The drop folder: files put in DROP_DIR (default ./inbox) are uploaded to the local bucket under
 * their path relative to the folder, so "drop a document" works without any S3 tool.
 *
 * - Detection: `fs.watch` (recursive) triggers a scan; a scan also runs at start and every
 *   `rescanMs` as a safety net (recursive watching misses events on some file systems).
 * - A file is uploaded once its size and mtime have not changed for `stableMs` (a copy in progress
 *   is not uploaded half-written).
 * - Files are LEFT IN PLACE. A ledger in DATA_DIR remembers what was uploaded (size + mtime), so a
 *   restart does not upload everything again; a changed file is uploaded again as a new version and
 *   re-ingested. Deleting a file from the folder does not delete the document (use `kdp rm`).
 * - Skipped: dotfiles and dot-folders, and partial-download names (*.part, *.crdownload, *.tmp,
 *   *.swp, ~$*, *~).
 */
import { type FSWatcher, watch } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "./config";
import { keyFor } from "./upload";

export interface DropFolderOptions {
  dir: string;
  /** JSON file remembering what was uploaded. */
  ledgerPath: string;
  upload: (file: { path: string; key: string; size: number }) => Promise<{ eTag?: string }>;
  /** @default 500 */
  stableMs?: number;
  /** @default 5000 */
  rescanMs?: number;
  onEvent?: (event: DropEvent) => void;
}

export type DropEvent =
  | { type: "uploaded"; key: string; size: number; path: string }
  | { type: "failed"; key: string; path: string; error: string }
  | { type: "watch-error"; error: string };

interface LedgerEntry {
  size: number;
  mtimeMs: number;
  eTag?: string;
  uploadedAt: string;
}

interface Candidate {
  size: number;
  mtimeMs: number;
  since: number;
}

const IGNORED = [/^\./, /\.(part|crdownload|tmp|swp|download)$/i, /^~\$/, /~$/];

/** Whether a file or folder name is skipped by the drop folder. */
export function isIgnoredName(name: string): boolean {
  return IGNORED.some((re) => re.test(name));
}

/** See the module comment. */
export class DropFolder {
  private readonly stableMs: number;
  private readonly rescanMs: number;
  private ledger = new Map<string, LedgerEntry>();
  private readonly candidates = new Map<string, Candidate>();
  private watcher?: FSWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private soonTimer?: NodeJS.Timeout;
  private scanning?: Promise<void>;
  private rescanRequested = false;
  private closed = false;

  constructor(private readonly opts: DropFolderOptions) {
    this.stableMs = opts.stableMs ?? 500;
    this.rescanMs = opts.rescanMs ?? 5_000;
  }

  /** Loads the ledger, starts watching, and runs the first scan (without waiting for stability). */
  async start(): Promise<void> {
    this.ledger = await loadLedger(this.opts.ledgerPath);
    try {
      this.watcher = watch(this.opts.dir, { recursive: true }, () => this.scanSoon(100));
      this.watcher.on("error", (err) => this.emit({ type: "watch-error", error: String(err) }));
    } catch (err) {
      // Still works through the periodic rescan.
      this.emit({ type: "watch-error", error: `fs.watch unavailable (${String(err)}); polling instead` });
    }
    this.rescanTimer = setInterval(() => this.scanSoon(0), this.rescanMs);
    this.rescanTimer.unref();
    this.scanSoon(0);
  }

  /** Files seen but not uploaded yet (still changing, or waiting for a retry). */
  get pending(): number {
    return this.candidates.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    clearInterval(this.rescanTimer);
    clearTimeout(this.soonTimer);
    await this.scanning;
  }

  private scanSoon(delayMs: number): void {
    if (this.closed) return;
    clearTimeout(this.soonTimer);
    this.soonTimer = setTimeout(() => void this.scan(), delayMs);
    this.soonTimer.unref();
  }

  /** One pass over the folder; concurrent requests collapse into one follow-up pass. */
  private async scan(): Promise<void> {
    if (this.scanning) {
      this.rescanRequested = true;
      return this.scanning;
    }
    this.scanning = this.scanOnce().finally(() => {
      this.scanning = undefined;
      if (this.rescanRequested && !this.closed) {
        this.rescanRequested = false;
        this.scanSoon(0);
      }
    });
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    const seen = new Set<string>();
    for await (const path of walk(this.opts.dir)) {
      if (this.closed) return;
      const key = keyFor(this.opts.dir, path);
      seen.add(key);
      let info: Awaited<ReturnType<typeof stat>>;
      try {
        info = await stat(path);
      } catch {
        continue; // removed while scanning
      }
      if (!info.isFile()) continue;
      const done = this.ledger.get(key);
      if (done && done.size === info.size && done.mtimeMs === info.mtimeMs) {
        this.candidates.delete(key);
        continue;
      }
      const now = Date.now();
      const previous = this.candidates.get(key);
      if (!previous || previous.size !== info.size || previous.mtimeMs !== info.mtimeMs) {
        this.candidates.set(key, { size: info.size, mtimeMs: info.mtimeMs, since: now });
        continue;
      }
      if (now - previous.since < this.stableMs) continue;
      await this.uploadOne(path, key, info.size, info.mtimeMs);
    }
    for (const key of this.candidates.keys()) if (!seen.has(key)) this.candidates.delete(key);
    // Come back when the files still settling should be stable.
    if (this.candidates.size > 0) this.scanSoon(this.stableMs);
  }

  private async uploadOne(path: string, key: string, size: number, mtimeMs: number): Promise<void> {
    try {
      const result = await this.opts.upload({ path, key, size });
      this.candidates.delete(key);
      this.ledger.set(key, { size, mtimeMs, eTag: result.eTag, uploadedAt: new Date().toISOString() });
      await writeFileAtomic(
        this.opts.ledgerPath,
        `${JSON.stringify(Object.fromEntries(this.ledger), null, 1)}\n`,
      );
      this.emit({ type: "uploaded", key, size, path });
    } catch (err) {
      // Keep it a candidate: the next scan retries it.
      this.candidates.set(key, { size, mtimeMs, since: Date.now() });
      this.emit({ type: "failed", key, path, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private emit(event: DropEvent): void {
    try {
      this.opts.onEvent?.(event);
    } catch {
      // Printing problems must not stop the watcher.
    }
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  entries.sort((a, b) => a.name.localeCompare(b.name));
  for (const entry of entries) {
    if (isIgnoredName(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

async function loadLedger(path: string): Promise<Map<string, LedgerEntry>> {
  try {
    const parsed = JSON.parse(await readFile(path, "utf8")) as Record<string, LedgerEntry>;
    return new Map(Object.entries(parsed).filter(([, v]) => typeof v?.size === "number"));
  } catch {
    return new Map(); // missing or unreadable: upload everything again (idempotent for ingestion)
  }
}
