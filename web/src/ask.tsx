/**
 * Ask panel: a question scoped to all documents, a folder (prefix) or the selected documents; the
 * answer streams in from POST /chat (SSE); its sources are listed under it with each chunk's text
 * on demand; follow-ups send the earlier turns as `messages` so the conversation continues.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { type Api, ApiError, type ChatResult, type ChatTurn, type DocumentItem } from "./api";

type Scope = "all" | "prefix" | "selected";

interface Turn {
  id: number;
  question: string;
  scopeLabel: string;
  request: { prefix?: string; documentIds?: string[] };
  answer: string;
  /** The model is streaming its reasoning (thinking models) before the answer. */
  thinking?: boolean;
  streaming: boolean;
  result?: ChatResult;
  error?: { message: string; kind: string; retryAt?: number };
}

let nextTurn = 1;

export function AskPanel(props: {
  api: Api;
  documents: DocumentItem[];
  selected: ReadonlySet<string>;
  filter: string;
  onError: (e: unknown) => void;
}) {
  const [scope, setScope] = useState<Scope>("all");
  const [prefix, setPrefix] = useState("");
  const [question, setQuestion] = useState("");
  const [turns, setTurns] = useState<Turn[]>([]);
  const [formError, setFormError] = useState<string>();
  const controller = useRef<AbortController>();
  const streaming = turns.some((t) => t.streaming);
  const [, setNow] = useState(Date.now());

  // Keep the rate-limit countdowns moving.
  const waiting = turns.some((t) => t.error?.retryAt && t.error.retryAt > Date.now());
  useEffect(() => {
    if (!waiting) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [waiting]);

  // Selecting documents in the table suggests the "selected" scope; losing them falls back to all.
  useEffect(() => {
    if (props.selected.size > 0) setScope("selected");
    else setScope((s) => (s === "selected" ? "all" : s));
  }, [props.selected.size]);

  const update = (id: number, change: (t: Turn) => Partial<Turn>) =>
    setTurns((old) => old.map((t) => (t.id === id ? { ...t, ...change(t) } : t)));

  const run = async (turn: Turn, history: ChatTurn[]) => {
    const abort = new AbortController();
    controller.current = abort;
    try {
      const result = await props.api.chat(
        { question: turn.question, messages: history.length ? history : undefined, ...turn.request },
        (delta) =>
          update(turn.id, (t) =>
            "content" in delta ? { answer: t.answer + delta.content } : { thinking: true },
          ),
        abort.signal,
      );
      update(turn.id, () => ({ streaming: false, result, answer: result.answer }));
    } catch (e) {
      if (e instanceof DOMException && e.name === "AbortError") {
        update(turn.id, (t) => ({
          streaming: false,
          result: t.result,
          error: { kind: "stopped", message: "Stopped." },
        }));
        return;
      }
      props.onError(e);
      const retryAt =
        e instanceof ApiError && e.retryAfterSeconds !== undefined
          ? Date.now() + e.retryAfterSeconds * 1000
          : undefined;
      update(turn.id, () => ({
        streaming: false,
        error: {
          message: e instanceof Error ? e.message : String(e),
          kind: e instanceof ApiError ? e.kind : "server",
          retryAt,
        },
      }));
    } finally {
      if (controller.current === abort) controller.current = undefined;
    }
  };

  const historyBefore = (id: number): ChatTurn[] =>
    turns
      .filter((t) => t.id < id && !t.error && !t.streaming && t.answer)
      .flatMap((t): ChatTurn[] => [
        { role: "user", content: t.question },
        { role: "assistant", content: t.answer },
      ]);

  const submit = () => {
    const text = question.trim();
    if (!text) {
      setFormError("Type a question first.");
      return;
    }
    let request: Turn["request"] = {};
    let scopeLabel = "all documents";
    if (scope === "prefix") {
      const p = prefix.trim();
      if (!p) {
        setFormError("Enter the folder (key prefix) to ask about, or choose another scope.");
        return;
      }
      request = { prefix: p };
      scopeLabel = `folder “${p}”`;
    } else if (scope === "selected") {
      if (props.selected.size === 0) {
        setFormError("Select documents in the table first, or choose another scope.");
        return;
      }
      request = { documentIds: [...props.selected] };
      scopeLabel = `${props.selected.size} selected document${props.selected.size === 1 ? "" : "s"}`;
    }
    setFormError(undefined);
    const turn: Turn = { id: nextTurn++, question: text, scopeLabel, request, answer: "", streaming: true };
    const history = historyBefore(turn.id);
    setTurns((old) => [...old, turn]);
    setQuestion("");
    void run(turn, history);
  };

  const retry = (turn: Turn) => {
    update(turn.id, () => ({ streaming: true, answer: "", error: undefined, result: undefined }));
    void run({ ...turn, answer: "" }, historyBefore(turn.id));
  };

  return (
    <section class="card ask" aria-labelledby="ask-title">
      <div class="card-head">
        <h2 id="ask-title">Ask</h2>
        {turns.length > 0 && (
          <button
            type="button"
            class="secondary"
            disabled={streaming}
            onClick={() => {
              setTurns([]);
              setFormError(undefined);
            }}
          >
            New conversation
          </button>
        )}
      </div>
      <ol class="turns" aria-label="Conversation">
        {turns.map((t) => (
          <TurnView key={t.id} turn={t} onRetry={() => retry(t)} busy={streaming} />
        ))}
      </ol>
      <form
        class="ask-form"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <fieldset class="scope">
          <legend>Ask about</legend>
          <label class="inline">
            <input type="radio" name="scope" checked={scope === "all"} onChange={() => setScope("all")} /> All
            documents
          </label>
          <label class="inline">
            <input
              type="radio"
              name="scope"
              checked={scope === "prefix"}
              onChange={() => {
                setScope("prefix");
                if (!prefix && props.filter) setPrefix(props.filter);
              }}
            />{" "}
            A folder
          </label>
          <label class="inline">
            <input
              type="radio"
              name="scope"
              checked={scope === "selected"}
              disabled={props.selected.size === 0}
              onChange={() => setScope("selected")}
            />{" "}
            Selected documents ({props.selected.size})
          </label>
          {scope === "prefix" && (
            <>
              <label for="ask-prefix">Folder (key prefix)</label>
              <input
                id="ask-prefix"
                type="text"
                value={prefix}
                placeholder="e.g. reports/2025/"
                onInput={(e) => setPrefix(e.currentTarget.value)}
                autocomplete="off"
                spellcheck={false}
              />
            </>
          )}
        </fieldset>
        <label for="question">{turns.length ? "Follow-up question" : "Question"}</label>
        <textarea
          id="question"
          rows={3}
          value={question}
          placeholder="What does the contract say about termination?"
          onInput={(e) => setQuestion(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              if (!streaming) submit();
            }
          }}
          aria-describedby="question-hint"
        />
        <p id="question-hint" class="hint">
          Enter sends; Shift+Enter starts a new line.
        </p>
        {formError && (
          <p class="error" role="alert">
            {formError}
          </p>
        )}
        <div class="row">
          <button type="submit" disabled={streaming}>
            Ask
          </button>
          {streaming && (
            <button type="button" class="secondary" onClick={() => controller.current?.abort()}>
              Stop
            </button>
          )}
        </div>
      </form>
    </section>
  );
}

