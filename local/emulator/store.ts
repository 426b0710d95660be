/**
 * Where the emulator keeps uploaded files.
 *
 * Metadata lives in memory. Bytes and extracted text always live on disk, so a 100 MB upload never
 * sits in the heap: under `dataDir` when persistence is asked for (plus `state.json`, rewritten
 * atomically after every change and reloaded on start), otherwise in a private temp folder that
 * `close()` removes.
 */
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable } from "node:stream";

/** A file as the Files API describes it, plus what the emulator needs to serve its content. */
export interface StoredFile {
  id: string;
  object: "file";
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: string;
  status_details?: string;
  /** MIME type reported by the content endpoint. */
  file_type: string;
  /** Where the extracted text is: the uploaded bytes themselves, a separate text file, or nowhere. */
  text: "blob" | "extracted" | "none";
}

interface StateFile {
  version: 1;
  files: StoredFile[];
}

/** File ids look like the provider's: 20 lower-case base32 characters. */
export function newFileId(): string {
  const alphabet = "0123456789abcdefghijklmnopqrstuv";
  const bytes = randomBytes(20);
  let id = "";
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

export class FileStore {
  private readonly files = new Map<string, StoredFile>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly root: string,
    private readonly persistent: boolean,
  ) {}

  /** Opens a store under `dataDir` (reloading its state) or in a fresh temp folder. */
  static async open(dataDir?: string): Promise<FileStore> {
    const root = dataDir ?? (await mkdtemp(join(tmpdir(), "moonshot-emulator-")));
    const store = new FileStore(root, dataDir !== undefined);
    await Promise.all(["blobs", "text", "tmp"].map((d) => mkdir(join(root, d), { recursive: true })));
    // Leftovers of uploads interrupted by a crash.
    await rm(join(root, "tmp"), { recursive: true, force: true });
    await mkdir(join(root, "tmp"), { recursive: true });
    if (store.persistent) await store.load();
    return store;
  }

  private async load(): Promise<void> {
    let raw: string;
    try {
      raw = await readFile(join(this.root, "state.json"), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    let state: StateFile;
    try {
      state = JSON.parse(raw) as StateFile;
    } catch (err) {
      throw new Error(
        `${join(this.root, "state.json")} is not valid JSON (${(err as Error).message}); fix or remove it`,
      );
    }
    for (const file of state.files ?? []) {
      // A file whose bytes are gone cannot be served; forget it rather than answer 500 forever.
      const present = await stat(this.blobPath(file.id)).then(
        () => true,
        () => false,
      );
      if (present) this.files.set(file.id, file);
    }
  }

  private persist(): Promise<void> {
    if (!this.persistent) return Promise.resolve();
    const snapshot: StateFile = { version: 1, files: [...this.files.values()] };
    const next = this.saving.then(async () => {
      const tmp = join(this.root, `state.json.${process.pid}.tmp`);
      await writeFile(tmp, JSON.stringify(snapshot));
      await rename(tmp, join(this.root, "state.json"));
    });
    this.saving = next.catch(() => undefined);
    return next;
  }

  /** A fresh path for an upload in progress. */
  tempPath(): string {
    return join(this.root, "tmp", `${Date.now()}-${randomBytes(6).toString("hex")}`);
  }

  blobPath(id: string): string {
    return join(this.root, "blobs", id);
  }

  private textPath(id: string): string {
    return join(this.root, "text", `${id}.txt`);
  }

  list(): StoredFile[] {
    return [...this.files.values()];
  }

  get(id: string): StoredFile | undefined {
    return this.files.get(id);
  }

  count(): number {
    return this.files.size;
  }

  totalBytes(): number {
    let total = 0;
    for (const f of this.files.values()) total += f.bytes;
    return total;
  }

  /** Moves a finished upload into the store, with its extracted text when it differs from the bytes. */
  async add(file: StoredFile, uploadedPath: string, extractedText?: string): Promise<void> {
    if (extractedText !== undefined) await writeFile(this.textPath(file.id), extractedText, "utf8");
    await rename(uploadedPath, this.blobPath(file.id));
    this.files.set(file.id, file);
    await this.persist();
  }

  /** Streams the extracted text of a file (UTF-8 bytes). */
  openText(file: StoredFile): Readable {
    const path = file.text === "blob" ? this.blobPath(file.id) : this.textPath(file.id);
    return createReadStream(path, { highWaterMark: 1 << 16 });
  }

  /** Size in bytes of the extracted text. */
  async textBytes(file: StoredFile): Promise<number> {
    const path = file.text === "blob" ? this.blobPath(file.id) : this.textPath(file.id);
    return (await stat(path)).size;
  }

  async delete(id: string): Promise<boolean> {
    if (!this.files.delete(id)) return false;
    await Promise.all([
      rm(this.blobPath(id), { force: true }),
      rm(this.textPath(id), { force: true }),
      this.persist(),
    ]);
    return true;
  }

  async clear(): Promise<void> {
    const ids = [...this.files.keys()];
    this.files.clear();
    await Promise.all(
      ids.flatMap((id) => [rm(this.blobPath(id), { force: true }), rm(this.textPath(id), { force: true })]),
    );
    await this.persist();
  }

  /** Re-dates a file (used by the admin API so janitor tests can age files). */
  async touch(id: string, createdAt: number): Promise<boolean> {
    const file = this.files.get(id);
    if (!file) return false;
    file.created_at = createdAt;
    await this.persist();
    return true;
  }

  /** Waits for pending writes; removes everything when the store is not persistent. */
  async close(): Promise<void> {
    await this.saving;
    if (this.persistent) await rm(join(this.root, "tmp"), { recursive: true, force: true });
    else await rm(this.root, { recursive: true, force: true });
  }
}
