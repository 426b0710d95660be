/**
 * Upload panel: drag and drop or pick files, optional folder (key prefix). Each file is checked
 * against the server's policy first, then gets a presigned PUT from POST /uploads and goes straight
 * to S3 with a progress bar; once stored, its row follows the document's status until ready/failed.
 */
import { useRef, useState } from "preact/hooks";
import { type Api, ApiError, type DocumentItem, type UploadPolicy } from "./api";
import { StatusCell } from "./documents";
import { formatBytes } from "./format";
import { checkFile, normalisePrefix, putFile, UploadError } from "./upload";

const PARALLEL = 3;

type UploadState = "queued" | "rejected" | "uploading" | "stored" | "failed" | "cancelled" | "exists";

interface UploadRow {
  id: number;
  name: string;
  size: number;
  state: UploadState;
  progress: number;
  key?: string;
  message?: string;
  controller?: AbortController;
  /** While `exists`: replace the stored file, or keep it. */
  replace?: () => void;
  keep?: () => void;
}

let nextId = 1;

export function UploadPanel(props: {
  api: Api;
  policy: UploadPolicy;
  documents: DocumentItem[];
  onUploaded: () => void;
  onError: (e: unknown) => void;
}) {
  const [rows, setRows] = useState<UploadRow[]>([]);
  // A scoped key uploads only under its prefix: start there (the server refuses anything else).
  const [folder, setFolder] = useState(props.policy.scopePrefix ?? "");
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const patch = (id: number, change: Partial<UploadRow>) =>
    setRows((old) => old.map((r) => (r.id === id ? { ...r, ...change } : r)));

  const uploadOne = async (row: UploadRow, file: File, prefix: string, overwrite = false) => {
    const controller = new AbortController();
    patch(row.id, {
      state: "uploading",
      controller,
      message: undefined,
      replace: undefined,
      keep: undefined,
    });
    try {
      const ticket = await props.api.createUpload({
        filename: file.name,
        size: file.size,
        contentType: file.type || "application/octet-stream",
        prefix: prefix || undefined,
        ...(overwrite ? { overwrite: true } : {}),
      });
      patch(row.id, { key: ticket.key });
      await putFile(
        ticket,
        file,
        (fraction) => patch(row.id, { progress: Math.round(fraction * 100) }),
        controller.signal,
      );
      patch(row.id, { state: "stored", progress: 100, controller: undefined });
      props.onUploaded();
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") {
        patch(row.id, { state: "cancelled", message: "Cancelled.", controller: undefined });
        return;
      }
      // The file exists (409), or another upload stored it first (412): ask before replacing it.
      const exists =
        (e instanceof ApiError && e.kind === "exists") ||
        (e instanceof UploadError && e.code === "PreconditionFailed");
      if (exists && !overwrite) {
        patch(row.id, {
          state: "exists",
          controller: undefined,
          message: `${file.name} already exists in this folder. Replace it?`,
          replace: () => void uploadOne(row, file, prefix, true),
          keep: () =>
            patch(row.id, {
              state: "cancelled",
              message: "Kept the existing file.",
              replace: undefined,
              keep: undefined,
            }),
        });
        return;
      }
      props.onError(e);
      patch(row.id, {
        state: "failed",
        message: e instanceof Error ? e.message : String(e),
        controller: undefined,
      });
    }
  };

  const addFiles = (files: FileList | File[]) => {
    const prefix = normalisePrefix(folder);
    const list = Array.from(files);
    if (list.length === 0) return;
    const created = list.map((file) => {
      const problem = checkFile(file, props.policy);
      const row: UploadRow = {
        id: nextId++,
        name: file.name,
        size: file.size,
        state: problem ? "rejected" : "queued",
        progress: 0,
        message: problem,
      };
      return { row, file };
    });
    setRows((old) => [...created.map((c) => c.row), ...old]);
    const queue = created.filter((c) => c.row.state === "queued");
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await uploadOne(next.row, next.file, prefix);
    };
    for (let i = 0; i < Math.min(PARALLEL, queue.length); i++) void worker();
  };

  const byKey = new Map(props.documents.map((d) => [d.key, d]));
  const finished = rows.some((r) => r.state !== "queued" && r.state !== "uploading");

  return (
    <section class="card" aria-labelledby="upload-title">
      <h2 id="upload-title">Upload</h2>
      <label for="folder">Folder (optional key prefix)</label>
      <input
        id="folder"
        type="text"
        placeholder="e.g. reports/2025/"
        value={folder}
        onInput={(e) => setFolder(e.currentTarget.value)}
        autocomplete="off"
        spellcheck={false}
        aria-describedby={props.policy.scopePrefix ? "folder-scope" : undefined}
      />
      {props.policy.scopePrefix && (
        <p id="folder-scope" class="hint">
          This key sees and uploads only under {props.policy.scopePrefix}
        </p>
      )}
      <fieldset
        class={`dropzone${dragging ? " dragging" : ""}`}
        onDragOver={(e) => {
          e.preventDefault();
          if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          if (e.dataTransfer?.files) addFiles(e.dataTransfer.files);
        }}
      >
        <legend class="visually-hidden">Files to upload</legend>
        <p>Drop files here, or</p>
        <label class="button" for="files">
          Choose files…
        </label>
        <input
          ref={input}
          id="files"
          class="visually-hidden"
          type="file"
          multiple
          accept={props.policy.extensions.map((e) => `.${e}`).join(",")}
          aria-describedby="upload-limits"
          onChange={(e) => {
            const files = e.currentTarget.files;
            if (files) addFiles(files);
            e.currentTarget.value = "";
          }}
        />
        <p id="upload-limits" class="hint">
          Up to {formatBytes(props.policy.maxBytes)} per file. PDF, Word, Excel, PowerPoint, text, Markdown,
          HTML, images and source code.
        </p>
      </fieldset>
      {rows.length > 0 && (
        <>
          <ul class="uploads" aria-label="Uploads">
            {rows.map((r) => (
              <UploadItem key={r.id} row={r} doc={r.key ? byKey.get(r.key) : undefined} />
            ))}
          </ul>
          {finished && (
            <button
              type="button"
              class="secondary small"
              onClick={() =>
                setRows((old) => old.filter((r) => r.state === "queued" || r.state === "uploading"))
              }
            >
              Clear finished
            </button>
          )}
        </>
      )}
    </section>
  );
}