function TurnView(props: { turn: Turn; onRetry: () => void; busy: boolean }) {
  const { turn } = props;
  const waitSeconds = turn.error?.retryAt ? Math.ceil((turn.error.retryAt - Date.now()) / 1000) : 0;
  return (
    <li class="turn">
      <p class="question">
        <span class="visually-hidden">You asked about {turn.scopeLabel}: </span>
        {turn.question}
        <span class="hint scope-label" aria-hidden="true">
          {" "}
          · {turn.scopeLabel}
        </span>
      </p>
      <div class="answer" aria-busy={turn.streaming} aria-live={turn.streaming ? "off" : "polite"}>
        {turn.answer ||
          (turn.streaming ? (
            <span class="hint">{turn.thinking ? "Thinking…" : "Waiting for the answer…"}</span>
          ) : null)}
        {turn.streaming && turn.answer && <span class="cursor" aria-hidden="true" />}
      </div>
      {turn.error && (
        <div
          class={turn.error.kind === "stopped" ? "hint" : "error"}
          role={turn.error.kind === "stopped" ? undefined : "alert"}
        >
          <p>{turn.error.message}</p>
          {turn.error.kind !== "auth" && turn.error.kind !== "invalid" && (
            <button
              type="button"
              class="secondary small"
              onClick={props.onRetry}
              disabled={props.busy || waitSeconds > 0}
            >
              {waitSeconds > 0 ? `Retry in ${waitSeconds} s` : "Retry"}
            </button>
          )}
        </div>
      )}
      {turn.result && <Sources result={turn.result} />}
    </li>
  );
}

function Sources(props: { result: ChatResult }) {
  const { usage, model } = props.result;
  const sources = props.result.sources ?? [];
  const skipped = props.result.skipped ?? [];
  return (
    <div class="sources">
      {sources.length > 0 ? (
        <>
          <h3>Sources</h3>
          <ul>
            {sources.map((s) => (
              <li key={s.documentId} class="source">
                <span class="name">{s.key}</span>
                {s.complete === false && <span class="hint"> (most relevant passages)</span>}
                {s.chunks.length > 0 && (
                  <ul class="chunks">
                    {s.chunks.map((c) => (
                      <li key={c.index}>
                        {c.text !== undefined ? (
                          <details>
                            <summary>
                              Passage {c.index + 1}
                              <span class="visually-hidden"> of {s.key}</span>
                            </summary>
                            <blockquote>{c.text}</blockquote>
                          </details>
                        ) : (
                          <span class="hint">Passage {c.index + 1}</span>
                        )}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p class="hint">No document text was used for this answer.</p>
      )}
      {skipped.length > 0 && (
        <p class="hint">
          Not used (not ready):{" "}
          {skipped
            .map(
              (s) =>
                `${s.key ?? s.documentId} (${s.status === "processing" ? "still processing" : (s.status ?? "not ready")})`,
            )
            .join(", ")}
        </p>
      )}
      {(model || usage?.totalTokens) && (
        <p class="hint meta">
          {model}
          {usage?.totalTokens ? ` · ${usage.totalTokens} tokens` : ""}
        </p>
      )}
    </div>
  );
}
