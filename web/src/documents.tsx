/**
 * The documents table: name, size, status (with the failure reason), updated time; a folder (prefix)
 * filter; selection for scoped questions; delete with a confirmation dialog. The list refreshes every
 * few seconds while something is processing (or an upload was just sent), and not at all otherwise.
 */
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { type Api, ApiError, type DocumentItem } from "./api";
import { formatBytes, formatExact, formatWhen } from "./format";

const POLL_MS = 2000;
/** After an upload, keep polling this long for its document to appear even if nothing is processing. */
const EXPECT_MS = 60_000;
const PAGE = 100;
const MAX_PAGES = 10;

export interface DocumentsState {
  items: DocumentItem[];
  loading: boolean;
  error?: string;
  hasMore: boolean;
  loadedAt?: number;
  reload(): void;
  loadMore(): void;
  /** Call after an upload or delete: refresh now and keep polling for a while. */
  expectChange(): void;
  /** Marks a document deleted locally until the next refresh confirms it. */
  markDeleted(documentId: string): void;
}

/** Loads the documents under `prefix`, keeping them fresh while any is processing. */
export function useDocuments(api: Api, prefix: string, onError: (e: unknown) => void): DocumentsState {
  const [items, setItems] = useState<DocumentItem[]>([]);
  const [cursor, setCursor] = useState<string>();
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string>();
  const [loadedAt, setLoadedAt] = useState<number>();
  const [expectUntil, setExpectUntil] = useState(0);
  const shown = useRef(PAGE);
  const generation = useRef(0);

  const load = useCallback(
    async (append: boolean, from?: string) => {
      const mine = ++generation.current;
      setLoading(true);
      try {
        const collected: DocumentItem[] = [];
        let next = append ? from : undefined;
        const want = append ? PAGE : Math.max(PAGE, shown.current);
        for (let page = 0; page < MAX_PAGES; page++) {
          const result = await api.listDocuments({ prefix: prefix || undefined, cursor: next, limit: PAGE });
          collected.push(...result.items.filter((d) => d.status !== "deleted"));
          next = result.cursor ?? undefined;
          if (!next || collected.length >= want) break;
        }
        if (mine !== generation.current) return;
        setItems((old) => (append ? [...old, ...collected] : collected));
        shown.current = append ? shown.current + collected.length : Math.max(PAGE, collected.length);
        setCursor(next ?? undefined);
        setError(undefined);
        setLoadedAt(Date.now());
      } catch (e) {
        if (mine !== generation.current) return;
        onError(e);
        setError(e instanceof Error ? e.message : String(e));
      } finally {
        if (mine === generation.current) setLoading(false);
      }
    },
    [api, prefix, onError],
  );

  // Reload when the filter changes (debounced while typing).
  useEffect(() => {
    const timer = setTimeout(() => void load(false), prefix ? 300 : 0);
    return () => clearTimeout(timer);
  }, [load, prefix]);

  // Poll while something is in flight; pause while the tab is hidden.
  const busy = items.some((d) => d.status === "processing") || expectUntil > Date.now();
  useEffect(() => {
    if (!busy || loading) return;
    const timer = setTimeout(() => {
      if (document.visibilityState === "visible") void load(false);
      else setLoadedAt(Date.now());
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [busy, loading, loadedAt, load]);

  return {
    items,
    loading,
    error,
    hasMore: cursor !== undefined,
    loadedAt,
    reload: () => void load(false),
    loadMore: () => void load(true, cursor),
    expectChange: () => {
      setExpectUntil(Date.now() + EXPECT_MS);
      void load(false);
    },
    markDeleted: (id) => setItems((old) => old.filter((d) => d.documentId !== id)),
  };
}

/** A status badge; failed documents show why. */
export function StatusCell(props: { doc: DocumentItem }) {
  const { doc } = props;
  return (
    <div class="status">
      <span class={`badge ${doc.status}`}>
        {doc.status === "processing" ? "Processing…" : label(doc.status)}
      </span>
      {doc.status === "failed" && doc.error && <span class="reason">{doc.error.message}</span>}
    </div>
  );
}

function label(status: string): string {
  return status.charAt(0).toUpperCase() + status.slice(1);
}

export function DocumentsPanel(props: {
  api: Api;
  docs: DocumentsState;
  filter: string;
  onFilter: (prefix: string) => void;
  selected: ReadonlySet<string>;
  onSelect: (ids: ReadonlySet<string>) => void;
  onError: (e: unknown) => void;
}) {
  const { docs, selected } = props;
  const [pending, setPending] = useState<DocumentItem>();
  const [, setTick] = useState(0);

  // Re-render every 15 s so "updated 10 seconds ago" stays true.
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), 15_000);
    return () => clearInterval(timer);
  }, []);

  const toggle = (id: string, on: boolean) => {
    const next = new Set(selected);
    if (on) next.add(id);
    else next.delete(id);
    props.onSelect(next);
  };
  const allSelected = docs.items.length > 0 && docs.items.every((d) => selected.has(d.documentId));
  const processing = docs.items.filter((d) => d.status === "processing").length;

  return (
    <section class="card" aria-labelledby="docs-title">
      <div class="card-head">
        <h2 id="docs-title">Documents</h2>
        <button type="button" class="secondary" onClick={docs.reload} disabled={docs.loading}>
          Refresh
        </button>
      </div>
      <label for="filter">Filter by folder (key prefix)</label>
      <input
        id="filter"
        type="search"
        placeholder="e.g. reports/2025/"
        value={props.filter}
        onInput={(e) => props.onFilter(e.currentTarget.value)}
        autocomplete="off"
        spellcheck={false}
      />
      <p class="hint" role="status" aria-live="polite">
        {docs.error
          ? ""
          : `${docs.items.length}${docs.hasMore ? "+" : ""} document${docs.items.length === 1 ? "" : "s"}` +
            (processing ? `, ${processing} processing` : "") +
            (selected.size ? `, ${selected.size} selected` : "")}
      </p>
      {docs.error && (
        <p class="error" role="alert">
          {docs.error}
        </p>
      )}
      {docs.items.length === 0 && !docs.loading && !docs.error ? (
        <p class="empty">
          {props.filter ? `No documents under “${props.filter}”.` : "No documents yet. Upload a file above."}
        </p>
      ) : (
        <table class="docs" aria-labelledby="docs-title" aria-busy={docs.loading}>
          <thead>
            <tr>
              <th scope="col" class="pick">
                <input
                  type="checkbox"
                  aria-label="Select all listed documents"
                  checked={allSelected}
                  onChange={(e) =>
                    props.onSelect(
                      e.currentTarget.checked ? new Set(docs.items.map((d) => d.documentId)) : new Set(),
                    )
                  }
                />
              </th>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">Status</th>
              <th scope="col">Updated</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {docs.items.map((d) => (
              <tr key={d.documentId} data-key={d.key}>
                <td class="pick">
                  <input
                    type="checkbox"
                    aria-label={`Select ${d.key}`}
                    checked={selected.has(d.documentId)}
                    onChange={(e) => toggle(d.documentId, e.currentTarget.checked)}
                  />
                </td>
                <th scope="row" class="name" data-label="Name">
                  {d.key}
                </th>
                <td data-label="Size">{formatBytes(d.size)}</td>
                <td data-label="Status">
                  <StatusCell doc={d} />
                </td>
                <td data-label="Updated">
                  <time dateTime={d.updatedAt} title={formatExact(d.updatedAt)}>
                    {formatWhen(d.updatedAt)}
                  </time>
                </td>
                <td class="actions">
                  <button
                    type="button"
                    class="danger small"
                    aria-label={`Delete ${d.key}`}
                    onClick={() => setPending(d)}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {docs.hasMore && (
        <button type="button" class="secondary" onClick={docs.loadMore} disabled={docs.loading}>
          Load more
        </button>
      )}
      {pending && (
        <DeleteDialog
          doc={pending}
          api={props.api}
          onClose={(deleted) => {
            setPending(undefined);
            if (deleted) {
              docs.markDeleted(pending.documentId);
              if (selected.has(pending.documentId)) toggle(pending.documentId, false);
              docs.expectChange();
            }
          }}
          onError={props.onError}
        />
      )}
    </section>
  );
}

/** A modal confirmation (native <dialog>: focus trapped, Escape cancels, focus returns on close). */
function DeleteDialog(props: {
  doc: DocumentItem;
  api: Api;
  onClose: (deleted: boolean) => void;
  onError: (e: unknown) => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();

  // Modal before the first paint: with a plain effect the dialog was painted for a frame as an inline
  // box, where Escape did nothing and clicks reached the page behind it.
  useLayoutEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
  }, []);

  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.api.deleteDocument(props.doc.documentId);
      ref.current?.close();
      props.onClose(true);
    } catch (e) {
      props.onError(e);
      // Already gone is what the user wanted.
      if (e instanceof ApiError && e.kind === "not_found") {
        ref.current?.close();
        props.onClose(true);
        return;
      }
      setError(e instanceof Error ? e.message : String(e));
      setBusy(false);
    }
  };

  return (
    <dialog
      ref={ref}
      class="card"
      aria-labelledby="delete-title"
      aria-describedby="delete-desc"
      onCancel={() => props.onClose(false)}
    >
      <h2 id="delete-title">Delete “{props.doc.key}”?</h2>
      <p id="delete-desc">
        The file is removed from storage and its extracted text from the index. This cannot be undone.
      </p>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button
          type="button"
          class="secondary"
          autofocus
          onClick={() => {
            ref.current?.close();
            props.onClose(false);
          }}
        >
          Cancel
        </button>
        <button type="button" class="danger" onClick={confirm} disabled={busy}>
          {busy ? "Deleting…" : "Delete"}
        </button>
      </div>
    </dialog>
  );
}