function UploadItem(props: { row: UploadRow; doc?: DocumentItem }) {
  const { row, doc } = props;
  const failed = row.state === "rejected" || row.state === "failed";
  return (
    <li class={`upload ${row.state}`} data-name={row.name}>
      <div class="upload-head">
        <span class="name">{row.key ?? row.name}</span>
        <span class="hint">{formatBytes(row.size)}</span>
        {row.state === "uploading" && row.controller && (
          <button
            type="button"
            class="secondary small"
            aria-label={`Cancel upload of ${row.name}`}
            onClick={() => row.controller?.abort()}
          >
            Cancel
          </button>
        )}
      </div>
      {(row.state === "uploading" || row.state === "queued" || row.state === "stored") && (
        <progress max={100} value={row.progress} aria-label={`Upload progress for ${row.name}`}>
          {row.progress}%
        </progress>
      )}
      <div class="upload-status" role={failed ? "alert" : undefined}>
        {row.state === "queued" && "Waiting…"}
        {row.state === "uploading" && `Uploading… ${row.progress}%`}
        {row.state === "stored" && (doc ? <StatusCell doc={doc} /> : "Uploaded; waiting for processing…")}
        {failed && <span class="error">{row.message}</span>}
        {row.state === "cancelled" && row.message}
        {row.state === "exists" && (
          <span class="confirm" role="alert">
            {row.message}{" "}
            <button
              type="button"
              class="small"
              aria-label={`Replace ${row.name}`}
              onClick={() => row.replace?.()}
            >
              Replace
            </button>{" "}
            <button
              type="button"
              class="secondary small"
              aria-label={`Keep the existing ${row.name}`}
              onClick={() => row.keep?.()}
            >
              Keep existing
            </button>
          </span>
        )}
      </div>
    </li>
  );
}
